// The web-standard globals, in parts compiled once to bytecode like the
// prelude (without source text) and run by the prelude's outer function
// (before any script) in contexts whose script can reach one of them. This
// core captures the built-ins and holds what the parts share (helpers,
// `DOMException`, the timers); `parts` are the outer functions of the groups
// the script needs (`url.js`, `encoding.js`, `events.js`, `timers.js`,
// `clone.js`, `crypto.js`, `fetch.js`, in that order), each called with the
// `kit` of shared names, to which it adds what later parts use. `bits` says
// which groups are installed (the analyzer's `Globals`), `native` holds the
// pure native functions of `web.rs`. It returns the hooks the prelude's
// per-run setup uses: `bind` (the run's timer) and `fetchWith` (the
// standard `fetch` over the host's `http.fetch`).
//
// The prelude's rules hold here too: every built-in used later is captured
// now and methods are uncurried; internal arrays are walked by index (never
// through an iterator a script can replace) and grown by definition (never
// through a setter a script can add); state lives in private fields, out of
// a script's reach; no regular expression is used (a context may have no
// `RegExp`). No part shows source, and stack traces drop their frames.
(function citadelWeb(bits, native, parts) {
  "use strict";
  const URL_BIT = 1 << 4;
  const ENCODING_BIT = 1 << 5;
  const CRYPTO_BIT = 1 << 6;
  const FETCH_BIT = 1 << 7;
  const EVENTS_BIT = 1 << 8;
  const CLONE_BIT = 1 << 9;
  const TIMERS_BIT = 1 << 10;

  const ObjectCtor = Object;
  const { freeze, defineProperty, getOwnPropertyDescriptor, getPrototypeOf, keys: objectKeys, create } = Object;
  const { isArray } = Array;
  const { stringify, parse } = JSON;
  const { ownKeys } = Reflect;
  const { apply } = Reflect;
  const StringCtor = String;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const RangeErrorCtor = RangeError;
  const PromiseCtor = Promise;
  const SymbolIterator = Symbol.iterator;
  const SymbolToStringTag = Symbol.toStringTag;
  const isError = Error.isError;
  const FunctionPrototype = getPrototypeOf(citadelWeb);
  const uncurry = FunctionPrototype.bind.bind(FunctionPrototype.call);
  const promiseThen = uncurry(PromiseCtor.prototype.then);
  const promiseResolve = (v) => new PromiseCtor((ok) => ok(v));
  const promiseReject = (e) => new PromiseCtor((_, fail) => fail(e));
  const stringSlice = uncurry(StringCtor.prototype.slice);
  const stringIndexOf = uncurry(StringCtor.prototype.indexOf);
  const charCodeAt = uncurry(StringCtor.prototype.charCodeAt);
  const codePointAt = uncurry(StringCtor.prototype.codePointAt);
  const toLowerCase = uncurry(StringCtor.prototype.toLowerCase);
  const toUpperCase = uncurry(StringCtor.prototype.toUpperCase);
  const toWellFormed = uncurry(StringCtor.prototype.toWellFormed);
  const padStart = uncurry(StringCtor.prototype.padStart);
  const numberToString = uncurry(Number.prototype.toString);
  const fromCharCode = StringCtor.fromCharCode;
  const mathFloor = Math.floor;
  const mathMax = Math.max;
  const mathMin = Math.min;
  const NumberCtor = Number;
  const isFiniteNumber = Number.isFinite;
  const arraySort = uncurry(Array.prototype.sort);

  // Typed arrays, where the context has them.
  const typed = typeof Uint8Array === "function";
  const Uint8 = typed ? Uint8Array : undefined;
  const ArrayBufferCtor = typed ? ArrayBuffer : undefined;
  const TypedArrayPrototype = typed ? getPrototypeOf(Uint8Array.prototype) : undefined;
  const getter = (proto, name) => uncurry(getOwnPropertyDescriptor(proto, name).get);
  const taBuffer = typed ? getter(TypedArrayPrototype, "buffer") : undefined;
  const taOffset = typed ? getter(TypedArrayPrototype, "byteOffset") : undefined;
  const taByteLength = typed ? getter(TypedArrayPrototype, "byteLength") : undefined;
  const taTag = typed ? getter(TypedArrayPrototype, SymbolToStringTag) : undefined;
  const taSet = typed ? uncurry(TypedArrayPrototype.set) : undefined;
  const taSlice = typed ? uncurry(TypedArrayPrototype.slice) : undefined;
  const abByteLength = typed ? getter(ArrayBuffer.prototype, "byteLength") : undefined;
  const abSlice = typed ? uncurry(ArrayBuffer.prototype.slice) : undefined;
  const isView = typed ? ArrayBuffer.isView : undefined;
  const dvBuffer = typed ? getter(DataView.prototype, "buffer") : undefined;
  const dvOffset = typed ? getter(DataView.prototype, "byteOffset") : undefined;
  const dvByteLength = typed ? getter(DataView.prototype, "byteLength") : undefined;
  const DataViewCtor = typed ? DataView : undefined;
  const typedCtors = { __proto__: null };
  if (typed) {
    const names = [
      "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
      "BigInt64Array", "BigUint64Array", "Float16Array", "Float32Array", "Float64Array",
    ];
    for (let i = 0; i < names.length; i++) {
      if (typeof globalThis[names[i]] === "function") typedCtors[names[i]] = globalThis[names[i]];
    }
  }

  // Map/Set and Date/RegExp, where the context has them (structuredClone).
  const MapCtor = typeof Map === "function" ? Map : undefined;
  const SetCtor = typeof Set === "function" ? Set : undefined;
  const mapGet = MapCtor ? uncurry(MapCtor.prototype.get) : undefined;
  const mapSet = MapCtor ? uncurry(MapCtor.prototype.set) : undefined;
  const mapHas = MapCtor ? uncurry(MapCtor.prototype.has) : undefined;
  const mapForEach = MapCtor ? uncurry(MapCtor.prototype.forEach) : undefined;
  const mapSize = MapCtor ? getter(MapCtor.prototype, "size") : undefined;
  const setAdd = SetCtor ? uncurry(SetCtor.prototype.add) : undefined;
  const setForEach = SetCtor ? uncurry(SetCtor.prototype.forEach) : undefined;
  const setSize = SetCtor ? getter(SetCtor.prototype, "size") : undefined;
  const DateCtor = typeof Date === "function" ? Date : undefined;
  const dateGetTime = DateCtor ? uncurry(DateCtor.prototype.getTime) : undefined;
  const RegExpCtor = typeof RegExp === "function" ? RegExp : undefined;
  const regexpSource = RegExpCtor ? getter(RegExpCtor.prototype, "source") : undefined;
  const regexpFlags = RegExpCtor ? getter(RegExpCtor.prototype, "flags") : undefined;

  // The native functions, captured (the object itself is never shared).
  const n = { __proto__: null };
  {
    const names = objectKeys(native);
    for (let i = 0; i < names.length; i++) n[names[i]] = native[names[i]];
  }

  const has = (bit) => (bits & bit) !== 0;
  // Throws `e` from a job of its own.
  const queueJob = typeof queueMicrotask === "function" ? queueMicrotask : undefined;
  const report = (e) => {
    if (queueJob !== undefined) {
      queueJob(() => {
        throw e;
      });
    }
  };
  const hidden = (value) => ({ __proto__: null, value, writable: true, configurable: true, enumerable: false });
  const hasOwn = Object.hasOwn;
  // Defines a global; a class's instances get its name as their tag
  // (`[object URL]`).
  const define = (name, value) => {
    defineProperty(globalThis, name, hidden(value));
    const first = charCodeAt(name, 0);
    if (typeof value === "function" && first >= 65 && first <= 90) {
      const proto = value.prototype;
      if (proto !== undefined && !hasOwn(proto, SymbolToStringTag)) {
        defineProperty(proto, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
      }
    }
  };
  // Defined, not assigned: an index setter a script put on
  // `Array.prototype` never sees what is added.
  const push = (list, v) => {
    defineProperty(list, list.length, { __proto__: null, value: v, writable: true, enumerable: true, configurable: true });
  };
  // Strings handed to native code: lone surrogates become U+FFFD.
  const usv = (v) => toWellFormed(StringCtor(v));
  const byteString = (s) => {
    for (let i = 0; i < s.length; i++) if (charCodeAt(s, i) > 255) return false;
    return true;
  };

  // ---- DOMException ----
  const legacyCodes = {
    __proto__: null,
    IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
    NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
    SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20, URLMismatchError: 21,
    QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24, DataCloneError: 25,
  };
  class DOMException extends ErrorCtor {
    #name;
    constructor(message = "", name = "Error") {
      super(StringCtor(message));
      this.#name = StringCtor(name);
    }
    get name() {
      return this.#name;
    }
    get code() {
      return legacyCodes[this.#name] ?? 0;
    }
  }
  const domError = (name, message) => new DOMException(message, name);

  // ---- bytes ----
  // A Uint8Array over a BufferSource's bytes (not a copy), or undefined.
  const viewOf = (v) => {
    if (!typed || v === null || (typeof v !== "object" && typeof v !== "function")) return undefined;
    if (isView(v)) {
      try {
        return new Uint8(taBuffer(v), taOffset(v), taByteLength(v));
      } catch {
        return new Uint8(dvBuffer(v), dvOffset(v), dvByteLength(v));
      }
    }
    try {
      abByteLength(v);
    } catch {
      return undefined;
    }
    return new Uint8(v);
  };
  const bufferSource = (v, what) => {
    const view = viewOf(v);
    if (view === undefined) throw new TypeErrorCtor(`${what} is not an ArrayBuffer or an ArrayBuffer view`);
    return view;
  };
  const copyBytes = (view) => taSlice(view);
  // The ArrayBuffer of a Uint8Array that owns all of it.
  const arrayBufferOf = (u8) => taBuffer(u8);
  const concatBytes = (a, b) => {
    const out = new Uint8(a.length + b.length);
    taSet(out, a, 0);
    taSet(out, b, a.length);
    return out;
  };
  const utf8 = (s) => n.utf8Encode(usv(s));
  const fromUtf8 = (bytes) => n.utf8Decode(bytes, false, false)[0];

  // The run state: its timer and the time origin of `performance.now()`.
  let run = { __proto__: null, timer: undefined, origin: 0 };
  const runOrigin = () => run.origin;

  // ---- timers ----
  // Each timer waits on a host call of its own (like `api.sleep`, without
  // its grant): bounded by the run's deadline and its limit of awaited host
  // calls. Timers left when the script's result settles are dropped.
  const live = { __proto__: null };
  let nextTimer = 1;
  const startTimer = (ms, fire) => {
    if (run.timer === undefined) throw new ErrorCtor("timers are not available outside a run");
    promiseThen(run.timer(ms), fire, () => {});
  };
  const timerDelay = (ms) => {
    ms = NumberCtor(ms);
    return isFiniteNumber(ms) && ms > 0 ? ms : 0;
  };
  const schedule = (id, callback, ms, args, repeat) => {
    startTimer(ms, () => {
      if (live[id] !== true) return;
      if (!repeat) delete live[id];
      try {
        apply(callback, undefined, args);
      } catch (e) {
        // Uncaught, as in a Deno program: the run ends with it.
        report(e);
      } finally {
        if (repeat && live[id] === true) schedule(id, callback, ms, args, true);
      }
    });
  };
  const addTimer = (callback, ms, args, repeat) => {
    if (typeof callback !== "function") throw new TypeErrorCtor("the callback of a timer must be a function");
    const id = nextTimer++;
    live[id] = true;
    schedule(id, callback, repeat ? mathMax(1, timerDelay(ms)) : timerDelay(ms), args, repeat);
    return id;
  };

  // What the groups share; each adds what later groups use.
  const kit = {
    __proto__: null,
    freeze,
    defineProperty,
    getOwnPropertyDescriptor,
    getPrototypeOf,
    objectKeys,
    create,
    isArray,
    stringify,
    parse,
    ownKeys,
    apply,
    URL_BIT,
    ENCODING_BIT,
    CRYPTO_BIT,
    FETCH_BIT,
    EVENTS_BIT,
    CLONE_BIT,
    TIMERS_BIT,
    ObjectCtor,
    StringCtor,
    ErrorCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    PromiseCtor,
    SymbolIterator,
    SymbolToStringTag,
    isError,
    FunctionPrototype,
    uncurry,
    promiseThen,
    promiseResolve,
    promiseReject,
    stringSlice,
    stringIndexOf,
    charCodeAt,
    codePointAt,
    toLowerCase,
    toUpperCase,
    toWellFormed,
    padStart,
    numberToString,
    fromCharCode,
    mathFloor,
    mathMax,
    mathMin,
    NumberCtor,
    isFiniteNumber,
    arraySort,
    typed,
    Uint8,
    ArrayBufferCtor,
    TypedArrayPrototype,
    getter,
    taBuffer,
    taOffset,
    taByteLength,
    taTag,
    taSet,
    taSlice,
    abByteLength,
    abSlice,
    isView,
    dvBuffer,
    dvOffset,
    dvByteLength,
    DataViewCtor,
    typedCtors,
    MapCtor,
    SetCtor,
    mapGet,
    mapSet,
    mapHas,
    mapForEach,
    mapSize,
    setAdd,
    setForEach,
    setSize,
    DateCtor,
    dateGetTime,
    RegExpCtor,
    regexpSource,
    regexpFlags,
    n,
    has,
    report,
    hidden,
    define,
    push,
    usv,
    byteString,
    legacyCodes,
    domError,
    viewOf,
    bufferSource,
    copyBytes,
    arrayBufferOf,
    concatBytes,
    utf8,
    fromUtf8,
    live,
    startTimer,
    timerDelay,
    schedule,
    addTimer,
    DOMException,
    runOrigin,
    isParams: () => false,
    isSignal: () => false,
    fetchWith: undefined,
  };
  for (let i = 0; i < parts.length; i++) parts[i](kit);
  define("DOMException", DOMException);

  return freeze({
    __proto__: null,
    // The run's hooks: its timer (a promise settled after `ms`) and the
    // time origin of `performance.now()`.
    bind(timer) {
      run = { __proto__: null, timer, origin: n.clock() };
    },
    fetchWith: kit.fetchWith,
  });
});
