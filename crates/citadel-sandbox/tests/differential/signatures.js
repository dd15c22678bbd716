// Verifying Ed25519 (RFC 8032, test 1) and ECDSA P-256 signatures, with
// keys as raw bytes and JWK.
const bytes = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const pub = await crypto.subtle.importKey("raw", bytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), "Ed25519", true, ["verify"]);
const sig = bytes("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
const ed = [await crypto.subtle.verify("Ed25519", pub, sig, new Uint8Array(0)), await crypto.subtle.verify({ name: "Ed25519" }, pub, sig, new Uint8Array([1]))];
const jwk = { kty: "EC", crv: "P-256", x: "KSexBRK64-3c_kZ4KBKLrSkDJpkZ9whgacjE32xzKDg", y: "x3h5ZOqsAOWSH7FJimD0YGdms9loUAFVjRqXTnNBUT4" };
const ec = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
const ecSig = bytes("2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e184cd60b855d442f5b3c7b11eb6c4e0ae7525fe710fab9aa7c77a67f79e6fadd76");
const ecdsa = [await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ec, ecSig, bytes("313233343030")), await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, ec, ecSig, bytes("313233343031"))];
return { ed, ecdsa, alg: [pub.algorithm.name, ec.algorithm.namedCurve, pub.type] };
