// The memory limit cannot be caught: the run ends at it.
// expect: failed memory_limit
// limits: memory_mb=16
try {
  const hoard = [];
  for (;;) hoard.push(new Array(10000).fill(1));
} catch (e) {
  return "caught " + e;
}
