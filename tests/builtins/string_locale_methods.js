// expect: succeeded -
// The locale methods follow Intl (ICU4X's compiled data).
// result: [-1, 1, 0, "ISTANBUL", "istanbul", "1,234.5"]
return [
  "a".localeCompare("b"),
  "b".localeCompare("a"),
  "a".localeCompare("a"),
  "istanbul".toLocaleUpperCase(),
  "ISTANBUL".toLocaleLowerCase("en"),
  (1234.5).toLocaleString("en-US"),
];
