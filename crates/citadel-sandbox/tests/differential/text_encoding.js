// UTF-8 in and out: multi-byte text, a BOM, invalid bytes, streaming.
const enc = new TextEncoder();
const bytes = enc.encode("aé€😀");
const into = new Uint8Array(5);
const res = enc.encodeInto("aé€😀", into);
const d = new TextDecoder();
const split = d.decode(bytes.subarray(0, 5), { stream: true }) + d.decode(bytes.subarray(5));
let fatal;
try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xe2, 0x28, 0xa1])); } catch (e) { fatal = e.name; }
return {
  bytes: Array.from(bytes), encodeInto: [res.read, res.written, Array.from(into)], split,
  bom: [new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), new TextDecoder("utf8", { ignoreBOM: true }).decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])).length],
  lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xe2, 0x28, 0xa1, 0x62])), fatal, encoding: [d.encoding, enc.encoding],
};
