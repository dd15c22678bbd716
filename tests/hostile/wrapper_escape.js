// expect: failed rejected
}); globalThis.escaped = true; (async function () {
