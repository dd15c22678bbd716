// expect: succeeded -
// result: [0, 0, 0]
// Hosts run in UTC whatever the server's zone: a script's output does not depend on the node.
return [new Date().getTimezoneOffset(), new Date(2020, 6, 1).getTimezoneOffset(), new Date(0).getTimezoneOffset()];
