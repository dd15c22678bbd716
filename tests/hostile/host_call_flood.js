// expect: failed host_call_limit
// grants: sleep
await Promise.all(Array.from({ length: 100000 }, () => api.sleep(1)));
