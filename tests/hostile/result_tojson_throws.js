// The script's own toJSON throwing is the script's error, not an invalid result.
// expect: failed script_error
// message: boom
// line: 5
return { toJSON() { throw new Error("boom"); } };
