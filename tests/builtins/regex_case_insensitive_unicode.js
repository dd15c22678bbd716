// expect: succeeded -
// result: [true, true, true]
return [/ſ/iu.test("S"), /\u212a/iu.test("k"), /[\u{1F600}-\u{1F64F}]/u.test("😃")];
