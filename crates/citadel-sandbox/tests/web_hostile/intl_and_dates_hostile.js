// `Date`'s local-time methods and `Intl` show no source, throw errors with
// the script's frames only, and keep their answers when a script replaces
// the built-ins they use (JSON, string and math methods, an index setter
// on Array.prototype, getters on Object.prototype).
// expect: succeeded -
// limits: time_zone=Europe/Berlin
// result: [true, true, [], "1.234,50\u00a0€", "Wed Jan 01 2020 01:00:00 GMT+0100 (CET)", 0, "a, b, and c", "RangeError", false]
const shown = [Date, Date.prototype.getHours, Date.parse, Intl.NumberFormat, Intl.DateTimeFormat.prototype.resolvedOptions,
  Object.getOwnPropertyDescriptor(Intl.NumberFormat.prototype, "format").get, Number.prototype.toLocaleString, String.prototype.localeCompare]
  .map((f) => Function.prototype.toString.call(f));
const hidden = shown.every((s) => s.includes("[native code]") && !s.includes("#"));
const seen = [""];
const trap = (name) => function () { seen.push(name); return "swapped"; };
const nf = new Intl.NumberFormat("de-DE", { style: "currency", currency: "EUR" });
const d = new Date(Date.UTC(2020, 0, 1));
JSON.stringify = trap("stringify");
String.prototype.padStart = trap("padStart");
String.prototype.slice = trap("slice");
String.prototype.charCodeAt = trap("charCodeAt");
Math.floor = trap("floor");
Math.trunc = trap("trunc");
Number.isFinite = trap("isFinite");
Reflect.construct = trap("construct");
Object.defineProperty(Array.prototype, "0", { set() { seen.push("index setter"); }, configurable: true });
Object.defineProperty(Object.prototype, "zone", { get() { seen.push("zone getter"); return "Asia/Tokyo"; }, configurable: true });
const money = nf.format(1234.5);
const local = new Date(2020, 0, 1, 1).toString();
const parsed = Date.parse("2020-01-01T01:00:00") - d.getTime();
const list = new Intl.ListFormat("en").format(["a", "b", "c"]);
let name = "";
let stackHasPrelude = true;
try { new Intl.NumberFormat("en", { style: "currency" }).format(1); } catch (e) { name = "TypeError"; }
try { new Intl.DateTimeFormat("en", { timeZone: "Nowhere/Land" }); } catch (e) { name = e.name; stackHasPrelude = String(e.stack).includes("prelude"); }
delete Array.prototype[0];
delete Object.prototype.zone;
return [hidden, typeof Date.prototype.getHours.call(d) === "number", seen.slice(1), money, local, parsed, list, name, stackHasPrelude];
