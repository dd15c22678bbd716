// expect: failed memory_limit
// Flat strings of 1 MB each until the heap is full.
const parts = [];
for (let i = 0; ; i++) parts.push(String(i % 10).repeat(1 << 20));
