//! The plugin manifest, `citadel-plugin.json` or `citadel-plugin.yaml`:
//! what a plugin is called, which version it is, what it is granted, and
//! every event, route and job it answers. The manifest is the contract the
//! tenant reviews at install time, so everything the code does must be
//! declared here and everything declared here is checked for shape.
//!
//! Decoding never stops at the first problem: it reads as much as it can,
//! reports each problem where it is, and leaves defaults in place of what
//! it could not read so the entry module can still be checked against the
//! rest.

use citadel_scripts::{CapabilitySpec, CronSchedule, SemVer, is_secret_name};
use serde::Serialize;

use crate::decode::Sink;
use crate::diag::{Diagnostic, codes};
use crate::doc::{self, Format, Node};
use crate::schema;

/// The manifest file names a bundle may have at its root.
pub const MANIFEST_FILES: [&str; 3] = [
    "citadel-plugin.json",
    "citadel-plugin.yaml",
    "citadel-plugin.yml",
];

const MAX_EVENTS: usize = 64;
const MAX_ROUTES: usize = 64;
const MAX_JOBS: usize = 32;
const MAX_SECRETS: usize = 64;
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_ROUTE_PATH_BYTES: usize = 256;

/// The permission a `token` route needs when its manifest names none:
/// a route runs the tenant's code, as a script run does.
pub const DEFAULT_ROUTE_PERMISSION: &str = "script.run";

/// A manifest that decoded; the values are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub slug: String,
    pub name: String,
    #[serde(serialize_with = "display")]
    pub version: SemVer,
    pub description: String,
    /// The entry module, a path inside the bundle.
    pub entry: String,
    pub language: EntryLanguage,
    /// The capability grant, in the shape of a script's `capabilities`.
    pub permissions: CapabilitySpec,
    /// Event types (or patterns with `*` segments) the plugin hooks.
    pub events: Vec<String>,
    pub routes: Vec<RouteDecl>,
    pub jobs: Vec<JobDecl>,
    /// Secrets the tenant must set before the plugin is enabled.
    pub secrets: Vec<String>,
    /// The JSON schema of the plugin's configuration (an object schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

impl Manifest {
    /// Reads a stored manifest's text again (`file` names its format);
    /// every error when it does not decode.
    pub fn parse(file: &str, text: &str) -> Result<Manifest, Vec<Diagnostic>> {
        let (manifest, _, diags) = decode(file, text);
        if diags.iter().any(Diagnostic::is_error) {
            Err(diags)
        } else {
            Ok(manifest)
        }
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The languages an entry module may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryLanguage {
    Js,
    Ts,
}

impl EntryLanguage {
    pub fn analyzer(self) -> citadel_analyzer::Language {
        match self {
            EntryLanguage::Js => citadel_analyzer::Language::Js,
            EntryLanguage::Ts => citadel_analyzer::Language::Ts,
        }
    }

    /// `js`, `javascript`, `ts`, `typescript`; anything else is a language
    /// Citadel does not run (yet).
    pub fn parse(s: &str) -> Option<EntryLanguage> {
        match s.to_ascii_lowercase().as_str() {
            "js" | "javascript" => Some(EntryLanguage::Js),
            "ts" | "typescript" => Some(EntryLanguage::Ts),
            _ => None,
        }
    }

    /// The language an entry file's extension implies.
    pub fn from_path(path: &str) -> Option<EntryLanguage> {
        let ext = path.rsplit_once('.')?.1;
        match ext {
            "js" | "mjs" | "cjs" => Some(EntryLanguage::Js),
            "ts" | "mts" | "cts" => Some(EntryLanguage::Ts),
            _ => None,
        }
    }
}

/// HTTP methods a route may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One HTTP route under `/ext/{tenant}/{slug}/…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDecl {
    pub method: Method,
    /// `/orders/:id`: literal segments and `:name` parameters.
    pub path: String,
    pub auth: RouteAuth,
}

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "auth", rename_all = "lowercase")]
pub enum RouteAuth {
    /// A bearer token of the tenant with this permission (the default).
    Token { permission: String },
    /// Anyone.
    Public,
    /// An inbound webhook: a Standard Webhooks signature made with the
    /// named secret (one of the manifest's `secrets`).
    Signature { secret: String },
}

/// One scheduled job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobDecl {
    pub name: String,
    pub cron: String,
    /// IANA time zone the cron expression is read in (`UTC` by default).
    pub timezone: String,
}

