// expect: succeeded -
// result: true
const a = Array.from({ length: 200000 }, (_, i) => (i * 7919) % 200003);
a.sort((x, y) => x - y);
return a.every((x, i) => i === 0 || a[i - 1] <= x);
