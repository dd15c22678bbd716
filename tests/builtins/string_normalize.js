// expect: succeeded -
// result: ["é", 2, 1, "ﬁ", "fi", true]
const composed = "e\u0301".normalize("NFC");
return [
  composed,
  "\u00e9".normalize("NFD").length,
  "\u00e9".normalize().length,
  "\ufb01".normalize("NFC"),
  "\ufb01".normalize("NFKC"),
  (() => { try { "x".normalize("bogus"); return false; } catch (e) { return e instanceof RangeError; } })(),
];
