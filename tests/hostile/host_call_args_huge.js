// Host-call arguments far larger than their limit end the run at the limit;
// catching the error does not help.
// expect: failed host_call_limit
// grants: echo
const big = "x".repeat(1 << 20);
try {
  await api.echo(new Array(100).fill(big));
} catch (e) {
  return "caught";
}
