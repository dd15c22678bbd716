// A promise chain that never yields to the host.
// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
const spin = () => Promise.resolve().then(spin);
spin();
await new Promise(() => {});
