// expect: succeeded -
// result: true
// Newer buffer methods, where present.
const buf = new ArrayBuffer(8, { maxByteLength: 64 });
if (typeof buf.resize === "function") buf.resize(32);
const out = typeof buf.transfer === "function" ? buf.transfer() : buf;
return out.byteLength >= 8;
