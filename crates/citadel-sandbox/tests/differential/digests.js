// Content hashes: SHA-1/256/384/512 as hex.
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
const data = new TextEncoder().encode("The quick brown fox jumps over the lazy dog");
const out = {};
for (const alg of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) out[alg] = hex(await crypto.subtle.digest(alg, data));
out.empty = hex(await crypto.subtle.digest({ name: "SHA-256" }, new ArrayBuffer(0)));
return out;
