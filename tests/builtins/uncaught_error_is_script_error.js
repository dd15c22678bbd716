// expect: failed script_error
// A thrown error stays the script's error; the host lives on.
throw new TypeError("plain failure");
