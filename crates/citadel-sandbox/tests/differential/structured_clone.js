// Deep copies: nested data, Map, Set, Date, cycles, typed arrays; what
// cannot be copied.
const original = { n: 1, list: [1, { deep: true }], when: new Date(Date.UTC(2024, 0, 2)), map: new Map([["k", { v: 1 }]]), set: new Set([1, 2]), bytes: new Uint8Array([1, 2, 3]) };
original.self = original;
const copy = structuredClone(original);
copy.list[1].deep = false;
copy.map.get("k").v = 2;
let fn, sym;
try { structuredClone({ f() {} }); } catch (e) { fn = e.name; }
try { structuredClone(Symbol("x")); } catch (e) { sym = e.name; }
return {
  independent: original.list[1].deep === true && original.map.get("k").v === 1,
  cycle: copy.self === copy, date: copy.when.toISOString(), set: [...copy.set], bytes: Array.from(copy.bytes),
  types: [copy.when instanceof Date, copy.map instanceof Map, copy.bytes instanceof Uint8Array], fn, sym,
};
