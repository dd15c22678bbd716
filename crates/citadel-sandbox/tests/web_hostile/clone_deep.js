// A graph nested deeper than the stack allows ends as stack_overflow.
// expect: failed stack_overflow
// limits: timeout_ms=10000 cpu_ms=10000
let v = null;
for (let i = 0; i < 100000; i++) v = { v };
structuredClone(v);
