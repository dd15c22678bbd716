// A thrown string (not an Error) of 2 MB.
// status: failed
// code: script_error
// field: /error/message
// max-bytes: 8192
throw "s".repeat(2_000_000);
