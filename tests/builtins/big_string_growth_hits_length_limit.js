// expect: failed script_error
// Doubling a string builds ropes that take little memory; the engine's
// string length limit stops it as an ordinary error.
let s = "x";
for (;;) s = s + s;
