// Setters on Error.prototype and Object.prototype are never run by the
// prelude when it builds the errors it throws.
// expect: succeeded -
// grants: kv
// result: [[], "Unavailable", "unavailable", "CapabilityDenied"]
const calls = [];
for (const target of [Object.prototype, Error.prototype]) {
  for (const key of ["name", "code", "message"]) {
    Object.defineProperty(target, key, {
      set(v) { calls.push(key); },
      get() { return undefined; },
      configurable: true,
    });
  }
}
let caught;
try {
  await api.kv.get("k");
} catch (e) {
  caught = e;
}
let denied;
try {
  api.http;
} catch (e) {
  denied = e;
}
return [calls, caught.name, caught.code, denied.name];
