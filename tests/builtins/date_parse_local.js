// expect: succeeded -
// result: [1577881800000, 1577836800000, 1577881800000, 1577836800000]
// Strings without an offset are local time.
return [
  Date.parse("2020-01-01T12:30:00"),
  Date.parse("2020/01/01"),
  Date.parse("Jan 1, 2020 12:30:00"),
  Date.parse("Wed Jan 01 2020"),
];
