// The date module: local time in the run's time zone. In a context with
// `Date`, it is run by the prelude's outer function (compiled like the web
// parts) before any script, and replaces every local-time path of `Date`:
// the constructor's (given fields or a string), `Date()`, `Date.parse`, the
// local getters and setters and the string forms. Their implementations
// (`local_time.js`, ECMA-262's algorithms over offsets from a compiled-in
// time-zone database) are loaded on first use, so a script that only asks
// for `Date.now()`, `getTime()`, `toISOString()` or `new Date(ms)` never
// pays for them. The UTC methods stay the engine's. `bind(zone)` sets the
// run's zone (`UTC` until then).
//
// The prelude's rules hold: every built-in used later is captured now (for
// the loaded part too), methods are uncurried, and the replacements, like
// built-in methods, are no constructors (but `Date`).
(function citadelDate(native) {
  "use strict";
  const OriginalDate = Date;
  const DatePrototype = OriginalDate.prototype;
  const { defineProperty, getPrototypeOf } = Object;
  const { construct, apply } = Reflect;
  const StringCtor = String;
  const FunctionPrototype = getPrototypeOf(citadelDate);
  const uncurry = FunctionPrototype.bind.bind(FunctionPrototype.call);
  const timeValue = uncurry(DatePrototype.getTime);
  const isDate = (v) => {
    if (v === null || typeof v !== "object") return false;
    try {
      timeValue(v);
      return true;
    } catch {
      return false;
    }
  };
  const originals = {
    __proto__: null,
    defineProperty,
    apply,
    mathFloor: Math.floor,
    mathTrunc: Math.trunc,
    mathAbs: Math.abs,
    isFiniteNumber: Number.isFinite,
    StringCtor,
    TypeErrorCtor: TypeError,
    SymbolToPrimitive: Symbol.toPrimitive,
    charCodeAt: uncurry(StringCtor.prototype.charCodeAt),
    padStart: uncurry(StringCtor.prototype.padStart),
    timeValue,
    setTimeValue: uncurry(DatePrototype.setTime),
    now: OriginalDate.now,
    isDate,
  };
  const loadLocalTime = native.loadLocalTime;
  const nativeZones = {
    __proto__: null,
    tzOffset: native.tzOffset,
    tzLocalOffset: native.tzLocalOffset,
    tzName: native.tzName,
  };

  let zone = "UTC";
  const currentZone = () => zone;
  let loaded;
  const localTime = () => {
    if (loaded === undefined) loaded = loadLocalTime()(nativeZones, currentZone, originals);
    return loaded;
  };

  const hidden = (value) => ({ __proto__: null, value, writable: true, enumerable: false, configurable: true });
  const DateCtor = function Date(year, month, date, hours, minutes, seconds, ms) {
    if (new.target === undefined) return localTime().now();
    const n = arguments.length;
    if (n === 0) return construct(OriginalDate, [], new.target);
    if (n === 1 && (typeof year === "number" || isDate(year))) return construct(OriginalDate, [year], new.target);
    return construct(OriginalDate, [localTime().constructed(arguments)], new.target);
  };
  defineProperty(DateCtor, "prototype", { __proto__: null, value: DatePrototype, writable: false, enumerable: false, configurable: false });
  defineProperty(DateCtor, "now", hidden(OriginalDate.now));
  defineProperty(DateCtor, "UTC", hidden(OriginalDate.UTC));
  const statics = {
    parse(string) {
      return localTime().parse(StringCtor(string));
    },
  };
  defineProperty(DateCtor, "parse", hidden(statics.parse));
  defineProperty(DatePrototype, "constructor", hidden(DateCtor));
  defineProperty(globalThis, "Date", hidden(DateCtor));

  // Each local method, by its name and length, calls its implementation.
  const LOCAL = [
    ["getFullYear", 0], ["getMonth", 0], ["getDate", 0], ["getHours", 0], ["getMinutes", 0], ["getSeconds", 0],
    ["getMilliseconds", 0], ["getDay", 0], ["getYear", 0], ["getTimezoneOffset", 0], ["setMilliseconds", 1],
    ["setSeconds", 2], ["setMinutes", 3], ["setHours", 4], ["setDate", 1], ["setMonth", 2], ["setFullYear", 3],
    ["setYear", 1], ["toString", 0], ["toDateString", 0], ["toTimeString", 0], ["toLocaleString", 0],
    ["toLocaleDateString", 0], ["toLocaleTimeString", 0],
  ];
  for (let i = 0; i < LOCAL.length; i++) {
    const name = LOCAL[i][0];
    const method = {
      [name](...args) {
        return apply(localTime().methods[name], this, args);
      },
    }[name];
    defineProperty(method, "length", { __proto__: null, value: LOCAL[i][1], configurable: true });
    defineProperty(DatePrototype, name, hidden(method));
  }

  return {
    __proto__: null,
    // The run's zone, for `Intl.DateTimeFormat`.
    zone: currentZone,
    bind(z) {
      zone = typeof z === "string" ? z : "UTC";
    },
  };
});
