// `URL` and `URLSearchParams` (see core.js for the rules these files follow).
(function citadelWebUrl(kit) {
  "use strict";
  const {
    defineProperty,
    getOwnPropertyDescriptor,
    parse,
    ownKeys,
    apply,
    TypeErrorCtor,
    SymbolIterator,
    SymbolToStringTag,
    stringSlice,
    charCodeAt,
    arraySort,
    n,
    has,
    define,
    push,
    usv,
  } = kit;
  let paramsFromQuery;
  let isParams = () => false;
  let paramsText;
  let linkParams;
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
    define("URL", URL);
    define("URLSearchParams", URLSearchParams);
  kit.isParams = isParams;
  kit.paramsText = paramsText;
});
