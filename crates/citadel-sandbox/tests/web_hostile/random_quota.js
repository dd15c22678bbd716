// getRandomValues fills at most 65,536 bytes (QuotaExceededError past it)
// of an integer typed array (TypeMismatchError otherwise).
// expect: succeeded -
// result: ["QuotaExceededError", 22, 65536, 16384, "TypeMismatchError", "TypeMismatchError"]
const out = [];
try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { out.push(e.name, e.code); }
out.push(crypto.getRandomValues(new Uint8Array(65536)).length);
out.push(crypto.getRandomValues(new Uint32Array(16384)).length);
for (const v of [new Float64Array(2), [1, 2]]) {
  try { crypto.getRandomValues(v); } catch (e) { out.push(e.name); }
}
return out;
