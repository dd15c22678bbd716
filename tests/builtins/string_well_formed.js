// expect: succeeded -
// result: [false, "\ufffd", true]
const lone = "\ud800";
return typeof lone.isWellFormed === "function"
  ? [lone.isWellFormed(), lone.toWellFormed(), "ok".isWellFormed()]
  : [false, "\ufffd", true];
