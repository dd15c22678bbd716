// The web globals show no source, and the errors they throw carry stacks
// with the script's frames only (the error's line is the script's).
// expect: failed script_error
// message: Invalid URL
// line: 13
const shown = [URL, URLSearchParams.prototype.get, Headers, Response.prototype.json, crypto.subtle.digest, structuredClone,
  setTimeout, atob, TextDecoder, AbortSignal.timeout, Object.getOwnPropertyDescriptor(URL.prototype, "href").get]
  .map((f) => Function.prototype.toString.call(f));
if (!shown.every((s) => s.includes("[native code]") && !s.includes("#"))) throw new Error("source shown: " + shown.join(" | "));
let stack = "";
try { new Headers({ "bad name": "x" }); } catch (e) { stack = e.stack; }
if (stack.includes("prelude")) throw new Error("a prelude frame: " + stack);
const deep = () => new URL("no scheme");
deep();
