// expect: failed script_error
// message: the script threw a non-Error value: 42
throw 42;
