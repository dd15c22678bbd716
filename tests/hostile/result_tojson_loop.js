// A toJSON that never returns, while the result is serialised, is the CPU
// limit; the prelude's handling of serialisation errors cannot catch it.
// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
return {
  toJSON() {
    let i = 0;
    for (;;) {
      i++;
      if (i < 0) break;
    }
    return i;
  },
};
