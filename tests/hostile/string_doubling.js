// Doubling builds ropes that stay small in memory until the engine's maximum
// string length; that ends the run with an ordinary, catchable error.
// expect: failed script_error
// message: string too long
let s = "x";
while (true) s = s + s;
