//! A bundle checked as a whole: the manifest, the entry module, and the
//! two against each other. Every problem is reported in one pass, because a
//! developer fixing a plugin wants the full list, not one error per try.

use serde::Serialize;

use crate::bundle::Bundle;
use crate::diag::{Diagnostic, Severity, codes};
use crate::entry::{self, Kind, Registration};
use crate::manifest::{self, Manifest, event_matches};

/// A bundle that passed validation, with what was learnt on the way.
#[derive(Debug, Clone, Serialize)]
pub struct ValidPlugin {
    pub manifest: Manifest,
    /// Every SDK registration of the entry module, in source order.
    pub registrations: Vec<Registration>,
    /// Problems that do not refuse the bundle.
    pub warnings: Vec<Diagnostic>,
    #[serde(skip)]
    pub bundle: Bundle,
}

impl ValidPlugin {
    /// The entry module's source.
    pub fn entry_source(&self) -> &str {
        self.bundle
            .files
            .get(&self.manifest.entry)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// Validates a bundle; on failure, every error and warning found.
pub fn validate(bundle: &Bundle) -> Result<ValidPlugin, Vec<Diagnostic>> {
    let text = match bundle.manifest_text() {
        Ok(t) => t,
        Err(d) => return Err(vec![d]),
    };
    let (manifest, positions, mut diags) = manifest::decode(&bundle.manifest, text);
    let mut registrations = Vec::new();
    let language_refused = diags.iter().any(|d| d.code == codes::UNSUPPORTED_LANGUAGE);
    let syntax_broken = diags.iter().any(|d| d.code == codes::MANIFEST_SYNTAX);
    if !manifest.entry.is_empty() && !language_refused && !syntax_broken {
        match bundle.files.get(&manifest.entry) {
            None => diags.push(
                Diagnostic::error(
                    codes::ENTRY_NOT_FOUND,
                    format!("the entry `{}` is not in the bundle", manifest.entry),
                )
                .in_file(&bundle.manifest)
                .at(positions.entry.0, positions.entry.1),
            ),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Err(_) => diags.push(
                    Diagnostic::error(codes::ENTRY_NOT_UTF8, "the entry module is not UTF-8 text")
                        .in_file(&manifest.entry),
                ),
                Ok(source) => {
                    registrations = check_entry(bundle, &manifest, &positions, source, &mut diags);
                }
            },
        }
    }
    // Per file, in reading order.
    diags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(ValidPlugin {
        manifest,
        registrations,
        warnings: diags,
        bundle: bundle.clone(),
    })
}

/// What the scan of a source that parses found.
type Scanned = entry::Scan;

/// The analyzer's preparation and the registration scan (when the source
/// parses), together on a thread with the analyzer's large stack: both walk
/// the tree recursively, and callers may be on small async worker stacks.
fn analyse(
    source: &str,
    language: manifest::EntryLanguage,
) -> (citadel_analyzer::Prepared, Option<Scanned>) {
    let work = || {
        let prepared = citadel_analyzer::prepare(source, language.analyzer());
        let scanned = (!prepared.has_syntax_errors()).then(|| entry::scan(source, language));
        (prepared, scanned)
    };
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("citadel-plugin-entry".into())
            .stack_size(citadel_analyzer::ANALYSIS_STACK_BYTES)
            .spawn_scoped(scope, work)
        {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => work(),
        }
    })
}

