// expect: failed memory_limit
// limits: memory_mb=16
const m = new Map();
let i = 0;
while (true) m.set(i++, [i, i, i]);
