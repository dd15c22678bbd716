// Walks every entry point of the prelude (console.* with each formatting
// path, api.* and the api proxy's traps, host errors, sleep, emit, result
// handling) after replacing every built-in the prelude could touch with a
// trap, plus a stack-trace hook. Every function a trap or the hook is handed
// (as `this`, an argument, or a value inside one) must be the script's own
// or one it could already reach; every stack a trap sees must have no
// prelude frame; and the prelude's functions show no source. The result
// lists what leaked: nothing.
// expect: succeeded -
// grants: echo, sleep, kv, events
// limits: timeout_ms=5000 cpu_ms=3000
// result: {"checks":true,"leaks":[]}
const leaks = [];
const { apply, construct, ownKeys, getOwnPropertyDescriptor, getPrototypeOf, setPrototypeOf } = Reflect;
// Descriptors without a prototype: the traps below add names to Object.prototype.
const defineProperty = (target, key, descriptor) => {
  setPrototypeOf(descriptor, null);
  return Reflect.defineProperty(target, key, descriptor);
};
const WeakSetCtor = WeakSet;
const weakHas = WeakSet.prototype.has;
const weakAdd = WeakSet.prototype.add;
const known = new WeakSetCtor();
const seen = new WeakSetCtor();
const knows = (f) => apply(weakHas, known, [f]);
const know = (f) => {
  apply(weakAdd, known, [f]);
  return f;
};
const toSource = Function.prototype.toString;
const push = Array.prototype.push;
const indexOf = String.prototype.indexOf;
const note = (what) => apply(push, leaks, [what]);

// Everything reachable now (built-ins, console, api) is known: the script
// holds it already.
const walk = (value) => {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return;
  if (apply(weakHas, seen, [value])) return;
  apply(weakAdd, seen, [value]);
  if (typeof value === "function") know(value);
  walk(getPrototypeOf(value));
  for (const key of ownKeys(value)) {
    const d = getOwnPropertyDescriptor(value, key);
    if (!d) continue;
    walk(d.value);
    walk(d.get);
    walk(d.set);
  }
};
walk(globalThis);
for (const key of ownKeys(api)) walk(api[key]);
const entryPoints = [console.debug, console.log, console.info, console.warn, console.error, api.echo, api.sleep,
  api.kv.get, api.kv.set, api.kv.delete, api.events.emit, Function.prototype.toString,
  getOwnPropertyDescriptor(Error.prototype, "stack").get, Error.captureStackTrace];
let checks = true;
// The prelude's functions show no source.
for (const f of entryPoints) {
  const text = apply(toSource, f, []);
  if (apply(indexOf, text, ["[native code]"]) < 0) note(`source of ${f.name}: ${text}`);
}

// A value handed to a trap: a function the script cannot otherwise reach,
// or an object holding one, is a leak.
const inspect = (where, value, depth) => {
  if (typeof value === "function") {
    if (!knows(value)) note(`${where}: function ${value.name}`);
    return;
  }
  if (typeof value !== "object" || value === null || depth > 1) return;
  let keys;
  try {
    keys = ownKeys(value);
  } catch {
    return;
  }
  for (const key of keys) {
    let d;
    try {
      d = getOwnPropertyDescriptor(value, key);
    } catch {
      continue;
    }
    if (!d) continue;
    inspect(`${where}.${String(key)}`, d.value, depth + 1);
    inspect(`${where}.${String(key)} getter`, d.get, depth + 1);
    inspect(`${where}.${String(key)} setter`, d.set, depth + 1);
  }
};
let inTrap = false;
const stackOf = () => {
  const holder = {};
  Error.captureStackTrace(holder);
  return [new Error("probe").stack, holder.stack];
};
const observe = know((where, self, args) => {
  if (inTrap) return;
  inTrap = true;
  try {
    inspect(`${where} this`, self, 0);
    for (let i = 0; i < args.length; i++) inspect(`${where} argument ${i}`, args[i], 0);
    for (const stack of stackOf()) {
      if (typeof stack === "string" && apply(indexOf, stack, ["prelude"]) >= 0) note(`${where}: stack ${stack}`);
    }
  } finally {
    inTrap = false;
  }
});

// The stack-trace hook: every frame's function and receiver.
Error.prepareStackTrace = know((error, frames) => {
  if (!inTrap) {
    for (const frame of frames) {
      const f = frame.getFunction && frame.getFunction();
      if (f !== undefined) inspect("prepareStackTrace frame", f, 0);
      const self = frame.getThis && frame.getThis();
      if (self !== undefined) inspect("prepareStackTrace this", self, 0);
    }
  }
  return "hooked";
});

// Every method and accessor of the built-ins, replaced by a recording trap.
const targets = [Object, Object.prototype, Function.prototype, Array, Array.prototype, String, String.prototype,
  Number.prototype, Boolean.prototype, Symbol, Symbol.prototype, BigInt.prototype, JSON, Promise, Promise.prototype,
  Error, Error.prototype, TypeError, TypeError.prototype, RangeError.prototype, Map.prototype, Set.prototype,
  RegExp.prototype, Reflect, Math, Date.prototype];
