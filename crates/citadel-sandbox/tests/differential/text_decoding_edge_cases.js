// UTF-8 streaming byte by byte, surrogates, DataView input, labels.
const d = new TextDecoder();
const bytes = [0xf0, 0x9f, 0x98, 0x80, 0xe2, 0x82];
let s = "";
for (const b of bytes) s += d.decode(new Uint8Array([b]), { stream: true });
s += d.decode();
const e = new TextEncoder();
return [s, Array.from(e.encode()), e.encode("\uD83D").length, new TextDecoder().decode(new Uint8Array([0xed, 0xa0, 0x80])), new TextDecoder().decode(new DataView(new Uint8Array([104, 105]).buffer)), new TextDecoder("UTF-8 ").encoding];
