//! What an installed plugin runs as: its handler module (the entry module
//! with the SDK around it, one script for the sandbox), the inputs that
//! pick a handler, and the matching of a request to a declared route.
//!
//! The SDK is plain JavaScript put before the entry's first line (on that
//! line, so every line of the entry keeps its number in errors and
//! stacks) and a dispatch after its last. `hook`, `route` and `job` record
//! handlers; the run's input names which to call with a `ctx` whose
//! capabilities are the run's own `api` (the gateway confines a plugin's
//! key-value entries and secrets to the plugin).

use serde_json::{Value, json};

use crate::manifest::{Method, RouteDecl};
use crate::validate::ValidPlugin;

/// The SDK, on one line: it must not move the entry's lines.
const SDK: &str = "const __citadelPlugin = (() => { \
const hooks = [], routes = [], jobs = []; \
const ctxOf = (input, api) => { \
const ctx = { config: input.config ?? {}, log: console, plugin: { slug: __citadelSlug, version: __citadelVersion } }; \
for (const name of [\"http\", \"kv\", \"secrets\", \"db\", \"events\"]) Object.defineProperty(ctx, name, { enumerable: true, get: () => api[name] }); \
return Object.freeze(ctx); }; \
return { \
hook: (t, f) => { hooks.push({ t, f }); }, \
route: (m, p, f) => { routes.push({ m: String(m).toUpperCase(), p, f }); }, \
job: (n, f) => { jobs.push({ n, f }); }, \
async run(input, api) { \
const ctx = ctxOf(input, api); \
if (input.kind === \"hook\") { \
const out = {}; let last = null, n = 0; \
for (const name of input.hooks) for (const h of hooks) if (h.t === name) { last = (await h.f(ctx, input.event)) ?? null; out[name] = last; n++; } \
return n === 1 ? last : out; } \
if (input.kind === \"route\") { \
for (const r of routes) if (r.m === input.method && r.p === input.route) return (await r.f(ctx, input.request)) ?? null; \
throw new Error(`no handler for ${input.method} ${input.route}`); } \
if (input.kind === \"job\") { \
for (const j of jobs) if (j.n === input.job) return (await j.f(ctx)) ?? null; \
throw new Error(`no handler for job ${input.job}`); } \
throw new Error(\"unknown handler kind\"); } }; })(); \
function hook(t, f) { __citadelPlugin.hook(t, f); } \
function route(m, p, f) { __citadelPlugin.route(m, p, f); } \
function job(n, f) { __citadelPlugin.job(n, f); } ";

/// The handler module of a valid plugin: what its catalog entry's version
/// holds and every hook, route and job run executes.
pub fn handler_module(plugin: &ValidPlugin) -> String {
    let m = &plugin.manifest;
    let entry = plugin.entry_source();
    let mut out = String::with_capacity(SDK.len() + entry.len() + 200);
    // Constants first, still on line 1. A slug and a version are plain
    // ASCII; they are written as JSON strings all the same.
    out.push_str(&format!(
        "const __citadelSlug = {}, __citadelVersion = {}; ",
        Value::String(m.slug.clone()),
        Value::String(m.version.to_string()),
    ));
    out.push_str(SDK);
    out.push_str(entry);
    out.push_str("\n;return await __citadelPlugin.run(input, api);\n");
    out
}

/// A webhook transform as a script: its file with `export` dropped from
/// its top-level declarations (a script has no module scope to export
/// from), then a call of the exported function with the run's input, the
/// event. Lines keep their numbers.
pub fn transform_module(source: &str, export: &str) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        match trimmed.strip_prefix("export ") {
            Some(rest) if indent.is_empty() => {
                let rest = rest.strip_prefix("default ").unwrap_or(rest);
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
    }
    out.push_str(&format!("\n;return await {export}(input);\n"));
    out
}

/// The input of a run of the hooks registered under `hooks` (the
/// registrations whose pattern matches the event) for one event.
pub fn hook_input(hooks: &[String], event: Value, config: Value) -> Value {
    json!({ "kind": "hook", "hooks": hooks, "event": event, "config": config })
}

