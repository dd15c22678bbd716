// A result far larger than the result limit is the result limit, not an
// invalid result or the memory limit: it is never serialised in full.
// expect: failed result_too_large
const big = "x".repeat(1 << 20);
return new Array(100).fill(big);
