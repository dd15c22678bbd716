// A microtask chain that keeps what it allocates reaches the memory limit
// (QuickJS drops a job it cannot queue; that must not look like a promise
// that nothing settles).
// expect: failed memory_limit
// limits: memory_mb=16
const keep = [];
const grow = () => {
  keep.push(new Array(1000).fill(1));
  Promise.resolve().then(grow);
};
grow();
await new Promise(() => {});
