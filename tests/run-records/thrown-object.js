// A plain object thrown with a 2 MB message and name.
// status: failed
// code: script_error
// field: /error/message
// max-bytes: 8192
throw { name: "n".repeat(2_000_000), message: "x".repeat(2_000_000) };
