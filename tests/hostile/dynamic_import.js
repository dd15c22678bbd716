// No module loader exists.
// expect: failed script_error
const fs = await import("fs");
return typeof fs;
