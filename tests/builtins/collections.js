// expect: succeeded -
// result: [2, true, 1, true, 3]
const m = new Map([[1, "a"], [2, "b"]]);
const s = new Set([1, 1, 2]);
const wm = new WeakMap(); const k = {}; wm.set(k, 1);
const ws = new WeakSet([k]);
const wr = typeof WeakRef === "function" ? new WeakRef(k).deref() === k : true;
return [m.size, s.has(2), wm.get(k), ws.has(k) && wr, new Set([1, 2]).union ? new Set([1, 2]).union(new Set([3])).size : 3];
