// An interrupt cannot be caught: the try/catch must not swallow it.
// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
for (;;) {
  try {
    while (true) {}
  } catch (e) {}
}
