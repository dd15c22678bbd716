//! Host allowlists: which URLs a grant lets a script fetch.
//!
//! A pattern is `[scheme://]host[:port]`:
//!
//! * `host` is an exact name (`api.example.com`), a wildcard
//!   `*.example.com` that matches every subdomain at any depth but not the
//!   apex `example.com`, `*` for any host (the address guard still refuses
//!   non-public addresses), or an IP literal (`203.0.113.7`, `[2001:db8::1]`).
//!   Names are compared after WHATWG host parsing (the `url` crate): ASCII
//!   case folded, IDNA to punycode, one trailing dot dropped.
//! * `scheme`: `https` is always allowed; plain `http` only for a pattern
//!   that says `http://` (which then allows both). No other scheme exists.
//! * `port`: a pattern without one allows the default port of each allowed
//!   scheme only (443, and 80 for `http://`); a pattern naming a port allows
//!   that port only, for each allowed scheme.
//!
//! Paths, queries, user names and passwords are not part of a pattern.

use url::{Host, Url};

/// How a pattern names the host.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: every host.
    Any,
    /// `*.suffix`: every host ending in `.suffix`, not `suffix` itself.
    Subdomains(String),
    /// One host, as the `url` crate serialises it (`[..]` for IPv6).
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    host: HostPattern,
    http: bool,
    port: Option<u16>,
}

/// Why a URL is not allowed by an allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No pattern names the host (and port).
    Host,
    /// A pattern names the host, but none allows plain `http`.
    Scheme,
}

/// A parsed set of patterns; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
}

/// Whether `pattern` parses, for validating a grant when it is saved.
pub fn is_valid_pattern(pattern: &str) -> bool {
    parse_pattern(pattern).is_ok()
}

/// Like [`is_valid_pattern`], saying what is wrong.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    parse_pattern(pattern).map(|_| ())
}

