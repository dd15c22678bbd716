// expect: failed script_error
// message: eval is not supported
return (function () {}).constructor.constructor("return globalThis")();
