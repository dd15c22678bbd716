// expect: failed memory_limit
// limits: memory_mb=16
return new Uint8Array(64 * 1024 * 1024).length;
