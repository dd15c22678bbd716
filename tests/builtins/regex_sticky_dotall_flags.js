// expect: succeeded -
// result: [true, "gimsuy", true]
const r = /a.b/gimsuy;
return [/a.b/s.test("a\nb"), r.flags, /(?:)/d.exec("x").indices !== undefined];
