// A webhook transform: verify the X-Hub-Signature-256 header over the raw
// body (GitHub's documented example), then reshape the payload.
const secret = "It's a Secret to Everybody";
const body = "Hello, World!";
const header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const enc = new TextEncoder();
const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: { name: "SHA-256" } }, false, ["sign", "verify"]);
const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(body)));
const hex = Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
const given = header.slice("sha256=".length);
const bytes = Uint8Array.from(given.match(/../g), (h) => parseInt(h, 16));
const ok = await crypto.subtle.verify("HMAC", key, bytes, enc.encode(body));
const forged = await crypto.subtle.verify("HMAC", key, bytes, enc.encode(body + " "));
const order = { id: 7, amount_cents: 129900, currency: "EUR" };
return { hex, matches: `sha256=${hex}` === header, ok, forged, out: { id: order.id, amount: order.amount_cents / 100, currency: order.currency } };
