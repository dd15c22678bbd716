// expect: timed_out timeout
// limits: timeout_ms=300 cpu_ms=5000
// Backtracking without end is interrupted by the run's limit.
return /^(a+)+$/.test("a".repeat(40) + "!");
