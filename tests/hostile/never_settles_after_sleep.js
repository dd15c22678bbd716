// expect: failed never_settles
// grants: sleep
await api.sleep(5);
await new Promise(() => {});
