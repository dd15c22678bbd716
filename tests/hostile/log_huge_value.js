// A value whose JSON is larger than the log limit is left out of the line.
// expect: succeeded -
// result: "logged"
// logs_truncated: true
const big = "x".repeat(1 << 20);
console.log("before", new Array(100).fill(big));
return "logged";
