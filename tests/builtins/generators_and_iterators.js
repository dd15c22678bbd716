// expect: succeeded -
// result: [[0, 1, 2], 6, ["a", 1]]
function* g() { yield* [0, 1, 2]; }
async function* ag() { yield 1; yield 2; yield 3; }
let sum = 0;
for await (const x of ag()) sum += x;
return [[...g()], sum, Object.entries({ a: 1 })[0]];
