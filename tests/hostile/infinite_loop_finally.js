// expect: timed_out cpu_limit
// limits: cpu_ms=200 timeout_ms=3000
try {
  while (true) {}
} finally {
  return "escaped";
}
