//! The capabilities a version is granted, in the shape SPEC.md gives them.
//! The grant is part of the version: reviewed and approved with its code.

use citadel_domain::{Capability, Grants};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapabilitySpec {
    /// `api.http.fetch` to these hosts (`api.example.com`, `*.example.org`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpGrant>,
    /// `api.secrets.get` for these names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// `api.kv`, the tenant's key-value store.
    #[serde(skip_serializing_if = "is_false")]
    pub kv: bool,
    /// `api.db.query` on these data sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub db: Vec<String>,
    /// `api.events.emit` of event types matching these patterns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsGrant>,
    /// `api.sleep(ms)`.
    #[serde(skip_serializing_if = "is_false")]
    pub sleep: bool,
    /// `api.echo(value)`: a round trip through the host, for diagnostics.
    #[serde(skip_serializing_if = "is_false")]
    pub echo: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsGrant {
    pub emit: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

const MAX_ENTRIES: usize = 64;

impl CapabilitySpec {
    /// The capabilities as the sandbox sees them: present or absent.
    pub fn grants(&self) -> Grants {
        let mut g = Grants::NONE;
        let mut add = |on: bool, c| {
            if on {
                g = g.with(c);
            }
        };
        add(
            self.http.as_ref().is_some_and(|h| !h.allow.is_empty()),
            Capability::Http,
        );
        add(!self.secrets.is_empty(), Capability::Secrets);
        add(self.kv, Capability::Kv);
        add(!self.db.is_empty(), Capability::Db);
        add(
            self.events.as_ref().is_some_and(|e| !e.emit.is_empty()),
            Capability::Events,
        );
        add(self.sleep, Capability::Sleep);
        add(self.echo, Capability::Echo);
        g
    }

    /// Checks every entry's shape; the message names the offending entry.
    pub fn validate(&self) -> Result<(), String> {
        fn each(
            what: &str,
            items: &[String],
            ok: impl Fn(&str) -> bool,
            shape: &str,
        ) -> Result<(), String> {
            if items.len() > MAX_ENTRIES {
                return Err(format!(
                    "capabilities.{what}: at most {MAX_ENTRIES} entries"
                ));
            }
            for item in items {
                if item.is_empty() || item.len() > 253 || !ok(item) {
                    return Err(format!("capabilities.{what}: `{item}` is not {shape}"));
                }
            }
            Ok(())
        }
        if let Some(http) = &self.http {
            each(
                "http.allow",
                &http.allow,
                is_host_pattern,
                "a host pattern (`api.example.com`, `*.example.com`, `*`, `http://host`, `host:port`)",
            )?;
        }
        each(
            "secrets",
            &self.secrets,
            is_secret_name,
            "a secret name (A-Z, 0-9, _)",
        )?;
        each(
            "db",
            &self.db,
            |s| {
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
            },
            "a data source name (a-z, 0-9, _, -)",
        )?;
        if let Some(events) = &self.events {
            each(
                "events.emit",
                &events.emit,
                |s| {
                    s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b))
                },
                "an event type pattern (letters, digits, `.`, `_`, `-`, `*`)",
            )?;
        }
        Ok(())
    }
}

/// Secret names: `A-Z`, `0-9` and `_`, starting with a letter, at most 253
/// bytes (so a `[REDACTED:NAME]` marker is plain JSON-safe text).
pub fn is_secret_name(s: &str) -> bool {
    s.len() <= 253
        && s.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A host pattern of `http.allow` (and of a tenant's `http_allow`):
/// an optional `http://` or `https://`, then `*`, `*.domain` or a host
/// name (or IPv4 address), then an optional `:port`. Checked here for
/// shape; the egress crate parses and enforces it.
pub fn is_host_pattern(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .unwrap_or(s);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |n| n == 0)) {
        return false;
    }
    if host == "*" {
        return true;
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_parses_and_grants() {
        let spec: CapabilitySpec = serde_json::from_str(
            r#"{"http": {"allow": ["api.example.com", "*.example.org"]}, "secrets": ["STRIPE_KEY"],
                "kv": true, "db": ["reporting"], "events": {"emit": ["user.*"]}, "sleep": true}"#,
        )
        .unwrap();
        assert_eq!(spec.validate(), Ok(()));
        let g = spec.grants();
        for c in Capability::ALL {
            assert_eq!(g.allows(c), c != Capability::Echo, "{c:?}");
        }
        assert_eq!(
            serde_json::to_string(&CapabilitySpec::default()).unwrap(),
            "{}"
        );
    }

    #[test]
    fn host_patterns() {
        for ok in [
            "api.example.com",
            "*.example.com",
            "*",
            "http://localhost",
            "https://api.example.com",
            "127.0.0.1:8080",
            "http://*.internal.example:8443",
        ] {
            assert!(is_host_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "ftp://x.com",
            "x.com/",
            "x.com:99999",
            "x.com:",
            "*.",
            "a.*.com",
            "Example.com",
            "http://",
            "-a.com",
        ] {
            assert!(!is_host_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn bad_grants_are_named() {
        let cases = [
            (
                r#"{"http": {"allow": ["https://x.com/path"]}}"#,
                "capabilities.http.allow: `https://x.com/path` is not a host pattern (`api.example.com`, `*.example.com`, `*`, `http://host`, `host:port`)",
            ),
            (
                r#"{"http": {"allow": ["x.com:0"]}}"#,
                "capabilities.http.allow: `x.com:0` is not a host pattern (`api.example.com`, `*.example.com`, `*`, `http://host`, `host:port`)",
            ),
            (
                r#"{"secrets": ["stripe"]}"#,
                "capabilities.secrets: `stripe` is not a secret name (A-Z, 0-9, _)",
            ),
            (
                r#"{"db": ["Prod DB"]}"#,
                "capabilities.db: `Prod DB` is not a data source name (a-z, 0-9, _, -)",
            ),
            (
                r#"{"events": {"emit": ["a b"]}}"#,
                "capabilities.events.emit: `a b` is not an event type pattern (letters, digits, `.`, `_`, `-`, `*`)",
            ),
        ];
        for (json, message) in cases {
            let spec: CapabilitySpec = serde_json::from_str(json).unwrap();
            assert_eq!(spec.validate().unwrap_err(), message, "{json}");
        }
        assert!(serde_json::from_str::<CapabilitySpec>(r#"{"shell": true}"#).is_err());
    }
}
