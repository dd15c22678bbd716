// expect: succeeded -
// result: true
const s = new Date().toString();
return typeof s === "string" && s.length > 20 && !Number.isNaN(Date.parse(s));
