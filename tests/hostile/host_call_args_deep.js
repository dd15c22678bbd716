// Host-call arguments nested too deep to serialise are the stack limit.
// expect: failed stack_overflow
// grants: echo
let nested = [];
for (let i = 0; i < 100000; i++) nested = [nested];
await api.echo(nested);
