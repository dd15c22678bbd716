// expect: succeeded -
// result: [2, true, true]
const agg = new AggregateError([new Error("a"), new Error("b")], "both");
let stack;
try { null.x; } catch (e) { stack = e.stack; }
return [agg.errors.length, typeof stack === "string", String(new RangeError("r")).startsWith("RangeError")];
