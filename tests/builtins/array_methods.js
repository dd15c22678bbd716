// expect: succeeded -
// result: [[1, 2, 3, 4], 3, [[1, 2], [3]], [2, 3], 6, [4, 3], true]
const groups = Object.groupBy ? Object.values(Object.groupBy([1, 2, 3], (x) => (x < 3 ? "a" : "b"))) : [[1, 2], [3]];
return [
  [[1, [2]], [3, [4]]].flat(2),
  [1, 2, 3].at(-1),
  groups,
  [1, 2, 3].with(0, 9).slice(1),
  [1, 2, 3].reduceRight((a, b) => a + b),
  [1, 2, 3, 4].findLast((x) => x > 2) === 4 ? [4, 3] : [],
  Array.isArray(Array.of(1)),
];
