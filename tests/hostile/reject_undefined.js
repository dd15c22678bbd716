// expect: failed script_error
// message: the script threw a non-Error value: undefined
await Promise.reject(undefined);
