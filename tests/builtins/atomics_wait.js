// expect: succeeded -
// result: "done"
// Atomics.wait blocks a thread; whatever it answers, the host must survive it.
if (typeof SharedArrayBuffer !== "function") return "done";
const a = new Int32Array(new SharedArrayBuffer(16));
try { Atomics.wait(a, 0, 1, 1); } catch (e) { /* not allowed here */ }
try { Atomics.wait(a, 0, 0, 5); } catch (e) { /* not allowed here */ }
return "done";
