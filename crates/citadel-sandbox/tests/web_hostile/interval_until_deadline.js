// An interval never cleared runs until the run's deadline, no longer.
// expect: timed_out timeout
// limits: timeout_ms=300
let ticks = 0;
setInterval(() => ticks++, 0);
await new Promise(() => setTimeout(() => {}, 100000));
