//! The native half of the web-standard globals (`web/*.js` is the other):
//! functions of their arguments alone (but for the CSPRNG and the
//! monotonic clock), with no I/O, that the web module captures when a
//! context is made. They never become globals:
//! the web module wraps each in a function of its own.
//!
//! Bytes cross as `Uint8Array`s, strings as well-formed strings (the web
//! module replaces lone surrogates first). A failure the standard names
//! (a malformed URL, an invalid base64 string, a failed authentication
//! tag) is `null`, which the web module turns into the standard error.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rquickjs::function::Opt;
use rquickjs::{Ctx, Function, Object, TypedArray, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use url::Url;

/// The object of native functions handed to the web module.
pub(crate) fn natives<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let o = Object::new(ctx.clone())?;
    o.set("urlParse", Function::new(ctx.clone(), url_parse)?)?;
    o.set("urlSet", Function::new(ctx.clone(), url_set)?)?;
    o.set("formParse", Function::new(ctx.clone(), form_parse)?)?;
    o.set("formSerialize", Function::new(ctx.clone(), form_serialize)?)?;
    o.set("utf8Encode", Function::new(ctx.clone(), utf8_encode)?)?;
    o.set("utf8Decode", Function::new(ctx.clone(), utf8_decode)?)?;
    o.set("atob", Function::new(ctx.clone(), atob)?)?;
    o.set("btoa", Function::new(ctx.clone(), btoa)?)?;
    o.set(
        "base64ToBytes",
        Function::new(ctx.clone(), base64_to_bytes)?,
    )?;
    o.set(
        "bytesToBase64",
        Function::new(ctx.clone(), bytes_to_base64)?,
    )?;
    o.set("random", Function::new(ctx.clone(), random)?)?;
    o.set("digest", Function::new(ctx.clone(), digest)?)?;
    o.set("hmac", Function::new(ctx.clone(), hmac_sign)?)?;
    o.set("aesGcm", Function::new(ctx.clone(), aes_gcm)?)?;
    o.set("ed25519Verify", Function::new(ctx.clone(), ed25519_verify)?)?;
    o.set("p256Verify", Function::new(ctx.clone(), p256_verify)?)?;
    o.set("clock", Function::new(ctx.clone(), clock)?)?;
    Ok(o)
}

/// A copy of a byte array's contents.
fn bytes(array: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is copied at once; no JavaScript runs while it lives.
    unsafe { array.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A `Uint8Array` of a copy of `v`, made by QuickJS's allocator: the run is
/// charged for it (`TypedArray::new` would hand QuickJS the vector's own
/// memory, which the run's memory limit never sees).
fn array<'js>(ctx: &Ctx<'js>, v: Vec<u8>) -> rquickjs::Result<Value<'js>> {
    Ok(TypedArray::<u8>::new_copy(ctx.clone(), v)?.into_value())
}

/// A JS array of `items`, its elements defined (not assigned: an index
/// setter a script put on `Array.prototype` never sees them).
fn list<'js, T: rquickjs::IntoJs<'js>>(
    ctx: &Ctx<'js>,
    items: impl IntoIterator<Item = T>,
) -> rquickjs::Result<Value<'js>> {
    use rquickjs::object::Property;
    let out = rquickjs::Array::new(ctx.clone())?;
    for (i, item) in items.into_iter().enumerate() {
        out.as_object().prop(
            i as u32,
            Property::from(item).writable().enumerable().configurable(),
        )?;
    }
    Ok(out.into_value())
}

fn null<'js>(ctx: &Ctx<'js>) -> Value<'js> {
    Value::new_null(ctx.clone())
}

// ---- URL ----

/// `[href, origin, protocol, username, password, host, hostname, port,
/// pathname, search, hash]`, the getters of the URL standard.
fn components(url: &Url) -> Vec<String> {
    use url::quirks as q;
    vec![
        q::href(url).to_owned(),
        origin(url),
        q::protocol(url).to_owned(),
        q::username(url).to_owned(),
        q::password(url).to_owned(),
        q::host(url).to_owned(),
        q::hostname(url).to_owned(),
        q::port(url).to_owned(),
        q::pathname(url).to_owned(),
        q::search(url).to_owned(),
        q::hash(url).to_owned(),
    ]
}

/// The URL standard's origin: a `blob:` URL has its inner URL's only
/// when that is `http(s):` (the `url` crate takes any inner URL's).
fn origin(url: &Url) -> String {
    if url.scheme() == "blob" {
        match Url::parse(url.path()) {
            Ok(inner) if matches!(inner.scheme(), "http" | "https") => {
                return url::quirks::origin(&inner);
            }
            _ => return "null".to_owned(),
        }
    }
    url::quirks::origin(url)
}

fn url_parse<'js>(ctx: Ctx<'js>, input: String, base: Opt<String>) -> rquickjs::Result<Value<'js>> {
    let url = match base.0 {
        Some(base) => Url::parse(&base).and_then(|b| b.join(&input)),
        None => Url::parse(&input),
    };
    match url {
        Ok(url) => list(&ctx, components(&url)),
        Err(_) => Ok(null(&ctx)),
    }
}

