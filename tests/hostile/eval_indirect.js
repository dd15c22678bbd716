// expect: succeeded -
// result: ["undefined","undefined"]
return [typeof globalThis["ev" + "al"], typeof WebAssembly];
