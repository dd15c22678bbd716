// Function.prototype.toString shows no prelude source; the script's own
// functions keep theirs.
// expect: succeeded -
// grants: echo
// result: [true, true, true, true, true, "(x) => x + 1"]
const native = (f) => String(f).includes("[native code]");
return [
  native(console.log),
  native(api.echo),
  native(Function.prototype.toString),
  native(Object.getOwnPropertyDescriptor(Error.prototype, "stack").get),
  native(Error.captureStackTrace),
  String((x) => x + 1),
];
