// expect: failed script_error
// message: the script threw a non-Error value: {"code":7}
throw { code: 7 };
