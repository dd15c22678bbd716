// expect: failed script_error
// message: eval is not supported
return new Function("return this")();
