// Invalid base64 and non-Latin1 input are InvalidCharacterError DOMExceptions.
// expect: succeeded -
// result: [["InvalidCharacterError", 5, true], ["InvalidCharacterError", 5, true], ["InvalidCharacterError", 5, true], ["InvalidCharacterError", 5, true], "TypeError"]
const errs = [];
for (const f of [() => atob("a"), () => atob("ab=c"), () => btoa("\u0100"), () => btoa("\uD800")]) {
  try { f(); errs.push("no error"); } catch (e) { errs.push([e.name, e.code, e instanceof DOMException && e instanceof Error]); }
}
try { atob(); } catch (e) { errs.push(e.name); }
return errs;
