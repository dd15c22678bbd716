// A result nested too deep to serialise is the stack limit.
// expect: failed stack_overflow
let nested = [];
for (let i = 0; i < 100000; i++) nested = [nested];
return nested;
