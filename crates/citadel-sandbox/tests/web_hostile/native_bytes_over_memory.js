// Bytes made by native code (encoding, base64, digests) are charged to the
// run like any other: past the memory limit the run ends with memory_limit.
// expect: failed memory_limit
// limits: memory_mb=24 timeout_ms=10000 cpu_ms=10000
const text = "é".repeat(4 << 20);
const kept = [];
for (;;) kept.push(new TextEncoder().encode(text), btoa(String.fromCharCode(...new Uint8Array(1024))));
