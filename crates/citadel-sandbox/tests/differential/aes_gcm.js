// Sealing a value with AES-GCM under a fixed key and IV, and opening it.
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
const key = await crypto.subtle.importKey("raw", new Uint8Array(32).map((_, i) => i), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
const iv = new Uint8Array(12).fill(7);
const aad = new TextEncoder().encode("header");
const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, new TextEncoder().encode("card 4242"));
const opened = new TextDecoder().decode(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, sealed));
const tampered = new Uint8Array(sealed);
tampered[0] ^= 1;
let error;
try { await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, tampered); } catch (e) { error = e.name; }
const jwk = await crypto.subtle.importKey("jwk", { kty: "oct", k: "AAECAwQFBgcICQoLDA0ODw", alg: "A128GCM" }, "AES-GCM", true, ["encrypt"]);
return { sealed: hex(sealed), opened, error, jwk: [jwk.algorithm, jwk.type, jwk.extractable, jwk.usages] };
