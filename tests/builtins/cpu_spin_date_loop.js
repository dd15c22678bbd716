// expect: timed_out timeout
// limits: timeout_ms=300 cpu_ms=5000
// Local-time calls in a hot loop until the deadline.
for (;;) new Date().getHours();
