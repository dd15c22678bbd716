// expect: succeeded -
// result: [1, 0, 3, 2, 1, true, 5, 3, 1]
return [
  Math.round(Math.sin(Math.PI / 2)),
  Math.round(Math.cos(Math.PI / 2)),
  Math.cbrt(27),
  Math.log2(4),
  Math.sign(Math.expm1(1e-10)),
  Math.random() < 1,
  Math.hypot(3, 4),
  Math.clz32(1 << 28),
  Math.fround(1),
];