defineProperty(Error, Symbol.hasInstance, {
  value: know((v) => {
    observe("Error[Symbol.hasInstance]", Error, [v]);
    return false;
  }),
  configurable: true,
});
for (const target of targets) {
  const owner = typeof target === "function" ? target.name : (target.constructor && target.constructor.name) || "?";
  for (const key of ownKeys(target)) {
    const d = getOwnPropertyDescriptor(target, key);
    if (!d || !d.configurable) continue;
    const name = `${owner}.${String(key)}`;
    if (typeof d.value === "function" && key !== "constructor") {
      const original = d.value;
      const trap = know(function (...args) {
        observe(name, this, args);
        return new.target ? construct(original, args, new.target) : apply(original, this, args);
      });
      defineProperty(target, key, { value: trap, writable: true, configurable: true, enumerable: d.enumerable });
    } else if (d.get || d.set) {
      const { get, set } = d;
      defineProperty(target, key, {
        get: get && know(function () { observe(`get ${name}`, this, []); return apply(get, this, []); }),
        set: set && know(function (v) { observe(`set ${name}`, this, [v]); apply(set, this, [v]); }),
        configurable: true,
        enumerable: d.enumerable,
      });
    } else if (key === "constructor") {
      const value = d.value;
      defineProperty(target, key, {
        get: know(function () { observe(`get ${name}`, this, []); return value; }),
        set: know(function (v) { observe(`set ${name}`, this, [v]); }),
        configurable: true,
      });
    }
  }
}
// Names the prelude might look up on its own objects, if it forgot to own
// them: traps on Object.prototype.
for (const key of ["toJSON", "then", "get", "set", "has", "value", "writable", "enumerable", "configurable",
  "err", "ok", "name", "message", "code", "stack", "length", "map", "join", "ownKeys", "apply",
  "getOwnPropertyDescriptor", "defineProperty", "deleteProperty", "getPrototypeOf", Symbol.iterator,
  Symbol.toPrimitive, Symbol.toStringTag, Symbol.hasInstance, Symbol.species]) {
  if (getOwnPropertyDescriptor(Object.prototype, key)) continue;
  defineProperty(Object.prototype, key, {
    get: know(function () { observe(`get Object.prototype.${String(key)}`, this, []); return undefined; }),
    set: know(function (v) { observe(`set Object.prototype.${String(key)}`, this, [v]); }),
    configurable: true,
  });
}

// console: every formatting path.
const cyclic = {};
cyclic.self = cyclic;
const withToJSON = { toJSON: know(function (key) { observe("toJSON", this, [key]); return { ok: 1 }; }) };
const watched = new Proxy({ a: 1 }, {
  get: know((t, k, r) => { observe("proxy get", t, [k, r]); return t[k]; }),
  ownKeys: know((t) => { observe("proxy ownKeys", t, []); return ownKeys(t); }),
  getOwnPropertyDescriptor: know((t, k) => {
    observe("proxy gOPD", t, [k]);
    const d = getOwnPropertyDescriptor(t, k);
    if (d) setPrototypeOf(d, null);
    return d;
  }),
});
const error = new TypeError("formatted");
error.code = "E";
const big = "x".repeat(70000);
for (const method of ["debug", "log", "info", "warn", "error"]) {
  console[method]("text", 1, true, null, undefined, Symbol("s"), 10n, [1, "two"], { a: { b: 2 } }, cyclic, withToJSON,
    watched, error, Object.create(null), know(function named() {}));
}
console.log(big, { big });
console.log("after the limit");

// api: the proxy's traps and every capability. A failure is a finding too.
try {
  checks = checks && "echo" in api && !("http" in api) && ownKeys(api).length === 4;
  checks = checks && getOwnPropertyDescriptor(api, "echo") !== undefined && api.toString === undefined;
  try {
    api.http.fetch("https://example.com/");
    checks = false;
  } catch (e) {
    checks = checks && e.code === "capability_denied";
  }
  checks = checks && (await api.echo({ nested: [1, withToJSON, watched] })).nested[1].ok === 1;
  await api.sleep(1);
  try {
    await api.sleep("soon");
    checks = false;
  } catch (e) {
    checks = checks && e.code === "invalid_argument";
  }
  const attempts = [know(() => api.kv.get("k")), know(() => api.kv.set("k", watched)), know(() => api.events.emit("t", withToJSON))];
  for (const attempt of attempts) {
    try {
      await attempt();
      checks = false;
    } catch (e) {
      checks = checks && e.code === "unavailable" && typeof e.stack === "string";
    }
  }
} catch (e) {
  note(`api threw ${e && e.message}`);
}

// Result handling: the value's own toJSON reports what was seen (the
// prelude's serialising of it, and the await of the script's promise, come
// before).
return {
  toJSON: know(function (key) {
    observe("result toJSON", this, [key]);
    return { checks, leaks };
  }),
};
