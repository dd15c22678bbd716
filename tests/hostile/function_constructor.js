// expect: failed script_error
// message: eval is not supported
return Function("return 1")();
