// Stacks a script can read, however it captures them, show no prelude frame.
// expect: succeeded -
// result: [false, false, false]
let stacks = [];
console.log({
  toJSON() {
    const holder = {};
    Error.captureStackTrace(holder);
    stacks = [holder.stack, new Error("x").stack];
    return 1;
  },
});
let thrown;
try {
  api.sleep;
} catch (e) {
  thrown = e.stack;
}
return [...stacks, thrown].map((s) => typeof s !== "string" || s.includes("prelude"));
