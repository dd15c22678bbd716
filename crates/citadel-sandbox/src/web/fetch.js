// `Headers`, `Blob`, `File`, `FormData`, `Request`, `Response`, and the
// // standard `fetch` over the host's `http.fetch` (`fetchWith`).
(function citadelWebFetch(kit) {
  "use strict";
  const {
    defineProperty,
    getOwnPropertyDescriptor,
    isArray,
    stringify,
    parse,
    ownKeys,
    apply,
    StringCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    PromiseCtor,
    SymbolIterator,
    SymbolToStringTag,
    promiseThen,
    promiseResolve,
    promiseReject,
    stringSlice,
    charCodeAt,
    toLowerCase,
    toUpperCase,
    padStart,
    numberToString,
    fromCharCode,
    mathFloor,
    mathMax,
    mathMin,
    NumberCtor,
    arraySort,
    Uint8,
    taSlice,
    n,
    has,
    define,
    push,
    usv,
    byteString,
    viewOf,
    copyBytes,
    arrayBufferOf,
    concatBytes,
    utf8,
    fromUtf8,
  } = kit;
  const { isParams, paramsText, newAbortSignal, isSignal, signalState, signalTimeout, listen, unlisten } = kit;
  let fetchWith;
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
        let printable = true;
        for (let i = 0; i < type.length; i++) {
          const c = charCodeAt(type, i);
          if (c < 0x20 || c > 0x7e) printable = false;
        }
        this.#type = printable ? toLowerCase(type) : "";
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

    // The methods the standard upper-cases (not PATCH).
    const methods = { __proto__: null, delete: "DELETE", get: "GET", head: "HEAD", options: "OPTIONS", post: "POST", put: "PUT" };
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
  kit.fetchWith = fetchWith;
});
