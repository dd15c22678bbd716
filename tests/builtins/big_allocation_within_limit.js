// expect: succeeded -
// result: 33554432
// Most of the default 64 MB heap in one buffer.
const buf = new ArrayBuffer(32 << 20);
new Uint8Array(buf).fill(1, 0, 1024);
return buf.byteLength;
