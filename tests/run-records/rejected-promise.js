// A rejection with a 2 MB message, after an await.
// status: failed
// code: script_error
// field: /error/message
// max-bytes: 8192
await null;
await Promise.reject(new RangeError("r".repeat(2_000_000)));