/// A setter of the URL standard on `href`; the new components (a setter
/// given a value it refuses leaves the URL as it was, except `href`,
/// which fails: `None`).
fn url_set<'js>(
    ctx: Ctx<'js>,
    href: String,
    which: String,
    value: String,
) -> rquickjs::Result<Value<'js>> {
    match set_component(&href, &which, &value) {
        Some(c) => list(&ctx, c),
        None => Ok(null(&ctx)),
    }
}

fn set_component(href: &str, which: &str, value: &str) -> Option<Vec<String>> {
    use url::quirks as q;
    let value = value.to_owned();
    let mut url = Url::parse(href).ok()?;
    match which {
        "href" => q::set_href(&mut url, &value).ok()?,
        "protocol" => drop(q::set_protocol(&mut url, &value)),
        "username" => drop(q::set_username(&mut url, &value)),
        "password" => drop(q::set_password(&mut url, &value)),
        "host" => drop(q::set_host(&mut url, &value)),
        "hostname" => drop(q::set_hostname(&mut url, &value)),
        "port" => drop(q::set_port(&mut url, &value)),
        "pathname" => q::set_pathname(&mut url, &value),
        "search" => q::set_search(&mut url, &value),
        "hash" => q::set_hash(&mut url, &value),
        _ => return None,
    }
    Some(components(&url))
}

/// `application/x-www-form-urlencoded` → `[name, value, name, value, …]`.
fn form_parse<'js>(ctx: Ctx<'js>, query: String) -> rquickjs::Result<Value<'js>> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        out.push(k.into_owned());
        out.push(v.into_owned());
    }
    list(&ctx, out)
}

fn form_serialize(flat: Vec<String>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for pair in flat.chunks(2) {
        s.append_pair(&pair[0], pair.get(1).map_or("", String::as_str));
    }
    s.finish()
}

// ---- Encoding ----

fn utf8_encode<'js>(ctx: Ctx<'js>, s: String) -> rquickjs::Result<Value<'js>> {
    array(&ctx, s.into_bytes())
}

/// Decodes UTF-8: `[text, bytes used]`. With `stream`, an incomplete
/// sequence at the end is left for the next call; with `fatal`, invalid
/// input is `null`; otherwise each maximal invalid subpart is U+FFFD.
fn utf8_decode<'js>(
    ctx: Ctx<'js>,
    input: TypedArray<'js, u8>,
    fatal: bool,
    stream: bool,
) -> rquickjs::Result<Value<'js>> {
    let input = bytes(&input);
    let mut text = String::with_capacity(input.len());
    let mut rest = &input[..];
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // SAFETY: `from_utf8` just checked these bytes.
                text.push_str(unsafe { std::str::from_utf8_unchecked(good) });
                match e.error_len() {
                    Some(n) => {
                        if fatal {
                            return Ok(null(&ctx));
                        }
                        text.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                    // An incomplete sequence at the end.
                    None => {
                        if stream {
                            rest = bad;
                        } else if fatal {
                            return Ok(null(&ctx));
                        } else {
                            text.push('\u{FFFD}');
                            rest = &[];
                        }
                        break;
                    }
                }
            }
        }
    }
    let used = (input.len() - rest.len()) as f64;
    let text = rquickjs::String::from_str(ctx.clone(), &text)?.into_value();
    list(&ctx, [text, Value::new_float(ctx.clone(), used)])
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn encode64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The HTML standard's forgiving-base64 decode.
fn forgiving_decode(input: &str) -> Option<Vec<u8>> {
    let mut data: Vec<u8> = input
        .bytes()
        .filter(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .collect();
    if !input.is_ascii() {
        return None;
    }
    if data.len().is_multiple_of(4) {
        if data.ends_with(b"==") {
            data.truncate(data.len() - 2);
        } else if data.ends_with(b"=") {
            data.truncate(data.len() - 1);
        }
    }
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &c in &data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `atob`: the bytes as a string of code points 0–255.
fn atob(input: String) -> Option<String> {
    Some(
        forgiving_decode(&input)?
            .into_iter()
            .map(char::from)
            .collect(),
    )
}

/// `btoa`: `None` for a code point over 255.
fn btoa(input: String) -> Option<String> {
    let mut data = Vec::with_capacity(input.len());
    for c in input.chars() {
        data.push(u8::try_from(u32::from(c)).ok()?);
    }
    Some(encode64(&data))
}

fn base64_to_bytes<'js>(ctx: Ctx<'js>, input: String) -> rquickjs::Result<Value<'js>> {
    match forgiving_decode(&input) {
        Some(v) => array(&ctx, v),
        None => Ok(null(&ctx)),
    }
}

fn bytes_to_base64(input: TypedArray<'_, u8>) -> String {
    encode64(&bytes(&input))
}

// ---- Crypto ----

