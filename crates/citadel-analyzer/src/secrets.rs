//! Credential detection for string literals: known key formats first, then an
//! entropy check for long random-looking strings.

/// A known credential format: (what it is, prefix, charset of the rest,
/// minimum length of the rest).
type Format = (&'static str, &'static str, fn(u8) -> bool, usize);

const KNOWN: &[Format] = &[
    ("AWS access key id", "AKIA", upper_digit, 16),
    ("AWS access key id", "ASIA", upper_digit, 16),
    ("GitHub token", "ghp_", alnum, 36),
    ("GitHub token", "gho_", alnum, 36),
    ("GitHub token", "ghu_", alnum, 36),
    ("GitHub token", "ghs_", alnum, 36),
    ("GitHub token", "github_pat_", token, 40),
    ("GitLab token", "glpat-", token, 20),
    ("Stripe secret key", "sk_live_", alnum, 16),
    ("Stripe restricted key", "rk_live_", alnum, 16),
    ("Slack token", "xoxb-", token, 10),
    ("Slack token", "xoxp-", token, 10),
    ("Slack token", "xoxa-", token, 10),
    ("Google API key", "AIza", token, 35),
    ("OpenAI API key", "sk-proj-", token, 20),
];

fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The kind of credential `s` contains, if it contains a known one.
pub(crate) fn known_credential(s: &str) -> Option<&'static str> {
    if s.contains("-----BEGIN") && s.contains("PRIVATE KEY") {
        return Some("private key");
    }
    let bytes = s.as_bytes();
    for (kind, prefix, charset, min) in KNOWN {
        let mut from = 0;
        while let Some(pos) = s[from..].find(prefix) {
            let start = from + pos;
            // A key starts at a word boundary, not inside a longer identifier.
            let boundary = start == 0 || !token(bytes[start - 1]);
            let rest = &bytes[start + prefix.len()..];
            let run = rest.iter().take_while(|b| charset(**b)).count();
            if boundary && run >= *min {
                return Some(kind);
            }
            from = start + prefix.len();
        }
    }
    None
}

/// Shannon entropy in bits per byte.
fn entropy(s: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for b in s {
        counts[*b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// True for a long token-like string whose characters look random: at least
/// 24 characters with no spaces and an entropy of 4 bits per character or
/// more (hex strings, which top out at 4, need 40 characters and 3.5 bits).
pub(crate) fn is_high_entropy(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 24 || b.len() > 512 {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b"+/=_-.".contains(c))
    {
        return false;
    }
    let classes = [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
    ];
    let e = entropy(b);
    if b.iter().all(u8::is_ascii_hexdigit) {
        return b.len() >= 40 && e >= 3.5;
    }
    classes.iter().filter(|c| **c).count() >= 2 && e >= 4.0
}
