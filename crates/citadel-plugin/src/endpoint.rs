//! Outgoing webhook endpoints declared as code, in the YAML the seed uses
//! (or its JSON form):
//!
//! ```yaml
//! api_version: v1
//! on: ["build.completed", "auth.user.created"]
//! delivery:
//!   url: "${SECRET:WEBHOOK_URL}"
//!   headers:
//!     X-Source: "SBH"
//!   signing:
//!     alg: "HMAC-SHA256"
//!     secret: "${SECRET:WEBHOOK_SIGNING_KEY}"
//! transform:
//!   language: "ts"
//!   entry: "transforms/build_completed.ts#transform"
//! retry:
//!   max_attempts: 6
//!   backoff: "standard"
//! ```
//!
//! Secrets appear only as `${SECRET:NAME}` references, resolved at
//! delivery time from the tenant's secrets store, so an endpoint file can
//! be reviewed and versioned like code. Signing is always Standard
//! Webhooks (`HMAC-SHA256` over `id.timestamp.body`). Parsing reports
//! every problem with its line and column.

use std::collections::BTreeMap;
use std::time::Duration;

use citadel_scripts::is_secret_name;
use serde::Serialize;

use crate::decode::Sink;
use crate::diag::{Diagnostic, codes};
use crate::doc::{self, Format, Node, Value};
use crate::manifest::{EntryLanguage, is_event_pattern};
use crate::retry::{DEFAULT_DISABLE_AFTER, MAX_ATTEMPTS, RetryPolicy, parse_duration};

const MAX_EVENTS: usize = 64;
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE_BYTES: usize = 2048;
const MAX_URL_BYTES: usize = 2048;
/// Delivery timeouts, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 30_000;

/// Headers the sender sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// One outgoing endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub api_version: String,
    /// Event types (or `*`-segment patterns) delivered to it.
    pub on: Vec<String>,
    pub delivery: Delivery,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    pub retry: RetryPolicy,
    /// How long deliveries may fail without one success before the
    /// endpoint is disabled.
    pub disable_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub url: Template,
    pub headers: BTreeMap<String, Template>,
    /// The signing secret, `whsec_…`, usually a `${SECRET:NAME}`.
    pub signing_secret: Template,
    pub timeout_ms: u64,
}

/// A script that shapes the payload before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transform {
    pub language: EntryLanguage,
    /// The script file.
    pub entry: String,
    /// The function it exports (after `#` in the file; `transform` by
    /// default).
    pub export: String,
}

/// A string with `${SECRET:NAME}` references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Secret(String),
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.to_string()
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(t)?,
                Part::Secret(s) => write!(f, "${{SECRET:{s}}}")?,
            }
        }
        Ok(())
    }
}

impl Template {
    /// Parses `text`; the error says what is wrong with a reference.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            if i > 0 {
                parts.push(Part::Text(rest[..i].to_owned()));
            }
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| "`${` without a closing `}`".to_owned())?;
            let inner = &after[..end];
            let name = inner.strip_prefix("SECRET:").ok_or_else(|| {
                format!("`${{{inner}}}`: only `${{SECRET:NAME}}` references are supported")
            })?;
            if !is_secret_name(name) {
                return Err(format!(
                    "`${{SECRET:{name}}}`: a secret name is A-Z, 0-9 and `_`, starting with a letter"
                ));
            }
            parts.push(Part::Secret(name.to_owned()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The secrets it references, in order.
    pub fn secrets(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Secret(s) => Some(s.as_str()),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The text with each reference replaced; the error names the first
    /// secret `lookup` does not have.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Secret(s) => out.push_str(&lookup(s).ok_or_else(|| s.clone())?),
            }
        }
        Ok(out)
    }

    fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Text(t)) => t,
            _ => "",
        }
    }
}

