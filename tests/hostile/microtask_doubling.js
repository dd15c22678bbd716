// A microtask queue that doubles reaches the memory limit, not a timeout.
// expect: failed memory_limit
// limits: memory_mb=16 timeout_ms=5000 cpu_ms=5000
const spin = () => {
  try {
    Promise.resolve().then(spin);
    Promise.resolve().then(spin);
  } catch {}
};
spin();
await new Promise(() => {});
