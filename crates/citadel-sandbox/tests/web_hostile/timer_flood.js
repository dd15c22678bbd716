// Each pending timer is an awaited host call: more than the run may await
// at once ends it with host_call_limit.
// expect: failed host_call_limit
for (let i = 0; i < 100000; i++) setTimeout(() => {}, 1000);
await new Promise(() => {});
