// expect: failed memory_limit
// limits: memory_mb=16
const o = {};
let i = 0;
while (true) o["key" + i++] = { i };
