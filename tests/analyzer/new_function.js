// expect: no-new-function@2:1 no-new-function@3:1 no-new-function@4:1
new Function("return 1");
Function("return 2")();
(() => {}).constructor.constructor("return this")();
