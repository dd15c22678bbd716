// The web-standard globals, compiled once to bytecode like the prelude and
// run by the prelude's outer function (before any script) in contexts whose
// script can reach one of them. `bits` says which groups to install (the
// analyzer's `Globals`), `native` holds the pure native functions of
// `web.rs`. It returns the hooks the prelude's per-run setup uses: `bind`
// (the run's timer) and `fetchWith` (the standard `fetch` over the host's
// `http.fetch`).
//
// The prelude's rules hold here too: every built-in used later is captured
// now and methods are uncurried; internal arrays are walked by index (never
// through an iterator a script can replace); state lives in private fields,
// out of a script's reach; no regular expression is used (a context may have
// no `RegExp`). The prelude hides these functions' source and frames.
(function citadelWeb(bits, native) {
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
  const hidden = (value) => ({ __proto__: null, value, writable: true, configurable: true, enumerable: false });
  const define = (name, value) => defineProperty(globalThis, name, hidden(value));
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

  const api = { __proto__: null };

  // ---- URL ----
  let paramsFromQuery;
  let isParams = () => false;
  let paramsText;
  let urlOf;
  let linkParams;
  if (has(URL_BIT)) {
    const parseUrl = (url, base) =>
      base === undefined ? n.urlParse(usv(url)) : n.urlParse(usv(url), usv(base));
    class URL {
      #c;
      #params = null;
      constructor(url, base = undefined) {
        if (arguments.length === 0) throw new TypeErrorCtor("URL: 1 argument required");
        const c = parseUrl(url, base);
        if (c === null || c === undefined) throw new TypeErrorCtor(`Invalid URL: '${usv(url)}'`);
        this.#c = c;
      }
      static canParse(url, base = undefined) {
        const c = parseUrl(url, base);
        return c !== null && c !== undefined;
      }
      static parse(url, base = undefined) {
        const c = parseUrl(url, base);
        return c === null || c === undefined ? null : new URL(url, base);
      }
      #set(which, value) {
        const c = n.urlSet(this.#c[0], which, usv(value));
        if (c === null || c === undefined) {
          if (which === "href") throw new TypeErrorCtor(`Invalid URL: '${usv(value)}'`);
          return;
        }
        this.#c = c;
        if (this.#params !== null && (which === "href" || which === "search")) {
          paramsFromQuery(this.#params, this.#c[9]);
        }
      }
      static {
        urlOf = (u) => u.#c[0];
        linkParams = (u, serialized) => {
          const c = n.urlSet(u.#c[0], "search", serialized);
          if (c !== null && c !== undefined) u.#c = c;
        };
      }
      get href() { return this.#c[0]; }
      set href(v) { this.#set("href", v); }
      get origin() { return this.#c[1]; }
      get protocol() { return this.#c[2]; }
      set protocol(v) { this.#set("protocol", v); }
      get username() { return this.#c[3]; }
      set username(v) { this.#set("username", v); }
      get password() { return this.#c[4]; }
      set password(v) { this.#set("password", v); }
      get host() { return this.#c[5]; }
      set host(v) { this.#set("host", v); }
      get hostname() { return this.#c[6]; }
      set hostname(v) { this.#set("hostname", v); }
      get port() { return this.#c[7]; }
      set port(v) { this.#set("port", v); }
      get pathname() { return this.#c[8]; }
      set pathname(v) { this.#set("pathname", v); }
      get search() { return this.#c[9]; }
      set search(v) { this.#set("search", v); }
      get hash() { return this.#c[10]; }
      set hash(v) { this.#set("hash", v); }
      get searchParams() {
        if (this.#params === null) {
          const p = new URLSearchParams(this.#c[9]);
          this.#params = p;
          bindParams(p, this);
        }
        return this.#params;
      }
      toString() { return this.#c[0]; }
      toJSON() { return this.#c[0]; }
    }
    defineProperty(URL.prototype, SymbolToStringTag, { __proto__: null, value: "URL", configurable: true });

    let bindParams;
    class URLSearchParams {
      // Names and values, alternating.
      #list = [];
      #url = null;
      constructor(init = "") {
        if (init !== null && (typeof init === "object" || typeof init === "function")) {
          if (#list in init) {
            const from = init.#list;
            for (let i = 0; i < from.length; i++) push(this.#list, from[i]);
          } else if (init[SymbolIterator] !== undefined) {
            for (const pair of init) {
              const items = [];
              for (const item of pair) push(items, item);
              if (items.length !== 2) throw new TypeErrorCtor("URLSearchParams: each pair must have exactly two items");
              push(this.#list, usv(items[0]));
              push(this.#list, usv(items[1]));
            }
          } else {
            const names = ownKeys(init);
            for (let i = 0; i < names.length; i++) {
              const key = names[i];
              if (typeof key !== "string") continue;
              const d = getOwnPropertyDescriptor(init, key);
              if (d === undefined || !d.enumerable) continue;
              push(this.#list, usv(key));
              push(this.#list, usv(init[key]));
            }
          }
        } else {
          let s = usv(init);
          if (s.length > 0 && charCodeAt(s, 0) === 63) s = stringSlice(s, 1);
          this.#list = n.formParse(s);
        }
      }
      static {
        isParams = (p) => p !== null && typeof p === "object" && #list in p;
        paramsText = (p) => n.formSerialize(p.#list);
        paramsFromQuery = (p, search) => {
          p.#list = n.formParse(search.length > 0 ? stringSlice(search, 1) : "");
        };
        bindParams = (p, url) => {
          p.#url = url;
        };
      }
      #update() {
        if (this.#url !== null) linkParams(this.#url, n.formSerialize(this.#list));
      }
      get size() { return this.#list.length / 2; }
      append(name, value) {
        push(this.#list, usv(name));
        push(this.#list, usv(value));
        this.#update();
      }
      delete(name, value = undefined) {
        name = usv(name);
        const v = value === undefined ? undefined : usv(value);
        const kept = [];
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name && (v === undefined || this.#list[i + 1] === v)) continue;
          push(kept, this.#list[i]);
          push(kept, this.#list[i + 1]);
        }
        this.#list = kept;
        this.#update();
      }
      get(name) {
        name = usv(name);
        for (let i = 0; i < this.#list.length; i += 2) if (this.#list[i] === name) return this.#list[i + 1];
        return null;
      }
      getAll(name) {
        name = usv(name);
        const out = [];
        for (let i = 0; i < this.#list.length; i += 2) if (this.#list[i] === name) push(out, this.#list[i + 1]);
        return out;
      }
      has(name, value = undefined) {
        name = usv(name);
        const v = value === undefined ? undefined : usv(value);
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name && (v === undefined || this.#list[i + 1] === v)) return true;
        }
        return false;
      }
      set(name, value) {
        name = usv(name);
        value = usv(value);
        const kept = [];
        let found = false;
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name) {
            if (found) continue;
            found = true;
            push(kept, name);
            push(kept, value);
          } else {
            push(kept, this.#list[i]);
            push(kept, this.#list[i + 1]);
          }
        }
        if (!found) {
          push(kept, name);
          push(kept, value);
        }
        this.#list = kept;
        this.#update();
      }
      sort() {
        // Stable, by UTF-16 code units of the names.
        const pairs = [];
        for (let i = 0; i < this.#list.length; i += 2) push(pairs, [this.#list[i], this.#list[i + 1], i]);
        arraySort(pairs, (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[2] - b[2]));
        const out = [];
        for (let i = 0; i < pairs.length; i++) {
          push(out, pairs[i][0]);
          push(out, pairs[i][1]);
        }
        this.#list = out;
        this.#update();
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== "function") throw new TypeErrorCtor("URLSearchParams.forEach: callback is not a function");
        for (let i = 0; i < this.#list.length; i += 2) apply(callback, thisArg, [this.#list[i + 1], this.#list[i], this]);
      }
      *entries() {
        for (let i = 0; i < this.#list.length; i += 2) yield [this.#list[i], this.#list[i + 1]];
      }
      *keys() {
        for (let i = 0; i < this.#list.length; i += 2) yield this.#list[i];
      }
      *values() {
        for (let i = 0; i < this.#list.length; i += 2) yield this.#list[i + 1];
      }
      [SymbolIterator]() {
        return this.entries();
      }
      toString() {
        return n.formSerialize(this.#list);
      }
    }
    defineProperty(URLSearchParams.prototype, SymbolToStringTag, {
      __proto__: null,
      value: "URLSearchParams",
      configurable: true,
    });
    api.URL = URL;
    api.URLSearchParams = URLSearchParams;
    define("URL", URL);
    define("URLSearchParams", URLSearchParams);
  }

  // ---- TextEncoder, TextDecoder, atob, btoa ----
  if (has(ENCODING_BIT)) {
    class TextEncoder {
      get encoding() { return "utf-8"; }
      encode(input = "") {
        return n.utf8Encode(usv(input));
      }
      encodeInto(source, destination) {
        const s = usv(source);
        if (!typed || !isView(destination) || taTag(destination) !== "Uint8Array") {
          throw new TypeErrorCtor("TextEncoder.encodeInto: destination is not a Uint8Array");
        }
        const room = destination.length;
        let read = 0;
        let written = 0;
        while (read < s.length) {
          const c = codePointAt(s, read);
          const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
          if (written + size > room) break;
          written += size;
          read += c >= 0x10000 ? 2 : 1;
        }
        taSet(destination, n.utf8Encode(stringSlice(s, 0, read)), 0);
        return { read, written };
      }
    }
    const utf8Labels = { __proto__: null, "utf-8": true, utf8: true, "unicode-1-1-utf-8": true, "unicode11utf8": true, "unicode20utf8": true, "x-unicode20utf8": true };
    const trimAscii = (s) => {
      let a = 0;
      let b = s.length;
      const space = (c) => c === 9 || c === 10 || c === 12 || c === 13 || c === 32;
      while (a < b && space(charCodeAt(s, a))) a++;
      while (b > a && space(charCodeAt(s, b - 1))) b--;
      return stringSlice(s, a, b);
    };
    class TextDecoder {
      #fatal;
      #ignoreBOM;
      #pending = null;
      #started = false;
      constructor(label = "utf-8", options = undefined) {
        const name = toLowerCase(trimAscii(StringCtor(label)));
        if (!utf8Labels[name]) throw new RangeErrorCtor(`TextDecoder: the encoding '${label}' is not supported (only UTF-8 is)`);
        this.#fatal = options != null && !!options.fatal;
        this.#ignoreBOM = options != null && !!options.ignoreBOM;
      }
      get encoding() { return "utf-8"; }
      get fatal() { return this.#fatal; }
      get ignoreBOM() { return this.#ignoreBOM; }
      decode(input = undefined, options = undefined) {
        const stream = options != null && !!options.stream;
        let bytes = input === undefined ? new Uint8(0) : bufferSource(input, "TextDecoder.decode: input");
        if (this.#pending !== null) bytes = concatBytes(this.#pending, bytes);
        this.#pending = null;
        const out = n.utf8Decode(bytes, this.#fatal, stream);
        if (out === null || out === undefined) {
          this.#started = false;
          throw new TypeErrorCtor("TextDecoder.decode: the data is not valid UTF-8");
        }
        let text = out[0];
        const used = out[1];
        if (used < bytes.length) this.#pending = copyBytes(new Uint8(taBuffer(bytes), taOffset(bytes) + used, bytes.length - used));
        if (!this.#started && !this.#ignoreBOM && text.length > 0 && charCodeAt(text, 0) === 0xfeff) text = stringSlice(text, 1);
        if (used > 0) this.#started = true;
        if (!stream) {
          this.#started = false;
          this.#pending = null;
        }
        return text;
      }
    }
    const atob = function atob(data) {
      if (arguments.length === 0) throw new TypeErrorCtor("atob: 1 argument required");
      const out = n.atob(usv(data));
      if (out === null || out === undefined) throw domError("InvalidCharacterError", "atob: the string is not correctly encoded base64");
      return out;
    };
    const btoa = function btoa(data) {
      if (arguments.length === 0) throw new TypeErrorCtor("btoa: 1 argument required");
      const s = StringCtor(data);
      if (!byteString(s)) throw domError("InvalidCharacterError", "btoa: the string contains characters outside of the Latin1 range");
      return n.btoa(s);
    };
    define("TextEncoder", TextEncoder);
    define("TextDecoder", TextDecoder);
    define("atob", atob);
    define("btoa", btoa);
  }

  // ---- Event, EventTarget, AbortController, AbortSignal ----
  let run = { __proto__: null, timer: undefined, origin: 0 };
  let setEventTarget;
  let newAbortSignal;
  let signalAbort;
  let signalTimeout;
  let isSignal = () => false;
  let signalState;
  let listen;
  let unlisten;
  let dispatch;
  let EventTargetClass;
  let AbortSignalClass;
  let eventsReady = false;
  const installEvents = () => {
    if (eventsReady) return;
    eventsReady = true;
    class Event {
      #type;
      #bubbles;
      #cancelable;
      #canceled = false;
      #target = null;
      #current = null;
      #stop = false;
      constructor(type, init = undefined) {
        if (arguments.length === 0) throw new TypeErrorCtor("Event: 1 argument required");
        this.#type = StringCtor(type);
        this.#bubbles = init != null && !!init.bubbles;
        this.#cancelable = init != null && !!init.cancelable;
      }
      static {
        setEventTarget = (e, target, current) => {
          e.#target = target;
          e.#current = current;
          return e.#stop;
        };
      }
      get type() { return this.#type; }
      get target() { return this.#target; }
      get srcElement() { return this.#target; }
      get currentTarget() { return this.#current; }
      get bubbles() { return this.#bubbles; }
      get cancelable() { return this.#cancelable; }
      get defaultPrevented() { return this.#canceled; }
      get composed() { return false; }
      get isTrusted() { return false; }
      get eventPhase() { return this.#current === null ? 0 : 2; }
      get timeStamp() { return 0; }
      get returnValue() { return !this.#canceled; }
      composedPath() { return this.#current === null ? [] : [this.#current]; }
      preventDefault() {
        if (this.#cancelable) this.#canceled = true;
      }
      stopPropagation() {}
      stopImmediatePropagation() {
        this.#stop = true;
      }
    }
    class CustomEvent extends Event {
      #detail;
      constructor(type, init = undefined) {
        super(type, init);
        this.#detail = init != null && init.detail !== undefined ? init.detail : null;
      }
      get detail() { return this.#detail; }
    }
    class EventTarget {
      // [type, callback, once, capture] for each listener.
      #listeners = [];
      addEventListener(type, callback, options = undefined) {
        if (callback === null || callback === undefined) return;
        type = StringCtor(type);
        const capture = typeof options === "boolean" ? options : options != null && !!options.capture;
        const once = options != null && typeof options === "object" && !!options.once;
        const signal = options != null && typeof options === "object" ? options.signal : undefined;
        if (isSignal(signal) && signalState(signal)[0]) return;
        const list = this.#listeners;
        for (let i = 0; i < list.length; i++) {
          if (list[i][0] === type && list[i][1] === callback && list[i][3] === capture) return;
        }
        const entry = [type, callback, once, capture];
        push(list, entry);
        if (signal !== undefined && signal !== null) {
          if (isSignal(signal)) listen(signal, "abort", () => unlisten(this, type, callback, { capture }));
        }
      }
      removeEventListener(type, callback, options = undefined) {
        type = StringCtor(type);
        const capture = typeof options === "boolean" ? options : options != null && !!options.capture;
        const kept = [];
        const list = this.#listeners;
        for (let i = 0; i < list.length; i++) {
          if (list[i][0] === type && list[i][1] === callback && list[i][3] === capture) {
            list[i][1] = null;
            continue;
          }
          push(kept, list[i]);
        }
        this.#listeners = kept;
      }
      dispatchEvent(event) {
        if (event === null || typeof event !== "object") throw new TypeErrorCtor("dispatchEvent: argument is not an Event");
        const list = this.#listeners;
        const snapshot = [];
        for (let i = 0; i < list.length; i++) push(snapshot, list[i]);
        setEventTarget(event, this, this);
        const type = event.type;
        for (let i = 0; i < snapshot.length; i++) {
          const entry = snapshot[i];
          if (entry[0] !== type || entry[1] === null) continue;
          const callback = entry[1];
          if (entry[2]) unlisten(this, type, callback, { capture: entry[3] });
          try {
            if (typeof callback === "function") apply(callback, this, [event]);
            else if (callback !== null && typeof callback.handleEvent === "function") apply(callback.handleEvent, callback, [event]);
          } catch {
            // A listener's exception is reported, not thrown, by the standard;
            // here it is dropped.
          }
          if (setEventTarget(event, this, this)) break;
        }
        setEventTarget(event, this, null);
        return !event.defaultPrevented;
      }
    }
    EventTargetClass = EventTarget;
    listen = uncurry(EventTarget.prototype.addEventListener);
    unlisten = uncurry(EventTarget.prototype.removeEventListener);
    dispatch = uncurry(EventTarget.prototype.dispatchEvent);
    const illegal = { __proto__: null };
    class AbortSignal extends EventTarget {
      #aborted = false;
      #reason = undefined;
      #timeoutMs = undefined;
      #onabort = null;
      constructor(token = undefined) {
        if (token !== illegal) throw new TypeErrorCtor("Illegal constructor");
        super();
      }
      static {
        newAbortSignal = () => new AbortSignal(illegal);
        signalAbort = (s, reason) => {
          if (s.#aborted) return;
          s.#aborted = true;
          s.#reason = reason === undefined ? domError("AbortError", "The signal has been aborted") : reason;
          dispatch(s, new Event("abort"));
        };
        signalTimeout = (s) => s.#timeoutMs;
        isSignal = (s) => s !== null && typeof s === "object" && #aborted in s;
        signalState = (s) => [s.#aborted, s.#reason];
      }
      static abort(reason = undefined) {
        const s = newAbortSignal();
        signalAbort(s, reason);
        return s;
      }
      static timeout(ms) {
        ms = NumberCtor(ms);
        if (!isFiniteNumber(ms) || ms < 0) throw new TypeErrorCtor("AbortSignal.timeout: the delay must be a non-negative number");
        const s = newAbortSignal();
        s.#timeoutMs = ms;
        startTimer(ms, () => signalAbort(s, domError("TimeoutError", "The signal timed out")));
        return s;
      }
      static any(signals) {
        const s = newAbortSignal();
        const list = [];
        for (const x of signals) push(list, x);
        for (let i = 0; i < list.length; i++) {
          if (!isSignal(list[i])) throw new TypeErrorCtor("AbortSignal.any: not an AbortSignal");
          if (list[i].#aborted) {
            signalAbort(s, list[i].#reason);
            return s;
          }
        }
        for (let i = 0; i < list.length; i++) {
          const source = list[i];
          listen(source, "abort", () => signalAbort(s, source.#reason));
        }
        return s;
      }
      get aborted() { return this.#aborted; }
      get reason() { return this.#reason; }
      get onabort() { return this.#onabort; }
      set onabort(f) {
        if (this.#onabort !== null) unlisten(this, "abort", this.#onabort);
        this.#onabort = typeof f === "function" ? f : null;
        if (this.#onabort !== null) listen(this, "abort", this.#onabort);
      }
      throwIfAborted() {
        if (this.#aborted) throw this.#reason;
      }
    }
    AbortSignalClass = AbortSignal;
    class AbortController {
      #signal = newAbortSignal();
      get signal() { return this.#signal; }
      abort(reason = undefined) {
        signalAbort(this.#signal, reason);
      }
    }
    define("Event", Event);
    define("CustomEvent", CustomEvent);
    define("EventTarget", EventTarget);
    define("AbortSignal", AbortSignal);
    define("AbortController", AbortController);
  };

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
  if (has(TIMERS_BIT)) {
    define("setTimeout", function setTimeout(callback, ms = 0, ...args) {
      return addTimer(callback, ms, args, false);
    });
    define("setInterval", function setInterval(callback, ms = 0, ...args) {
      return addTimer(callback, ms, args, true);
    });
    const clear = function clearTimeout(id) {
      delete live[NumberCtor(id)];
    };
    define("clearTimeout", clear);
    define("clearInterval", function clearInterval(id) {
      delete live[NumberCtor(id)];
    });
    class Performance {
      now() {
        return n.clock() - run.origin;
      }
      get timeOrigin() {
        return run.origin;
      }
      toJSON() {
        return { timeOrigin: run.origin };
      }
    }
    define("performance", new Performance());
  }

  // ---- structuredClone ----
  if (has(CLONE_BIT)) {
    const cloneError = (what) => domError("DataCloneError", `${what} could not be cloned`);
    const brand = (f, v) => {
      try {
        f(v);
        return true;
      } catch {
        return false;
      }
    };
    const field = (value) => ({ __proto__: null, value, writable: true, enumerable: true, configurable: true });
    const clone = (value, memo) => {
      const type = typeof value;
      if (type === "symbol") throw cloneError("a symbol");
      if (type === "function") throw cloneError("a function");
      if (value === null || type !== "object") return value;
      const seen = mapGet(memo, value);
      if (seen !== undefined || mapHas(memo, value)) return seen;
      let out;
      if (isArray(value)) {
        out = [];
        mapSet(memo, value, out);
        out.length = value.length;
        const names = objectKeys(value);
        for (let i = 0; i < names.length; i++) defineProperty(out, names[i], field(clone(value[names[i]], memo)));
        return out;
      }
      if (DateCtor !== undefined && brand(dateGetTime, value)) {
        out = new DateCtor(dateGetTime(value));
      } else if (RegExpCtor !== undefined && brand(regexpSource, value)) {
        out = new RegExpCtor(regexpSource(value), regexpFlags(value));
      } else if (brand(mapSize, value)) {
        out = new MapCtor();
        mapSet(memo, value, out);
        const pairs = [];
        mapForEach(value, (v, k) => push(pairs, [k, v]));
        for (let i = 0; i < pairs.length; i++) mapSet(out, clone(pairs[i][0], memo), clone(pairs[i][1], memo));
        return out;
      } else if (SetCtor !== undefined && brand(setSize, value)) {
        out = new SetCtor();
        mapSet(memo, value, out);
        const items = [];
        setForEach(value, (v) => push(items, v));
        for (let i = 0; i < items.length; i++) setAdd(out, clone(items[i], memo));
        return out;
      } else if (typed && isView(value)) {
        if (brand(taTag, value) && taTag(value) !== undefined) {
          const Ctor = typedCtors[taTag(value)];
          const buffer = clone(taBuffer(value), memo);
          const size = taByteLength(value) / Ctor.BYTES_PER_ELEMENT;
          out = new Ctor(buffer, taOffset(value), size);
        } else {
          out = new DataViewCtor(clone(dvBuffer(value), memo), dvOffset(value), dvByteLength(value));
        }
      } else if (typed && brand(abByteLength, value)) {
        out = abSlice(value, 0);
      } else if (isError(value)) {
        const name = value.name;
        const Ctor = { __proto__: null, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }[name] ?? ErrorCtor;
        out = new Ctor(value.message === undefined ? "" : StringCtor(value.message));
        const stack = value.stack;
        if (typeof stack === "string") defineProperty(out, "stack", hidden(stack));
        if ("cause" in value) defineProperty(out, "cause", hidden(clone(value.cause, memo)));
      } else {
        out = {};
        mapSet(memo, value, out);
        const names = objectKeys(value);
        for (let i = 0; i < names.length; i++) defineProperty(out, names[i], field(clone(value[names[i]], memo)));
        return out;
      }
      mapSet(memo, value, out);
      return out;
    };
    define("structuredClone", function structuredClone(value, options = undefined) {
      if (arguments.length === 0) throw new TypeErrorCtor("structuredClone: 1 argument required");
      void options;
      return clone(value, new MapCtor());
    });
  }

  // ---- crypto ----
  if (has(CRYPTO_BIT)) {
    const notSupported = (what) => domError("NotSupportedError", `${what} is not supported`);
    const hashes = { __proto__: null, "sha-1": "SHA-1", "sha-256": "SHA-256", "sha-384": "SHA-384", "sha-512": "SHA-512" };
    const algorithms = { __proto__: null, hmac: "HMAC", "aes-gcm": "AES-GCM", ed25519: "Ed25519", ecdsa: "ECDSA" };
    const algorithmName = (alg) => {
      const name = typeof alg === "string" ? alg : alg != null ? alg.name : undefined;
      if (name === undefined) throw new TypeErrorCtor("the algorithm has no name");
      return StringCtor(name);
    };
    const hashName = (alg) => {
      const name = toLowerCase(algorithmName(alg));
      const known = hashes[name];
      if (known === undefined) throw notSupported(`the hash '${algorithmName(alg)}'`);
      return known;
    };
    const normalName = (alg) => {
      const name = algorithmName(alg);
      const known = algorithms[toLowerCase(name)] ?? hashes[toLowerCase(name)];
      if (known === undefined) throw notSupported(`the algorithm '${name}'`);
      return known;
    };
    // base64url without padding ↔ bytes.
    const fromBase64url = (s) => {
      s = usv(s);
      let t = "";
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        t += c === 45 ? "+" : c === 95 ? "/" : fromCharCode(c);
      }
      const bytes = n.base64ToBytes(t);
      if (bytes === null || bytes === undefined) throw domError("DataError", "the JWK holds invalid base64url");
      return bytes;
    };
    const toBase64url = (bytes) => {
      const s = n.bytesToBase64(bytes);
      let t = "";
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        if (c === 61) break;
        t += c === 43 ? "-" : c === 47 ? "_" : fromCharCode(c);
      }
      return t;
    };
    const ED25519_SPKI = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    const P256_SPKI = [
      0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
      0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    const stripPrefix = (bytes, prefix, rest) => {
      if (bytes.length !== prefix.length + rest) throw domError("DataError", "the SPKI key is malformed");
      for (let i = 0; i < prefix.length; i++) {
        if (bytes[i] !== prefix[i]) throw domError("DataError", "the SPKI key is malformed or of another curve");
      }
      return new Uint8(taBuffer(bytes), taOffset(bytes) + prefix.length, rest);
    };

    const illegal = { __proto__: null };
    let keyData;
    let keyCheck;
    let keyInfo;
    class CryptoKey {
      #type;
      #extractable;
      #algorithm;
      #usages;
      #data;
      constructor(token, type, extractable, algorithm, usages, data) {
        if (token !== illegal) throw new TypeErrorCtor("Illegal constructor");
        this.#type = type;
        this.#extractable = extractable;
        this.#algorithm = algorithm;
        this.#usages = usages;
        this.#data = data;
      }
      static {
        keyData = (k) => k.#data;
        keyInfo = (k) => {
          if (k === null || typeof k !== "object" || !(#data in k)) throw new TypeErrorCtor("the key is not a CryptoKey");
          return [k.#algorithm, k.#extractable, k.#usages];
        };
        keyCheck = (k, name, usage) => {
          if (k === null || typeof k !== "object" || !(#data in k)) throw new TypeErrorCtor("the key is not a CryptoKey");
          if (k.#algorithm.name !== name) throw domError("InvalidAccessError", `the key is not a ${name} key`);
          let allowed = false;
          for (let i = 0; i < k.#usages.length; i++) if (k.#usages[i] === usage) allowed = true;
          if (!allowed) throw domError("InvalidAccessError", `the key may not be used to ${usage}`);
          return k.#data;
        };
      }
      get type() { return this.#type; }
      get extractable() { return this.#extractable; }
      get algorithm() {
        const a = this.#algorithm;
        const out = { name: a.name };
        if (a.hash !== undefined) out.hash = { name: a.hash };
        if (a.length !== undefined) out.length = a.length;
        if (a.namedCurve !== undefined) out.namedCurve = a.namedCurve;
        return out;
      }
      get usages() {
        const out = [];
        for (let i = 0; i < this.#usages.length; i++) push(out, this.#usages[i]);
        return out;
      }
    }
    defineProperty(CryptoKey.prototype, SymbolToStringTag, { __proto__: null, value: "CryptoKey", configurable: true });
    const exportable = (k) => {
      if (!keyInfo(k)[1]) throw domError("InvalidAccessError", "the key is not extractable");
      return keyData(k);
    };
    const usagesOf = (given, allowed) => {
      const out = [];
      for (const u of given) {
        const s = StringCtor(u);
        let ok = false;
        for (let i = 0; i < allowed.length; i++) if (allowed[i] === s) ok = true;
        if (!ok) throw domError("SyntaxError", `the usage '${s}' is not valid for this key`);
        let dup = false;
        for (let i = 0; i < out.length; i++) if (out[i] === s) dup = true;
        if (!dup) push(out, s);
      }
      return out;
    };
    const jwkOf = (v, kty) => {
      if (v === null || typeof v !== "object") throw new TypeErrorCtor("the JWK is not an object");
      if (v.kty !== kty) throw domError("DataError", `the JWK's kty is not '${kty}'`);
      return v;
    };
    // Runs `f` and turns its result or error into a promise.
    const later = (f) =>
      new PromiseCtor((ok, fail) => {
        try {
          ok(f());
        } catch (e) {
          fail(e);
        }
      });

    const importKey = (format, keyDataIn, algorithm, extractable, usagesIn) => {
      const name = normalName(algorithm);
      format = StringCtor(format);
      extractable = !!extractable;
      if (name === "HMAC" || name === "AES-GCM") {
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "jwk") bytes = fromBase64url(jwkOf(keyDataIn, "oct").k);
        else throw notSupported(`the key format '${format}' for ${name}`);
        if (name === "HMAC") {
          const hash = hashName(algorithm.hash);
          if (bytes.length === 0) throw domError("DataError", "an HMAC key may not be empty");
          const usages = usagesOf(usagesIn, ["sign", "verify"]);
          return new CryptoKey(illegal, "secret", extractable, { __proto__: null, name, hash, length: bytes.length * 8 }, usages, bytes);
        }
        if (bytes.length === 24) throw notSupported("AES-192");
        if (bytes.length !== 16 && bytes.length !== 32) throw domError("DataError", "an AES key is 128 or 256 bits long");
        const usages = usagesOf(usagesIn, ["encrypt", "decrypt", "wrapKey", "unwrapKey"]);
        return new CryptoKey(illegal, "secret", extractable, { __proto__: null, name, length: bytes.length * 8 }, usages, bytes);
      }
      if (name === "Ed25519") {
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "spki") bytes = copyBytes(stripPrefix(bufferSource(keyDataIn, "the key data"), ED25519_SPKI, 32));
        else if (format === "jwk") {
          const jwk = jwkOf(keyDataIn, "OKP");
          if (jwk.crv !== "Ed25519") throw domError("DataError", "the JWK's curve is not Ed25519");
          if (jwk.d !== undefined) throw notSupported("an Ed25519 private key");
          bytes = fromBase64url(jwk.x);
        } else throw notSupported(`the key format '${format}' for Ed25519 (only public keys can be imported)`);
        if (bytes.length !== 32) throw domError("DataError", "an Ed25519 public key is 32 bytes long");
        const usages = usagesOf(usagesIn, ["verify"]);
        return new CryptoKey(illegal, "public", true, { __proto__: null, name }, usages, bytes);
      }
      if (name === "ECDSA") {
        const curve = algorithm.namedCurve;
        if (curve !== "P-256") throw notSupported(`the curve '${curve}'`);
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "spki") bytes = copyBytes(stripPrefix(bufferSource(keyDataIn, "the key data"), P256_SPKI, 65));
        else if (format === "jwk") {
          const jwk = jwkOf(keyDataIn, "EC");
          if (jwk.crv !== "P-256") throw notSupported(`the curve '${jwk.crv}'`);
          if (jwk.d !== undefined) throw notSupported("an ECDSA private key");
          const x = fromBase64url(jwk.x);
          const y = fromBase64url(jwk.y);
          if (x.length !== 32 || y.length !== 32) throw domError("DataError", "the JWK's coordinates are not 32 bytes long");
          bytes = concatBytes(concatBytes(new Uint8([4]), x), y);
        } else throw notSupported(`the key format '${format}' for ECDSA (only public keys can be imported)`);
        const usages = usagesOf(usagesIn, ["verify"]);
        return new CryptoKey(illegal, "public", true, { __proto__: null, name, namedCurve: "P-256" }, usages, bytes);
      }
      throw notSupported(`importing a ${name} key`);
    };
    const exportKey = (format, key) => {
      const data = exportable(key);
      const info = keyInfo(key);
      const name = info[0].name;
      const usages = [];
      for (let i = 0; i < info[2].length; i++) push(usages, info[2][i]);
      if (format === "raw") return arrayBufferOf(copyBytes(data));
      if (format === "jwk" && (name === "HMAC" || name === "AES-GCM")) {
        const jwk = { kty: "oct", k: toBase64url(data), ext: true, key_ops: usages };
        if (name === "HMAC") jwk.alg = "HS" + stringSlice(info[0].hash, 4);
        else jwk.alg = "A" + data.length * 8 + "GCM";
        return jwk;
      }
      if (format === "jwk" && name === "Ed25519") return { kty: "OKP", crv: "Ed25519", x: toBase64url(data), ext: true, key_ops: usages };
      throw notSupported(`exporting a ${name} key as '${format}'`);
    };
    const hmacOf = (key, data, usage) => {
      const bytes = keyCheck(key, "HMAC", usage);
      return n.hmac(keyInfo(key)[0].hash, bytes, bufferSource(data, "the data"));
    };
    const subtle = {
      digest(algorithm, data) {
        return later(() => {
          const name = hashName(algorithm);
          return arrayBufferOf(n.digest(name, bufferSource(data, "the data")));
        });
      },
      importKey(format, keyData, algorithm, extractable, usages) {
        return later(() => importKey(format, keyData, algorithm, extractable, usages));
      },
      exportKey(format, key) {
        return later(() => exportKey(StringCtor(format), key));
      },
      generateKey(algorithm, extractable, usages) {
        return later(() => {
          const name = normalName(algorithm);
          if (name === "HMAC") {
            const hash = hashName(algorithm.hash);
            const length = algorithm.length !== undefined ? NumberCtor(algorithm.length) : hash === "SHA-384" || hash === "SHA-512" ? 1024 : 512;
            if (length <= 0 || length % 8 !== 0) throw notSupported("an HMAC key length that is not whole bytes");
            return importKey("raw", n.random(length / 8), { name, hash }, extractable, usages);
          }
          if (name === "AES-GCM") {
            const length = NumberCtor(algorithm.length);
            if (length !== 128 && length !== 256) throw notSupported(`an AES key of ${length} bits`);
            return importKey("raw", n.random(length / 8), { name }, extractable, usages);
          }
          throw notSupported(`generating a ${name} key`);
        });
      },
      sign(algorithm, key, data) {
        return later(() => {
          const name = normalName(algorithm);
          if (name !== "HMAC") throw notSupported(`signing with ${name} (private keys are not supported)`);
          return arrayBufferOf(hmacOf(key, data, "sign"));
        });
      },
      verify(algorithm, key, signature, data) {
        return later(() => {
          const name = normalName(algorithm);
          const sig = bufferSource(signature, "the signature");
          if (name === "HMAC") {
            const mac = hmacOf(key, data, "verify");
            if (mac.length !== sig.length) return false;
            let diff = 0;
            for (let i = 0; i < mac.length; i++) diff |= mac[i] ^ sig[i];
            return diff === 0;
          }
          if (name === "Ed25519") {
            const bytes = keyCheck(key, "Ed25519", "verify");
            return n.ed25519Verify(bytes, sig, bufferSource(data, "the data"));
          }
          if (name === "ECDSA") {
            const bytes = keyCheck(key, "ECDSA", "verify");
            const hash = hashName(algorithm.hash);
            return n.p256Verify(bytes, sig, bufferSource(data, "the data"), hash);
          }
          throw notSupported(`verifying with ${name}`);
        });
      },
      encrypt(algorithm, key, data) {
        return later(() => aes(algorithm, key, data, true));
      },
      decrypt(algorithm, key, data) {
        return later(() => aes(algorithm, key, data, false));
      },
    };
    const aes = (algorithm, key, data, encrypt) => {
      const name = normalName(algorithm);
      if (name !== "AES-GCM") throw notSupported(`${encrypt ? "encrypting" : "decrypting"} with ${name}`);
      const bytes = keyCheck(key, "AES-GCM", encrypt ? "encrypt" : "decrypt");
      const iv = bufferSource(algorithm.iv, "the IV");
      if (iv.length !== 12) throw notSupported("an AES-GCM IV that is not 96 bits long");
      const tagLength = algorithm.tagLength === undefined ? 128 : NumberCtor(algorithm.tagLength);
      if (tagLength !== 128) throw notSupported("an AES-GCM tag that is not 128 bits long");
      const aad = algorithm.additionalData === undefined ? new Uint8(0) : bufferSource(algorithm.additionalData, "the additional data");
      const out = n.aesGcm(encrypt, bytes, iv, bufferSource(data, "the data"), aad);
      if (out === null || out === undefined) throw domError("OperationError", "the data could not be decrypted");
      return arrayBufferOf(out);
    };
    const integerTags = {
      __proto__: null, Int8Array: true, Uint8Array: true, Uint8ClampedArray: true, Int16Array: true, Uint16Array: true,
      Int32Array: true, Uint32Array: true, BigInt64Array: true, BigUint64Array: true,
    };
    const hex = (b) => padStart(numberToString(b, 16), 2, "0");
    class SubtleCrypto {}
    class Crypto {
      get subtle() {
        return subtleObject;
      }
      getRandomValues(array) {
        const tag = typed && isView(array) ? taTag(array) : undefined;
        if (tag === undefined || !integerTags[tag]) {
          throw domError("TypeMismatchError", "getRandomValues: the argument is not an integer typed array");
        }
        const size = taByteLength(array);
        if (size > 65536) throw domError("QuotaExceededError", `getRandomValues: ${size} bytes asked for, at most 65536 can be`);
        taSet(new Uint8(taBuffer(array), taOffset(array), size), n.random(size), 0);
        return array;
      }
      randomUUID() {
        const b = n.random(16);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let s = "";
        for (let i = 0; i < 16; i++) {
          if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
          s += hex(b[i]);
        }
        return s;
      }
    }
    const subtleObject = create(SubtleCrypto.prototype);
    const methods = objectKeys(subtle);
    for (let i = 0; i < methods.length; i++) defineProperty(SubtleCrypto.prototype, methods[i], hidden(subtle[methods[i]]));
    define("crypto", new Crypto());
    define("Crypto", Crypto);
    define("CryptoKey", CryptoKey);
    define("SubtleCrypto", SubtleCrypto);
  }

  // ---- Headers, Blob, FormData, Request, Response ----
  let fetchWith;
  if (has(EVENTS_BIT) || has(FETCH_BIT)) installEvents();
  if (has(FETCH_BIT)) {
    const isToken = (s) => {
      if (s.length === 0) return false;
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        const ok =
          (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
          c === 33 || c === 35 || c === 36 || c === 37 || c === 38 || c === 39 || c === 42 || c === 43 ||
          c === 45 || c === 46 || c === 94 || c === 95 || c === 96 || c === 124 || c === 126;
        if (!ok) return false;
      }
      return true;
    };
    const httpSpace = (c) => c === 9 || c === 10 || c === 13 || c === 32;
    const normalizeValue = (v) => {
      v = StringCtor(v);
      let a = 0;
      let b = v.length;
      while (a < b && httpSpace(charCodeAt(v, a))) a++;
      while (b > a && httpSpace(charCodeAt(v, b - 1))) b--;
      v = stringSlice(v, a, b);
      for (let i = 0; i < v.length; i++) {
        const c = charCodeAt(v, i);
        if (c === 0 || c === 10 || c === 13 || c > 255) throw new TypeErrorCtor(`Headers: invalid header value '${v}'`);
      }
      return v;
    };
    const headerName = (name) => {
      name = StringCtor(name);
      if (!isToken(name)) throw new TypeErrorCtor(`Headers: invalid header name '${name}'`);
      return toLowerCase(name);
    };
    let headersList;
    let headersLock;
    let headersHas;
    let headersGet;
    let headersPut;
    let headersFill;
    class Headers {
      // Lower-case names and values, alternating, in insertion order.
      #list = [];
      #immutable = false;
      constructor(init = undefined) {
        if (init !== undefined && init !== null) headersFill(this, init);
      }
      static {
        headersList = (h) => (h !== null && typeof h === "object" && #list in h ? h.#list : undefined);
        headersLock = (h) => {
          h.#immutable = true;
        };
        headersHas = (h, name) => {
          for (let i = 0; i < h.#list.length; i += 2) if (h.#list[i] === name) return true;
          return false;
        };
        headersGet = (h, name) => {
          let out = null;
          for (let i = 0; i < h.#list.length; i += 2) {
            if (h.#list[i] === name) out = out === null ? h.#list[i + 1] : out + ", " + h.#list[i + 1];
          }
          return out;
        };
        headersPut = (h, name, value) => {
          const kept = [];
          for (let i = 0; i < h.#list.length; i += 2) {
            if (h.#list[i] === name) continue;
            push(kept, h.#list[i]);
            push(kept, h.#list[i + 1]);
          }
          push(kept, name);
          push(kept, value);
          h.#list = kept;
        };
        headersFill = (h, init) => {
          if (typeof init !== "object" && typeof init !== "function") throw new TypeErrorCtor("Headers: init is not an object");
          if (#list in init) {
            const from = init.#list;
            for (let i = 0; i < from.length; i++) push(h.#list, from[i]);
          } else if (init[SymbolIterator] !== undefined) {
            for (const pair of init) {
              const items = [];
              for (const item of pair) push(items, item);
              if (items.length !== 2) throw new TypeErrorCtor("Headers: each pair must have exactly two items");
              h.#append(items[0], items[1]);
            }
          } else {
            const names = ownKeys(init);
            for (let i = 0; i < names.length; i++) {
              const key = names[i];
              if (typeof key !== "string") continue;
              const d = getOwnPropertyDescriptor(init, key);
              if (d === undefined || !d.enumerable) continue;
              h.#append(key, init[key]);
            }
          }
        };
      }
      #check() {
        if (this.#immutable) throw new TypeErrorCtor("Headers: these headers are immutable");
      }
      #append(name, value) {
        push(this.#list, headerName(name));
        push(this.#list, normalizeValue(value));
      }
      append(name, value) {
        this.#check();
        this.#append(name, value);
      }
      delete(name) {
        this.#check();
        name = headerName(name);
        const kept = [];
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name) continue;
          push(kept, this.#list[i]);
          push(kept, this.#list[i + 1]);
        }
        this.#list = kept;
      }
      get(name) {
        name = headerName(name);
        let out = null;
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name) out = out === null ? this.#list[i + 1] : out + ", " + this.#list[i + 1];
        }
        return out;
      }
      getSetCookie() {
        const out = [];
        for (let i = 0; i < this.#list.length; i += 2) if (this.#list[i] === "set-cookie") push(out, this.#list[i + 1]);
        return out;
      }
      has(name) {
        name = headerName(name);
        for (let i = 0; i < this.#list.length; i += 2) if (this.#list[i] === name) return true;
        return false;
      }
      set(name, value) {
        this.#check();
        name = headerName(name);
        value = normalizeValue(value);
        const kept = [];
        let found = false;
        for (let i = 0; i < this.#list.length; i += 2) {
          if (this.#list[i] === name) {
            if (found) continue;
            found = true;
            push(kept, name);
            push(kept, value);
          } else {
            push(kept, this.#list[i]);
            push(kept, this.#list[i + 1]);
          }
        }
        if (!found) {
          push(kept, name);
          push(kept, value);
        }
        this.#list = kept;
      }
      // Sorted by name, repeats combined (set-cookie kept apart).
      #sorted() {
        const names = [];
        for (let i = 0; i < this.#list.length; i += 2) {
          let seen = false;
          for (let j = 0; j < names.length; j++) if (names[j] === this.#list[i]) seen = true;
          if (!seen) push(names, this.#list[i]);
        }
        arraySort(names, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const out = [];
        for (let i = 0; i < names.length; i++) {
          if (names[i] === "set-cookie") {
            for (let j = 0; j < this.#list.length; j += 2) if (this.#list[j] === "set-cookie") push(out, ["set-cookie", this.#list[j + 1]]);
          } else {
            push(out, [names[i], this.get(names[i])]);
          }
        }
        return out;
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== "function") throw new TypeErrorCtor("Headers.forEach: callback is not a function");
        const pairs = this.#sorted();
        for (let i = 0; i < pairs.length; i++) apply(callback, thisArg, [pairs[i][1], pairs[i][0], this]);
      }
      *entries() {
        const pairs = this.#sorted();
        for (let i = 0; i < pairs.length; i++) yield pairs[i];
      }
      *keys() {
        const pairs = this.#sorted();
        for (let i = 0; i < pairs.length; i++) yield pairs[i][0];
      }
      *values() {
        const pairs = this.#sorted();
        for (let i = 0; i < pairs.length; i++) yield pairs[i][1];
      }
      [SymbolIterator]() {
        return this.entries();
      }
    }
    defineProperty(Headers.prototype, SymbolToStringTag, { __proto__: null, value: "Headers", configurable: true });
    const headerMethods = { __proto__: null };
    {
      const names = ownKeys(Headers.prototype);
      for (let i = 0; i < names.length; i++) if (typeof names[i] === "string") headerMethods[names[i]] = true;
      headerMethods.__proto__ = true;
    }

    let blobBytes;
    let isFile;
    class Blob {
      #bytes;
      #type;
      constructor(parts = undefined, options = undefined) {
        let bytes = new Uint8(0);
        if (parts !== undefined) {
          if (parts === null || typeof parts !== "object") throw new TypeErrorCtor("Blob: the parts are not a sequence");
          const chunks = [];
          for (const part of parts) push(chunks, part);
          for (let i = 0; i < chunks.length; i++) {
            const part = chunks[i];
            let b;
            if (part !== null && typeof part === "object" && #bytes in part) b = part.#bytes;
            else b = viewOf(part) ?? utf8(part);
            bytes = concatBytes(bytes, b);
          }
        }
        this.#bytes = bytes;
        const type = options != null && options.type !== undefined ? StringCtor(options.type) : "";
        this.#type = byteString(type) ? toLowerCase(type) : "";
      }
      static {
        blobBytes = (b) => (b !== null && typeof b === "object" && #bytes in b ? b.#bytes : undefined);
      }
      get size() { return this.#bytes.length; }
      get type() { return this.#type; }
      text() { return promiseResolve(fromUtf8(this.#bytes)); }
      arrayBuffer() { return promiseResolve(arrayBufferOf(copyBytes(this.#bytes))); }
      bytes() { return promiseResolve(copyBytes(this.#bytes)); }
      slice(start = 0, end = undefined, type = "") {
        const size = this.#bytes.length;
        const clamp = (v) => {
          v = mathFloor(NumberCtor(v));
          if (v !== v) return 0;
          return v < 0 ? mathMax(size + v, 0) : mathMin(v, size);
        };
        const a = clamp(start);
        const b = end === undefined ? size : clamp(end);
        const out = new Blob([], { type });
        out.#bytes = taSlice(this.#bytes, a, mathMax(a, b));
        return out;
      }
    }
    defineProperty(Blob.prototype, SymbolToStringTag, { __proto__: null, value: "Blob", configurable: true });
    class File extends Blob {
      #name;
      #lastModified;
      constructor(parts, name, options = undefined) {
        super(parts, options);
        this.#name = usv(name);
        this.#lastModified = options != null && options.lastModified !== undefined ? NumberCtor(options.lastModified) : 0;
      }
      static {
        isFile = (f) => f !== null && typeof f === "object" && #name in f;
      }
      get name() { return this.#name; }
      get lastModified() { return this.#lastModified; }
    }

    let formList;
    class FormData {
      // [name, value (a string or a File)] for each entry.
      #list = [];
      constructor(form = undefined) {
        if (form !== undefined) throw new TypeErrorCtor("FormData: there are no forms here");
      }
      static {
        formList = (f) => (f !== null && typeof f === "object" && #list in f ? f.#list : undefined);
      }
      #entry(name, value, filename) {
        name = usv(name);
        if (blobBytes(value) !== undefined) {
          if (!isFile(value) || filename !== undefined) {
            value = new File([value], filename !== undefined ? filename : isFile(value) ? value.name : "blob", { type: value.type });
          }
          return [name, value];
        }
        return [name, usv(value)];
      }
      append(name, value, filename = undefined) {
        push(this.#list, this.#entry(name, value, filename));
      }
      delete(name) {
        name = usv(name);
        const kept = [];
        for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] !== name) push(kept, this.#list[i]);
        this.#list = kept;
      }
      get(name) {
        name = usv(name);
        for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) return this.#list[i][1];
        return null;
      }
      getAll(name) {
        name = usv(name);
        const out = [];
        for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) push(out, this.#list[i][1]);
        return out;
      }
      has(name) {
        name = usv(name);
        for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) return true;
        return false;
      }
      set(name, value, filename = undefined) {
        const entry = this.#entry(name, value, filename);
        const kept = [];
        let found = false;
        for (let i = 0; i < this.#list.length; i++) {
          if (this.#list[i][0] === entry[0]) {
            if (!found) push(kept, entry);
            found = true;
          } else push(kept, this.#list[i]);
        }
        if (!found) push(kept, entry);
        this.#list = kept;
      }
      forEach(callback, thisArg = undefined) {
        if (typeof callback !== "function") throw new TypeErrorCtor("FormData.forEach: callback is not a function");
        for (let i = 0; i < this.#list.length; i++) apply(callback, thisArg, [this.#list[i][1], this.#list[i][0], this]);
      }
      *entries() {
        for (let i = 0; i < this.#list.length; i++) yield [this.#list[i][0], this.#list[i][1]];
      }
      *keys() {
        for (let i = 0; i < this.#list.length; i++) yield this.#list[i][0];
      }
      *values() {
        for (let i = 0; i < this.#list.length; i++) yield this.#list[i][1];
      }
      [SymbolIterator]() {
        return this.entries();
      }
    }
    defineProperty(FormData.prototype, SymbolToStringTag, { __proto__: null, value: "FormData", configurable: true });

    // A body: [bytes or a string or null, its content type or null].
    const extractBody = (body) => {
      if (body === null || body === undefined) return [null, null];
      if (typeof body === "string") return [body, "text/plain;charset=UTF-8"];
      const blob = blobBytes(body);
      if (blob !== undefined) return [blob, body.type === "" ? null : body.type];
      const view = viewOf(body);
      if (view !== undefined) return [copyBytes(view), null];
      const form = formList(body);
      if (form !== undefined) {
        const boundary = "----citadelformdata" + toBase64urlish(n.random(12));
        let text = "";
        for (let i = 0; i < form.length; i++) {
          const name = form[i][0];
          const value = form[i][1];
          text += `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(name)}"`;
          if (typeof value === "string") text += `\r\n\r\n${value}\r\n`;
          else {
            text += `; filename="${escapeQuoted(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
            text += fromUtf8(blobBytes(value)) + "\r\n";
          }
        }
        text += `--${boundary}--\r\n`;
        return [text, `multipart/form-data; boundary=${boundary}`];
      }
      if (isParams(body)) {
        return [paramsText(body), "application/x-www-form-urlencoded;charset=UTF-8"];
      }
      return [StringCtor(body), "text/plain;charset=UTF-8"];
    };
    const escapeQuoted = (s) => {
      let t = "";
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        t += c === 10 ? "%0A" : c === 13 ? "%0D" : c === 34 ? "%22" : fromCharCode(c);
      }
      return t;
    };
    const toBase64urlish = (bytes) => {
      let s = "";
      for (let i = 0; i < bytes.length; i++) s += padStart(numberToString(bytes[i], 16), 2, "0");
      return s;
    };
    const bodyText = (b) => (b === null ? "" : typeof b === "string" ? b : fromUtf8(b));
    const bodyBytes = (b) => (b === null ? new Uint8(0) : typeof b === "string" ? utf8(b) : copyBytes(b));

    // What Request and Response share: the body, read once.
    const consume = (self, body, used, read) => {
      if (used) return promiseReject(new TypeErrorCtor("the body has already been read"));
      return new PromiseCtor((ok, fail) => {
        try {
          ok(read(body));
        } catch (e) {
          fail(e);
        }
      });
    };
    const readers = {
      __proto__: null,
      text: bodyText,
      json: (b) => parse(bodyText(b)),
      arrayBuffer: (b) => arrayBufferOf(bodyBytes(b)),
      bytes: bodyBytes,
    };

    const methods = { __proto__: null, delete: "DELETE", get: "GET", head: "HEAD", options: "OPTIONS", post: "POST", put: "PUT", patch: "PATCH" };
    let requestParts;
    class Request {
      #url;
      #method = "GET";
      #headers;
      #body = null;
      #used = false;
      #signal;
      #redirect = "follow";
      constructor(input, init = undefined) {
        if (arguments.length === 0) throw new TypeErrorCtor("Request: 1 argument required");
        let from = null;
        if (input !== null && typeof input === "object" && #url in input) from = input;
        if (from !== null) {
          this.#url = from.#url;
          this.#method = from.#method;
          this.#headers = new Headers(from.#headers);
          this.#body = from.#body;
          this.#signal = from.#signal;
          this.#redirect = from.#redirect;
        } else {
          const c = n.urlParse(usv(input));
          if (c === null || c === undefined) throw new TypeErrorCtor(`Request: invalid URL '${usv(input)}'`);
          this.#url = c[0];
          this.#headers = new Headers();
        }
        if (init !== undefined && init !== null) {
          if (init.method !== undefined) {
            const m = StringCtor(init.method);
            if (!isToken(m)) throw new TypeErrorCtor(`Request: invalid method '${m}'`);
            const upper = toUpperCase(m);
            if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") throw new TypeErrorCtor(`Request: the method '${m}' is forbidden`);
            this.#method = methods[toLowerCase(m)] ?? m;
          }
          if (init.headers !== undefined) this.#headers = new Headers(init.headers);
          if (init.signal !== undefined) this.#signal = init.signal;
          if (init.redirect !== undefined) this.#redirect = StringCtor(init.redirect);
          if (init.body !== undefined && init.body !== null) {
            if (this.#method === "GET" || this.#method === "HEAD") throw new TypeErrorCtor("Request: a GET or HEAD request has no body");
            const extracted = extractBody(init.body);
            this.#body = extracted[0];
            if (extracted[1] !== null && !headersHas(this.#headers, "content-type")) headersPut(this.#headers, "content-type", extracted[1]);
          }
        }
        if (this.#signal === undefined || this.#signal === null) this.#signal = newAbortSignal();
      }
      static {
        requestParts = (r) => (r !== null && typeof r === "object" && #url in r ? r : undefined);
        requestParts.read = (r) => [r.#url, r.#method, headersList(r.#headers), r.#body, r.#signal];
      }
      get url() { return this.#url; }
      get method() { return this.#method; }
      get headers() { return this.#headers; }
      get signal() { return this.#signal; }
      get redirect() { return this.#redirect; }
      get bodyUsed() { return this.#used; }
      get body() { return this.#body === null ? null : bodyText(this.#body); }
      #read(how) {
        const used = this.#used;
        this.#used = true;
        return consume(this, this.#body, used, readers[how]);
      }
      text() { return this.#read("text"); }
      json() { return this.#read("json"); }
      arrayBuffer() { return this.#read("arrayBuffer"); }
      bytes() { return this.#read("bytes"); }
      blob() {
        return promiseThen(this.#read("bytes"), (b) => new Blob([b], { type: headersGet(this.#headers, "content-type") ?? "" }));
      }
      clone() {
        if (this.#used) throw new TypeErrorCtor("Request.clone: the body has already been read");
        return new Request(this);
      }
    }
    defineProperty(Request.prototype, SymbolToStringTag, { __proto__: null, value: "Request", configurable: true });

    const nullBodyStatus = (s) => s === 101 || s === 103 || s === 204 || s === 205 || s === 304;
    let responseFrom;
    class Response {
      #status = 200;
      #statusText = "";
      #headers;
      #body = null;
      #used = false;
      #url = "";
      #type = "default";
      #encoding = undefined;
      #raw = undefined;
      constructor(body = null, init = undefined) {
        this.#headers = new Headers();
        if (init !== undefined && init !== null) {
          if (init.status !== undefined) {
            const s = NumberCtor(init.status);
            if (!(s >= 200 && s <= 599) || mathFloor(s) !== s) throw new RangeErrorCtor(`Response: the status ${init.status} is not in the range 200 to 599`);
            this.#status = s;
          }
          if (init.statusText !== undefined) this.#statusText = StringCtor(init.statusText);
          if (init.headers !== undefined) this.#headers = new Headers(init.headers);
        }
        if (body !== null && body !== undefined) {
          if (nullBodyStatus(this.#status)) throw new TypeErrorCtor(`Response: a ${this.#status} response has no body`);
          const extracted = extractBody(body);
          this.#body = extracted[0];
          if (extracted[1] !== null && !headersHas(this.#headers, "content-type")) headersPut(this.#headers, "content-type", extracted[1]);
        }
      }
      static json(data, init = undefined) {
        const text = stringify(data);
        if (text === undefined) throw new TypeErrorCtor("Response.json: the data is not JSON");
        const r = new Response(text, init);
        headersPut(r.#headers, "content-type", "application/json");
        return r;
      }
      static error() {
        const r = new Response(null, { status: 200 });
        r.#status = 0;
        r.#type = "error";
        headersLock(r.#headers);
        return r;
      }
      static redirect(url, status = 302) {
        if (status !== 301 && status !== 302 && status !== 303 && status !== 307 && status !== 308) {
          throw new RangeErrorCtor(`Response.redirect: ${status} is not a redirect status`);
        }
        const c = n.urlParse(usv(url));
        if (c === null || c === undefined) throw new TypeErrorCtor(`Response.redirect: invalid URL '${usv(url)}'`);
        const r = new Response(null, { status, headers: { location: c[0] } });
        headersLock(r.#headers);
        return r;
      }
      static {
        // A host reply `{status, url, headers: [[name, value]], body,
        // body_encoding}` → a Response. Its headers are immutable, and are
        // also readable as `r.headers[name]` by lower-case name (as before
        // there were Response objects), unless the name is a method's.
        responseFrom = (reply) => {
          const r = new Response(null);
          r.#status = reply.status;
          r.#url = reply.url ?? "";
          r.#type = "basic";
          const h = r.#headers;
          const pairs = reply.headers ?? [];
          for (let i = 0; i < pairs.length; i++) {
            push(headersList(h), toLowerCase(StringCtor(pairs[i][0])));
            push(headersList(h), StringCtor(pairs[i][1]));
          }
          headersLock(h);
          const list = headersList(h);
          for (let i = 0; i < list.length; i += 2) {
            if (headerMethods[list[i]] === true) continue;
            defineProperty(h, list[i], { __proto__: null, value: headersGet(h, list[i]), enumerable: false, configurable: false, writable: false });
          }
          r.#encoding = reply.body_encoding ?? "utf8";
          r.#raw = reply.body ?? "";
          if (r.#encoding === "base64") {
            const bytes = n.base64ToBytes(r.#raw);
            r.#body = bytes === null || bytes === undefined ? new Uint8(0) : bytes;
          } else r.#body = r.#raw;
          return r;
        };
      }
      get status() { return this.#status; }
      get ok() { return this.#status >= 200 && this.#status <= 299; }
      get statusText() { return this.#statusText; }
      get headers() { return this.#headers; }
      get url() { return this.#url; }
      get type() { return this.#type; }
      get redirected() { return false; }
      get bodyUsed() { return this.#used; }
      // Not a stream: the body as text (base64 for a binary body from
      // `fetch`, as `bodyEncoding` says), which is what `body` was before
      // there were Response objects; null when there is none.
      get body() {
        if (this.#raw !== undefined) return this.#raw;
        return this.#body === null ? null : bodyText(this.#body);
      }
      get bodyEncoding() { return this.#encoding; }
      #read(how) {
        const used = this.#used;
        this.#used = true;
        return consume(this, this.#body, used, readers[how]);
      }
      text() { return this.#read("text"); }
      json() { return this.#read("json"); }
      arrayBuffer() { return this.#read("arrayBuffer"); }
      bytes() { return this.#read("bytes"); }
      blob() {
        return promiseThen(this.#read("bytes"), (b) => new Blob([b], { type: headersGet(this.#headers, "content-type") ?? "" }));
      }
      clone() {
        if (this.#used) throw new TypeErrorCtor("Response.clone: the body has already been read");
        const r = new Response(null);
        r.#status = this.#status;
        r.#statusText = this.#statusText;
        r.#headers = new Headers(this.#headers);
        r.#body = this.#body;
        r.#url = this.#url;
        r.#type = this.#type;
        r.#encoding = this.#encoding;
        r.#raw = this.#raw;
        return r;
      }
    }
    defineProperty(Response.prototype, SymbolToStringTag, { __proto__: null, value: "Response", configurable: true });

    // The standard `fetch` over the host's `http.fetch` (wire shape:
    // `[url, {method, headers: [[n, v]] or an object, body: a string or a
    // JSON value, timeout_ms}]`). `init` fields the standard does not know
    // (`timeout_ms`, a plain-object `body` sent as JSON) pass through.
    fetchWith = (call) =>
      function fetch(input, init = undefined) {
        let url;
        let method;
        let headers;
        let body;
        let signal;
        try {
          const req = requestParts(input);
          if (req !== undefined) {
            const parts = requestParts.read(req);
            url = parts[0];
            method = parts[1];
            headers = parts[2];
            body = parts[3];
            signal = parts[4];
          } else {
            url = usv(input);
            method = "GET";
            headers = null;
            body = null;
          }
          if (init !== undefined && init !== null) {
            if (init.method !== undefined) method = StringCtor(init.method);
            if (init.headers !== undefined) {
              const h = init.headers;
              headers = h !== null && typeof h === "object" && headersList(h) !== undefined ? headersList(h) : h;
            }
            if (init.signal !== undefined) signal = init.signal;
            const b = init.body;
            if (b !== undefined) {
              const plain =
                b !== null && typeof b === "object" && blobBytes(b) === undefined && viewOf(b) === undefined &&
                formList(b) === undefined && !isParams(b);
              if (b === null || typeof b === "string" || plain) body = b;
              else {
                const extracted = extractBody(b);
                body = extracted[0];
                if (extracted[1] !== null) {
                  let named = false;
                  const list = isArray(headers) ? headers : null;
                  if (list !== null && list.length > 0 && typeof list[0] === "string") {
                    for (let i = 0; i < list.length; i += 2) if (list[i] === "content-type") named = true;
                  }
                  if (!named && (headers === null || (list !== null && (list.length === 0 || typeof list[0] === "string")))) {
                    const copy = list === null ? [] : list;
                    const next = [];
                    for (let i = 0; i < copy.length; i++) push(next, copy[i]);
                    push(next, "content-type");
                    push(next, extracted[1]);
                    headers = next;
                  }
                }
              }
            }
          }
          // Flat internal lists go out as [[name, value], …].
          if (isArray(headers) && (headers.length === 0 || typeof headers[0] === "string")) {
            const pairs = [];
            for (let i = 0; i < headers.length; i += 2) push(pairs, [headers[i], headers[i + 1]]);
            headers = pairs;
          }
          if (body !== null && body !== undefined && typeof body === "object" && viewOf(body) !== undefined) body = fromUtf8(body);
        } catch (e) {
          return promiseReject(e);
        }
        const options = { __proto__: null, method, headers, body };
        if (init !== undefined && init !== null && init.timeout_ms !== undefined) options.timeout_ms = init.timeout_ms;
        if (!isSignal(signal)) return call("http.fetch", [url, options], responseFrom);
        if (signalState(signal)[0]) return promiseReject(signalState(signal)[1]);
        const ms = signalTimeout(signal);
        if (ms !== undefined && options.timeout_ms === undefined) options.timeout_ms = ms;
        const pending = call("http.fetch", [url, options], responseFrom);
        return new PromiseCtor((ok, fail) => {
          const onAbort = () => fail(signalState(signal)[1]);
          listen(signal, "abort", onAbort);
          promiseThen(
            pending,
            (r) => {
              unlisten(signal, "abort", onAbort);
              ok(r);
            },
            (e) => {
              unlisten(signal, "abort", onAbort);
              fail(e);
            },
          );
        });
      };

    define("Headers", Headers);
    define("Blob", Blob);
    define("File", File);
    define("FormData", FormData);
    define("Request", Request);
    define("Response", Response);
  }
  define("DOMException", DOMException);

  return freeze({
    __proto__: null,
    // The run's hooks: its timer (a promise settled after `ms`) and the
    // time origin of `performance.now()`.
    bind(timer) {
      run = { __proto__: null, timer, origin: n.clock() };
    },
    fetchWith,
  });
});