/// Where each declaration is in the manifest, for diagnostics about the
/// entry module (declared but never registered).
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions {
    pub events: Vec<(u32, u32)>,
    pub routes: Vec<(u32, u32)>,
    pub jobs: Vec<(u32, u32)>,
    pub entry: (u32, u32),
}

/// The path pattern of a route with parameter names erased, so that
/// `/a/:id` and `/a/:name` are seen as the same route.
pub fn route_shape(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with(':') { ":" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes a manifest text. The manifest is always returned (with defaults
/// where a value could not be read) together with every diagnostic, so that
/// later checks can still run.
pub(crate) fn decode(file: &str, text: &str) -> (Manifest, Positions, Vec<Diagnostic>) {
    let format = if file.ends_with(".json") {
        Format::Json
    } else {
        Format::Yaml
    };
    let mut manifest = Manifest {
        slug: String::new(),
        name: String::new(),
        version: SemVer::FIRST,
        description: String::new(),
        entry: String::new(),
        language: EntryLanguage::Js,
        permissions: CapabilitySpec::default(),
        events: Vec::new(),
        routes: Vec::new(),
        jobs: Vec::new(),
        secrets: Vec::new(),
        config: None,
    };
    let mut positions = Positions::default();
    let root = match doc::load(text, format) {
        Ok(root) => root,
        Err(diags) => {
            let diags = diags.into_iter().map(|d| d.in_file(file)).collect();
            return (manifest, positions, diags);
        }
    };
    let mut sink = Sink::new(file);
    read(&root, &mut sink, &mut manifest, &mut positions);
    (manifest, positions, sink.diags)
}

const TOP_FIELDS: &[&str] = &[
    "slug",
    "name",
    "version",
    "description",
    "entry",
    "language",
    "permissions",
    "events",
    "routes",
    "jobs",
    "secrets",
    "config",
];

fn read(root: &Node, sink: &mut Sink, m: &mut Manifest, pos: &mut Positions) {
    let Some(mut top) = sink.object("", root) else {
        return;
    };
    if let Some(node) = top.require(sink, "slug")
        && let Some(slug) = sink.string("slug", node)
    {
        if !is_slug(&slug) {
            sink.at(
                    codes::INVALID_SLUG,
                    node,
                    format!(
                        "slug `{slug}` must be 2 to 64 characters of a-z, 0-9 and single `-`, starting with a letter"
                    ),
                );
        }
        m.slug = slug;
    }
    if let Some(node) = top.require(sink, "name")
        && let Some(name) = sink.string("name", node)
    {
        let chars = name.chars().count();
        if name.trim().is_empty() || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            sink.at(
                codes::INVALID_NAME,
                node,
                format!("name must be 1 to {MAX_NAME_CHARS} characters without control characters"),
            );
        }
        m.name = name;
    }
    if let Some(node) = top.require(sink, "version")
        && let Some(v) = match &node.value {
            // `version: 1.0` is a number to YAML; say what to write.
            doc::Value::Int(_) | doc::Value::Float(_) => {
                sink.at(
                    codes::INVALID_VERSION,
                    node,
                    "version must be a semantic version MAJOR.MINOR.PATCH such as `1.0.0` (quote it in YAML)",
                );
                None
            }
            _ => sink.string("version", node),
        }
    {
        match SemVer::parse(&v) {
            Some(v) => m.version = v,
            None => sink.at(
                codes::INVALID_VERSION,
                node,
                format!(
                    "version `{v}` is not a semantic version MAJOR.MINOR.PATCH (such as `1.0.0`)"
                ),
            ),
        }
    }
    if let Some(node) = top.get("description")
        && let Some(d) = sink.string("description", node)
    {
        if d.chars().count() > MAX_DESCRIPTION_CHARS {
            sink.at(
                codes::INVALID_DESCRIPTION,
                node,
                format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
        m.description = d;
    }
    let language_node = top.get("language");
    let mut language = None;
    if let Some(node) = language_node
        && let Some(l) = sink.string("language", node)
    {
        match EntryLanguage::parse(&l) {
                Some(l) => language = Some(l),
                None => sink.at(
                    codes::UNSUPPORTED_LANGUAGE,
                    node,
                    format!("language `{l}` is not supported: plugins are written in JavaScript (`js`) or TypeScript (`ts`)"),
                ),
            }
    }
    if let Some(node) = top.require(sink, "entry") {
        pos.entry = (node.line, node.column);
        if let Some(entry) = sink.string("entry", node) {
            match crate::bundle::normalize_name(entry.as_bytes()) {
                Err(d) => sink.at(
                    codes::INVALID_ENTRY,
                    node,
                    format!("entry `{entry}`: {}", d.message),
                ),
                Ok(normal) => {
                    if language.is_none() && language_node.is_none() {
                        match EntryLanguage::from_path(&normal) {
                            Some(l) => language = Some(l),
                            None => sink.at(
                                codes::UNSUPPORTED_LANGUAGE,
                                node,
                                format!("entry `{entry}` is not a JavaScript (.js, .mjs) or TypeScript (.ts, .mts) file; other languages are not supported"),
                            ),
                        }
                    }
                    m.entry = normal;
                }
            }
        }
    }
    m.language = language.unwrap_or(EntryLanguage::Js);
    if let Some(node) = top.get("permissions") {
        read_permissions(node, sink, m);
    }
    if let Some(node) = top.get("secrets") {
        for (name, item) in sink.strings("secrets", node, MAX_SECRETS) {
            if !is_secret_name(&name) {
                sink.at(
                    codes::INVALID_SECRET_NAME,
                    item,
                    format!("secret `{name}` must be A-Z, 0-9 and `_`, starting with a letter"),
                );
            } else if m.secrets.contains(&name) {
                sink.at(
                    codes::DUPLICATE_SECRET,
                    item,
                    format!("secret `{name}` is listed twice"),
                );
            } else {
                m.secrets.push(name);
            }
        }
    }
    if let Some(node) = top.get("events") {
        for (event, item) in sink.strings("events", node, MAX_EVENTS) {
            if !is_event_pattern(&event) {
                sink.at(
                    codes::INVALID_EVENT,
                    item,
                    format!("event `{event}` must be dot-separated segments of a-z, 0-9 and `_` (or `*`), such as `auth.user.created`"),
                );
            } else if m.events.contains(&event) {
                sink.at(
                    codes::DUPLICATE_EVENT,
                    item,
                    format!("event `{event}` is listed twice"),
                );
            } else {
                m.events.push(event);
                pos.events.push((item.line, item.column));
            }
        }
    }
    if let Some(node) = top.get("routes") {
        for item in sink.list("routes", node, MAX_ROUTES) {
            if let Some(route) = read_route(item, sink, &m.secrets) {
                let shape = route_shape(&route.path);
                if m.routes
                    .iter()
                    .any(|r| r.method == route.method && route_shape(&r.path) == shape)
                {
                    sink.at(
                        codes::DUPLICATE_ROUTE,
                        item,
                        format!(
                            "route {} {} is declared twice",
                            route.method.as_str(),
                            route.path
                        ),
                    );
                } else {
                    m.routes.push(route);
                    pos.routes.push((item.line, item.column));
                }
            }
        }
    }
    if let Some(node) = top.get("jobs") {
        for item in sink.list("jobs", node, MAX_JOBS) {
            if let Some(job) = read_job(item, sink) {
                if m.jobs.iter().any(|j| j.name == job.name) {
                    sink.at(
                        codes::DUPLICATE_JOB,
                        item,
                        format!("job `{}` is declared twice", job.name),
                    );
                } else {
                    m.jobs.push(job);
                    pos.jobs.push((item.line, item.column));
                }
            }
        }
    }
    if let Some(node) = top.get("config") {
        let value = node.to_json();
        match schema::check_schema(&value) {
            Ok(()) => m.config = Some(value),
            Err(message) => sink.at(
                codes::INVALID_CONFIG_SCHEMA,
                node,
                format!("config: {message}"),
            ),
        }
    }
    top.finish(sink, TOP_FIELDS);
}

fn read_permissions(node: &Node, sink: &mut Sink, m: &mut Manifest) {
    if !matches!(node.value, doc::Value::Map(_)) {
        sink.wrong_type(
            "permissions",
            node,
            "an object (a capability grant such as {\"http\": {\"allow\": [\"api.example.com\"]}, \"kv\": true})",
        );
        return;
    }
    let (message, quoted) = match serde_json::from_value::<CapabilitySpec>(node.to_json()) {
        Err(e) => (format!("permissions: {e}"), true),
        Ok(spec) => match spec.validate() {
            Err(message) => (message.replacen("capabilities.", "permissions.", 1), true),
            Ok(()) => {
                m.permissions = spec;
                return;
            }
        },
    };
    // Both messages name the offending key or value between backticks:
    // point at it rather than at the whole grant.
    let at = quoted
        .then(|| message.split('`').nth(1))
        .flatten()
        .and_then(|name| locate(node, name))
        .unwrap_or((node.line, node.column));
    sink.error(codes::INVALID_PERMISSIONS, at.0, at.1, message);
}

/// The first key or string value equal to `text` under `node`.
fn locate(node: &Node, text: &str) -> Option<(u32, u32)> {
    match &node.value {
        doc::Value::Str(s) if s == text => Some((node.line, node.column)),
        doc::Value::Seq(items) => items.iter().find_map(|n| locate(n, text)),
        doc::Value::Map(entries) => entries.iter().find_map(|(k, v)| {
            if k.name == text {
                Some((k.line, k.column))
            } else {
                locate(v, text)
            }
        }),
        _ => None,
    }
}

const ROUTE_FIELDS: &[&str] = &[
    "method",
    "path",
    "auth",
    "permission",
    "secret",
    "description",
];

fn read_route(item: &Node, sink: &mut Sink, secrets: &[String]) -> Option<RouteDecl> {
    let mut f = sink.object("routes[]", item)?;
    let method = f.require(sink, "method").and_then(|node| {
        let s = sink.string("routes[].method", node)?;
        let m = Method::parse(&s);
        if m.is_none() {
            sink.at(
                codes::INVALID_METHOD,
                node,
                format!("method `{s}` must be one of GET, POST, PUT, PATCH, DELETE"),
            );
        }
        m
    });
    let path = f.require(sink, "path").and_then(|node| {
        let s = sink.string("routes[].path", node)?;
        match check_route_path(&s) {
            Ok(()) => Some(s),
            Err(why) => {
                sink.at(
                    codes::INVALID_ROUTE_PATH,
                    node,
                    format!("route path `{s}`: {why}"),
                );
                None
            }
        }
    });
    let auth_node = f.get("auth");
    let auth_kind = match auth_node {
        None => Some("token".to_owned()),
        Some(node) => sink.string("routes[].auth", node),
    };
    let permission = f.get("permission");
    let secret = f.get("secret");
    if let Some(node) = f.get("description") {
        sink.string("routes[].description", node);
    }
    f.finish(sink, ROUTE_FIELDS);
    let auth = match auth_kind.as_deref() {
        Some("token") => {
            if let Some(node) = secret {
                sink.at(
                    codes::INVALID_AUTH,
                    node,
                    "`secret` is only for routes with `auth: signature`",
                );
            }
            let permission = match permission {
                None => Some(DEFAULT_ROUTE_PERMISSION.to_owned()),
                Some(node) => sink.string("routes[].permission", node).and_then(|p| {
                    if is_permission_name(&p) {
                        Some(p)
                    } else {
                        sink.at(
                            codes::INVALID_PERMISSION,
                            node,
                            format!("permission `{p}` must look like `resource.action` (a-z, 0-9, `_`, `.`)"),
                        );
                        None
                    }
                }),
            };
            permission.map(|permission| RouteAuth::Token { permission })
        }
        Some("public") => {
            for node in [permission, secret].into_iter().flatten() {
                sink.at(
                    codes::INVALID_AUTH,
                    node,
                    "a public route takes no `permission` or `secret`",
                );
            }
            Some(RouteAuth::Public)
        }
        Some("signature") => {
            if let Some(node) = permission {
                sink.at(
                    codes::INVALID_AUTH,
                    node,
                    "`permission` is only for routes with `auth: token`",
                );
            }
            match secret {
                None => {
                    sink.at(
                        codes::MISSING_FIELD,
                        item,
                        "a route with `auth: signature` names the `secret` its signatures are made with",
                    );
                    None
                }
                Some(node) => sink.string("routes[].secret", node).and_then(|s| {
                    if secrets.contains(&s) {
                        Some(RouteAuth::Signature { secret: s })
                    } else {
                        sink.at(
                            codes::UNDECLARED_SECRET,
                            node,
                            format!("secret `{s}` is not one of the manifest's `secrets`"),
                        );
                        None
                    }
                }),
            }
        }
        Some(other) => {
            if let Some(node) = auth_node {
                sink.at(
                    codes::INVALID_AUTH,
                    node,
                    format!("auth `{other}` must be `token`, `public` or `signature`"),
                );
            }
            None
        }
        None => None,
    };
    Some(RouteDecl {
        method: method?,
        path: path?,
        auth: auth?,
    })
}

const JOB_FIELDS: &[&str] = &["name", "cron", "timezone", "description"];

fn read_job(item: &Node, sink: &mut Sink) -> Option<JobDecl> {
    let mut f = sink.object("jobs[]", item)?;
    let name = f.require(sink, "name").and_then(|node| {
        let s = sink.string("jobs[].name", node)?;
        if is_job_name(&s) {
            Some(s)
        } else {
            sink.at(
                codes::INVALID_JOB_NAME,
                node,
                format!("job name `{s}` must be 1 to 64 characters of a-z, 0-9 and `_`, starting with a letter"),
            );
            None
        }
    });
    let cron_node = f.require(sink, "cron");
    let cron = cron_node.and_then(|node| sink.string("jobs[].cron", node));
    let tz_node = f.get("timezone");
    let timezone = match tz_node {
        None => Some("UTC".to_owned()),
        Some(node) => sink.string("jobs[].timezone", node),
    };
    if let Some(node) = f.get("description") {
        sink.string("jobs[].description", node);
    }
    f.finish(sink, JOB_FIELDS);
    let (cron, cron_node) = (cron?, cron_node?);
    // The expression is checked on its own first, so a bad expression and
    // a bad time zone are each reported where they are.
    if let Err(message) = CronSchedule::parse(&cron, "UTC") {
        sink.at(codes::INVALID_CRON, cron_node, message);
        return None;
    }
    let timezone = timezone?;
    let schedule = match CronSchedule::parse(&cron, &timezone) {
        Ok(s) => s,
        Err(message) => {
            let node = tz_node.unwrap_or(cron_node);
            sink.at(codes::INVALID_TIMEZONE, node, message);
            return None;
        }
    };
    Some(JobDecl {
        name: name?,
        cron: schedule.expression().to_owned(),
        timezone: schedule.timezone().to_owned(),
    })
}

/// 2 to 64 characters of `a-z`, `0-9` and single `-`, starting with a
/// letter and not ending with `-`: safe in a URL path, a file name and a
/// metric label as it is.
pub fn is_slug(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_job_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `auth.user.created`, `order.*`: dot-separated segments of `a-z`, `0-9`
/// and `_`, or `*` for any one segment.
pub fn is_event_pattern(s: &str) -> bool {
    s.len() <= 128
        && s.split('.').all(|seg| {
            seg == "*"
                || (!seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        })
}

/// Whether an event type matches a declared pattern (`*` is one segment).
pub fn event_matches(pattern: &str, event: &str) -> bool {
    let mut p = pattern.split('.');
    let mut e = event.split('.');
    loop {
        match (p.next(), e.next()) {
            (None, None) => return true,
            (Some(ps), Some(es)) if ps == "*" || ps == es => {}
            _ => return false,
        }
    }
}

fn is_permission_name(s: &str) -> bool {
    s.len() <= 64
        && s.contains('.')
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// A route path: `/`, or `/`-separated segments that are literals
/// (letters, digits, `-`, `_`, `.`, `~`, not `.` or `..`) or parameters
/// (`:name`, a-z, 0-9, `_`, each name once), without a trailing `/`.
pub fn check_route_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_ROUTE_PATH_BYTES {
        return Err(format!("longer than {MAX_ROUTE_PATH_BYTES} bytes"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must start with `/`".into());
    };
    if rest.is_empty() {
        return Ok(());
    }
    let mut params: Vec<&str> = Vec::new();
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err("has an empty segment (`//` or a trailing `/`)".into());
        }
        if let Some(name) = seg.strip_prefix(':') {
            let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(format!(
                    "parameter `{seg}` must be `:` and a name of a-z, 0-9 and `_`"
                ));
            }
            if params.contains(&name) {
                return Err(format!("parameter `:{name}` appears twice"));
            }
            params.push(name);
        } else if seg == "." || seg == ".." {
            return Err("`.` and `..` segments are not allowed".into());
        } else if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
        {
            return Err(format!(
                "segment `{seg}` may hold only letters, digits, `-`, `_`, `.` and `~`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        for ok in ["welcome-email", "ab", "kpi2"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["a", "Welcome", "-a", "a-", "a--b", "a_b", "1ab", ""] {
            assert!(!is_slug(bad), "{bad}");
        }
        for ok in ["/", "/ping", "/orders/:id", "/a/:x/b/:y_2", "/v1.0/x~y"] {
            assert_eq!(check_route_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "ping", "/a/", "//", "/a/..", "/:id/:id", "/:ID", "/a b", "/a?x=1",
        ] {
            assert!(check_route_path(bad).is_err(), "{bad}");
        }
        assert!(event_matches("order.*", "order.paid"));
        assert!(!event_matches("order.*", "order.paid.late"));
        assert!(event_matches("auth.user.created", "auth.user.created"));
        assert_eq!(route_shape("/a/:id/b"), "/a/:/b");
    }
}
