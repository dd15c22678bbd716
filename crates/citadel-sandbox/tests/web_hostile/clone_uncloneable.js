// structuredClone refuses functions and symbols with a DataCloneError, and
// copies cycles, Maps, Sets, Dates, RegExps and typed arrays.
// expect: succeeded -
// result: ["DataCloneError", "DataCloneError", "DataCloneError", true, true, 2, "x", [1, 2], "a+/g", 3, true]
const out = [];
for (const v of [() => 1, Symbol("s"), { nested: [Math.max] }]) {
  try { structuredClone(v); out.push("cloned"); } catch (e) { out.push(e.name); }
}
const cyclic = { list: [] };
cyclic.self = cyclic;
cyclic.list.push(cyclic);
const c = structuredClone(cyclic);
out.push(c.self === c && c !== cyclic, c.list[0] === c);
const m = structuredClone(new Map([[1, "x"], [2, "y"]]));
out.push(m.size, m.get(1));
out.push([...structuredClone(new Set([1, 2]))]);
out.push(structuredClone(/a+/g).toString().slice(1));
const t = structuredClone(new Uint8Array([1, 2, 3]));
out.push(t.length, structuredClone(new Date(5)).getTime() === 5);
return out;
