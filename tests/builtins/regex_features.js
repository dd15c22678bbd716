// expect: succeeded -
// result: ["2020", "01", true, "b", ["a1", "a2"], "c-b-a", 3]
const m = "2020-01-02".match(/(?<y>\d{4})-(?<m>\d{2})/);
return [
  m.groups.y,
  m.groups.m,
  /(?<=\$)\d+/.test("$42"),
  /a(?!c)(.)/.exec("acab")[1],
  [..."a1 a2".matchAll(/a\d/g)].map((x) => x[0]),
  "a-b-c".split("-").reverse().join("-"),
  "aaa".replace(/a/gy, "b").length,
];
