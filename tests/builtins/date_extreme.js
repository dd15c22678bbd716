// expect: succeeded -
// result: [8640000000000000, true, true]
const max = new Date(8.64e15);
return [max.getTime(), max.toString().length > 0, Number.isNaN(new Date(8.64e15 + 1).getTime())];
