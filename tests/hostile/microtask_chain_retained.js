// A promise chain built in one go, each link holding the next, reaches the
// memory limit while it is being built or drained, never never_settles.
// expect: failed memory_limit
// limits: memory_mb=16
let p = Promise.resolve();
for (;;) p = p.then(() => new Array(100).fill(0));
