// `crypto` (`getRandomValues`, `randomUUID`, `subtle`), `CryptoKey`.
(function citadelWebCrypto(kit) {
  "use strict";
  const {
    defineProperty,
    objectKeys,
    create,
    StringCtor,
    TypeErrorCtor,
    PromiseCtor,
    SymbolToStringTag,
    stringSlice,
    charCodeAt,
    toLowerCase,
    padStart,
    numberToString,
    fromCharCode,
    NumberCtor,
    typed,
    Uint8,
    taBuffer,
    taOffset,
    taByteLength,
    taTag,
    taSet,
    isView,
    n,
    has,
    hidden,
    define,
    push,
    usv,
    domError,
    bufferSource,
    copyBytes,
    arrayBufferOf,
    concatBytes,
  } = kit;
    const notSupported = (what) => domError("NotSupportedError", `${what} is not supported`);
    const hashes = { __proto__: null, "sha-1": "SHA-1", "sha-256": "SHA-256", "sha-384": "SHA-384", "sha-512": "SHA-512" };
    const algorithms = { __proto__: null, hmac: "HMAC", "aes-gcm": "AES-GCM", ed25519: "Ed25519", ecdsa: "ECDSA" };
    const algorithmName = (alg) => {
      const name = typeof alg === "string" ? alg : alg != null ? alg.name : undefined;
      if (name === undefined) throw new TypeErrorCtor("the algorithm has no name");
      return StringCtor(name);
    };
    const hashName = (alg) => {
      const name = toLowerCase(algorithmName(alg));
      const known = hashes[name];
      if (known === undefined) throw notSupported(`the hash '${algorithmName(alg)}'`);
      return known;
    };
    const normalName = (alg) => {
      const name = algorithmName(alg);
      const known = algorithms[toLowerCase(name)] ?? hashes[toLowerCase(name)];
      if (known === undefined) throw notSupported(`the algorithm '${name}'`);
      return known;
    };
    // base64url without padding ↔ bytes.
    const fromBase64url = (s) => {
      s = usv(s);
      let t = "";
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        t += c === 45 ? "+" : c === 95 ? "/" : fromCharCode(c);
      }
      const bytes = n.base64ToBytes(t);
      if (bytes === null || bytes === undefined) throw domError("DataError", "the JWK holds invalid base64url");
      return bytes;
    };
    const toBase64url = (bytes) => {
      const s = n.bytesToBase64(bytes);
      let t = "";
      for (let i = 0; i < s.length; i++) {
        const c = charCodeAt(s, i);
        if (c === 61) break;
        t += c === 43 ? "-" : c === 47 ? "_" : fromCharCode(c);
      }
      return t;
    };
    const ED25519_SPKI = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    const P256_SPKI = [
      0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
      0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    const stripPrefix = (bytes, prefix, rest) => {
      if (bytes.length !== prefix.length + rest) throw domError("DataError", "the SPKI key is malformed");
      for (let i = 0; i < prefix.length; i++) {
        if (bytes[i] !== prefix[i]) throw domError("DataError", "the SPKI key is malformed or of another curve");
      }
      return new Uint8(taBuffer(bytes), taOffset(bytes) + prefix.length, rest);
    };

    const illegal = { __proto__: null };
    let keyData;
    let keyCheck;
    let keyInfo;
    class CryptoKey {
      #type;
      #extractable;
      #algorithm;
      #usages;
      #data;
      constructor(token, type, extractable, algorithm, usages, data) {
        if (token !== illegal) throw new TypeErrorCtor("Illegal constructor");
        this.#type = type;
        this.#extractable = extractable;
        this.#algorithm = algorithm;
        this.#usages = usages;
        this.#data = data;
      }
      static {
        keyData = (k) => k.#data;
        keyInfo = (k) => {
          if (k === null || typeof k !== "object" || !(#data in k)) throw new TypeErrorCtor("the key is not a CryptoKey");
          return [k.#algorithm, k.#extractable, k.#usages];
        };
        keyCheck = (k, name, usage) => {
          if (k === null || typeof k !== "object" || !(#data in k)) throw new TypeErrorCtor("the key is not a CryptoKey");
          if (k.#algorithm.name !== name) throw domError("InvalidAccessError", `the key is not a ${name} key`);
          let allowed = false;
          for (let i = 0; i < k.#usages.length; i++) if (k.#usages[i] === usage) allowed = true;
          if (!allowed) throw domError("InvalidAccessError", `the key may not be used to ${usage}`);
          return k.#data;
        };
      }
      get type() { return this.#type; }
      get extractable() { return this.#extractable; }
      get algorithm() {
        const a = this.#algorithm;
        const out = { name: a.name };
        if (a.hash !== undefined) out.hash = { name: a.hash };
        if (a.length !== undefined) out.length = a.length;
        if (a.namedCurve !== undefined) out.namedCurve = a.namedCurve;
        return out;
      }
      get usages() {
        const out = [];
        for (let i = 0; i < this.#usages.length; i++) push(out, this.#usages[i]);
        return out;
      }
    }
    defineProperty(CryptoKey.prototype, SymbolToStringTag, { __proto__: null, value: "CryptoKey", configurable: true });
    const exportable = (k) => {
      if (!keyInfo(k)[1]) throw domError("InvalidAccessError", "the key is not extractable");
      return keyData(k);
    };
    const usagesOf = (given, allowed) => {
      const out = [];
      for (const u of given) {
        const s = StringCtor(u);
        let ok = false;
        for (let i = 0; i < allowed.length; i++) if (allowed[i] === s) ok = true;
        if (!ok) throw domError("SyntaxError", `the usage '${s}' is not valid for this key`);
        let dup = false;
        for (let i = 0; i < out.length; i++) if (out[i] === s) dup = true;
        if (!dup) push(out, s);
      }
      return out;
    };
    const jwkOf = (v, kty) => {
      if (v === null || typeof v !== "object") throw new TypeErrorCtor("the JWK is not an object");
      if (v.kty !== kty) throw domError("DataError", `the JWK's kty is not '${kty}'`);
      return v;
    };
    // Runs `f` and turns its result or error into a promise.
    const later = (f) =>
      new PromiseCtor((ok, fail) => {
        try {
          ok(f());
        } catch (e) {
          fail(e);
        }
      });

    const importKey = (format, keyDataIn, algorithm, extractable, usagesIn) => {
      const name = normalName(algorithm);
      format = StringCtor(format);
      extractable = !!extractable;
      if (name === "HMAC" || name === "AES-GCM") {
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "jwk") bytes = fromBase64url(jwkOf(keyDataIn, "oct").k);
        else throw notSupported(`the key format '${format}' for ${name}`);
        if (name === "HMAC") {
          const hash = hashName(algorithm.hash);
          if (bytes.length === 0) throw domError("DataError", "an HMAC key may not be empty");
          const usages = usagesOf(usagesIn, ["sign", "verify"]);
          return new CryptoKey(illegal, "secret", extractable, { __proto__: null, name, hash, length: bytes.length * 8 }, usages, bytes);
        }
        if (bytes.length === 24) throw notSupported("AES-192");
        if (bytes.length !== 16 && bytes.length !== 32) throw domError("DataError", "an AES key is 128 or 256 bits long");
        const usages = usagesOf(usagesIn, ["encrypt", "decrypt", "wrapKey", "unwrapKey"]);
        return new CryptoKey(illegal, "secret", extractable, { __proto__: null, name, length: bytes.length * 8 }, usages, bytes);
      }
      if (name === "Ed25519") {
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "spki") bytes = copyBytes(stripPrefix(bufferSource(keyDataIn, "the key data"), ED25519_SPKI, 32));
        else if (format === "jwk") {
          const jwk = jwkOf(keyDataIn, "OKP");
          if (jwk.crv !== "Ed25519") throw domError("DataError", "the JWK's curve is not Ed25519");
          if (jwk.d !== undefined) throw notSupported("an Ed25519 private key");
          bytes = fromBase64url(jwk.x);
        } else throw notSupported(`the key format '${format}' for Ed25519 (only public keys can be imported)`);
        if (bytes.length !== 32) throw domError("DataError", "an Ed25519 public key is 32 bytes long");
        const usages = usagesOf(usagesIn, ["verify"]);
        return new CryptoKey(illegal, "public", true, { __proto__: null, name }, usages, bytes);
      }
      if (name === "ECDSA") {
        const curve = algorithm.namedCurve;
        if (curve !== "P-256") throw notSupported(`the curve '${curve}'`);
        let bytes;
        if (format === "raw") bytes = copyBytes(bufferSource(keyDataIn, "the key data"));
        else if (format === "spki") bytes = copyBytes(stripPrefix(bufferSource(keyDataIn, "the key data"), P256_SPKI, 65));
        else if (format === "jwk") {
          const jwk = jwkOf(keyDataIn, "EC");
          if (jwk.crv !== "P-256") throw notSupported(`the curve '${jwk.crv}'`);
          if (jwk.d !== undefined) throw notSupported("an ECDSA private key");
          const x = fromBase64url(jwk.x);
          const y = fromBase64url(jwk.y);
          if (x.length !== 32 || y.length !== 32) throw domError("DataError", "the JWK's coordinates are not 32 bytes long");
          bytes = concatBytes(concatBytes(new Uint8([4]), x), y);
        } else throw notSupported(`the key format '${format}' for ECDSA (only public keys can be imported)`);
        const usages = usagesOf(usagesIn, ["verify"]);
        return new CryptoKey(illegal, "public", true, { __proto__: null, name, namedCurve: "P-256" }, usages, bytes);
      }
      throw notSupported(`importing a ${name} key`);
    };
    const exportKey = (format, key) => {
      const data = exportable(key);
      const info = keyInfo(key);
      const name = info[0].name;
      const usages = [];
      for (let i = 0; i < info[2].length; i++) push(usages, info[2][i]);
      if (format === "raw") return arrayBufferOf(copyBytes(data));
      if (format === "jwk" && (name === "HMAC" || name === "AES-GCM")) {
        const jwk = { kty: "oct", k: toBase64url(data), ext: true, key_ops: usages };
        if (name === "HMAC") jwk.alg = "HS" + stringSlice(info[0].hash, 4);
        else jwk.alg = "A" + data.length * 8 + "GCM";
        return jwk;
      }
      if (format === "jwk" && name === "Ed25519") return { kty: "OKP", crv: "Ed25519", x: toBase64url(data), ext: true, key_ops: usages };
      throw notSupported(`exporting a ${name} key as '${format}'`);
    };
    const hmacOf = (key, data, usage) => {
      const bytes = keyCheck(key, "HMAC", usage);
      return n.hmac(keyInfo(key)[0].hash, bytes, bufferSource(data, "the data"));
    };
    const subtle = {
      digest(algorithm, data) {
        return later(() => {
          const name = hashName(algorithm);
          return arrayBufferOf(n.digest(name, bufferSource(data, "the data")));
        });
      },
      importKey(format, keyData, algorithm, extractable, usages) {
        return later(() => importKey(format, keyData, algorithm, extractable, usages));
      },
      exportKey(format, key) {
        return later(() => exportKey(StringCtor(format), key));
      },
      generateKey(algorithm, extractable, usages) {
        return later(() => {
          const name = normalName(algorithm);
          if (name === "HMAC") {
            const hash = hashName(algorithm.hash);
            const length = algorithm.length !== undefined ? NumberCtor(algorithm.length) : hash === "SHA-384" || hash === "SHA-512" ? 1024 : 512;
            if (length <= 0 || length % 8 !== 0) throw notSupported("an HMAC key length that is not whole bytes");
            return importKey("raw", n.random(length / 8), { name, hash }, extractable, usages);
          }
          if (name === "AES-GCM") {
            const length = NumberCtor(algorithm.length);
            if (length !== 128 && length !== 256) throw notSupported(`an AES key of ${length} bits`);
            return importKey("raw", n.random(length / 8), { name }, extractable, usages);
          }
          throw notSupported(`generating a ${name} key`);
        });
      },
      sign(algorithm, key, data) {
        return later(() => {
          const name = normalName(algorithm);
          if (name !== "HMAC") throw notSupported(`signing with ${name} (private keys are not supported)`);
          return arrayBufferOf(hmacOf(key, data, "sign"));
        });
      },
      verify(algorithm, key, signature, data) {
        return later(() => {
          const name = normalName(algorithm);
          const sig = bufferSource(signature, "the signature");
          if (name === "HMAC") {
            const mac = hmacOf(key, data, "verify");
            if (mac.length !== sig.length) return false;
            let diff = 0;
            for (let i = 0; i < mac.length; i++) diff |= mac[i] ^ sig[i];
            return diff === 0;
          }
          if (name === "Ed25519") {
            const bytes = keyCheck(key, "Ed25519", "verify");
            return n.ed25519Verify(bytes, sig, bufferSource(data, "the data"));
          }
          if (name === "ECDSA") {
            const bytes = keyCheck(key, "ECDSA", "verify");
            const hash = hashName(algorithm.hash);
            return n.p256Verify(bytes, sig, bufferSource(data, "the data"), hash);
          }
          throw notSupported(`verifying with ${name}`);
        });
      },
      encrypt(algorithm, key, data) {
        return later(() => aes(algorithm, key, data, true));
      },
      decrypt(algorithm, key, data) {
        return later(() => aes(algorithm, key, data, false));
      },
      deriveBits(algorithm) {
        return later(() => {
          throw notSupported(`deriving bits with ${algorithmName(algorithm)}`);
        });
      },
      deriveKey(algorithm) {
        return later(() => {
          throw notSupported(`deriving a key with ${algorithmName(algorithm)}`);
        });
      },
      wrapKey(format) {
        return later(() => {
          throw notSupported(`wrapping a key as '${StringCtor(format)}'`);
        });
      },
      unwrapKey(format) {
        return later(() => {
          throw notSupported(`unwrapping a key from '${StringCtor(format)}'`);
        });
      },
    };
    const aes = (algorithm, key, data, encrypt) => {
      const name = normalName(algorithm);
      if (name !== "AES-GCM") throw notSupported(`${encrypt ? "encrypting" : "decrypting"} with ${name}`);
      const bytes = keyCheck(key, "AES-GCM", encrypt ? "encrypt" : "decrypt");
      const iv = bufferSource(algorithm.iv, "the IV");
      if (iv.length !== 12) throw notSupported("an AES-GCM IV that is not 96 bits long");
      const tagLength = algorithm.tagLength === undefined ? 128 : NumberCtor(algorithm.tagLength);
      if (tagLength !== 128) throw notSupported("an AES-GCM tag that is not 128 bits long");
      const aad = algorithm.additionalData === undefined ? new Uint8(0) : bufferSource(algorithm.additionalData, "the additional data");
      const out = n.aesGcm(encrypt, bytes, iv, bufferSource(data, "the data"), aad);
      if (out === null || out === undefined) throw domError("OperationError", "the data could not be decrypted");
      return arrayBufferOf(out);
    };
    const integerTags = {
      __proto__: null, Int8Array: true, Uint8Array: true, Uint8ClampedArray: true, Int16Array: true, Uint16Array: true,
      Int32Array: true, Uint32Array: true, BigInt64Array: true, BigUint64Array: true,
    };
    const hex = (b) => padStart(numberToString(b, 16), 2, "0");
    class SubtleCrypto {}
    class Crypto {
      get subtle() {
        return subtleObject;
      }
      getRandomValues(array) {
        const tag = typed && isView(array) ? taTag(array) : undefined;
        if (tag === undefined || !integerTags[tag]) {
          throw domError("TypeMismatchError", "getRandomValues: the argument is not an integer typed array");
        }
        const size = taByteLength(array);
        if (size > 65536) throw domError("QuotaExceededError", `getRandomValues: ${size} bytes asked for, at most 65536 can be`);
        taSet(new Uint8(taBuffer(array), taOffset(array), size), n.random(size), 0);
        return array;
      }
      randomUUID() {
        const b = n.random(16);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let s = "";
        for (let i = 0; i < 16; i++) {
          if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
          s += hex(b[i]);
        }
        return s;
      }
    }
    const subtleObject = create(SubtleCrypto.prototype);
    const methods = objectKeys(subtle);
    for (let i = 0; i < methods.length; i++) defineProperty(SubtleCrypto.prototype, methods[i], hidden(subtle[methods[i]]));
    define("crypto", new Crypto());
    define("Crypto", Crypto);
    define("CryptoKey", CryptoKey);
    define("SubtleCrypto", SubtleCrypto);
});
