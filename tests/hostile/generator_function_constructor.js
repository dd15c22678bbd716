// expect: failed script_error
// message: eval is not supported
const GeneratorFunction = function* () {}.constructor;
return GeneratorFunction("yield 1")().next().value;
