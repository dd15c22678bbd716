// expect: succeeded -
// grants: echo
// input: {"n": 2}
// result: {"echoed":{"n":2,"list":[1,"two",null]}}
return { echoed: await api.echo({ n: input.n, list: [1, "two", null] }) };
