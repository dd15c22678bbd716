// Nothing can resolve this promise: detected at once, not at the timeout.
// expect: failed never_settles
await new Promise(() => {});
