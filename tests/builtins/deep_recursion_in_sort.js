// expect: failed stack_overflow
// Unbounded recursion inside a comparator ends as the stack limit, not a signal.
const f = (a, b) => f(b, a);
[3, 1, 2].sort(f);
