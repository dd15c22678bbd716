// expect: failed memory_limit
// limits: memory_mb=16
const hoard = [];
while (true) hoard.push(new Array(1024).fill(7));
