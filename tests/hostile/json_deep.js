// expect: failed stack_overflow
const depth = 200000;
return JSON.parse("[".repeat(depth) + "]".repeat(depth));
