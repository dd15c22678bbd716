// expect: succeeded -
// result: true
const parts = [(1e21).toLocaleString(), (-0).toLocaleString(), NaN.toLocaleString(), [1, 2.5, new Date(0)].toLocaleString(), BigInt(10).toLocaleString()];
return parts.every((p) => typeof p === "string");
