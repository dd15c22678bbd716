// The prelude, compiled once to bytecode. Its outer function runs when an
// isolate is made, before any script: it captures every built-in the prelude
// uses later and hardens the realm. It returns the per-run setup, which
// receives the native hooks (they never become globals), builds `console`
// and the `api` object of the granted capabilities, and returns the function
// that runs the script and turns its result into JSON.
//
// The script runs in the same realm and may replace any built-in, so after
// the outer function nothing the prelude calls goes through a prototype or
// global a script can change (methods are uncurried once), its own objects
// have no prototype, and no prelude function reaches the script through the
// stack-trace APIs or `Function.prototype.toString`.
// `web`, when given, is the web module's core (`web/core.js`, loaded
// without source text), run with `webBits`, `webNatives` and `webParts` (the
// groups' parts) once the realm is hardened.
// `date`, when given, is the date module (`web/date.js`, local time in the
// run's zone), run with `dateNatives` before the web module; `intl`, when
// given, the `Intl` module (`web/intl.js`), run with `intlNatives` and the
// date module's hooks after it.
(function citadelPrelude(web, webBits, webNatives, webParts, date, dateNatives, intl, intlNatives) {
  "use strict";
  const { stringify, parse } = JSON;
  const { freeze, defineProperty, getOwnPropertyDescriptor, getPrototypeOf, hasOwn } = Object;
  const { isArray } = Array;
  const ProxyCtor = Proxy;
  const PromiseCtor = Promise;
  const ErrorCtor = Error;
  const StringCtor = String;
  const isError = Error.isError;
  const TypeErrorPrototype = TypeError.prototype;
  const FunctionPrototype = getPrototypeOf(citadelPrelude);
  // uncurry(f)(self, ...args) is f.call(self, ...args) without looking up `call`.
  const uncurry = FunctionPrototype.bind.bind(FunctionPrototype.call);
  const functionSource = uncurry(FunctionPrototype.toString);
  const stringIndexOf = uncurry(StringCtor.prototype.indexOf);
  const stringSlice = uncurry(StringCtor.prototype.slice);

  // There is no eval in this context; remove the name as well.
  delete globalThis.eval;

  // A property descriptor no prototype can add fields to.
  const hidden = (value) => ({ __proto__: null, value, writable: true, configurable: true, enumerable: false });

  // ---- Stack traces and source text: no way back to prelude functions. ----
  // `Error.prepareStackTrace` would receive CallSites whose `getFunction`
  // returns every frame's function; without its accessor the engine never
  // makes CallSites. `stackTraceLimit` is read (and converted, calling
  // script code) while the prelude builds its own errors; it becomes inert.
  delete ErrorCtor.prepareStackTrace;
  delete ErrorCtor.stackTraceLimit;
  defineProperty(ErrorCtor, "stackTraceLimit", hidden(10));
  // Stack text keeps the script's frames only.
  const preludeFrame = "(prelude:";
  const withoutPrelude = (stack) => {
    if (typeof stack !== "string" || stringIndexOf(stack, preludeFrame) < 0) return stack;
    let kept = "";
    let start = 0;
    while (start < stack.length) {
      let end = stringIndexOf(stack, "\n", start);
      end = end < 0 ? stack.length : end + 1;
      const frame = stringSlice(stack, start, end);
      if (stringIndexOf(frame, preludeFrame) < 0) kept += frame;
      start = end;
    }
    return kept;
  };
  const stackAccessor = getOwnPropertyDescriptor(ErrorCtor.prototype, "stack");
  const stackGet = uncurry(stackAccessor.get);
  defineProperty(ErrorCtor.prototype, "stack", {
    __proto__: null,
    get: function stack() {
      return withoutPrelude(stackGet(this));
    },
    set: stackAccessor.set,
    configurable: true,
    enumerable: false,
  });
  // The native one ignores its `this`; called directly, it adds no frame.
  const captureStack = ErrorCtor.captureStackTrace;
  defineProperty(
    ErrorCtor,
    "captureStackTrace",
    hidden(function captureStackTrace(target, filter) {
      captureStack(target, filter);
      const own = getOwnPropertyDescriptor(target, "stack");
      if (own && hasOwn(own, "value")) defineProperty(target, "stack", hidden(withoutPrelude(own.value)));
    }),
  );
  // The prelude's functions show no source: it is loaded without source
  // text, and, as a second guard, any text that is part of the prelude's
  // own (read once, when first needed) is hidden.
  let preludeSource;
  defineProperty(
    FunctionPrototype,
    "toString",
    hidden(function toString() {
      const source = functionSource(this);
      if (preludeSource === undefined) preludeSource = functionSource(citadelPrelude);
      return stringIndexOf(preludeSource, source) < 0 ? source : "function () {\n    [native code]\n}";
    }),
  );

  // `e`, when given, was made where a failing call started, so that its
  // stack points at the script's line.
  const named = (name, message, code, e) => {
    if (e === undefined) e = new ErrorCtor(message);
    else defineProperty(e, "message", hidden(message));
    defineProperty(e, "name", hidden(name));
    if (code !== undefined) defineProperty(e, "code", hidden(code));
    return e;
  };

  // ---- JSON with a size bound. ----
  // Thrown by the replacer once the text is surely longer than the budget, so
  // a huge value is never built in full (the budget counts UTF-16 units of a
  // lower bound of the text; its UTF-8 bytes are at least as many).
  const tooLong = freeze({ __proto__: null });
  const boundedJson = (value, budget) => {
    let used = 0;
    const count = function (key, v) {
      const type = typeof v;
      const size = type === "string" ? v.length + 2 : 1;
      if (isArray(this)) used += size + 1;
      else if (type !== "undefined" && type !== "function" && type !== "symbol") used += key.length + 3 + size;
      if (used > budget) throw tooLong;
      return v;
    };
    return stringify(value, count);
  };

  // ---- console ----
  const show = (v, room) => {
    if (typeof v === "string") return v;
    if (isError(v)) return v.stack ? `${v.name}: ${v.message}\n${v.stack}` : `${v.name}: ${v.message}`;
    try {
      const s = boundedJson(v, room);
      return s === undefined ? StringCtor(v) : s;
    } catch (e) {
      if (e === tooLong) return e;
      return StringCtor(v);
    }
  };
  // Local time in the run's zone, where the script has `Date`.
  const dateHooks = date === undefined ? undefined : date(dateNatives);
  if (intl !== undefined) intl(intlNatives, dateHooks);
  // The web-standard globals, where the script can reach them.
  const webHooks = web === undefined ? undefined : web(webBits, webNatives, webParts);

  // The per-run setup.
  return function setup(nativeLog, nativeOp, nativeLimit, granted, limits, timeZone) {
    if (dateHooks !== undefined) dateHooks.bind(timeZone);
    const resultBytes = limits[0];
    const hostCallBytes = limits[1];
    const logBytes = limits[2];

    // Joins the arguments up to the log limit; `cut` tells the host the line
    // did not fit, and later lines are dropped.
    const log = (level, args) => {
      let line = "";
      let cut = false;
      for (let i = 0; i < args.length && !cut; i++) {
        if (i > 0) line += " ";
        const room = logBytes - line.length;
        let part = room > 0 ? show(args[i], room) : tooLong;
        if (part === tooLong) {
          cut = true;
        } else {
          if (part.length > room) {
            part = stringSlice(part, 0, room);
            cut = true;
          }
          line += part;
        }
      }
      nativeLog(level, line, cut);
    };
    globalThis.console = freeze({
      debug: (...a) => log(0, a),
      log: (...a) => log(1, a),
      info: (...a) => log(2, a),
      warn: (...a) => log(3, a),
      error: (...a) => log(4, a),
    });

    // ---- api ----
    // The arguments' JSON array, serialised value by value so that nothing but
    // the script's own values (their `toJSON`, getters) is ever handed to code
    // the script controls; `undefined` is `null`.
    const argumentsJson = (args) => {
      let json = "[";
      for (let i = 0; i < args.length; i++) {
        if (i > 0) json += ",";
        const value = boundedJson(args[i], hostCallBytes - json.length);
        json += value === undefined ? "null" : value;
      }
      return json + "]";
    };
    // `pick`, when given, maps the reply (here, not in an `await` of the
    // script's: no promise of this prelude is adopted twice).
    const call = async (op, args, pick) => {
      let json;
      try {
        json = argumentsJson(args);
      } catch (e) {
        if (e !== tooLong) throw e;
        nativeLimit("host_call_limit");
        throw named("HostCallLimit", `the arguments of \`${op}\` are larger than ${hostCallBytes} bytes`, "host_call_limit");
      }
      const origin = new ErrorCtor();
      const pending = nativeOp(op, json);
      // An own `constructor` lets `await` adopt the promise without reading
      // `Promise.prototype`.
      defineProperty(pending, "constructor", hidden(PromiseCtor));
      const reply = parse(await pending);
      if (hasOwn(reply, "err")) {
        const err = reply.err;
        throw named(err.name, err.message, err.code, origin);
      }
      const ok = hasOwn(reply, "ok") ? reply.ok : null;
      return pick ? pick(ok) : ok;
    };
    const entryValue = (entry) => (entry === null ? null : entry.value);
    // A fetch's answer: headers by lower-case name (repeats joined with
    // ", "), the body as text (or base64, as `bodyEncoding` says), and
    // `text()`/`json()` that work with or without `await`.
    const response = (r) => {
      const headers = { __proto__: null };
      const pairs = r.headers;
      for (let i = 0; i < pairs.length; i++) {
        const name = pairs[i][0];
        headers[name] = name in headers ? headers[name] + ", " + pairs[i][1] : pairs[i][1];
      }
      const body = r.body;
      return freeze({
        status: r.status,
        ok: r.status >= 200 && r.status < 300,
        url: r.url,
        headers: freeze(headers),
        body,
        bodyEncoding: r.body_encoding,
        text: () => body,
        json: () => parse(body),
      });
    };

    // Timers wait on a host call of their own, within the run's deadline
    // and its limit of awaited host calls.
    if (webHooks !== undefined) {
      webHooks.bind((ms) => {
        const pending = nativeOp("timer", "[" + ms + "]");
        defineProperty(pending, "constructor", hidden(PromiseCtor));
        return pending;
      });
    }
    // With the web globals (every context of a run granted `http` has
    // them), `api.http.fetch` is the standard `fetch` and the global `fetch`
    // the same function; without them, the plain answer above.
    const httpFetch = () => {
      if (webHooks === undefined || webHooks.fetchWith === undefined) {
        return (url, options) => call("http.fetch", [url, options ?? null], response);
      }
      const fetch = webHooks.fetchWith(call);
      defineProperty(globalThis, "fetch", hidden(fetch));
      return fetch;
    };

    const capabilities = {
      __proto__: null,
      http: () => freeze({ fetch: httpFetch() }),
      secrets: () => freeze({ get: (name) => call("secrets.get", [name]) }),
      kv: () =>
        freeze({
          get: (key) => call("kv.get", [key], entryValue),
          getWithVersion: (key) => call("kv.get", [key]),
          set: (key, value, options) => call("kv.set", [key, value ?? null, options ?? null]),
          delete: (key, options) => call("kv.delete", [key, options ?? null]),
          list: (options) => call("kv.list", [options ?? null]),
        }),
      db: () => freeze({ query: (sql, params, options) => call("db.query", [sql, params ?? [], options ?? null]) }),
      events: () => freeze({ emit: (type, data) => call("events.emit", [type, data ?? null]) }),
      sleep: () => (ms) => call("sleep", [ms]),
      echo: () => (value) => call("echo", [value ?? null]),
    };
    const target = { __proto__: null };
    for (let i = 0; i < granted.length; i++) target[granted[i]] = capabilities[granted[i]]();
    freeze(target);
    // Ungranted capabilities are absent (`in`, `Object.keys`) yet touching one
    // names the problem instead of failing with "undefined is not a function".
    // The handler has no prototype, so no trap can be added to it from outside.
    const api = new ProxyCtor(
      target,
      freeze({
        __proto__: null,
        get(t, key) {
          if (typeof key === "string" && !(key in t) && key in capabilities) {
            nativeLimit("capability_denied");
            throw named("CapabilityDenied", `capability \`${key}\` is not granted to this script`, "capability_denied");
          }
          return t[key];
        },
      }),
    );

    // ---- the run ----
    return async (script, inputJson) => {
      const value = await script(parse(inputJson), api);
      if (value === undefined) return "null";
      let json;
      try {
        json = boundedJson(value, resultBytes);
      } catch (e) {
        if (e === tooLong) {
          nativeLimit("result_too_large");
          throw named("ResultTooLarge", `the result is larger than ${resultBytes} bytes`, "result_too_large");
        }
        // A cycle or a BigInt. Anything else (a stack overflow, the script's
        // own `toJSON` throwing) is reported as it is.
        if (isError(e) && getPrototypeOf(e) === TypeErrorPrototype) {
          const message = getOwnPropertyDescriptor(e, "message");
          throw named("InvalidResult", `return value is not JSON: ${message ? message.value : "TypeError"}`, "invalid_result");
        }
        throw e;
      }
      if (json === undefined) {
        throw named("InvalidResult", `return value of type ${typeof value} is not JSON`, "invalid_result");
      }
      return json;
    };
  };
});
