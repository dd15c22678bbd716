// The per-run prelude, compiled once to bytecode and run in every isolate
// before the script. It receives the native hooks, which never become globals,
// builds `console` and the `api` object of the granted capabilities, and
// returns the function that runs the script and turns its result into JSON.
(function (nativeLog, nativeOp, granted) {
  "use strict";
  const { stringify, parse } = JSON;
  const { freeze, keys } = Object;
  const ProxyCtor = Proxy;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const StringCtor = String;

  // There is no eval in this context; remove the name as well.
  delete globalThis.eval;

  const named = (name, message, code) => {
    const e = new ErrorCtor(message);
    e.name = name;
    if (code !== undefined) e.code = code;
    return e;
  };

  const call = async (op, args) => {
    const reply = parse(await nativeOp(op, stringify(args)));
    if ("err" in reply) throw named(reply.err.name, reply.err.message, reply.err.code);
    return reply.ok;
  };

  const show = (v) => {
    if (typeof v === "string") return v;
    if (v instanceof ErrorCtor) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    try {
      const s = stringify(v);
      return s === undefined ? StringCtor(v) : s;
    } catch {
      return StringCtor(v);
    }
  };
  const line = (args) => args.map(show).join(" ");
  globalThis.console = freeze({
    debug: (...a) => nativeLog(0, line(a)),
    log: (...a) => nativeLog(1, line(a)),
    info: (...a) => nativeLog(2, line(a)),
    warn: (...a) => nativeLog(3, line(a)),
    error: (...a) => nativeLog(4, line(a)),
  });

  const capabilities = {
    http: () => freeze({ fetch: (url, options) => call("http.fetch", [url, options ?? null]) }),
    secrets: () => freeze({ get: (name) => call("secrets.get", [name]) }),
    kv: () =>
      freeze({
        get: (key) => call("kv.get", [key]),
        set: (key, value) => call("kv.set", [key, value ?? null]),
        delete: (key) => call("kv.delete", [key]),
      }),
    db: () => freeze({ query: (sql, params, options) => call("db.query", [sql, params ?? [], options ?? null]) }),
    events: () => freeze({ emit: (type, data) => call("events.emit", [type, data ?? null]) }),
    sleep: () => (ms) => call("sleep", [ms]),
    echo: () => (value) => call("echo", [value ?? null]),
  };
  const target = {};
  for (const name of granted) target[name] = capabilities[name]();
  freeze(target);
  // Ungranted capabilities are absent (`in`, `Object.keys`) yet touching one
  // names the problem instead of failing with "undefined is not a function".
  const api = new ProxyCtor(target, {
    get(t, key) {
      if (typeof key === "string" && !(key in t) && key in capabilities) {
        throw named("CapabilityDenied", `capability \`${key}\` is not granted to this script`, "capability_denied");
      }
      return t[key];
    },
  });

  return async (script, inputJson) => {
    const value = await script(parse(inputJson), api);
    if (value === undefined) return "null";
    let json;
    try {
      json = stringify(value);
    } catch (e) {
      throw named("InvalidResult", `return value is not JSON: ${e && e.message}`, "invalid_result");
    }
    if (json === undefined) {
      throw named("InvalidResult", `return value of type ${typeof value} is not JSON`, "invalid_result");
    }
    return json;
  };
});
