// expect: succeeded -
// result: ["abcabc", "  x", "x--", "b", ["a", "b"], true, "A-B", 2, "😀"]
return [
  "abc".repeat(2),
  "x".padStart(3),
  "x".padEnd(3, "-"),
  "abc".at(1),
  "a,b".split(","),
  "hello".includes("ell"),
  "a-b".replaceAll(/[ab]/g, (c) => c.toUpperCase()),
  "😀".length,
  String.fromCodePoint(0x1f600),
];
