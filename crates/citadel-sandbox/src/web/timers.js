// `setTimeout`, `setInterval`, their `clear…`, `performance` (the timers
// // themselves are in core.js: `AbortSignal.timeout` uses them too).
(function citadelWebTimers(kit) {
  "use strict";
  const {
    defineProperty,
    SymbolToStringTag,
    NumberCtor,
    n,
    define,
    live,
    addTimer,
    runOrigin,
  } = kit;
    define("setTimeout", function setTimeout(callback, ms = 0, ...args) {
      return addTimer(callback, ms, args, false);
    });
    define("setInterval", function setInterval(callback, ms = 0, ...args) {
      return addTimer(callback, ms, args, true);
    });
    const clear = function clearTimeout(id) {
      delete live[NumberCtor(id)];
    };
    define("clearTimeout", clear);
    define("clearInterval", function clearInterval(id) {
      delete live[NumberCtor(id)];
    });
    class Performance {
      now() {
        return n.clock() - runOrigin();
      }
      get timeOrigin() {
        return runOrigin();
      }
      toJSON() {
        return { timeOrigin: runOrigin() };
      }
    }
    defineProperty(Performance.prototype, SymbolToStringTag, { __proto__: null, value: "Performance", configurable: true });
    define("performance", new Performance());
});
