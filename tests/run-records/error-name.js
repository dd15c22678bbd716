// An error whose name is 1 MB.
// status: failed
// code: script_error
// field: /error/name
// max-bytes: 256
const e = new Error("boom");
e.name = "N".repeat(1_000_000);
throw e;
