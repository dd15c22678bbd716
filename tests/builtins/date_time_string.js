// expect: succeeded -
// result: "00:00:00 GMT+0000"
return new Date(Date.UTC(2020, 0, 1)).toTimeString().slice(0, 17);
