// The wall-clock limit also stops pure computation.
// expect: timed_out timeout
// limits: cpu_ms=5000 timeout_ms=200
let x = 0;
while (true) x++;
