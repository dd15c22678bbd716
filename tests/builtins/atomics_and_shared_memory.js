// expect: succeeded -
// result: [5, 5]
// Atomics on an ordinary buffer (SharedArrayBuffer only where present).
const sab = typeof SharedArrayBuffer === "function" ? new SharedArrayBuffer(16) : new ArrayBuffer(16);
const a = new Int32Array(sab);
Atomics.store(a, 0, 5);
return [Atomics.load(a, 0), Atomics.add(a, 0, 1)];
