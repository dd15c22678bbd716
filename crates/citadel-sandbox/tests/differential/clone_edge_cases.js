// structuredClone: holes, getters, symbols, BigInt, -0, errors with a
// cause, views sharing a buffer, wrappers.
const a = structuredClone([1, , 3]);
const o = structuredClone({ get x() { return 5; }, [Symbol("s")]: 1, u: undefined, n: null, big: 10n, neg: -0 });
const err = structuredClone(new RangeError("r", { cause: 1 }));
const buf = new ArrayBuffer(8); const v1 = new Uint8Array(buf, 0, 4); const v2 = new Uint16Array(buf, 4, 2);
const c = structuredClone([v1, v2]);
return [a.length, 1 in a, Object.keys(o), o.x, typeof o.big, Object.is(o.neg, -0), err.name, err.message, err.cause, c[0].buffer === c[1].buffer, c[1].length, c[0].byteOffset, c[1].byteOffset, structuredClone(new Boolean(false)) instanceof Boolean];
