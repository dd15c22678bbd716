// A log line far larger than the log limit is cut at the limit, never built
// in full (which would reach the memory limit); later lines are dropped.
// expect: succeeded -
// limits: memory_mb=16
// result: "logged"
// logs_truncated: true
const big = "x".repeat(1 << 20);
const parts = [];
for (let i = 0; i < 64; i++) parts.push(big);
console.log(...parts, ...parts);
return "logged";
