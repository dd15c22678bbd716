// Reading a JWT's payload (base64url, no padding) without a library.
const token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const part = (s) => JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
const [header, payload] = token.split(".").slice(0, 2).map(part);
const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("your-256-bit-secret"), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
const [h, p, s] = token.split(".");
const sig = Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const valid = await crypto.subtle.verify("HMAC", key, sig, new TextEncoder().encode(`${h}.${p}`));
return { header, payload, valid };
