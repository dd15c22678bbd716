// An error whose message is 2 MB: the record keeps a capped message.
// status: failed
// code: script_error
// field: /error/message
// max-bytes: 8192
throw new Error("m".repeat(2_000_000));