/// A host as compared: serialised by the `url` crate, one trailing dot off.
fn normal_host(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

fn parse_pattern(raw: &str) -> Result<Pattern, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("an empty pattern".into());
    }
    let (http, rest) = if let Some(rest) = strip_prefix_ci(text, "http://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ci(text, "https://") {
        (false, rest)
    } else if text.contains("://") {
        return Err(format!("{raw:?}: only http:// and https:// exist"));
    } else {
        (false, text)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@', '\\']) {
        return Err(format!(
            "{raw:?}: a pattern is a host and an optional port, without a path, query or user"
        ));
    }
    // The wildcard is swapped for a plain label so that the `url` crate
    // parses (and IDNA-normalises) the rest like any host.
    let (wild, parse_me) = if rest == "*" || rest.starts_with("*:") {
        (Some(false), format!("wildcard{}", &rest[1..]))
    } else if let Some(suffix) = rest.strip_prefix("*.") {
        (Some(true), format!("wildcard.{suffix}"))
    } else if rest.contains('*') {
        return Err(format!(
            "{raw:?}: `*` stands alone or as the first label (`*.example.com`)"
        ));
    } else {
        (None, rest.to_owned())
    };
    let url = Url::parse(&format!("https://{parse_me}/"))
        .map_err(|e| format!("{raw:?}: not a host: {e}"))?;
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err(format!("{raw:?}: not a host"));
    }
    let host = normal_host(url.host_str().ok_or_else(|| format!("{raw:?}: no host"))?);
    if host.is_empty() {
        return Err(format!("{raw:?}: no host"));
    }
    // `Url` drops the port when it is https's default; an explicit `:443`
    // still names it.
    let port = match url.port() {
        Some(p) => Some(p),
        None if rest.ends_with(":443") => Some(443),
        None => None,
    };
    let host = match wild {
        Some(false) => HostPattern::Any,
        Some(true) => {
            let suffix = host
                .strip_prefix("wildcard.")
                .ok_or_else(|| format!("{raw:?}: not a host"))?;
            if !matches!(url.host(), Some(Host::Domain(_))) || suffix.is_empty() {
                return Err(format!("{raw:?}: a wildcard needs a domain after `*.`"));
            }
            HostPattern::Subdomains(suffix.to_owned())
        }
        None => HostPattern::Exact(host.to_owned()),
    };
    Ok(Pattern { host, http, port })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl Pattern {
    fn host_matches(&self, host: &str) -> bool {
        match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    fn port_matches(&self, scheme: &str, port: u16) -> bool {
        match self.port {
            Some(p) => p == port,
            None => match scheme {
                "https" => port == 443,
                "http" => port == 80,
                _ => false,
            },
        }
    }
}

impl Allowlist {
    /// Parses every pattern; the first bad one is the error.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| parse_pattern(p))
            .collect::<Result<Vec<_>, _>>()
            .map(|patterns| Self { patterns })
    }

    /// An allowlist that allows nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether no pattern is in it (so nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `url` may be fetched under this list.
    pub fn allows(&self, url: &Url) -> bool {
        self.check(url).is_ok()
    }

    /// Like [`allows`](Self::allows), saying why not: [`Denied::Scheme`]
    /// when some pattern names the host and port for https only and the URL
    /// is plain http, [`Denied::Host`] otherwise.
    pub fn check(&self, url: &Url) -> Result<(), Denied> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Denied::Scheme);
        }
        let Some(host) = url.host_str() else {
            return Err(Denied::Host);
        };
        let host = normal_host(host);
        let Some(port) = url.port_or_known_default() else {
            return Err(Denied::Host);
        };
        let mut scheme_denied = false;
        for p in &self.patterns {
            if !p.host_matches(host) {
                continue;
            }
            if scheme == "http" && !p.http {
                // `host` alone allows https on 443: an http URL on 80 or
                // 443 naming that host was close to allowed.
                if p.port_matches("https", port) || p.port.is_none() && port == 80 {
                    scheme_denied = true;
                }
                continue;
            }
            if p.port_matches(scheme, port) {
                return Ok(());
            }
        }
        Err(if scheme_denied {
            Denied::Scheme
        } else {
            Denied::Host
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> Allowlist {
        Allowlist::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn check(l: &Allowlist, u: &str) -> Result<(), Denied> {
        l.check(&Url::parse(u).unwrap())
    }

    #[test]
    fn valid_and_invalid_patterns() {
        for ok in [
            "api.example.com",
            "API.Example.COM.",
            "*.example.com",
            "*",
            "http://*",
            "http://local.test:8080",
            "https://api.example.com/",
            "bücher.example",
            "203.0.113.7",
            "[2001:db8::1]:8443",
            "*:8443",
        ] {
            assert!(is_valid_pattern(ok), "{ok}");
        }
        assert_eq!(validate_pattern("*.example.com"), Ok(()));
        assert!(
            validate_pattern("ftp://x")
                .unwrap_err()
                .contains("only http")
        );
        for bad in [
            "",
            "ftp://example.com",
            "example.com/path",
            "user@example.com",
            "a.*.example.com",
            "*example.com",
            "example.com:99999",
            "*.",
            "*.203.0.113.7",
            "exa mple.com",
            "example.com?q",
        ] {
            assert!(!is_valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn exact_hosts_case_dot_and_idna() {
        let l = list(&["API.example.com.", "bücher.example"]);
        assert_eq!(check(&l, "https://api.example.com/x"), Ok(()));
        assert_eq!(check(&l, "https://API.EXAMPLE.COM./x"), Ok(()));
        assert_eq!(check(&l, "https://xn--bcher-kva.example/"), Ok(()));
        assert_eq!(check(&l, "https://BÜCHER.example/"), Ok(()));
        assert_eq!(check(&l, "https://example.com/"), Err(Denied::Host));
        assert_eq!(check(&l, "https://x.api.example.com/"), Err(Denied::Host));
        assert_eq!(
            check(&l, "https://api.example.com.evil.test/"),
            Err(Denied::Host)
        );
    }

    #[test]
    fn wildcards_are_subdomains_only() {
        let l = list(&["*.example.com"]);
        assert_eq!(check(&l, "https://a.example.com/"), Ok(()));
        assert_eq!(check(&l, "https://a.b.example.com/"), Ok(()));
        assert_eq!(check(&l, "https://example.com/"), Err(Denied::Host));
        assert_eq!(check(&l, "https://badexample.com/"), Err(Denied::Host));
        assert_eq!(
            check(&l, "https://example.com.evil.test/"),
            Err(Denied::Host)
        );
        let any = list(&["*"]);
        assert_eq!(check(&any, "https://anything.test/"), Ok(()));
        assert_eq!(check(&any, "https://127.0.0.1/"), Ok(()));
        assert_eq!(check(&any, "http://anything.test/"), Err(Denied::Scheme));
    }

    #[test]
    fn schemes_and_ports() {
        let l = list(&[
            "api.example.com",
            "http://plain.example.com",
            "ports.example.com:8443",
        ]);
        assert_eq!(check(&l, "https://api.example.com:443/"), Ok(()));
        assert_eq!(check(&l, "http://api.example.com/"), Err(Denied::Scheme));
        assert_eq!(
            check(&l, "https://api.example.com:8443/"),
            Err(Denied::Host)
        );
        assert_eq!(check(&l, "http://plain.example.com/"), Ok(()));
        assert_eq!(check(&l, "https://plain.example.com/"), Ok(()));
        assert_eq!(
            check(&l, "http://plain.example.com:8080/"),
            Err(Denied::Host)
        );
        assert_eq!(check(&l, "https://ports.example.com:8443/"), Ok(()));
        assert_eq!(check(&l, "https://ports.example.com/"), Err(Denied::Host));
        assert_eq!(
            check(&l, "http://ports.example.com:8443/"),
            Err(Denied::Scheme)
        );
        assert_eq!(check(&l, "ftp://api.example.com/"), Err(Denied::Scheme));
        assert_eq!(check(&l, "file:///etc/passwd"), Err(Denied::Scheme));
    }

    #[test]
    fn ip_literal_patterns() {
        let l = list(&["http://127.0.0.1:8080", "[::1]"]);
        assert_eq!(check(&l, "http://127.0.0.1:8080/"), Ok(()));
        assert_eq!(check(&l, "http://2130706433:8080/"), Ok(()));
        assert_eq!(check(&l, "https://[0:0::1]/"), Ok(()));
        assert_eq!(check(&l, "http://127.0.0.2:8080/"), Err(Denied::Host));
    }

    #[test]
    fn empty_list_allows_nothing() {
        let l = Allowlist::empty();
        assert!(l.is_empty());
        assert_eq!(check(&l, "https://example.com/"), Err(Denied::Host));
    }
}
