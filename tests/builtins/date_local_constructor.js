// expect: succeeded -
// result: [1577836800000, 1577836800000, 951782400000]
return [new Date(2020, 0, 1).getTime(), new Date(2020, 0).valueOf(), new Date(2000, 1, 29).getTime()];
