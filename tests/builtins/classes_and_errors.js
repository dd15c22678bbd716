// expect: succeeded -
// result: ["MyError", "boom", true, "cause", 3]
class MyError extends Error { constructor(m) { super(m, { cause: "cause" }); this.name = "MyError"; } }
class A { #x = 3; static make() { return new A(); } get x() { return this.#x; } }
const e = new MyError("boom");
return [e.name, e.message, typeof e.stack === "string", e.cause, A.make().x];
