// expect: no-eval@2:1 no-eval@3:12 no-eval@4:11
eval("1");
globalThis.eval("2");
const e = eval;
