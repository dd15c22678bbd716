// expect: succeeded -
// result: [[1, 2, 3, 10], [3, 2, 1], 4096]
const a = new Float32Array([10, 3, 1, 2]).sort();
const b = new Int8Array([1, 2, 3]).reverse();
const big = new Uint16Array(4096).fill(7);
const copy = big.slice();
return [Array.from(a), Array.from(b), copy.length];
