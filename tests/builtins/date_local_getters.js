// expect: succeeded -
// result: [2021, 5, 15, 13, 45, 30, 123, 2]
const d = new Date(2021, 5, 15, 13, 45, 30, 123);
return [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds(), d.getDay()];
