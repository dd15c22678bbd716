//! Semantic versions of script versions: the first save is `1.0.0`, every
//! later save bumps the patch number unless the author asks for more.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

/// Which part of the version a save bumps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    #[default]
    Patch,
    Minor,
    Major,
}

impl SemVer {
    pub const FIRST: SemVer = SemVer {
        major: 1,
        minor: 0,
        patch: 0,
    };

    /// `MAJOR.MINOR.PATCH`, each a decimal without leading zeros.
    pub fn parse(s: &str) -> Option<SemVer> {
        let mut parts = s.split('.');
        let mut next = || {
            let p = parts.next()?;
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            if !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let v = SemVer {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        parts.next().is_none().then_some(v)
    }

    pub fn bump(self, bump: Bump) -> SemVer {
        match bump {
            Bump::Patch => SemVer {
                patch: self.patch + 1,
                ..self
            },
            Bump::Minor => SemVer {
                minor: self.minor + 1,
                patch: 0,
                ..self
            },
            Bump::Major => SemVer {
                major: self.major + 1,
                minor: 0,
                patch: 0,
            },
        }
    }

    /// The version after `latest` (`None`: the first version).
    pub fn next(latest: Option<&str>, bump: Bump) -> SemVer {
        match latest.and_then(SemVer::parse) {
            Some(v) => v.bump(bump),
            None => SemVer::FIRST,
        }
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_bump() {
        assert_eq!(
            SemVer::parse("1.2.3").map(|v| v.to_string()).as_deref(),
            Some("1.2.3")
        );
        for bad in [
            "", "1", "1.2", "1.2.3.4", "01.2.3", "a.b.c", "1.-2.3", "1.2.3 ",
        ] {
            assert_eq!(SemVer::parse(bad), None, "{bad}");
        }
        assert_eq!(SemVer::next(None, Bump::Major).to_string(), "1.0.0");
        assert_eq!(
            SemVer::next(Some("1.2.3"), Bump::Patch).to_string(),
            "1.2.4"
        );
        assert_eq!(
            SemVer::next(Some("1.2.3"), Bump::Minor).to_string(),
            "1.3.0"
        );
        assert_eq!(
            SemVer::next(Some("1.2.3"), Bump::Major).to_string(),
            "2.0.0"
        );
    }
}
