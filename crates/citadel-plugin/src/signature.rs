//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! three headers `webhook-id`, `webhook-timestamp` and `webhook-signature`,
//! the last holding `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! entries separated by spaces. Secrets are `whsec_` and the base64 of
//! the key.
//!
//! Several signatures in one header are how a secret is rotated: the
//! sender signs with the old and the new secret for a while, and a
//! receiver holding either accepts. Verification refuses timestamps
//! outside a tolerance (5 minutes by default) either way, which bounds how
//! long a captured delivery can be replayed; de-duplicating by
//! `webhook-id` within that window is the stateful half and lives with
//! whoever keeps state.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a timestamp may be from now, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const SECRET_PREFIX: &str = "whsec_";
/// Key sizes the specification allows.
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;
/// Signatures looked at in one header, so a huge header costs little.
const MAX_SIGNATURES: usize = 16;

/// Why a signature was not made or not accepted. Messages never hold a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// A secret is not `whsec_` and the base64 of a 24 to 64 byte key.
    InvalidSecret,
    /// One of the three headers is absent.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not Unix seconds.
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows.
    TooOld,
    /// The timestamp is further in the future than the tolerance allows.
    InFuture,
    /// No signature in the header matches any secret.
    NoMatch,
    /// A message id already accepted within the tolerance window.
    Replayed,
    /// The replay window is full of live ids; refused rather than
    /// forgetting one that could then be replayed.
    WindowFull,
}

impl SignatureError {
    /// A stable code for responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::InvalidSecret => "invalid_secret",
            SignatureError::MissingHeader(_) => "missing_signature_header",
            SignatureError::InvalidTimestamp => "invalid_timestamp",
            SignatureError::TooOld => "timestamp_too_old",
            SignatureError::InFuture => "timestamp_in_future",
            SignatureError::NoMatch => "invalid_signature",
            SignatureError::Replayed => "replayed",
            SignatureError::WindowFull => "replay_window_full",
        }
    }
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::InvalidSecret => {
                write!(
                    f,
                    "a signing secret is not `whsec_` and the base64 of a 24 to 64 byte key"
                )
            }
            SignatureError::MissingHeader(h) => write!(f, "the `{h}` header is missing"),
            SignatureError::InvalidTimestamp => {
                write!(f, "`{HEADER_TIMESTAMP}` is not a Unix time in seconds")
            }
            SignatureError::TooOld => write!(f, "the timestamp is too old (a replay?)"),
            SignatureError::InFuture => write!(f, "the timestamp is too far in the future"),
            SignatureError::NoMatch => write!(f, "no signature matches"),
            SignatureError::Replayed => write!(f, "this message id was already received"),
            SignatureError::WindowFull => write!(f, "too many messages in the replay window"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// The key of a `whsec_…` secret.
fn key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let b64 = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SignatureError::InvalidSecret)?;
    let key = STANDARD
        .decode(b64)
        .map_err(|_| SignatureError::InvalidSecret)?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(SignatureError::InvalidSecret);
    }
    Ok(key)
}

/// Whether a secret has the Standard Webhooks shape.
pub fn is_valid_secret(secret: &str) -> bool {
    key(secret).is_ok()
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    #[allow(clippy::expect_used, reason = "HMAC accepts keys of every length")]
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64 signature>` of one message with one secret.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let key = key(secret)?;
    let tag = mac(&key, msg_id, timestamp, body).finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The three headers of a delivery, signed with every secret given (more
/// than one during a rotation).
pub fn signed_headers(
    secrets: &[&str],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::InvalidSecret);
    }
    let signatures = secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok([
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, signatures.join(" ")),
    ])
}

/// The headers a verification reads, looked up case-insensitively in
/// `(name, value)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> SignedHeaders<'a> {
    pub fn from_pairs<I>(pairs: I) -> Result<SignedHeaders<'a>, SignatureError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (mut id, mut timestamp, mut signature) = (None, None, None);
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case(HEADER_ID) {
                id = Some(value);
            } else if name.eq_ignore_ascii_case(HEADER_TIMESTAMP) {
                timestamp = Some(value);
            } else if name.eq_ignore_ascii_case(HEADER_SIGNATURE) {
                signature = Some(value);
            }
        }
        Ok(SignedHeaders {
            id: id.ok_or(SignatureError::MissingHeader(HEADER_ID))?,
            timestamp: timestamp.ok_or(SignatureError::MissingHeader(HEADER_TIMESTAMP))?,
            signature: signature.ok_or(SignatureError::MissingHeader(HEADER_SIGNATURE))?,
        })
    }
}

