// Unsupported algorithms, curves, key sizes and operations reject with
// NotSupportedError; nothing crashes.
// expect: succeeded -
// result: ["NotSupportedError", "NotSupportedError", "NotSupportedError", "NotSupportedError", "NotSupportedError", "NotSupportedError", "NotSupportedError", "NotSupportedError", "DataError", "InvalidAccessError", "NotSupportedError", "NotSupportedError"]
const s = crypto.subtle;
const raw = new Uint8Array(32);
const attempts = [
  () => s.digest("MD5", raw),
  () => s.importKey("raw", raw, "AES-CBC", false, ["encrypt"]),
  () => s.importKey("raw", new Uint8Array(24), "AES-GCM", false, ["encrypt"]),
  () => s.importKey("raw", raw, { name: "ECDSA", namedCurve: "P-384" }, false, ["verify"]),
  () => s.importKey("raw", raw, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]),
  () => s.importKey("pkcs8", raw, "Ed25519", false, ["sign"]),
  () => s.importKey("raw", raw, { name: "HMAC", hash: "SHA-3" }, false, ["sign"]),
  async () => s.encrypt({ name: "AES-GCM", iv: new Uint8Array(16) }, await s.importKey("raw", new Uint8Array(16), "AES-GCM", false, ["encrypt"]), raw),
  () => s.importKey("raw", new Uint8Array(20), "AES-GCM", false, ["encrypt"]),
  async () => s.sign("HMAC", await s.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]), raw),
  () => s.deriveBits({ name: "PBKDF2" }, null, 256),
  () => s.wrapKey("raw", null, null, "AES-KW"),
];
const out = [];
for (const f of attempts) {
  try { await f(); out.push("resolved"); } catch (e) { out.push(e.name); }
}
return out;
