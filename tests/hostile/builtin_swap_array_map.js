// A script that replaces Array.prototype methods through Reflect used to
// receive the console formatter; the prelude calls no replaceable method.
// expect: succeeded -
// grants: echo
// result: [[], "a 1 [2]"]
const received = [];
for (const name of ["map", "join", "push", "forEach", "slice", "concat", "indexOf", Symbol.iterator]) {
  const original = Array.prototype[name];
  Reflect.set(Array.prototype, name, function (...args) {
    if (typeof this === "function") received.push(this.name || "anonymous");
    for (let i = 0; i < args.length; i++) if (typeof args[i] === "function") received.push(args[i].name || "anonymous");
    return Reflect.apply(original, this, args);
  });
}
console.log("a", 1, [2]);
await api.echo(["x"]);
return [received, "a 1 [2]"];
