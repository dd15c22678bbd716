// Cloning a graph larger than the memory limit ends as memory_limit.
// expect: failed memory_limit
// limits: memory_mb=24 timeout_ms=10000 cpu_ms=10000
const big = [];
for (let i = 0; i < 100000; i++) big.push({ i, s: "x" + i, inner: [i, i] });
const copies = [];
for (;;) copies.push(structuredClone(big));
