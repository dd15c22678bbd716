// expect: failed script_error
// line: 4
const a = 1;
null.property;
