// `structuredClone`.
(function citadelWebClone(kit) {
  "use strict";
  // Primitive wrappers (`new Boolean(false)`): brand checks and values.
  const ObjectCtor = Object;
  const wrappers = [Boolean.prototype.valueOf, Number.prototype.valueOf, String.prototype.valueOf, BigInt.prototype.valueOf];
  const reflectApply = Reflect.apply;
  const unwrap = (value) => {
    for (let i = 0; i < wrappers.length; i++) {
      try {
        return { __proto__: null, value: reflectApply(wrappers[i], value, []) };
      } catch {
        // Not this kind of wrapper.
      }
    }
    return undefined;
  };
  const {
    defineProperty,
    objectKeys,
    isArray,
    StringCtor,
    ErrorCtor,
    TypeErrorCtor,
    isError,
    typed,
    taBuffer,
    taOffset,
    taByteLength,
    taTag,
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
    hidden,
    define,
    push,
    domError,
  } = kit;
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
      } else if (unwrap(value) !== undefined) {
        out = ObjectCtor(unwrap(value).value);
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
});