/// The input of a run of job `name`.
pub fn job_input(name: &str, config: Value) -> Value {
    json!({ "kind": "job", "job": name, "config": config })
}

/// The input of a run of the route declared as `route` (its path
/// pattern) for `request` (method, path, params, query, headers, body).
pub fn route_input(method: Method, route: &str, request: Value, config: Value) -> Value {
    json!({
        "kind": "route",
        "method": method.as_str(),
        "route": route,
        "request": request,
        "config": config,
    })
}

/// A route's parameters, name and percent-decoded value, in path order.
pub type Params = Vec<(String, String)>;

/// How a request path matched a plugin's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch<'m> {
    /// The route, and its parameters (percent-decoded) in path order.
    Found(&'m RouteDecl, Params),
    /// Some route has this path, none this method (the allowed ones).
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

/// The declared route a request reaches. A literal segment wins over a
/// parameter where both could match (`/a/new` before `/a/:id`).
pub fn match_route<'m>(routes: &'m [RouteDecl], method: Method, path: &str) -> RouteMatch<'m> {
    let segments: Vec<&str> = split(path);
    let mut found: Option<(&RouteDecl, Params, usize)> = None;
    let mut methods = Vec::new();
    for decl in routes {
        let pattern = split(&decl.path);
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let mut literals = 0;
        let mut ok = true;
        for (p, s) in pattern.iter().zip(&segments) {
            if let Some(name) = p.strip_prefix(':') {
                match percent_decode(s) {
                    Some(v) if !v.is_empty() => params.push((name.to_owned(), v)),
                    _ => {
                        ok = false;
                        break;
                    }
                }
            } else if p == s {
                literals += 1;
            } else {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        if decl.method != method {
            methods.push(decl.method);
            continue;
        }
        if found.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            found = Some((decl, params, literals));
        }
    }
    match found {
        Some((decl, params, _)) => RouteMatch::Found(decl, params),
        None if !methods.is_empty() => RouteMatch::MethodNotAllowed(methods),
        None => RouteMatch::NotFound,
    }
}

/// `/a/b` → `["a", "b"]`; `/` and `` → `[]`.
fn split(path: &str) -> Vec<&str> {
    path.trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// `%41b` → `Ab`; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::RouteAuth;

    fn route(method: Method, path: &str) -> RouteDecl {
        RouteDecl {
            method,
            path: path.into(),
            auth: RouteAuth::Public,
        }
    }

    #[test]
    fn transforms_lose_their_exports_and_keep_their_lines() {
        let src = "// shapes it\nexport function transform(e) {\n  return { text: e.type };\n}\nexport const x = 1;\n";
        let module = transform_module(src, "transform");
        assert_eq!(
            module,
            "// shapes it\nfunction transform(e) {\n  return { text: e.type };\n}\nconst x = 1;\n\n;return await transform(input);\n"
        );
    }

    #[test]
    fn routes_match_literals_before_parameters() {
        let routes = [
            route(Method::Get, "/messages/:id"),
            route(Method::Get, "/messages/new"),
            route(Method::Post, "/messages"),
            route(Method::Get, "/"),
        ];
        match match_route(&routes, Method::Get, "/messages/new") {
            RouteMatch::Found(d, p) => {
                assert_eq!(d.path, "/messages/new");
                assert!(p.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match match_route(&routes, Method::Get, "/messages/a%20b") {
            RouteMatch::Found(d, p) => {
                assert_eq!(d.path, "/messages/:id");
                assert_eq!(p, vec![("id".to_owned(), "a b".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            match_route(&routes, Method::Get, "/messages"),
            RouteMatch::MethodNotAllowed(vec![Method::Post])
        );
        assert_eq!(
            match_route(&routes, Method::Get, "/messages/%zz"),
            RouteMatch::NotFound
        );
        assert_eq!(
            match_route(&routes, Method::Get, "/other"),
            RouteMatch::NotFound
        );
        assert!(matches!(
            match_route(&routes, Method::Get, ""),
            RouteMatch::Found(d, _) if d.path == "/"
        ));
    }
}
