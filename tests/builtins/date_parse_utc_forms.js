// expect: succeeded -
// result: [1577836800000, 1577881800000, 1577863800000, 1577881800000, true]
return [
  Date.parse("2020-01-01"),
  Date.parse("2020-01-01T12:30:00Z"),
  Date.parse("2020-01-01T12:30:00+05:00"),
  Date.parse("Wed, 01 Jan 2020 12:30:00 GMT"),
  Number.isNaN(Date.parse("not a date")),
];
