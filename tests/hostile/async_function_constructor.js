// expect: failed script_error
// message: eval is not supported
const AsyncFunction = (async function () {}).constructor;
return await new AsyncFunction("return 1")();
