// `Intl` (`NumberFormat`, `DateTimeFormat`, `PluralRules`, `Collator`,
// `RelativeTimeFormat`, `ListFormat`, `getCanonicalLocales`) and the
// locale methods that follow it (`Number.prototype.toLocaleString`, the
// `Date.prototype.toLocale*String`s, `String.prototype.localeCompare`),
// over ICU4X (`intl.rs`). Compiled like the web parts and run by the
// prelude's outer function, after the date module (whose hooks give the
// run's time zone), in contexts whose script names `Intl` or a locale
// method. Options are read as ECMA-402 reads them (in its order, with its
// defaults and errors); what ICU4X is handed is plain JSON of the result.
//
// The prelude's rules hold: built-ins are captured now, methods are
// uncurried, internal arrays are grown by definition, state lives in
// private fields, and no regular expression is used.
(function citadelIntl(native, dateHooks) {
  "use strict";
  const { defineProperty, freeze, getPrototypeOf } = Object;
  const objectKeys = Object.keys;
  const StringCtor = String;
  const NumberCtor = Number;
  const TypeErrorCtor = TypeError;
  const RangeErrorCtor = RangeError;
  const SymbolToStringTag = Symbol.toStringTag;
  const FunctionPrototype = getPrototypeOf(citadelIntl);
  const uncurry = FunctionPrototype.bind.bind(FunctionPrototype.call);
  const numberValue = uncurry(NumberCtor.prototype.valueOf);
  const toLowerCase = uncurry(StringCtor.prototype.toLowerCase);
  const charCodeAt = uncurry(StringCtor.prototype.charCodeAt);
  const ObjectCtor = Object;
  const stringSlice = uncurry(StringCtor.prototype.slice);
  const isFiniteNumber = NumberCtor.isFinite;
  const mathTrunc = Math.trunc;
  const mathAbs = Math.abs;
  const mathMax = Math.max;
  const mathMin = Math.min;
  const DateCtor = typeof Date === "function" ? Date : undefined;
  const dateNow = DateCtor ? DateCtor.now : () => 0;
  const n = {
    __proto__: null,
    resolveLocale: native.resolveLocale,
    canonicalZone: native.canonicalZone,
    numberFormat: native.numberFormat,
    pluralSelect: native.pluralSelect,
    collate: native.collate,
    listFormat: native.listFormat,
    relativeTime: native.relativeTime,
    dateFormat: native.dateFormat,
    numberFormatParts: native.numberFormatParts,
    dateFormatParts: native.dateFormatParts,
  };

  const hidden = (value) => ({ __proto__: null, value, writable: true, enumerable: false, configurable: true });
  // The JSON of a flat record of numbers, booleans and strings this module
  // checked (option values, currency codes, skeleton letters: nothing to
  // escape). `JSON.stringify` is not used: QuickJS's grows arrays of its
  // own through `Array.prototype`'s setters.
  const stringify = (r) => {
    const names = objectKeys(r);
    let out = "{";
    for (let i = 0; i < names.length; i++) {
      const v = r[names[i]];
      if (v === undefined) continue;
      if (out.length > 1) out += ",";
      out += `"${names[i]}":${typeof v === "string" ? `"${v}"` : StringCtor(v)}`;
    }
    return out + "}";
  };
  // `[type, text, …]` from the natives as ECMA-402's parts.
  const partList = (flat) => {
    const out = [];
    for (let i = 0; i + 1 < flat.length; i += 2) push(out, { type: flat[i], value: flat[i + 1] });
    return out;
  };
  const push = (list, v) => {
    defineProperty(list, list.length, { __proto__: null, value: v, writable: true, enumerable: true, configurable: true });
  };

  // ---- locales and options (ECMA-402 9.2) ----
  const localeList = (locales) => {
    const out = [];
    if (locales === undefined) return out;
    if (typeof locales === "string") {
      push(out, locales);
    } else {
      const o = ObjectCtor(locales);
      const length = mathMin(mathMax(mathTrunc(NumberCtor(o.length)) || 0, 0), 1000);
      for (let i = 0; i < length; i++) {
        if (!(i in o)) continue;
        const v = o[i];
        if (typeof v !== "string" && (v === null || typeof v !== "object")) {
          throw new TypeErrorCtor("a locale must be a string or an object");
        }
        push(out, StringCtor(v));
      }
    }
    return out;
  };
  const resolveLocale = (locales) => {
    const found = n.resolveLocale(localeList(locales));
    if (found == null) throw new RangeErrorCtor("Incorrect locale information provided");
    return found;
  };
  const optionsObject = (options) => {
    if (options === undefined) return { __proto__: null };
    if (options === null) throw new TypeErrorCtor("options must be an object");
    return ObjectCtor(options);
  };
  // GetOption for a string with allowed values.
  const stringOption = (o, name, allowed, fallback) => {
    const v = o[name];
    if (v === undefined) return fallback;
    const s = StringCtor(v);
    if (allowed !== undefined) {
      let ok = false;
      for (let i = 0; i < allowed.length; i++) if (allowed[i] === s) ok = true;
      if (!ok) throw new RangeErrorCtor(`Value ${s} out of range for Intl options property ${name}`);
    }
    return s;
  };
  const booleanOption = (o, name, fallback) => {
    const v = o[name];
    return v === undefined ? fallback : !!v;
  };
  const numberOption = (o, name, min, max, fallback) => {
    const v = o[name];
    if (v === undefined) return fallback;
    const x = NumberCtor(v);
    if (x !== x || x < min || x > max) throw new RangeErrorCtor(`${name} value is out of range.`);
    return mathTrunc(x);
  };
  const supportedLocalesOf = function supportedLocalesOf(locales) {
    const list = localeList(locales);
    const out = [];
    for (let i = 0; i < list.length; i++) {
      const one = [list[i]];
      const found = n.resolveLocale(one);
      if (found == null) throw new RangeErrorCtor("Incorrect locale information provided");
      if (found !== "en-US" || toLowerCase(stringSlice(list[i], 0, 2)) === "en") push(out, found);
    }
    return out;
  };
  const tagged = (Ctor, name) => {
    defineProperty(Ctor.prototype, SymbolToStringTag, { __proto__: null, value: name, configurable: true });
    defineProperty(Ctor, "supportedLocalesOf", hidden(supportedLocalesOf));
  };

  // ---- NumberFormat ----
  const CURRENCY_DIGITS = {
    __proto__: null,
    BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0,
    VUV: 0, XAF: 0, XOF: 0, XPF: 0, BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  };
  const isAlpha = (s) => {
    if (s.length !== 3) return false;
    for (let i = 0; i < 3; i++) {
      const c = charCodeAt(s, i);
      if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) return false;
    }
    return true;
  };
  const upper = uncurry(StringCtor.prototype.toUpperCase);
  class NumberFormat {
    #locale;
    #o;
    #json;
    #format;
    constructor(locales, options) {
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      const r = { __proto__: null };
      r.style = stringOption(o, "style", ["decimal", "percent", "currency", "unit"], "decimal");
      const currency = stringOption(o, "currency", undefined, undefined);
      if (currency !== undefined && !isAlpha(currency)) throw new RangeErrorCtor(`Invalid currency code : ${currency}`);
      r.currencyDisplay = stringOption(o, "currencyDisplay", ["code", "symbol", "narrowSymbol", "name"], "symbol");
      if (r.style === "currency") {
        if (currency === undefined) throw new TypeErrorCtor("Currency code is required with currency style.");
        r.currency = upper(currency);
      }
      if (r.style === "unit") throw new RangeErrorCtor("the unit style is not supported");
      r.notation = stringOption(o, "notation", ["standard", "scientific", "engineering", "compact"], "standard");
      if (r.notation === "scientific" || r.notation === "engineering") r.notation = "standard";
      let minFractionDefault = 0;
      let maxFractionDefault = 3;
      if (r.style === "currency") {
        const digits = CURRENCY_DIGITS[r.currency];
        minFractionDefault = maxFractionDefault = digits === undefined ? 2 : digits;
      } else if (r.style === "percent") {
        maxFractionDefault = 0;
      }
      if (r.notation === "compact") minFractionDefault = maxFractionDefault = 0;
      r.minimumIntegerDigits = numberOption(o, "minimumIntegerDigits", 1, 21, 1);
      const minFD = o.minimumFractionDigits;
      const maxFD = o.maximumFractionDigits;
      const minSD = o.minimumSignificantDigits;
      const maxSD = o.maximumSignificantDigits;
      if (minSD !== undefined || maxSD !== undefined) {
        r.minimumSignificantDigits = numberOption(o, "minimumSignificantDigits", 1, 21, 1);
        r.maximumSignificantDigits = numberOption(o, "maximumSignificantDigits", r.minimumSignificantDigits, 21, 21);
      }
      let min = numberOption(o, "minimumFractionDigits", 0, 100, undefined);
      let max = numberOption(o, "maximumFractionDigits", 0, 100, undefined);
      if (min === undefined && max === undefined) {
        min = minFractionDefault;
        max = maxFractionDefault;
      } else if (min === undefined) {
        min = mathMin(minFractionDefault, max);
      } else if (max === undefined) {
        max = mathMax(maxFractionDefault, min);
      } else if (min > max) {
        throw new RangeErrorCtor("maximumFractionDigits value is out of range.");
      }
      void minFD;
      void maxFD;
      r.minimumFractionDigits = min;
      r.maximumFractionDigits = max;
      r.compactDisplay = stringOption(o, "compactDisplay", ["short", "long"], "short");
      const grouping = o.useGrouping;
      r.useGrouping = grouping === undefined ? true : grouping === "false" ? false : !!grouping;
      r.signDisplay = stringOption(o, "signDisplay", ["auto", "never", "always", "exceptZero", "negative"], "auto");
      this.#o = r;
      this.#json = stringify(r);
    }
    #formatNumber(value) {
      const x = typeof value === "bigint" ? NumberCtor(value) : NumberCtor(value);
      const r = this.#o;
      let text;
      if (x !== x) {
        text = "NaN";
      } else if (!isFiniteNumber(x)) {
        text = x < 0 ? "-∞" : "∞";
      } else {
        text = n.numberFormat(this.#locale, this.#json, x);
        if (text == null) text = StringCtor(x);
      }
      if (r.signDisplay === "never" && text[0] === "-") text = stringSlice(text, 1);
      else if (r.signDisplay === "always" && !(x < 0 || (x === 0 && 1 / x < 0))) text = "+" + text;
      else if (r.signDisplay === "exceptZero" && x > 0) text = "+" + text;
      return text;
    }
    get format() {
      if (this.#format === undefined) this.#format = (value) => this.#formatNumber(value);
      return this.#format;
    }
    formatToParts(value) {
      const x = NumberCtor(value);
      if (x !== x) return [{ type: "nan", value: "NaN" }];
      if (!isFiniteNumber(x)) {
        return x < 0 ? [{ type: "minusSign", value: "-" }, { type: "infinity", value: "∞" }] : [{ type: "infinity", value: "∞" }];
      }
      const flat = n.numberFormatParts(this.#locale, this.#json, x);
      return flat == null ? [{ type: "literal", value: this.#formatNumber(value) }] : partList(flat);
    }
    resolvedOptions() {
      const r = this.#o;
      const out = { locale: this.#locale, numberingSystem: "latn", style: r.style };
      if (r.currency !== undefined) {
        out.currency = r.currency;
        out.currencyDisplay = r.currencyDisplay;
      }
      out.minimumIntegerDigits = r.minimumIntegerDigits;
      out.minimumFractionDigits = r.minimumFractionDigits;
      out.maximumFractionDigits = r.maximumFractionDigits;
      if (r.minimumSignificantDigits !== undefined) {
        out.minimumSignificantDigits = r.minimumSignificantDigits;
        out.maximumSignificantDigits = r.maximumSignificantDigits;
      }
      out.useGrouping = r.useGrouping ? "auto" : false;
      out.notation = r.notation;
      if (r.notation === "compact") out.compactDisplay = r.compactDisplay;
      out.signDisplay = r.signDisplay;
      return out;
    }
  }
  tagged(NumberFormat, "Intl.NumberFormat");

  // ---- PluralRules ----
  class PluralRules {
    #locale;
    #type;
    #minFraction;
    constructor(locales, options) {
      if (new.target === undefined) throw new TypeErrorCtor("Constructor Intl.PluralRules requires 'new'");
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      this.#type = stringOption(o, "type", ["cardinal", "ordinal"], "cardinal");
      this.#minFraction = numberOption(o, "minimumFractionDigits", 0, 100, 0);
    }
    select(value) {
      const x = NumberCtor(value);
      if (!isFiniteNumber(x)) return "other";
      return n.pluralSelect(this.#locale, this.#type === "ordinal", x, this.#minFraction);
    }
    resolvedOptions() {
      return {
        locale: this.#locale,
        type: this.#type,
        minimumIntegerDigits: 1,
        minimumFractionDigits: this.#minFraction,
        maximumFractionDigits: mathMax(3, this.#minFraction),
      };
    }
  }
  tagged(PluralRules, "Intl.PluralRules");

  // ---- Collator ----
  class Collator {
    #locale;
    #usage;
    #sensitivity;
    #numeric;
    #compare;
    constructor(locales, options) {
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      this.#usage = stringOption(o, "usage", ["sort", "search"], "sort");
      this.#numeric = booleanOption(o, "numeric", false);
      this.#sensitivity = stringOption(o, "sensitivity", ["base", "accent", "case", "variant"], "variant");
    }
    get compare() {
      if (this.#compare === undefined) {
        this.#compare = (a, b) => n.collate(this.#locale, this.#sensitivity, this.#numeric, StringCtor(a), StringCtor(b));
      }
      return this.#compare;
    }
    resolvedOptions() {
      return {
        locale: this.#locale,
        usage: this.#usage,
        sensitivity: this.#sensitivity,
        ignorePunctuation: false,
        collation: "default",
        numeric: this.#numeric,
        caseFirst: "false",
      };
    }
  }
  tagged(Collator, "Intl.Collator");

  // ---- RelativeTimeFormat ----
  const UNITS = {
    __proto__: null,
    second: "second", seconds: "second", minute: "minute", minutes: "minute", hour: "hour", hours: "hour",
    day: "day", days: "day", week: "week", weeks: "week", month: "month", months: "month",
    quarter: "quarter", quarters: "quarter", year: "year", years: "year",
  };
  class RelativeTimeFormat {
    #locale;
    #style;
    #numeric;
    constructor(locales, options) {
      if (new.target === undefined) throw new TypeErrorCtor("Constructor Intl.RelativeTimeFormat requires 'new'");
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      this.#style = stringOption(o, "style", ["long", "short", "narrow"], "long");
      this.#numeric = stringOption(o, "numeric", ["always", "auto"], "always");
    }
    format(value, unit) {
      const x = NumberCtor(value);
      const u = UNITS[StringCtor(unit)];
      if (u === undefined) throw new RangeErrorCtor(`Invalid unit argument for format() '${StringCtor(unit)}'`);
      if (!isFiniteNumber(x)) throw new RangeErrorCtor("Invalid number value");
      const text = n.relativeTime(this.#locale, u, this.#style, this.#numeric === "auto", x);
      if (text == null) throw new RangeErrorCtor("Invalid number value");
      return text;
    }
    formatToParts(value, unit) {
      return [{ type: "literal", value: this.format(value, unit) }];
    }
    resolvedOptions() {
      return { locale: this.#locale, style: this.#style, numeric: this.#numeric, numberingSystem: "latn" };
    }
  }
  tagged(RelativeTimeFormat, "Intl.RelativeTimeFormat");

  // ---- ListFormat ----
  class ListFormat {
    #locale;
    #type;
    #style;
    constructor(locales, options) {
      if (new.target === undefined) throw new TypeErrorCtor("Constructor Intl.ListFormat requires 'new'");
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      this.#type = stringOption(o, "type", ["conjunction", "disjunction", "unit"], "conjunction");
      this.#style = stringOption(o, "style", ["long", "short", "narrow"], "long");
    }
    format(list) {
      const items = [];
      if (list !== undefined) {
        for (const item of list) {
          if (typeof item !== "string") throw new TypeErrorCtor("Iterable yielded a non-string value");
          push(items, item);
        }
      }
      return n.listFormat(this.#locale, this.#type, this.#style, items);
    }
    formatToParts(list) {
      return [{ type: "literal", value: this.format(list) }];
    }
    resolvedOptions() {
      return { locale: this.#locale, type: this.#type, style: this.#style };
    }
  }
  tagged(ListFormat, "Intl.ListFormat");

  // ---- DateTimeFormat ----
  const COMPONENTS = [
    ["weekday", ["narrow", "short", "long"]],
    ["era", ["narrow", "short", "long"]],
    ["year", ["2-digit", "numeric"]],
    ["month", ["2-digit", "numeric", "narrow", "short", "long"]],
    ["day", ["2-digit", "numeric"]],
    ["hour", ["2-digit", "numeric"]],
    ["minute", ["2-digit", "numeric"]],
    ["second", ["2-digit", "numeric"]],
    ["timeZoneName", ["short", "long", "shortOffset", "longOffset", "shortGeneric", "longGeneric"]],
  ];
  const SKELETON = {
    __proto__: null,
    weekday: { __proto__: null, narrow: "EEEEE", short: "E", long: "EEEE" },
    era: { __proto__: null, narrow: "GGGGG", short: "G", long: "GGGG" },
    year: { __proto__: null, "2-digit": "yy", numeric: "y" },
    month: { __proto__: null, "2-digit": "MM", numeric: "M", narrow: "MMMMM", short: "MMM", long: "MMMM" },
    day: { __proto__: null, "2-digit": "dd", numeric: "d" },
    minute: { __proto__: null, "2-digit": "mm", numeric: "m" },
    second: { __proto__: null, "2-digit": "ss", numeric: "s" },
    timeZoneName: {
      __proto__: null, short: "z", long: "zzzz", shortOffset: "O", longOffset: "OOOO", shortGeneric: "v", longGeneric: "vvvv",
    },
  };
  const runZone = () => (dateHooks !== undefined ? dateHooks.zone() : "UTC");
  // `required` and `defaults` as ECMA-402's ToDateTimeOptions says
  // (`date`/`time`/`any`, `date`/`time`/`all`).
  class DateTimeFormat {
    #locale;
    #o;
    #zone;
    #explicitZone;
    #format;
    constructor(locales, options, required = "any", defaults = "date") {
      this.#locale = resolveLocale(locales);
      const o = optionsObject(options);
      const r = { __proto__: null };
      const hour12 = o.hour12;
      const hourCycle = stringOption(o, "hourCycle", ["h11", "h12", "h23", "h24"], undefined);
      const zone = o.timeZone;
      if (zone !== undefined) {
        const canonical = n.canonicalZone(StringCtor(zone));
        if (canonical == null) throw new RangeErrorCtor(`Invalid time zone specified: ${StringCtor(zone)}`);
        this.#zone = canonical;
        this.#explicitZone = true;
      } else {
        this.#explicitZone = false;
      }
      let any = false;
      const picked = { __proto__: null };
      for (let i = 0; i < COMPONENTS.length; i++) {
        const name = COMPONENTS[i][0];
        const v = stringOption(o, name, COMPONENTS[i][1], undefined);
        if (v !== undefined) {
          picked[name] = v;
          if (name !== "timeZoneName") any = true;
        }
      }
      const dateStyle = stringOption(o, "dateStyle", ["full", "long", "medium", "short"], undefined);
      const timeStyle = stringOption(o, "timeStyle", ["full", "long", "medium", "short"], undefined);
      if ((dateStyle !== undefined || timeStyle !== undefined) && (any || picked.timeZoneName !== undefined)) {
        throw new TypeErrorCtor("Can't set option " + (any ? "components" : "timeZoneName") + " when dateStyle or timeStyle is used");
      }
      if (dateStyle === undefined && timeStyle === undefined) {
        let needDefaults = true;
        if (required !== "time" && (picked.weekday || picked.year || picked.month || picked.day)) needDefaults = false;
        if (required !== "date" && (picked.hour || picked.minute || picked.second)) needDefaults = false;
        if (needDefaults && (defaults === "date" || defaults === "all")) {
          picked.year = "numeric";
          picked.month = "numeric";
          picked.day = "numeric";
        }
        if (needDefaults && (defaults === "time" || defaults === "all")) {
          picked.hour = "numeric";
          picked.minute = "numeric";
          picked.second = "numeric";
        }
      }
      let h12;
      if (hour12 !== undefined) h12 = !!hour12;
      else if (hourCycle !== undefined) h12 = hourCycle === "h11" || hourCycle === "h12";
      let skeleton = "";
      for (let i = 0; i < COMPONENTS.length; i++) {
        const name = COMPONENTS[i][0];
        const v = picked[name];
        if (v === undefined) continue;
        if (name === "hour") {
          const letter = h12 === undefined ? "j" : h12 ? "h" : "H";
          skeleton += v === "2-digit" ? letter + letter : letter;
        } else {
          skeleton += SKELETON[name][v];
        }
      }
      r.skeleton = skeleton;
      if (dateStyle !== undefined) r.dateStyle = dateStyle;
      if (timeStyle !== undefined) r.timeStyle = timeStyle;
      if (h12 !== undefined) r.hour12 = h12;
      this.#o = freeze({ __proto__: null, r, json: stringify(r), picked, dateStyle, timeStyle, h12 });
    }
    #formatDate(date) {
      let t = date === undefined ? dateNow() : NumberCtor(date);
      if (isFiniteNumber(t) && mathAbs(t) <= 8.64e15) t = mathTrunc(t) + 0;
      else throw new RangeErrorCtor("Invalid time value");
      const zone = this.#explicitZone ? this.#zone : runZone();
      const text = n.dateFormat(this.#locale, this.#o.json, t, zone);
      if (text != null) return text;
      // Past what the formatter takes (years beyond 9999).
      return new DateCtor(t).toISOString();
    }
    get format() {
      if (this.#format === undefined) this.#format = (date) => this.#formatDate(date);
      return this.#format;
    }
    formatToParts(date) {
      let t = date === undefined ? dateNow() : NumberCtor(date);
      if (isFiniteNumber(t) && mathAbs(t) <= 8.64e15) t = mathTrunc(t) + 0;
      else throw new RangeErrorCtor("Invalid time value");
      const zone = this.#explicitZone ? this.#zone : runZone();
      const flat = n.dateFormatParts(this.#locale, this.#o.json, t, zone);
      return flat == null ? [{ type: "literal", value: this.#formatDate(t) }] : partList(flat);
    }
    resolvedOptions() {
      const { picked, dateStyle, timeStyle, h12 } = this.#o;
      const zone = this.#explicitZone ? this.#zone : n.canonicalZone(runZone()) ?? "UTC";
      const out = { locale: this.#locale, calendar: "gregory", numberingSystem: "latn", timeZone: zone };
      if (h12 !== undefined || picked.hour !== undefined || timeStyle !== undefined) {
        out.hourCycle = h12 === false ? "h23" : "h12";
        out.hour12 = h12 !== false;
      }
      for (let i = 0; i < COMPONENTS.length; i++) {
        const name = COMPONENTS[i][0];
        if (picked[name] !== undefined) out[name] = picked[name];
      }
      if (dateStyle !== undefined) out.dateStyle = dateStyle;
      if (timeStyle !== undefined) out.timeStyle = timeStyle;
      return out;
    }
  }
  tagged(DateTimeFormat, "Intl.DateTimeFormat");

  const getCanonicalLocales = function getCanonicalLocales(locales) {
    const list = localeList(locales);
    const out = [];
    for (let i = 0; i < list.length; i++) {
      // Canonical form of each, whether or not it is supported.
      const found = n.resolveLocale([list[i]]);
      if (found == null) throw new RangeErrorCtor(`Incorrect locale information provided`);
      push(out, found === "en-US" && toLowerCase(stringSlice(list[i], 0, 2)) !== "en" ? list[i] : found);
    }
    return out;
  };

  // `NumberFormat`, `DateTimeFormat` and `Collator` may be called without
  // `new` (ECMA-402's legacy behaviour); the class does the work either way.
  const { construct } = Reflect;
  const callable = (Impl, name) => {
    const Ctor = {
      [name]: function (locales, options) {
        return construct(Impl, [locales, options], new.target === undefined ? Impl : new.target);
      },
    }[name];
    defineProperty(Ctor, "prototype", { __proto__: null, value: Impl.prototype, writable: false, enumerable: false, configurable: false });
    defineProperty(Impl.prototype, "constructor", hidden(Ctor));
    defineProperty(Ctor, "supportedLocalesOf", hidden(supportedLocalesOf));
    return Ctor;
  };
  const Intl = {};
  defineProperty(Intl, SymbolToStringTag, { __proto__: null, value: "Intl", configurable: true });
  defineProperty(Intl, "NumberFormat", hidden(callable(NumberFormat, "NumberFormat")));
  defineProperty(Intl, "DateTimeFormat", hidden(callable(DateTimeFormat, "DateTimeFormat")));
  defineProperty(Intl, "PluralRules", hidden(PluralRules));
  defineProperty(Intl, "Collator", hidden(callable(Collator, "Collator")));
  defineProperty(Intl, "RelativeTimeFormat", hidden(RelativeTimeFormat));
  defineProperty(Intl, "ListFormat", hidden(ListFormat));
  defineProperty(Intl, "getCanonicalLocales", hidden(getCanonicalLocales));
  defineProperty(globalThis, "Intl", hidden(Intl));

  // ---- the locale methods ----
  const methods = {
    toLocaleString(locales, options) {
      return new NumberFormat(locales, options).format(numberValue(this));
    },
  };
  defineProperty(NumberCtor.prototype, "toLocaleString", hidden(methods.toLocaleString));
  const stringMethods = {
    localeCompare(that) {
      if (this === undefined || this === null) throw new TypeErrorCtor("String.prototype.localeCompare called on null or undefined");
      const s = StringCtor(this);
      const t = StringCtor(that);
      return new Collator(arguments[1], arguments[2]).compare(s, t);
    },
  };
  defineProperty(StringCtor.prototype, "localeCompare", hidden(stringMethods.localeCompare));
  if (DateCtor !== undefined) {
    const timeValue = uncurry(DateCtor.prototype.getTime);
    const dateMethods = {
      toLocaleString(locales, options) {
        const t = timeValue(this);
        if (t !== t) return "Invalid Date";
        return new DateTimeFormat(locales, options, "any", "all").format(t);
      },
      toLocaleDateString(locales, options) {
        const t = timeValue(this);
        if (t !== t) return "Invalid Date";
        return new DateTimeFormat(locales, options, "date", "date").format(t);
      },
      toLocaleTimeString(locales, options) {
        const t = timeValue(this);
        if (t !== t) return "Invalid Date";
        return new DateTimeFormat(locales, options, "time", "time").format(t);
      },
    };
    const names = ["toLocaleString", "toLocaleDateString", "toLocaleTimeString"];
    for (let i = 0; i < names.length; i++) defineProperty(DateCtor.prototype, names[i], hidden(dateMethods[names[i]]));
  }
});
