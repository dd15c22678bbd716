// Lone surrogates become U+FFFD on the way to UTF-8; a fatal decoder
// refuses invalid bytes; a streaming decoder keeps a split sequence.
// expect: succeeded -
// result: [[239, 191, 189], [97, 239, 191, 189, 98], "TypeError", "\u00e9", "a\ufffdb", "%EF%BF%BD"]
const enc = new TextEncoder();
const out = [Array.from(enc.encode("\uD800")), Array.from(enc.encode("a\uDC00b"))];
try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xc3])); out.push("decoded"); } catch (e) { out.push(e.name); }
const d = new TextDecoder();
out.push(d.decode(new Uint8Array([0xc3]), { stream: true }) + d.decode(new Uint8Array([0xa9])));
out.push(new TextDecoder().decode(new Uint8Array([0x61, 0xff, 0x62])));
out.push(new URLSearchParams({ a: "\uD800" }).toString().slice(2));
return out;