/// `n` bytes from the operating system's CSPRNG (the caller bounds `n`).
fn random<'js>(ctx: Ctx<'js>, n: usize) -> rquickjs::Result<Value<'js>> {
    let mut v = vec![0u8; n.min(65_536)];
    getrandom::fill(&mut v)
        .map_err(|_| rquickjs::Exception::throw_internal(&ctx, "no randomness"))?;
    array(&ctx, v)
}

fn digest<'js>(
    ctx: Ctx<'js>,
    alg: String,
    data: TypedArray<'js, u8>,
) -> rquickjs::Result<Value<'js>> {
    let data = bytes(&data);
    let out = match alg.as_str() {
        "SHA-1" => Sha1::digest(&data).to_vec(),
        "SHA-256" => Sha256::digest(&data).to_vec(),
        "SHA-384" => Sha384::digest(&data).to_vec(),
        "SHA-512" => Sha512::digest(&data).to_vec(),
        _ => return Ok(null(&ctx)),
    };
    array(&ctx, out)
}

fn hmac_sign<'js>(
    ctx: Ctx<'js>,
    alg: String,
    key: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
) -> rquickjs::Result<Value<'js>> {
    let (key, data) = (bytes(&key), bytes(&data));
    fn mac<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    let out = match alg.as_str() {
        "SHA-1" => mac::<Hmac<Sha1>>(&key, &data),
        "SHA-256" => mac::<Hmac<Sha256>>(&key, &data),
        "SHA-384" => mac::<Hmac<Sha384>>(&key, &data),
        "SHA-512" => mac::<Hmac<Sha512>>(&key, &data),
        _ => return Ok(null(&ctx)),
    };
    array(&ctx, out)
}

/// AES-GCM with a 96-bit IV and a 128-bit tag (what the web module lets
/// through); `null` when the tag does not verify.
fn aes_gcm<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: TypedArray<'js, u8>,
    iv: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
    aad: TypedArray<'js, u8>,
) -> rquickjs::Result<Value<'js>> {
    let (key, iv, data, aad) = (bytes(&key), bytes(&iv), bytes(&data), bytes(&aad));
    if iv.len() != 12 {
        return Ok(null(&ctx));
    }
    let Ok(nonce) = Nonce::try_from(iv.as_slice()) else {
        return Ok(null(&ctx));
    };
    let nonce = &nonce;
    let payload = Payload {
        msg: &data,
        aad: &aad,
    };
    let out = match key.len() {
        16 => {
            let c = Aes128Gcm::new_from_slice(&key).expect("16 bytes");
            if encrypt {
                c.encrypt(nonce, payload)
            } else {
                c.decrypt(nonce, payload)
            }
        }
        32 => {
            let c = Aes256Gcm::new_from_slice(&key).expect("32 bytes");
            if encrypt {
                c.encrypt(nonce, payload)
            } else {
                c.decrypt(nonce, payload)
            }
        }
        _ => return Ok(null(&ctx)),
    };
    match out {
        Ok(v) => array(&ctx, v),
        Err(_) => Ok(null(&ctx)),
    }
}

fn ed25519_verify(
    key: TypedArray<'_, u8>,
    sig: TypedArray<'_, u8>,
    data: TypedArray<'_, u8>,
) -> bool {
    use ed25519_dalek::{Signature, VerifyingKey};
    let (key, sig, data) = (bytes(&key), bytes(&sig), bytes(&data));
    let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify_strict(&data, &Signature::from_bytes(&sig))
        .is_ok()
}

/// ECDSA P-256: `key` a SEC1 point, `sig` the raw `r‖s` WebCrypto uses,
/// `hash` the digest the signature was made over.
fn p256_verify(
    key: TypedArray<'_, u8>,
    sig: TypedArray<'_, u8>,
    data: TypedArray<'_, u8>,
    hash: String,
) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    let (key, sig, data) = (bytes(&key), bytes(&sig), bytes(&data));
    let Ok(key) = VerifyingKey::from_sec1_bytes(&key) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(&sig) else {
        return false;
    };
    let prehash = match hash.as_str() {
        "SHA-1" => Sha1::digest(&data).to_vec(),
        "SHA-256" => Sha256::digest(&data).to_vec(),
        "SHA-384" => Sha384::digest(&data).to_vec(),
        "SHA-512" => Sha512::digest(&data).to_vec(),
        _ => return false,
    };
    key.verify_prehash(&prehash, &sig).is_ok()
}

/// Milliseconds on a monotonic clock, whole: `performance.now()` is
/// coarsened to 1 ms.
fn clock() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    (origin.elapsed().as_millis()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..20 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert_eq!(forgiving_decode(&encode64(&data)).unwrap(), data);
        }
        assert_eq!(forgiving_decode(" YW\nJj "), Some(b"abc".to_vec()));
        assert_eq!(forgiving_decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(forgiving_decode("Y"), None);
        assert_eq!(forgiving_decode("YQ="), None);
    }
}