impl Endpoint {
    /// Every secret the endpoint needs.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out = self.delivery.url.secrets();
        for h in self.delivery.headers.values() {
            out.extend(h.secrets());
        }
        out.extend(self.delivery.signing_secret.secrets());
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The delivery URL with its secrets filled in, checked again (a URL
    /// that came out of a secret was not checked when the file was read).
    pub fn resolve_url(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<url::Url, String> {
        let text = self
            .delivery
            .url
            .render(lookup)
            .map_err(|name| format!("secret `{name}` is not set"))?;
        check_url(&text)
    }

    /// Parses an endpoint document: JSON when it starts with `{`, YAML
    /// otherwise. `file` names it in diagnostics.
    pub fn parse(file: &str, text: &str) -> Result<Endpoint, Vec<Diagnostic>> {
        let format = if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        };
        let root = doc::load(text, format)
            .map_err(|ds| ds.into_iter().map(|d| d.in_file(file)).collect::<Vec<_>>())?;
        let mut sink = Sink::new(file);
        let endpoint = read(&root, &mut sink);
        match endpoint {
            Some(e) if !sink.has_errors() => Ok(e),
            _ => Err(sink.diags),
        }
    }
}

fn check_url(text: &str) -> Result<url::Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}`: only http and https URLs are delivered to"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials belong in a secret header, not in the URL".into());
    }
    Ok(url)
}

const TOP: &[&str] = &[
    "api_version",
    "name",
    "description",
    "on",
    "delivery",
    "transform",
    "retry",
];
const DELIVERY: &[&str] = &["url", "headers", "signing", "timeout_ms"];
const SIGNING: &[&str] = &["alg", "secret"];
const TRANSFORM: &[&str] = &["language", "entry"];
const RETRY: &[&str] = &[
    "max_attempts",
    "backoff",
    "initial",
    "max_delay",
    "schedule",
    "disable_after",
];

fn template(sink: &mut Sink, path: &str, node: &Node) -> Option<Template> {
    let s = sink.string(path, node)?;
    match Template::parse(&s) {
        Ok(t) => Some(t),
        Err(why) => {
            sink.at(codes::INVALID_SECRET_REF, node, format!("`{path}`: {why}"));
            None
        }
    }
}

fn read(root: &Node, sink: &mut Sink) -> Option<Endpoint> {
    let mut top = sink.object("", root)?;
    let api_version = top.require(sink, "api_version").and_then(|n| {
        let v = match &n.value {
            Value::Str(s) => s.clone(),
            _ => {
                sink.wrong_type("api_version", n, "a string");
                return None;
            }
        };
        if v == "v1" {
            Some(v)
        } else {
            sink.at(
                codes::INVALID_API_VERSION,
                n,
                format!("api_version `{v}` is not supported (use `v1`)"),
            );
            None
        }
    });
    for key in ["name", "description"] {
        if let Some(n) = top.get(key) {
            sink.string(key, n);
        }
    }
    let on = top.require(sink, "on").map(|n| {
        let items: Vec<(String, &Node)> = match &n.value {
            Value::Str(s) => vec![(s.clone(), n)],
            _ => sink.strings("on", n, MAX_EVENTS),
        };
        let mut events = Vec::new();
        for (event, item) in items {
            if !is_event_pattern(&event) {
                sink.at(
                    codes::INVALID_EVENT,
                    item,
                    format!("event `{event}` must be dot-separated segments of a-z, 0-9 and `_` (or `*`)"),
                );
            } else if events.contains(&event) {
                sink.at(codes::DUPLICATE_EVENT, item, format!("event `{event}` is listed twice"));
            } else {
                events.push(event);
            }
        }
        if events.is_empty() && !sink.has_errors() {
            sink.at(codes::MISSING_FIELD, n, "`on` lists no event");
        }
        events
    });
    let delivery = top
        .require(sink, "delivery")
        .and_then(|n| read_delivery(n, sink));
    let transform = top.get("transform").and_then(|n| read_transform(n, sink));
    let transform_ok = top.get("transform").is_none() || transform.is_some();
    let (retry, disable_after) = match top.get("retry") {
        None => (Some(RetryPolicy::default()), Some(DEFAULT_DISABLE_AFTER)),
        Some(n) => read_retry(n, sink),
    };
    top.finish(sink, TOP);
    if !transform_ok {
        return None;
    }
    Some(Endpoint {
        api_version: api_version?,
        on: on?,
        delivery: delivery?,
        transform,
        retry: retry?,
        disable_after: disable_after?,
    })
}

fn read_delivery(node: &Node, sink: &mut Sink) -> Option<Delivery> {
    let mut f = sink.object("delivery", node)?;
    let url = f.require(sink, "url").and_then(|n| {
        let t = template(sink, "delivery.url", n)?;
        let text = t.to_string();
        if t.secrets().is_empty() {
            if let Err(why) = check_url(&text) {
                sink.at(codes::INVALID_URL, n, why);
                return None;
            }
        } else {
            let prefix = t.literal_prefix();
            let scheme_ok = prefix.is_empty()
                || "https://".starts_with(prefix)
                || "http://".starts_with(prefix)
                || prefix.starts_with("https://")
                || prefix.starts_with("http://");
            if !scheme_ok || text.len() > MAX_URL_BYTES {
                sink.at(
                    codes::INVALID_URL,
                    n,
                    format!("`{text}` is not an http or https URL"),
                );
                return None;
            }
        }
        Some(t)
    });
    let mut headers = BTreeMap::new();
    let mut headers_ok = true;
    if let Some(n) = f.get("headers") {
        match &n.value {
            Value::Map(entries) => {
                if entries.len() > MAX_HEADERS {
                    sink.at(
                        codes::TOO_MANY_ENTRIES,
                        n,
                        format!("at most {MAX_HEADERS} headers"),
                    );
                    headers_ok = false;
                }
                for (key, value) in entries {
                    let name = &key.name;
                    let token = !name.is_empty()
                        && name.len() <= 64
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                    if !token {
                        sink.error(
                            codes::INVALID_HEADER,
                            key.line,
                            key.column,
                            format!("`{name}` is not a header name"),
                        );
                        headers_ok = false;
                        continue;
                    }
                    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                        sink.error(
                            codes::INVALID_HEADER,
                            key.line,
                            key.column,
                            format!("`{name}` is set by the sender and cannot be overridden"),
                        );
                        headers_ok = false;
                        continue;
                    }
                    let Some(t) = template(sink, &format!("delivery.headers.{name}"), value) else {
                        headers_ok = false;
                        continue;
                    };
                    let text = t.to_string();
                    if text.len() > MAX_HEADER_VALUE_BYTES || text.contains(['\r', '\n', '\0']) {
                        sink.at(
                            codes::INVALID_HEADER,
                            value,
                            format!("the value of `{name}` is too long or has line breaks"),
                        );
                        headers_ok = false;
                        continue;
                    }
                    if headers
                        .keys()
                        .any(|k: &String| k.eq_ignore_ascii_case(name))
                    {
                        sink.error(
                            codes::INVALID_HEADER,
                            key.line,
                            key.column,
                            format!("header `{name}` is set twice"),
                        );
                        headers_ok = false;
                        continue;
                    }
                    headers.insert(name.clone(), t);
                }
            }
            _ => {
                sink.wrong_type("delivery.headers", n, "an object");
                headers_ok = false;
            }
        }
    }
    let signing = f.require(sink, "signing").and_then(|n| {
        let mut s = sink.object("delivery.signing", n)?;
        let alg_ok = match s.get("alg") {
            None => true,
            Some(a) => {
                let alg = sink.string("delivery.signing.alg", a)?;
                let ok = ["HMAC-SHA256", "hmac-sha256", "standard-webhooks", "v1"].contains(&alg.as_str());
                if !ok {
                    sink.at(
                        codes::INVALID_SIGNING,
                        a,
                        format!("signing alg `{alg}` is not supported (deliveries are signed with HMAC-SHA256, the Standard Webhooks `v1` scheme)"),
                    );
                }
                ok
            }
        };
        let secret = s.require(sink, "secret").and_then(|sn| {
            let t = template(sink, "delivery.signing.secret", sn)?;
            let text = t.to_string();
            if t.secrets().is_empty() {
                // A literal secret in a reviewed file is a leaked secret.
                sink.at(
                    codes::INVALID_SIGNING,
                    sn,
                    "the signing secret must be a `${SECRET:NAME}` reference, not a literal",
                );
                return None;
            }
            if text != format!("${{SECRET:{}}}", t.secrets()[0]) {
                sink.at(codes::INVALID_SIGNING, sn, "the signing secret is exactly one `${SECRET:NAME}` reference");
                return None;
            }
            Some(t)
        });
        s.finish(sink, SIGNING);
        if alg_ok { secret } else { None }
    });
    let timeout_ms = match f.get("timeout_ms") {
        None => Some(DEFAULT_TIMEOUT_MS),
        Some(n) => sink.uint("delivery.timeout_ms", n).and_then(|t| {
            if (1..=MAX_TIMEOUT_MS).contains(&t) {
                Some(t)
            } else {
                sink.at(
                    codes::INVALID_TYPE,
                    n,
                    format!("`delivery.timeout_ms` must be 1 to {MAX_TIMEOUT_MS}"),
                );
                None
            }
        }),
    };
    f.finish(sink, DELIVERY);
    if !headers_ok {
        return None;
    }
    Some(Delivery {
        url: url?,
        headers,
        signing_secret: signing?,
        timeout_ms: timeout_ms?,
    })
}

fn read_transform(node: &Node, sink: &mut Sink) -> Option<Transform> {
    let mut f = sink.object("transform", node)?;
    let language = f.get("language").map(|n| {
        let l = sink.string("transform.language", n)?;
        let parsed = EntryLanguage::parse(&l);
        if parsed.is_none() {
            sink.at(
                codes::UNSUPPORTED_LANGUAGE,
                n,
                format!("transform language `{l}` is not supported: transforms are written in JavaScript (`js`) or TypeScript (`ts`)"),
            );
        }
        parsed
    });
    let entry = f.require(sink, "entry").and_then(|n| {
        let text = sink.string("transform.entry", n)?;
        let (file, export) = match text.split_once('#') {
            Some((file, export)) => (file, export),
            None => (text.as_str(), "transform"),
        };
        let export_ok = !export.is_empty()
            && export.len() <= 64
            && export.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && export
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
        if !export_ok {
            sink.at(
                codes::INVALID_TRANSFORM,
                n,
                format!("`{export}` is not a function name"),
            );
            return None;
        }
        match crate::bundle::normalize_name(file.as_bytes()) {
            Ok(file) => Some((file, export.to_owned(), n)),
            Err(d) => {
                sink.at(
                    codes::INVALID_TRANSFORM,
                    n,
                    format!("transform entry: {}", d.message),
                );
                None
            }
        }
    });
    f.finish(sink, TRANSFORM);
    let (file, export, entry_node) = entry?;
    let language = match language {
        Some(l) => l?,
        None => match EntryLanguage::from_path(&file) {
            Some(l) => l,
            None => {
                sink.at(
                    codes::UNSUPPORTED_LANGUAGE,
                    entry_node,
                    format!("transform `{file}` is not a JavaScript or TypeScript file"),
                );
                return None;
            }
        },
    };
    Some(Transform {
        language,
        entry: file,
        export,
    })
}

fn duration(sink: &mut Sink, path: &str, node: &Node) -> Option<Duration> {
    let parsed = match &node.value {
        Value::Int(i) if *i >= 0 => Some(Duration::from_secs(*i as u64)),
        Value::Str(s) => parse_duration(s),
        _ => None,
    };
    if parsed.is_none() {
        sink.at(
            codes::INVALID_RETRY,
            node,
            format!("`{path}` must be a duration such as `30s`, `5m`, `2h` or `1d`"),
        );
    }
    parsed
}

fn read_retry(node: &Node, sink: &mut Sink) -> (Option<RetryPolicy>, Option<Duration>) {
    let Some(mut f) = sink.object("retry", node) else {
        return (None, None);
    };
    let max_attempts = f.get("max_attempts").map(|n| {
        sink.uint("retry.max_attempts", n).and_then(|m| {
            if (1..=MAX_ATTEMPTS as u64).contains(&m) {
                Some(m as usize)
            } else {
                sink.at(
                    codes::INVALID_RETRY,
                    n,
                    format!("`retry.max_attempts` must be 1 to {MAX_ATTEMPTS}"),
                );
                None
            }
        })
    });
    let backoff = f
        .get("backoff")
        .map(|n| (sink.string("retry.backoff", n), n));
    let initial = f.get("initial").map(|n| duration(sink, "retry.initial", n));
    let max_delay = f
        .get("max_delay")
        .map(|n| duration(sink, "retry.max_delay", n));
    let schedule = f.get("schedule").map(|n| {
        let items = sink.list("retry.schedule", n, MAX_ATTEMPTS);
        let delays: Vec<Option<Duration>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| duration(sink, &format!("retry.schedule[{i}]"), item))
            .collect();
        if items.is_empty() {
            sink.at(codes::INVALID_RETRY, n, "`retry.schedule` lists no attempt");
            return None;
        }
        delays.into_iter().collect::<Option<Vec<_>>>()
    });
    let disable_after = match f.get("disable_after") {
        None => Some(DEFAULT_DISABLE_AFTER),
        Some(n) => duration(sink, "retry.disable_after", n),
    };
    f.finish(sink, RETRY);
    let max_attempts = match max_attempts {
        None => None,
        Some(None) => return (None, disable_after),
        Some(Some(m)) => Some(m),
    };
    let unwrap = |d: Option<Option<Duration>>, default: Duration| match d {
        None => Some(default),
        Some(d) => d,
    };
    let policy = if let Some(schedule) = schedule {
        if backoff.is_some() || initial.is_some() || max_delay.is_some() {
            sink.at(codes::INVALID_RETRY, node, "`retry.schedule` is given in full: it takes no `backoff`, `initial` or `max_delay`");
            return (None, disable_after);
        }
        let Some(mut schedule) = schedule else {
            return (None, disable_after);
        };
        if let Some(m) = max_attempts {
            schedule.truncate(m);
        }
        Some(RetryPolicy {
            schedule,
            ..RetryPolicy::default()
        })
    } else {
        let kind = match &backoff {
            None => Some("standard".to_owned()),
            Some((kind, _)) => kind.clone(),
        };
        let (Some(initial), Some(max_delay)) = (
            unwrap(initial, Duration::from_secs(5)),
            unwrap(max_delay, Duration::from_secs(10 * 3600)),
        ) else {
            return (None, disable_after);
        };
        match kind.as_deref() {
            Some("standard") => Some(RetryPolicy::standard(max_attempts.unwrap_or(8))),
            Some("exponential") => Some(RetryPolicy::exponential(
                max_attempts.unwrap_or(8),
                initial,
                max_delay,
            )),
            Some("fixed") => Some(RetryPolicy::fixed(max_attempts.unwrap_or(8), initial)),
            Some(other) => {
                if let Some((_, n)) = backoff {
                    sink.at(
                        codes::INVALID_RETRY,
                        n,
                        format!("backoff `{other}` must be `standard`, `exponential` or `fixed`"),
                    );
                }
                None
            }
            None => None,
        }
    };
    (policy, disable_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("https://${SECRET:HOST}/hook?k=${SECRET:KEY}").unwrap();
        assert_eq!(t.secrets(), vec!["HOST", "KEY"]);
        assert_eq!(t.to_string(), "https://${SECRET:HOST}/hook?k=${SECRET:KEY}");
        let got = t.render(|n| Some(n.to_lowercase())).unwrap();
        assert_eq!(got, "https://host/hook?k=key");
        assert_eq!(t.render(|_| None), Err("HOST".to_owned()));
        for bad in ["${ENV:X}", "${SECRET:lower}", "${SECRET:X", "a${}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
