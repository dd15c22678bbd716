// Catastrophic backtracking: the regex engine polls the same interrupt.
// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
return /^(a+)+$/.test("a".repeat(64) + "b");
