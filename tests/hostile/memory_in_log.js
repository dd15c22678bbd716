// Formatting a log line that does not fit in memory is the memory limit.
// expect: failed memory_limit
// limits: memory_mb=16
const big = "x".repeat(1 << 20);
const parts = [];
for (let i = 0; i < 64; i++) parts.push(big);
console.log(...parts, ...parts);
return "logged";
