// expect: succeeded -
// QuickJS formats numbers without grouping whatever the locale.
// result: [-1, 1, 0, "ISTANBUL", "istanbul", "1234.5"]
return [
  "a".localeCompare("b"),
  "b".localeCompare("a"),
  "a".localeCompare("a"),
  "istanbul".toLocaleUpperCase(),
  "ISTANBUL".toLocaleLowerCase("en"),
  (1234.5).toLocaleString("en-US"),
];
