// expect: succeeded -
// result: [[1, 10, 2, 3], [1, 2, 3, 10], ["a", "b", "c"], [3, 2, 1], true]
const stable = Array.from({ length: 1000 }, (_, i) => ({ k: i % 3, i }))
  .sort((a, b) => a.k - b.k)
  .every((x, j, all) => j === 0 || all[j - 1].k < x.k || all[j - 1].i < x.i);
return [
  [10, 2, 3, 1].sort(),
  [10, 2, 3, 1].sort((a, b) => a - b),
  ["c", "a", "b"].sort((a, b) => a.localeCompare(b)),
  [1, 2, 3].toSorted((a, b) => b - a),
  stable,
];
