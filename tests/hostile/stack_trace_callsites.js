// Error.prepareStackTrace with CallSite.getFunction() returned the function
// of every frame, the prelude's included (the console formatter, the
// host-call function). The hook is inert: no frame of any error reaches it.
// expect: succeeded -
// grants: kv
// result: []
const found = [];
Error.prepareStackTrace = (error, frames) => {
  for (const frame of frames) {
    const f = frame.getFunction();
    if (typeof f === "function") found.push(f.name || "anonymous");
  }
  return "hooked";
};
console.log({ toJSON() { new Error("inside the formatter"); return 1; } });
try {
  await api.kv.get("k");
} catch (e) {
  e.stack;
}
try {
  api.http;
} catch (e) {
  e.stack;
}
return found;
