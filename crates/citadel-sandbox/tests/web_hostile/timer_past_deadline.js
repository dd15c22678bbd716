// A timer past the run's deadline never fires: the run times out at its
// deadline.
// expect: timed_out timeout
// limits: timeout_ms=300
await new Promise((resolve) => setTimeout(resolve, 60000));
return "fired";
