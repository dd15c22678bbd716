//! Redaction: a secret value a run read must not leave through it — not in
//! its result, its logs, its error message or an audit entry — verbatim or
//! in the encodings a script reaches for first: JSON string escaping,
//! base64 and base64url (padded or not, and inside a longer base64 text such
//! as `Basic base64(user:secret)`), hex (either case), and URL encoding
//! (`%XX` in either case, `+` for spaces). Each occurrence becomes
//! `[REDACTED:NAME]`.
//!
//! Out of scope, as for every masking scheme: a script that splits, reverses
//! or re-encodes the value in some other way can still return it; the grant
//! (only reviewed versions get a secret) is the control for that.

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What `encodeURIComponent` leaves as it is: letters, digits and
/// `-_.!~*'()`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Forms shorter than this are not searched for: a two-character base64
/// text would match all over unrelated output. (Secret values themselves
/// are at least [`MIN_SECRET_BYTES`] long.)
const MIN_FORM_CHARS: usize = 6;

/// The shortest secret value accepted: shorter ones could not be redacted
/// without mangling unrelated text.
pub const MIN_SECRET_BYTES: usize = 8;

/// Base64 of `value` as it appears when it does not start on a 3-byte
/// boundary of a longer encoded text: for each offset, the characters
/// that depend on the value's bytes only.
fn base64_inner(value: &[u8], engine: &impl base64::Engine) -> Vec<String> {
    let mut out = Vec::new();
    for offset in 1..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value);
        let encoded = engine.encode(&padded);
        let bits = 8 * (offset + value.len());
        // Character i holds bits 6i..6i+6: skip those with prefix bits and
        // the last one whose bits the following data would complete.
        let start = (8 * offset).div_ceil(6);
        let end = bits / 6;
        if end > start {
            out.push(encoded[start..end].to_owned());
        }
    }
    out
}

/// Every form of `value` to search for.
pub fn forms(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![value.to_owned()];
    if let Ok(json) = serde_json::to_string(value) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(bytes));
        out.extend(base64_inner(bytes, engine));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        out.push(engine.encode(bytes));
    }
    let lower = hex::encode(bytes);
    out.push(lower.to_ascii_uppercase());
    out.push(lower);
    let uri = utf8_percent_encode(value, URI_COMPONENT).to_string();
    out.push(lower_escapes(&uri));
    out.push(uri.replace("%20", "+"));
    out.push(uri);
    out.retain(|f| f.len() >= MIN_FORM_CHARS);
    out.sort();
    out.dedup();
    out
}

/// `%2F` as `%2f`.
fn lower_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[i + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces the values of some secrets, in every form, in texts.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
    /// The replacement of each pattern, by pattern index.
    replacements: Vec<String>,
}

impl Redactor {
    /// A redactor for these (name, value) pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        let mut patterns = Vec::new();
        let mut replacements = Vec::new();
        for (name, value) in secrets {
            for form in forms(value) {
                patterns.push(form);
                replacements.push(format!("[REDACTED:{name}]"));
            }
        }
        if patterns.is_empty() {
            return Redactor::default();
        }
        // Leftmost-longest: where forms overlap (a value and its JSON
        // escaping), the longer match is the one replaced.
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        Redactor {
            matcher,
            replacements,
        }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every form of every value replaced; borrowed when none
    /// occurs.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Some(m) = &self.matcher else {
            return Cow::Borrowed(text);
        };
        if !m.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        m.replace_all_with(text, &mut out, |mat, _, dst| {
            dst.push_str(&self.replacements[mat.pattern().as_usize()]);
            true
        });
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "sk_live/4eC39Hq+LyjWDarjtT1zdp7dc \"x\"";

    fn r() -> Redactor {
        Redactor::new([("STRIPE_KEY", VALUE)])
    }

    #[test]
    fn every_form_is_replaced() {
        let bytes = VALUE.as_bytes();
        let json = serde_json::to_string(VALUE).unwrap();
        let shown = [
            VALUE.to_owned(),
            json.clone(),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex::encode(bytes),
            hex::encode_upper(bytes),
            utf8_percent_encode(VALUE, URI_COMPONENT).to_string(),
            utf8_percent_encode(VALUE, URI_COMPONENT)
                .to_string()
                .replace("%20", "+"),
            lower_escapes(&utf8_percent_encode(VALUE, URI_COMPONENT).to_string()),
        ];
        for text in shown {
            let input = format!("before {text} after");
            let out = r().redact(&input).into_owned();
            assert!(
                out.starts_with("before ") && out.ends_with(" after"),
                "{text}: {out}"
            );
            assert!(out.contains("[REDACTED:STRIPE_KEY]"), "{text}: {out}");
            assert!(!out.contains("4eC39Hq"), "{text}: {out}");
        }
        // The JSON form as a whole string in a JSON document.
        let doc = format!("{{\"token\":{json}}}");
        assert_eq!(r().redact(&doc), "{\"token\":\"[REDACTED:STRIPE_KEY]\"}");
    }

    #[test]
    fn base64_inside_a_longer_text_is_found_at_every_offset() {
        for prefix in ["", "u:", "us:", "use:"] {
            let header = STANDARD.encode(format!("{prefix}{VALUE}"));
            let out = r().redact(&header).into_owned();
            assert!(out.contains("[REDACTED:STRIPE_KEY]"), "{prefix:?}: {out}");
        }
    }

    #[test]
    fn text_without_the_value_is_borrowed_untouched() {
        let text = "nothing secret here: sk_test_abc";
        assert!(matches!(r().redact(text), Cow::Borrowed(t) if t == text));
        assert!(Redactor::new([]).is_empty());
        assert!(matches!(Redactor::default().redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn several_secrets_are_named_each() {
        let r = Redactor::new([("A_KEY", "alpha-secret-1"), ("B_KEY", "bravo-secret-2")]);
        assert_eq!(
            r.redact("alpha-secret-1 and bravo-secret-2"),
            "[REDACTED:A_KEY] and [REDACTED:B_KEY]"
        );
    }
}
