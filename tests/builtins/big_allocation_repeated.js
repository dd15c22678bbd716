// expect: succeeded -
// result: 200
// Allocating and freeing large blocks repeatedly (malloc hands them back to the kernel).
let n = 0;
for (let i = 0; i < 200; i++) {
  const b = new Uint8Array(4 << 20);
  b[b.length - 1] = 1;
  n += b[b.length - 1];
}
return n;