/// Verifies a delivery: its timestamp within `tolerance` of `now` (Unix
/// seconds) and one of its `v1` signatures made with one of `secrets`.
/// Comparisons are constant-time.
pub fn verify(
    secrets: &[&str],
    headers: &SignedHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let keys = secrets
        .iter()
        .map(|s| key(s))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(SignatureError::InvalidSecret);
    }
    let ts = headers.timestamp.trim();
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    let timestamp: i64 = ts.parse().map_err(|_| SignatureError::InvalidTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(timestamp) > tolerance {
        return Err(SignatureError::TooOld);
    }
    if timestamp.saturating_sub(now) > tolerance {
        return Err(SignatureError::InFuture);
    }
    let candidates: Vec<Vec<u8>> = headers
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .take(MAX_SIGNATURES)
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    for key in &keys {
        let mac = mac(key, headers.id, timestamp, body);
        for candidate in &candidates {
            if mac.clone().verify_slice(candidate).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::NoMatch)
}

/// De-duplication of verified messages by `webhook-id`, in memory, for
/// one receiver: an id is remembered until its timestamp leaves the
/// tolerance window (after which [`verify`] refuses it anyway), so memory
/// is bounded by what arrives within one window, and capped. Receivers on
/// several nodes keep the same record in shared storage instead.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    tolerance: i64,
    capacity: usize,
    /// Message id → the Unix second after which it is forgotten.
    seen: std::collections::HashMap<String, i64>,
}

impl ReplayWindow {
    pub fn new(tolerance: Duration, capacity: usize) -> ReplayWindow {
        ReplayWindow {
            tolerance: i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX),
            capacity,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Records a message that passed [`verify`]; refuses one already seen.
    pub fn admit(&mut self, headers: &SignedHeaders<'_>, now: i64) -> Result<(), SignatureError> {
        let timestamp: i64 = headers
            .timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::InvalidTimestamp)?;
        if self.seen.get(headers.id).is_some_and(|until| *until >= now) {
            return Err(SignatureError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, until| *until >= now);
            if self.seen.len() >= self.capacity {
                return Err(SignatureError::WindowFull);
            }
        }
        // Past `timestamp + tolerance`, `verify` refuses the message itself.
        let until = timestamp.saturating_add(self.tolerance);
        self.seen.insert(headers.id.to_owned(), until);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Verifies a shared-secret HMAC header of the kind many services send
/// (`X-Hub-Signature-256: sha256=<hex>`, or bare hex): HMAC-SHA256 of the
/// body alone with the raw secret, compared in constant time. It carries
/// no timestamp, so replay protection is the caller's de-duplication.
pub fn verify_shared_hmac(secret: &[u8], header: &str, body: &[u8]) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::InvalidSecret);
    }
    let hex_sig = header.trim();
    let hex_sig = hex_sig.strip_prefix("sha256=").unwrap_or(hex_sig);
    if hex_sig.len() != 64 {
        return Err(SignatureError::NoMatch);
    }
    let mut tag = [0u8; 32];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex_sig.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
            .map_err(|_| SignatureError::NoMatch)?;
    }
    #[allow(clippy::expect_used, reason = "HMAC accepts keys of every length")]
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| SignatureError::NoMatch)
}

/// A new random-looking secret from 32 key bytes the caller supplies (the
/// caller owns the randomness source).
pub fn secret_from_key(key: &[u8; 32]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked() {
        assert!(is_valid_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!is_valid_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!is_valid_secret("whsec_c2hvcnQ="));
        assert!(!is_valid_secret("whsec_not base64!"));
        assert_eq!(
            sign("nope", "m", 1, b""),
            Err(SignatureError::InvalidSecret)
        );
        let s = secret_from_key(&[7; 32]);
        assert!(is_valid_secret(&s));
    }

    #[test]
    fn shared_hmac_headers() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"),
        // the example of RFC 2104's Wikipedia page and many test suites.
        let body = b"The quick brown fox jumps over the lazy dog";
        let hex = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        assert_eq!(verify_shared_hmac(b"key", hex, body), Ok(()));
        assert_eq!(
            verify_shared_hmac(b"key", &format!("sha256={hex}"), body),
            Ok(())
        );
        assert_eq!(
            verify_shared_hmac(b"key", &hex.to_uppercase(), body),
            Ok(())
        );
        assert_eq!(
            verify_shared_hmac(b"other", hex, body),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_shared_hmac(b"key", hex, b"tampered"),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_shared_hmac(b"key", "sha256=zz", body),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify_shared_hmac(b"", hex, body),
            Err(SignatureError::InvalidSecret)
        );
    }
}
