// An endless chain of awaits (microtasks only, no growth) is the CPU limit.
// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
while (true) await null;
