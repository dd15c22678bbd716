// expect: succeeded -
// result: ["2020-01-01T00:00:00.000Z", "Wed, 01 Jan 2020 00:00:00 GMT", "Wed Jan 01 2020", "2020-01-01T00:00:00.000Z"]
const d = new Date(Date.UTC(2020, 0, 1));
return [d.toISOString(), d.toUTCString(), d.toDateString(), d.toJSON()];
