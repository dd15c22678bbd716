// expect: succeeded -
// result: true
const d = new Date(Date.UTC(2020, 0, 1, 12));
const s = d.toLocaleString("en-US", { timeZone: "UTC" }) + d.toLocaleDateString("de-DE") + d.toLocaleTimeString("ja-JP");
return s.length > 0;
