// The web globals' counterpart of prelude_leak_walk.js: every built-in and
// every web prototype (URL, URLSearchParams, Headers, Request, Response,
// Blob, FormData, events, encoders, crypto) is replaced by a recording trap,
// then every web API is exercised. Every function a trap or the stack hook
// is handed must be the script's own or one it could already reach, every
// stack a trap sees must be free of prelude frames, and the web module's
// functions show no source. The result lists what leaked: nothing.
// expect: succeeded -
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
const entryPoints = [URL, URLSearchParams.prototype.append, Headers.prototype.get, Response, Request, crypto.getRandomValues,
  crypto.subtle.digest, structuredClone, setTimeout, atob, TextDecoder.prototype.decode, EventTarget.prototype.dispatchEvent,
  AbortSignal.timeout, getOwnPropertyDescriptor(URL.prototype, "href").get, Function.prototype.toString];
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
const TypedArray = getPrototypeOf(Uint8Array);
const targets = [Object, Object.prototype, Function.prototype, Array, Array.prototype, String, String.prototype,
  Number.prototype, Boolean.prototype, Symbol, Symbol.prototype, BigInt.prototype, JSON, Promise, Promise.prototype,
  Error, Error.prototype, TypeError, TypeError.prototype, RangeError.prototype, Map.prototype, Set.prototype,
  RegExp.prototype, Reflect, Math, Date.prototype, ArrayBuffer, ArrayBuffer.prototype, TypedArray, TypedArray.prototype,
  Uint8Array, Uint8Array.prototype, DataView.prototype,
  URL, URL.prototype, URLSearchParams.prototype, Headers.prototype, Request.prototype, Response, Response.prototype,
  Blob.prototype, FormData.prototype, Event.prototype, EventTarget.prototype, AbortSignal, AbortSignal.prototype,
  AbortController.prototype, TextEncoder.prototype, TextDecoder.prototype, Crypto.prototype, SubtleCrypto.prototype,
  CryptoKey.prototype, DOMException.prototype, getPrototypeOf(performance)];
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


const step = (ok) => { if (!ok) checks = false; };
try {
  const u = new URL("https://user:pw@example.com:8080/a/b?x=1&y=2#h");
  u.pathname = "/c";
  u.searchParams.append("z", "3");
  u.searchParams.sort();
  step(u.href === "https://user:pw@example.com:8080/c?x=1&y=2&z=3#h" && String(u) === u.href);
  const p = new URLSearchParams([["a", "1"], ["b", "2"]]);
  p.forEach(know((v, k) => observe("params forEach", null, [v, k])));
  step([...p.keys()].length === 2 && new URLSearchParams({ q: "v" }).get("q") === "v");
  const h = new Headers({ "X-A": "1" });
  h.append("x-b", "2");
  h.set("x-a", "3");
  h.forEach(know((v, k) => observe("headers forEach", null, [v, k])));
  step(h.get("x-a") === "3" && [...h].length === 2);
  const req = new Request("https://example.com/", { method: "post", body: "hi", headers: h });
  step(req.method === "POST" && (await req.clone().text()) === "hi" && (await req.arrayBuffer()).byteLength === 2);
  const res = Response.json({ a: [1] }, { status: 201, headers: [["x", "y"]] });
  step((await res.clone().json()).a[0] === 1 && (await res.blob()).size === 9 && res.headers.get("content-type") === "application/json");
  step((await new Response(new URLSearchParams("a=b")).text()) === "a=b");
  step((await new Blob(["ab", new Uint8Array([99])]).slice(1).text()) === "bc");
  const f = new FormData();
  f.append("k", "v");
  f.append("file", new Blob(["x"]), "x.txt");
  step(f.get("file").name === "x.txt" && (await new Response(f).text()).includes("x.txt"));
  const target = new EventTarget();
  target.addEventListener("ping", know((e) => observe("listener", e, [e])), { once: true });
  target.dispatchEvent(new Event("ping"));
  const c = new AbortController();
  c.signal.onabort = know((e) => observe("onabort", e, [e]));
  c.abort();
  step(c.signal.aborted && c.signal.reason.name === "AbortError");
  step(AbortSignal.any([c.signal]).aborted && AbortSignal.abort().aborted);
  const t = AbortSignal.timeout(1);
  await new Promise(know((resolve) => setTimeout(resolve, 10)));
  step(t.aborted && t.reason.name === "TimeoutError");
  const bytes = new TextEncoder().encode("héllo");
  const into = new Uint8Array(3);
  step(new TextEncoder().encodeInto("héllo", into).written === 3);
  step(new TextDecoder().decode(bytes) === "héllo" && atob(btoa("ab")) === "ab");
  crypto.getRandomValues(new Uint8Array(8));
  step(crypto.randomUUID().length === 36);
  const key = await crypto.subtle.importKey("raw", new Uint8Array(16), { name: "HMAC", hash: "SHA-256" }, true, ["sign", "verify"]);
  const mac = await crypto.subtle.sign("HMAC", key, bytes);
  step(await crypto.subtle.verify("HMAC", key, mac, bytes));
  step((await crypto.subtle.exportKey("jwk", key)).kty === "oct" && key.algorithm.hash.name === "SHA-256");
  const aes = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt", "decrypt"]);
  const iv = new Uint8Array(12);
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, bytes);
  step(new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, aes, sealed)) === "héllo");
  step((await crypto.subtle.digest("SHA-1", bytes)).byteLength === 20);
  try { await crypto.subtle.digest("MD5", bytes); step(false); } catch (e) { step(e.name === "NotSupportedError"); }
  const cloned = structuredClone({ m: new Map([[1, { d: new Date(0) }]]), r: /x/g, t: new Uint16Array([1]) });
  step(cloned.m.get(1).d.getTime() === 0 && cloned.t[0] === 1);
  try { structuredClone(know(() => 1)); step(false); } catch (e) { step(e.name === "DataCloneError"); }
  let ticks = 0;
  await new Promise(know((resolve) => { const id = setInterval(know(() => { if (++ticks === 2) { clearInterval(id); resolve(); } }), 1); }));
  step(typeof performance.now() === "number");
} catch (e) {
  note(`web threw ${e && e.name}: ${e && e.message} ${e && e.stack}`);
}
return {
  toJSON: know(function (key) {
    observe("result toJSON", this, [key]);
    return { checks, leaks };
  }),
};
