// expect: succeeded -
// result: 100000
const arr = Array.from({ length: 100000 }, (_, i) => ({ i, s: "v" + i }));
const back = JSON.parse(JSON.stringify(arr));
return back.length;
