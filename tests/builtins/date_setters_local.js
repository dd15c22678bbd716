// expect: succeeded -
// result: [1583020800000, 1577923200000, 1577840400000, [5, 3]]
const d = new Date(2020, 0, 1);
const a = new Date(d); a.setMonth(2);
const b = new Date(d); b.setDate(2);
const c = new Date(d); c.setHours(1);
const e = new Date(d); e.setFullYear(2020, 0, 3);
return [a.getTime(), b.getTime(), c.getTime(), [e.getDay(), e.getDate()]];
