// expect: succeeded -
// result: ["desc", 42, ["a"], true]
const p = new Proxy({}, { get: () => 42 });
return [Symbol("desc").description, p.anything, Reflect.ownKeys({ a: 1 }), Symbol.for("x") === Symbol.for("x")];
