// The api proxy's handler looked its missing traps up on Object.prototype,
// handing the handler (and its `get` trap) to the script's function. The
// handler has no prototype.
// expect: succeeded -
// grants: echo
// result: [null, true, ["echo"]]
let handler = null;
for (const trap of ["has", "ownKeys", "getOwnPropertyDescriptor", "defineProperty", "deleteProperty", "getPrototypeOf"]) {
  Object.prototype[trap] = function (...args) {
    handler = this;
    return Reflect[trap](...args);
  };
}
const has = "echo" in api;
const keys = Object.keys(api);
Object.getOwnPropertyDescriptor(api, "echo");
Object.getPrototypeOf(api);
return [handler && typeof handler.get, has, keys];
