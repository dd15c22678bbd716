// expect: failed memory_limit
// limits: memory_mb=16
const hoard = [];
while (true) hoard.push("x".repeat(1 << 20) + hoard.length);