fn check_entry(
    bundle: &Bundle,
    m: &Manifest,
    positions: &manifest::Positions,
    source: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Registration> {
    let file = m.entry.as_str();
    let (prepared, scanned) = analyse(source, m.language);
    for d in &prepared.diagnostics {
        let code = if d.rule == citadel_analyzer::SYNTAX_RULE
            || d.rule == citadel_analyzer::NESTING_RULE
        {
            codes::SYNTAX_ERROR
        } else {
            citadel_analyzer::RULES
                .iter()
                .find(|(rule, _)| *rule == d.rule)
                .map_or("analyzer", |(rule, _)| *rule)
        };
        let diag = match d.severity {
            citadel_analyzer::Severity::Error => Diagnostic::error(code, d.message.clone()),
            _ => Diagnostic::warning(code, d.message.clone()),
        };
        diags.push(diag.in_file(file).at(d.line, d.column));
    }
    if prepared.has_syntax_errors() {
        return Vec::new();
    }
    let Some(entry::Scan {
        registrations: found,
        unreadable,
        uses,
    }) = scanned
    else {
        return Vec::new();
    };
    check_grants(file, &m.permissions, &uses, diags);
    for u in unreadable {
        diags.push(
            Diagnostic::error(u.code, u.message)
                .in_file(file)
                .at(u.line, u.column),
        );
    }
    let mut seen: Vec<(Kind, Option<manifest::Method>, &str)> = Vec::new();
    for r in &found {
        let at = |code, message: String| {
            Diagnostic::error(code, message)
                .in_file(file)
                .at(r.line, r.column)
        };
        match r.kind {
            Kind::Hook => {
                if !m.events.iter().any(|p| event_matches(p, &r.name)) {
                    diags.push(at(
                        codes::UNDECLARED_HOOK,
                        format!(
                            "`hook(\"{}\")`: the manifest's `events` do not list `{}`",
                            r.name, r.name
                        ),
                    ));
                }
            }
            Kind::Route => {
                let method = r.method.map_or("", |m| m.as_str());
                if !m
                    .routes
                    .iter()
                    .any(|d| Some(d.method) == r.method && d.path == r.name)
                {
                    diags.push(at(
                        codes::UNDECLARED_ROUTE,
                        format!("`route(\"{method}\", \"{}\")`: the manifest's `routes` do not declare {method} {}", r.name, r.name),
                    ));
                }
                if seen.contains(&(Kind::Route, r.method, r.name.as_str())) {
                    diags.push(at(
                        codes::DUPLICATE_REGISTRATION,
                        format!("route {method} {} is registered twice", r.name),
                    ));
                }
            }
            Kind::Job => {
                if !m.jobs.iter().any(|j| j.name == r.name) {
                    diags.push(at(
                        codes::UNDECLARED_JOB,
                        format!(
                            "`job(\"{}\")`: the manifest's `jobs` do not declare `{}`",
                            r.name, r.name
                        ),
                    ));
                }
                if seen.contains(&(Kind::Job, None, r.name.as_str())) {
                    diags.push(at(
                        codes::DUPLICATE_REGISTRATION,
                        format!("job `{}` is registered twice", r.name),
                    ));
                }
            }
        }
        seen.push((r.kind, r.method, r.name.as_str()));
    }
    // Declared but never registered: the plugin would accept events, calls
    // or schedules and do nothing with them.
    let warn = |code, (line, column): (u32, u32), message: String| Diagnostic {
        severity: Severity::Warning,
        ..Diagnostic::error(code, message)
            .in_file(&bundle.manifest)
            .at(line, column)
    };
    for (event, pos) in m.events.iter().zip(&positions.events) {
        if !found
            .iter()
            .any(|r| r.kind == Kind::Hook && event_matches(event, &r.name))
        {
            diags.push(warn(
                codes::UNREGISTERED_HOOK,
                *pos,
                format!("event `{event}` is declared but the entry registers no `hook` for it"),
            ));
        }
    }
    for (route, pos) in m.routes.iter().zip(&positions.routes) {
        if !found.iter().any(|r| {
            r.kind == Kind::Route && r.method == Some(route.method) && r.name == route.path
        }) {
            diags.push(warn(
                codes::UNREGISTERED_ROUTE,
                *pos,
                format!(
                    "route {} {} is declared but the entry registers no `route` for it",
                    route.method.as_str(),
                    route.path
                ),
            ));
        }
    }
    for (job, pos) in m.jobs.iter().zip(&positions.jobs) {
        if !found
            .iter()
            .any(|r| r.kind == Kind::Job && r.name == job.name)
        {
            diags.push(warn(
                codes::UNREGISTERED_JOB,
                *pos,
                format!(
                    "job `{}` is declared but the entry registers no `job` for it",
                    job.name
                ),
            ));
        }
    }
    found
}

/// Capabilities the code reaches that the manifest does not grant: the
/// sandbox would refuse them at run time. Warnings, since the code path
/// may never run; one per capability and per name.
fn check_grants(
    file: &str,
    grant: &citadel_scripts::CapabilitySpec,
    uses: &[entry::Use],
    diags: &mut Vec<Diagnostic>,
) {
    let mut reported: Vec<(&str, Option<&str>)> = Vec::new();
    for u in uses {
        let key = (u.capability, u.name.as_deref());
        if reported.contains(&key) || reported.contains(&(u.capability, None)) {
            continue;
        }
        let granted = match (u.capability, u.name.as_deref()) {
            ("kv", _) => grant.kv,
            ("http", _) => grant.http.as_ref().is_some_and(|h| !h.allow.is_empty()),
            ("secrets", None) => !grant.secrets.is_empty(),
            ("secrets", Some(name)) => grant.secrets.iter().any(|s| s == name),
            ("db", None) => !grant.db.is_empty(),
            ("db", Some(name)) => grant.db.iter().any(|s| s == name),
            ("events", None) => grant.events.as_ref().is_some_and(|e| !e.emit.is_empty()),
            ("events", Some(name)) => grant
                .events
                .as_ref()
                .is_some_and(|e| e.emit.iter().any(|p| glob(p, name))),
            _ => true,
        };
        if granted {
            continue;
        }
        let message = match (u.capability, u.name.as_deref()) {
            ("secrets", Some(n)) => {
                format!("`ctx.secrets.get(\"{n}\")`: `permissions.secrets` does not list `{n}`")
            }
            ("db", Some(n)) => {
                format!(
                    "`ctx.db.query(…, {{ source: \"{n}\" }})`: `permissions.db` does not list `{n}`"
                )
            }
            ("events", Some(n)) => format!(
                "`ctx.events.emit(\"{n}\", …)`: no `permissions.events.emit` pattern matches `{n}`"
            ),
            (c, _) => format!("`ctx.{c}` is used but `permissions` do not grant `{c}`"),
        };
        diags.push(
            Diagnostic::warning(codes::UNGRANTED_CAPABILITY, message)
                .in_file(file)
                .at(u.line, u.column),
        );
        reported.push(key);
    }
}

/// `*` matches any run of characters (an emit pattern such as `order.*`).
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(tail, &text[head.len() + i..])
                })
        }
    }
}
