// base64 of ASCII and of UTF-8 text, and decoding with whitespace.
const utf8ToBase64 = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const base64ToUtf8 = (b) => new TextDecoder().decode(Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
let error;
try { atob("%%%"); } catch (e) { error = [e.name, e.code]; }
return { ascii: btoa("user:pass"), back: atob("dXNlcjpwYXNz"), utf8: utf8ToBase64("héllo wörld ✓"), round: base64ToUtf8(utf8ToBase64("日本語 🎉")), spaces: atob(" aGVs bG8= "), error };
