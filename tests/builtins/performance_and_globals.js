// expect: succeeded -
// result: [true, true, true]
const perf = typeof performance === "undefined" || typeof performance.now() === "number";
const clone = typeof structuredClone === "undefined" || structuredClone({ a: [1] }).a[0] === 1;
const q = typeof queueMicrotask === "undefined" || typeof queueMicrotask === "function";
return [perf, clone, q];
