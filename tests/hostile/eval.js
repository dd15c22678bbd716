// expect: failed script_error
// message: eval is not defined
return eval("1 + 1");
