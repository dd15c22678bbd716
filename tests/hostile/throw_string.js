// expect: failed script_error
// message: the script threw a non-Error value: "boom"
throw "boom";
