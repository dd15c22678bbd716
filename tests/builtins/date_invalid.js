// expect: succeeded -
// result: ["Invalid Date", true, null]
const d = new Date(NaN);
return [String(d), Number.isNaN(d.getHours()), d.toJSON()];
