// expect: succeeded -
// result: [6, 255, -1, 1.5, 16, [1, 2, 3], 3]
const f = new Float64Array([1.5, 2.5]);
const u8 = new Uint8Array(new ArrayBuffer(16));
u8.set([1, 2, 3]);
const dv = new DataView(u8.buffer);
dv.setInt16(4, -1);
return [
  new Int32Array([1, 2, 3]).reduce((a, b) => a + b),
  new Uint8ClampedArray([300])[0],
  dv.getInt16(4),
  f[0],
  u8.byteLength,
  Array.from(u8.subarray(0, 3)),
  new BigInt64Array([1n, 2n, 3n]).length,
];
