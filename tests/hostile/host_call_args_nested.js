// Host-call arguments nested past what the host parses are refused as an
// invalid argument that says so.
// expect: succeeded -
// grants: echo
// result: ["TypeError", "invalid_argument", "the arguments of `echo` nest deeper than 128 levels"]
let nested = [];
for (let i = 0; i < 200; i++) nested = [nested];
try {
  await api.echo(nested);
} catch (e) {
  return [e.name, e.code, e.message];
}
