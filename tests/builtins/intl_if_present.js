// expect: succeeded -
// result: true
// Intl is optional in QuickJS; where present, it must not touch the filesystem.
if (typeof Intl === "undefined") return true;
const f = new Intl.DateTimeFormat("en-US").format(new Date(0));
const n = new Intl.NumberFormat("de-DE").format(1234.5);
const c = new Intl.Collator("sv").compare("a", "b");
return typeof f === "string" && typeof n === "string" && typeof c === "number";
