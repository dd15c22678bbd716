// `setTimeout`, `setInterval`, their `clear…`, `performance` (the timers
// // themselves are in core.js: `AbortSignal.timeout` uses them too).
(function citadelWebTimers(kit) {
  "use strict";
  const {
    freeze,
    defineProperty,
    getOwnPropertyDescriptor,
    getPrototypeOf,
    objectKeys,
    create,
    isArray,
    stringify,
    parse,
    ownKeys,
    apply,
    URL_BIT,
    ENCODING_BIT,
    CRYPTO_BIT,
    FETCH_BIT,
    EVENTS_BIT,
    CLONE_BIT,
    TIMERS_BIT,
    ObjectCtor,
    StringCtor,
    ErrorCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    PromiseCtor,
    SymbolIterator,
    SymbolToStringTag,
    isError,
    FunctionPrototype,
    uncurry,
    promiseThen,
    promiseResolve,
    promiseReject,
    stringSlice,
    stringIndexOf,
    charCodeAt,
    codePointAt,
    toLowerCase,
    toUpperCase,
    toWellFormed,
    padStart,
    numberToString,
    fromCharCode,
    mathFloor,
    mathMax,
    mathMin,
    NumberCtor,
    isFiniteNumber,
    arraySort,
    typed,
    Uint8,
    ArrayBufferCtor,
    TypedArrayPrototype,
    getter,
    taBuffer,
    taOffset,
    taByteLength,
    taTag,
    taSet,
    taSlice,
    abByteLength,
    abSlice,
    isView,
    dvBuffer,
    dvOffset,
    dvByteLength,
    DataViewCtor,
    typedCtors,
    MapCtor,
    SetCtor,
    mapGet,
    mapSet,
    mapHas,
    mapForEach,
    mapSize,
    setAdd,
    setForEach,
    setSize,
    DateCtor,
    dateGetTime,
    RegExpCtor,
    regexpSource,
    regexpFlags,
    n,
    has,
    report,
    hidden,
    define,
    push,
    usv,
    byteString,
    legacyCodes,
    domError,
    viewOf,
    bufferSource,
    copyBytes,
    arrayBufferOf,
    concatBytes,
    utf8,
    fromUtf8,
    live,
    startTimer,
    timerDelay,
    schedule,
    addTimer,
    DOMException,
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
    define("performance", new Performance());
});
