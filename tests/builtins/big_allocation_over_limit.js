// expect: failed memory_limit
// One buffer larger than the heap limit.
const buf = new ArrayBuffer(256 << 20);
return buf.byteLength;
