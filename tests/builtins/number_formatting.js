// expect: succeeded -
// result: ["1.23e+21", "0.000001", "3.14", "ff", "1.0000e+0", "12345.679", "-0"]
return [
  String(1.23e21),
  String(0.000001),
  (3.14159).toFixed(2),
  (255).toString(16),
  (1).toExponential(4),
  (12345.6789).toPrecision(8),
  Object.is(-0, -0) ? "-0" : "0",
];
