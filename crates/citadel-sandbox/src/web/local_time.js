// Local time in the run's time zone: the part of the date module
// (`date.js`) loaded on first use of a local-time path (the constructor's
// with fields or a string, `Date()`, `Date.parse`, the local getters and
// setters, the string forms). QuickJS computes local time with the C
// library (`localtime_r`), which knows only the process's zone (and, after
// the host's seccomp filter is in force, must never open a zone file); these
// are ECMA-262's own algorithms over the offsets of `native` (`tzOffset`,
// `tzLocalOffset`, `tzName`, computed from a compiled-in time-zone
// database) in the zone `currentZone()` says. It returns the
// implementations the date module's methods call.
//
// The prelude's rules hold: every built-in used later is captured when
// this runs, before the script can have replaced any (the date module
// captured them for it: `originals`), methods are uncurried, and no regular
// expression is used.
(function citadelLocalTime(native, currentZone, originals) {
  "use strict";
  const {
    defineProperty,
    apply,
    mathFloor,
    mathTrunc,
    mathAbs,
    isFiniteNumber,
    StringCtor,
    TypeErrorCtor,
    SymbolToPrimitive,
    charCodeAt,
    padStart,
    timeValue,
    setTimeValue,
    now,
    isDate,
  } = originals;
  const tzOffset = native.tzOffset;
  const tzLocalOffset = native.tzLocalOffset;
  const tzName = native.tzName;

  const msPerDay = 86400000;
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  // ---- ECMA-262 21.4.1 ----
  const toNumber = (v) => +v;
  const integer = (v) => mathTrunc(v) + 0;
  const timeClip = (t) => (!isFiniteNumber(t) || mathAbs(t) > 8.64e15 ? NaN : integer(t));
  // LocalTime(t) and UTC(t), in the run's zone.
  const localTime = (t) => t + tzOffset(currentZone(), t);
  const utc = (t) => (isFiniteNumber(t) ? t - tzLocalOffset(currentZone(), t) : NaN);
  const day = (t) => mathFloor(t / msPerDay);
  const timeWithinDay = (t) => t - day(t) * msPerDay;
  // The proleptic Gregorian [year, month (0–11), date] of a day number.
  const civil = (days) => {
    const z = days + 719468;
    const era = mathFloor(z / 146097);
    const doe = z - era * 146097;
    const yoe = mathFloor((doe - mathFloor(doe / 1460) + mathFloor(doe / 36524) - mathFloor(doe / 146096)) / 365);
    const doy = doe - (365 * yoe + mathFloor(yoe / 4) - mathFloor(yoe / 100));
    const mp = mathFloor((5 * doy + 2) / 153);
    const d = doy - mathFloor((153 * mp + 2) / 5) + 1;
    const m = mp < 10 ? mp + 2 : mp - 10;
    return [yoe + era * 400 + (m <= 1 ? 1 : 0), m, d];
  };
  const daysFromCivil = (y, m, d) => {
    if (m <= 1) y -= 1;
    const era = mathFloor(y / 400);
    const yoe = y - era * 400;
    const mp = (m + 10) % 12;
    const doy = mathFloor((153 * mp + 2) / 5) + d - 1;
    const doe = yoe * 365 + mathFloor(yoe / 4) - mathFloor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
  };
  const makeTime = (h, m, s, ms) => {
    if (!isFiniteNumber(h) || !isFiniteNumber(m) || !isFiniteNumber(s) || !isFiniteNumber(ms)) return NaN;
    return integer(h) * 3600000 + integer(m) * 60000 + integer(s) * 1000 + integer(ms);
  };
  const makeDay = (year, month, date) => {
    if (!isFiniteNumber(year) || !isFiniteNumber(month) || !isFiniteNumber(date)) return NaN;
    const m = integer(month);
    const ym = integer(year) + mathFloor(m / 12);
    if (mathAbs(ym) > 400000) return NaN;
    const mn = m - mathFloor(m / 12) * 12;
    return daysFromCivil(ym, mn, 1) + integer(date) - 1;
  };
  const makeDate = (d, time) => {
    const tv = d * msPerDay + time;
    return isFiniteNumber(tv) ? tv : NaN;
  };
  const makeFullYear = (y) => {
    if (y !== y) return NaN;
    const i = integer(y);
    return i >= 0 && i <= 99 ? 1900 + i : y;
  };
  // The local fields of a time value: [year, month, date, hours, minutes,
  // seconds, ms, weekday, offset in ms].
  const fields = (t) => {
    const offset = tzOffset(currentZone(), t);
    const l = t + offset;
    const d = day(l);
    const c = civil(d);
    let within = l - d * msPerDay;
    const ms = within % 1000;
    within = (within - ms) / 1000;
    const s = within % 60;
    within = (within - s) / 60;
    const min = within % 60;
    const h = (within - min) / 60;
    return [c[0], c[1], c[2], h, min, s, ms, (((d + 4) % 7) + 7) % 7, offset];
  };

  // ---- Date.parse: QuickJS's parser (`js_Date_parse`), with the zone ----
  // A string's characters as codes, at most 127, non-Latin-1 ones as "x"
  // (U+2212 as "-"), and a 0 at the end.
  const codes = (s) => {
    const out = [];
    const n = s.length < 127 ? s.length : 127;
    for (let i = 0; i < n; i++) {
      let c = charCodeAt(s, i);
      if (c > 255) c = c === 0x2212 ? 45 : 120;
      defineProperty(out, i, { __proto__: null, value: c, writable: true, enumerable: true, configurable: true });
    }
    // Zeros past the end: no read goes beyond the array.
    for (let i = n; i < n + 8; i++) {
      defineProperty(out, i, { __proto__: null, value: 0, writable: true, enumerable: true, configurable: true });
    }
    return out;
  };
  const isDigit = (c) => c >= 48 && c <= 57;
  const upper = (c) => (c >= 97 && c <= 122 ? c - 32 : c);
  // The parser's state: the string, the position, the last number read.
  const P = { __proto__: null, sp: undefined, p: 0, val: 0 };
  const digits = (min, max) => {
    let v = 0;
    const start = P.p;
    while (isDigit(P.sp[P.p])) {
      if (v >= 100000000) break;
      v = v * 10 + P.sp[P.p] - 48;
      P.p++;
      if (P.p - start === max) break;
    }
    if (P.p - start < min) return false;
    P.val = v;
    return true;
  };
  const skip = (c) => {
    if (P.sp[P.p] === c) {
      P.p++;
      return true;
    }
    return false;
  };
  const milliseconds = () => {
    const c = P.sp[P.p];
    if (c === 46 || c === 44) {
      P.p++;
      let mul = 100;
      let ms = 0;
      const start = P.p;
      while (isDigit(P.sp[P.p])) {
        ms += (P.sp[P.p] - 48) * mul;
        mul /= 10;
        P.p++;
        if (P.p - start === 9) break;
      }
      if (P.p > start) return mathFloor(ms);
      P.p = start - 1;
    }
    return 0;
  };
  const tzOffsetField = (strict, f) => {
    const sgn = P.sp[P.p++];
    let tz = 0;
    if (sgn === 43 || sgn === 45) {
      const start = P.p;
      if (!digits(1, 0)) return false;
      let hh = P.val;
      let n = P.p - start;
      let mm;
      if (strict && n !== 2 && n !== 4) return false;
      while (n > 4) {
        n -= 2;
        hh = mathFloor(hh / 100);
      }
      if (n > 2) {
        mm = hh % 100;
        hh = mathFloor(hh / 100);
      } else {
        mm = 0;
        if (skip(58)) {
          if (!digits(2, 2)) return false;
          mm = P.val;
        }
      }
      if (hh > 23 || mm > 59) return false;
      tz = hh * 60 + mm;
      if (sgn !== 43) tz = -tz;
    } else if (sgn !== 90) {
      return false;
    }
    f[8] = tz;
    return true;
  };
  const match = (word) => {
    let q = P.p;
    for (let i = 0; i < word.length; i++) {
      if (upper(P.sp[q]) !== charCodeAt(word, i)) return false;
      q++;
    }
    P.p = q;
    return true;
  };
  const ABBREVIATIONS = [
    ["GMT", 0], ["UTC", 0], ["UT", 0], ["Z", 0], ["EDT", -240], ["EST", -300], ["CDT", -300], ["CST", -360],
    ["MDT", -360], ["MST", -420], ["PDT", -420], ["PST", -480], ["WET", 0], ["WEST", 60], ["CET", 60],
    ["CEST", 120], ["EET", 120], ["EEST", 180],
  ];
  const MONTH_CODES = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC";
  const isoString = (f) => {
    const sp = P.sp;
    P.p = 0;
    for (let i = 0; i < 9; i++) f[i] = i === 2 ? 1 : 0;
    f[9] = false;
    const sgn = sp[0];
    if (sgn === 45 || sgn === 43) {
      P.p++;
      if (!digits(6, 6)) return false;
      f[0] = P.val;
      if (sgn === 45) {
        if (f[0] === 0) return false;
        f[0] = -f[0];
      }
    } else {
      if (!digits(4, 4)) return false;
      f[0] = P.val;
    }
    if (skip(45)) {
      if (!digits(2, 2) || P.val < 1) return false;
      f[1] = P.val - 1;
      if (skip(45)) {
        if (!digits(2, 2) || P.val < 1) return false;
        f[2] = P.val;
      }
    }
    if (skip(84)) {
      f[9] = true;
      if (!digits(2, 2)) {
        f[3] = 100;
        return true;
      }
      f[3] = P.val;
      if (!skip(58) || !digits(2, 2)) {
        f[3] = 100;
        return true;
      }
      f[4] = P.val;
      if (skip(58)) {
        if (!digits(2, 2)) return false;
        f[5] = P.val;
        f[6] = milliseconds();
      }
    }
    if (sp[P.p] !== 0) {
      f[9] = false;
      if (!tzOffsetField(true, f)) return false;
    }
    return sp[P.p] === 0;
  };
  const isSpace = (c) => c === 32 || c === 9 || c === 10 || c === 11 || c === 12 || c === 13;
  const skipSpaces = () => {
    while (isSpace(P.sp[P.p])) P.p++;
    return P.sp[P.p] !== 0;
  };
  const skipUntil = (stops) => {
    for (;;) {
      const c = P.sp[P.p];
      if (c === 0) return;
      for (let i = 0; i < stops.length; i++) if (charCodeAt(stops, i) === c) return;
      P.p++;
    }
  };
  const skipSeparators = () => {
    for (;;) {
      const c = P.sp[P.p];
      if (c === 45 || c === 47 || c === 46 || c === 44) P.p++;
      else return;
    }
  };
  const otherString = (f) => {
    const sp = P.sp;
    P.p = 0;
    f[0] = 2001;
    f[1] = 1;
    f[2] = 1;
    for (let i = 3; i < 9; i++) f[i] = 0;
    f[9] = true;
    let hasYear = false;
    let hasMon = false;
    let hasTime = false;
    const num = [0, 0, 0];
    let numIndex = 0;
    while (skipSpaces()) {
      const start = P.p;
      const c = sp[P.p];
      if (c === 43 || c === 45) {
        if (hasTime && tzOffsetField(false, f)) {
          f[9] = false;
        } else {
          P.p = start + 1;
          if (digits(1, 0)) {
            let val = P.val;
            if (c === 45) {
              if (val === 0) return false;
              val = -val;
            }
            f[0] = val;
            hasYear = true;
          }
        }
      } else if (digits(1, 0)) {
        const val = P.val;
        if (skip(58)) {
          f[3] = val;
          if (!digits(1, 2)) return false;
          f[4] = P.val;
          if (skip(58)) {
            if (!digits(1, 2)) return false;
            f[5] = P.val;
            f[6] = milliseconds();
          } else if (sp[P.p] !== 0 && sp[P.p] !== 32) {
            return false;
          }
          hasTime = true;
        } else if (P.p - start > 2) {
          f[0] = val;
          hasYear = true;
        } else if (val < 1 || val > 31) {
          f[0] = val + (val < 100 ? 1900 : 0) + (val < 50 ? 100 : 0);
          hasYear = true;
        } else {
          if (numIndex === 3) return false;
          num[numIndex++] = val;
        }
      } else {
        let month = -1;
        for (let m = 0; m < 12 && month < 0; m++) {
          let ok = true;
          for (let i = 0; i < 3 && ok; i++) ok = upper(sp[P.p + i]) === charCodeAt(MONTH_CODES, m * 3 + i);
          if (ok) month = m;
        }
        if (month >= 0) {
          f[1] = month + 1;
          P.p += 3;
          hasMon = true;
          skipUntil("0123456789 -/(");
        } else if (hasTime && match("PM")) {
          if (f[3] !== 12) f[3] += 12;
          continue;
        } else if (hasTime && match("AM")) {
          if (f[3] > 12) return false;
          if (f[3] === 12) f[3] -= 12;
          continue;
        } else {
          let abbreviation = false;
          for (let i = 0; i < ABBREVIATIONS.length && !abbreviation; i++) {
            if (match(ABBREVIATIONS[i][0])) {
              f[8] = ABBREVIATIONS[i][1];
              abbreviation = true;
            }
          }
          if (abbreviation) {
            f[9] = false;
            continue;
          }
          if (c === 40) {
            let level = 0;
            while (sp[P.p] !== 0) {
              const d = sp[P.p++];
              if (d === 40) level++;
              if (d === 41) level--;
              if (level === 0) break;
            }
            if (level > 0) return false;
          } else if (c === 41) {
            return false;
          } else {
            if (hasYear || hasMon || hasTime || numIndex > 0) return false;
            skipUntil(" -/(");
          }
        }
      }
      skipSeparators();
    }
    if (numIndex + (hasYear ? 1 : 0) + (hasMon ? 1 : 0) > 3) return false;
    const y2 = (v) => v + (v < 100 ? 1900 : 0) + (v < 50 ? 100 : 0);
    if (numIndex === 0) {
      if (!hasYear) return false;
    } else if (numIndex === 1) {
      if (hasMon) f[2] = num[0];
      else f[1] = num[0];
    } else if (numIndex === 2) {
      if (hasYear) {
        f[1] = num[0];
        f[2] = num[1];
      } else if (hasMon) {
        f[0] = y2(num[1]);
        f[2] = num[0];
      } else {
        f[1] = num[0];
        f[2] = num[1];
      }
    } else {
      f[0] = y2(num[2]);
      f[1] = num[0];
      f[2] = num[1];
    }
    if (f[1] < 1 || f[2] < 1) return false;
    f[1] -= 1;
    return true;
  };
  const FIELD_MAX = [0, 11, 31, 24, 59, 59];
  const parse = (string) => {
    P.sp = codes(string);
    // [year, month, date, hours, minutes, seconds, ms, _, offset in
    // minutes, local]
    const f = [0, 0, 0, 0, 0, 0, 0, 0, 0, false];
    const ok = isoString(f) || otherString(f);
    P.sp = undefined;
    if (!ok) return NaN;
    for (let i = 1; i < 6; i++) if (f[i] > FIELD_MAX[i]) return NaN;
    if (f[3] === 24 && (f[4] !== 0 || f[5] !== 0 || f[6] !== 0)) return NaN;
    const tv = makeDate(makeDay(f[0], f[1], f[2]), makeTime(f[3], f[4], f[5], f[6]));
    return timeClip((f[9] ? utc(tv) : tv) - f[8] * 60000);
  };

  // ---- strings ----
  const pad = (n, width) => padStart(StringCtor(n), width, "0");
  const yearString = (y) => (y < 0 ? "-" + pad(-y, 4) : pad(y, 4));
  const dateString = (f) => `${DAYS[f[7]]} ${MONTHS[f[1]]} ${pad(f[2], 2)} ${yearString(f[0])}`;
  const timeString = (f, t) => {
    const minutes = mathFloor(mathAbs(f[8]) / 60000);
    const name = tzName(currentZone(), t);
    return (
      `${pad(f[3], 2)}:${pad(f[4], 2)}:${pad(f[5], 2)} GMT${f[8] < 0 ? "-" : "+"}` +
      `${pad(mathFloor(minutes / 60), 2)}${pad(minutes % 60, 2)}${name ? ` (${name})` : ""}`
    );
  };
  const fullString = (t) => {
    if (t !== t) return "Invalid Date";
    const f = fields(t);
    return `${dateString(f)} ${timeString(f, t)}`;
  };
  // `toLocale*String` without `Intl` (en-US, as the `Intl` module does).
  const twelve = (h) => (h % 12 === 0 ? 12 : h % 12);
  const localeDate = (f) => `${f[1] + 1}/${f[2]}/${f[0]}`;
  const localeTime = (f) => `${twelve(f[3])}:${pad(f[4], 2)}:${pad(f[5], 2)} ${f[3] < 12 ? "AM" : "PM"}`;

  // ---- ToPrimitive (hint "default"), for `new Date(object)` ----
  const toPrimitive = (v) => {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) return v;
    const exotic = v[SymbolToPrimitive];
    if (exotic !== undefined && exotic !== null) {
      if (typeof exotic !== "function") throw new TypeErrorCtor("Symbol.toPrimitive is not a function");
      const r = apply(exotic, v, ["default"]);
      if (r !== null && (typeof r === "object" || typeof r === "function")) {
        throw new TypeErrorCtor("cannot convert an object to a primitive value");
      }
      return r;
    }
    const names = ["valueOf", "toString"];
    for (let i = 0; i < 2; i++) {
      const method = v[names[i]];
      if (typeof method === "function") {
        const r = apply(method, v, []);
        if (r === null || (typeof r !== "object" && typeof r !== "function")) return r;
      }
    }
    throw new TypeErrorCtor("cannot convert an object to a primitive value");
  };
  // ---- the constructor's local paths: the time value of `new Date(...args)` ----
  const constructed = (args) => {
    const n = args.length;
    if (n === 1) {
      const value = args[0];
      if (isDate(value)) return timeValue(value);
      const v = toPrimitive(value);
      return typeof v === "string" ? parse(v) : timeClip(toNumber(v));
    }
    const y = toNumber(args[0]);
    const m = toNumber(args[1]);
    const dt = n > 2 ? toNumber(args[2]) : 1;
    const h = n > 3 ? toNumber(args[3]) : 0;
    const min = n > 4 ? toNumber(args[4]) : 0;
    const s = n > 5 ? toNumber(args[5]) : 0;
    const milli = n > 6 ? toNumber(args[6]) : 0;
    const final = makeDate(makeDay(makeFullYear(y), m, dt), makeTime(h, min, s, milli));
    return timeClip(utc(final));
  };

  // ---- the local methods ----
  const local = (self, i) => {
    const t = timeValue(self);
    return t !== t ? NaN : fields(t)[i];
  };
  const set = (self, t) => {
    const u = timeClip(utc(t));
    setTimeValue(self, u);
    return u;
  };
  const methods = {
    __proto__: null,
    getFullYear() {
      return local(this, 0);
    },
    getMonth() {
      return local(this, 1);
    },
    getDate() {
      return local(this, 2);
    },
    getHours() {
      return local(this, 3);
    },
    getMinutes() {
      return local(this, 4);
    },
    getSeconds() {
      return local(this, 5);
    },
    getMilliseconds() {
      return local(this, 6);
    },
    getDay() {
      return local(this, 7);
    },
    getYear() {
      const y = local(this, 0);
      return y - 1900;
    },
    getTimezoneOffset() {
      const t = timeValue(this);
      // (t − LocalTime(t)) / msPerMinute: +0, never −0, in UTC.
      return t !== t ? NaN : (t - localTime(t)) / 60000;
    },
    setMilliseconds(ms) {
      let t = timeValue(this);
      ms = toNumber(ms);
      if (t !== t) return NaN;
      t = localTime(t);
      const f = fields(timeValue(this));
      return set(this, makeDate(day(t), makeTime(f[3], f[4], f[5], ms)));
    },
    setSeconds(sec, ms) {
      let t = timeValue(this);
      const s = toNumber(sec);
      const given = arguments.length > 1;
      const milli = given ? toNumber(ms) : 0;
      if (t !== t) return NaN;
      const f = fields(t);
      t = localTime(t);
      return set(this, makeDate(day(t), makeTime(f[3], f[4], s, given ? milli : f[6])));
    },
    setMinutes(min, sec, ms) {
      let t = timeValue(this);
      const m = toNumber(min);
      const n = arguments.length;
      const s = n > 1 ? toNumber(sec) : 0;
      const milli = n > 2 ? toNumber(ms) : 0;
      if (t !== t) return NaN;
      const f = fields(t);
      t = localTime(t);
      return set(this, makeDate(day(t), makeTime(f[3], m, n > 1 ? s : f[5], n > 2 ? milli : f[6])));
    },
    setHours(hour, min, sec, ms) {
      let t = timeValue(this);
      const h = toNumber(hour);
      const n = arguments.length;
      const m = n > 1 ? toNumber(min) : 0;
      const s = n > 2 ? toNumber(sec) : 0;
      const milli = n > 3 ? toNumber(ms) : 0;
      if (t !== t) return NaN;
      const f = fields(t);
      t = localTime(t);
      return set(this, makeDate(day(t), makeTime(h, n > 1 ? m : f[4], n > 2 ? s : f[5], n > 3 ? milli : f[6])));
    },
    setDate(date) {
      let t = timeValue(this);
      const dt = toNumber(date);
      if (t !== t) return NaN;
      const f = fields(t);
      t = localTime(t);
      return set(this, makeDate(makeDay(f[0], f[1], dt), timeWithinDay(t)));
    },
    setMonth(month, date) {
      let t = timeValue(this);
      const m = toNumber(month);
      const given = arguments.length > 1;
      const dt = given ? toNumber(date) : 0;
      if (t !== t) return NaN;
      const f = fields(t);
      t = localTime(t);
      return set(this, makeDate(makeDay(f[0], m, given ? dt : f[2]), timeWithinDay(t)));
    },
    setFullYear(year, month, date) {
      let t = timeValue(this);
      const y = toNumber(year);
      const n = arguments.length;
      let f;
      if (t !== t) {
        t = 0;
        f = [1970, 0, 1];
      } else {
        f = fields(t);
        t = localTime(t);
      }
      const m = n > 1 ? toNumber(month) : f[1];
      const dt = n > 2 ? toNumber(date) : f[2];
      return set(this, makeDate(makeDay(y, m, dt), timeWithinDay(t)));
    },
    setYear(year) {
      let t = timeValue(this);
      const y = toNumber(year);
      let f;
      if (t !== t) {
        t = 0;
        f = [1970, 0, 1];
      } else {
        f = fields(t);
        t = localTime(t);
      }
      const yyyy = makeFullYear(y);
      return set(this, makeDate(makeDay(yyyy, f[1], f[2]), timeWithinDay(t)));
    },
    toString() {
      return fullString(timeValue(this));
    },
    toDateString() {
      const t = timeValue(this);
      return t !== t ? "Invalid Date" : dateString(fields(t));
    },
    toTimeString() {
      const t = timeValue(this);
      return t !== t ? "Invalid Date" : timeString(fields(t), t);
    },
    toLocaleString() {
      const t = timeValue(this);
      if (t !== t) return "Invalid Date";
      const f = fields(t);
      return `${localeDate(f)}, ${localeTime(f)}`;
    },
    toLocaleDateString() {
      const t = timeValue(this);
      return t !== t ? "Invalid Date" : localeDate(fields(t));
    },
    toLocaleTimeString() {
      const t = timeValue(this);
      return t !== t ? "Invalid Date" : localeTime(fields(t));
    },
  };
  return {
    __proto__: null,
    methods,
    constructed,
    parse,
    // `Date()`.
    now: () => fullString(now()),
  };
});
