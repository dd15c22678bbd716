// expect: succeeded -
// result: [true, true, true]
const d = new Date(Date.UTC(2020, 0, 1, 12));
const all = [d.toLocaleString(), d.toLocaleDateString(), d.toLocaleTimeString()];
return all.map((s) => typeof s === "string" && s.length > 0);
