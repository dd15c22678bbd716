// The wall clock keeps running while the script awaits the host.
// expect: timed_out timeout
// grants: sleep
// limits: timeout_ms=300
await api.sleep(60000);
return "woke";
