// expect: failed invalid_result
const a = {};
a.self = a;
return a;
