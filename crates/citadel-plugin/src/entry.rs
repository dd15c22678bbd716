//! What the entry module registers: every `hook("event", fn)`,
//! `route("METHOD", "/path", fn)` and `job("name", fn)` call, with where it
//! is. Registrations are read from the syntax tree, not by running the
//! code, so their names must be literals: a name computed at run time could
//! not be checked against the manifest and is refused.
//!
//! The entry is a script in the sandbox's sense (the SDK functions are
//! globals, there are no imports), so it is first prepared by the analyzer
//! exactly as a script is: its syntax errors and lint findings come out in
//! the user's own lines and columns.

use oxc::allocator::Allocator;
use oxc::ast::ast::{Argument, CallExpression, Expression};
use oxc::ast_visit::{Visit, walk};
use oxc::parser::{ParseOptions, Parser};
use oxc::span::SourceType;
use serde::Serialize;

use crate::manifest::{EntryLanguage, Method};

/// What a registration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Hook,
    Route,
    Job,
}

/// One SDK call found in the entry module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    pub kind: Kind,
    /// The event type, the job name, or the route's path.
    pub name: String,
    /// For routes, the method (upper case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    pub line: u32,
    pub column: u32,
}

/// A capability the code reaches through `ctx` (`ctx.kv`, `ctx.http`, …),
/// with the literal name it asks for where there is one
/// (`ctx.secrets.get("KEY")`, `ctx.db.query(sql, params, { source: "reporting" })`,
/// `ctx.events.emit("order.large", …)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Use {
    pub capability: &'static str,
    pub name: Option<String>,
    pub line: u32,
    pub column: u32,
}

/// A call that looks like a registration but cannot be read statically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub code: &'static str,
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// The registrations of a source that parses (callers prepare it with the
/// analyzer first), and the calls that could not be read.
pub(crate) fn scan(source: &str, language: EntryLanguage) -> Scan {
    let allocator = Allocator::default();
    let source_type = match language {
        EntryLanguage::Js => SourceType::script(),
        EntryLanguage::Ts => SourceType::ts().with_script(true),
    };
    let parsed = Parser::new(&allocator, source, source_type)
        .with_options(ParseOptions {
            allow_return_outside_function: true,
            ..ParseOptions::default()
        })
        .parse();
    let mut v = Scanner {
        lines: Lines::new(source),
        found: Vec::new(),
        unreadable: Vec::new(),
        uses: Vec::new(),
    };
    if !parsed.panicked {
        // The parser takes module syntax in a script and leaves it to a
        // later pass; the sandbox would refuse it, so it is refused here.
        for stmt in &parsed.program.body {
            if stmt.is_module_declaration() {
                let (line, column) = v.lines.position(oxc::span::GetSpan::span(stmt).start);
                v.unreadable.push(Unreadable {
                    code: crate::diag::codes::SYNTAX_ERROR,
                    message: "`import` and `export` are not available: the entry is a script and `hook`, `route` and `job` are globals".into(),
                    line,
                    column,
                });
            }
        }
        v.visit_program(&parsed.program);
    }
    Scan {
        registrations: v.found,
        unreadable: v.unreadable,
        uses: v.uses,
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scan {
    pub registrations: Vec<Registration>,
    pub unreadable: Vec<Unreadable>,
    pub uses: Vec<Use>,
}

struct Scanner<'s> {
    lines: Lines<'s>,
    found: Vec<Registration>,
    unreadable: Vec<Unreadable>,
    uses: Vec<Use>,
}

/// The capabilities `ctx` carries, by property name.
const CAPABILITIES: &[&str] = &["kv", "http", "secrets", "db", "events"];

/// `ctx.<capability>` → the capability.
fn ctx_capability(e: &Expression<'_>) -> Option<&'static str> {
    let Expression::StaticMemberExpression(m) = e else {
        return None;
    };
    let Expression::Identifier(id) = &m.object else {
        return None;
    };
    if id.name != "ctx" {
        return None;
    }
    CAPABILITIES
        .iter()
        .copied()
        .find(|c| *c == m.property.name.as_str())
}

/// A string literal, or a template literal without substitutions.
fn literal<'a>(arg: Option<&'a Argument<'a>>) -> Option<&'a str> {
    match arg?.as_expression()? {
        Expression::StringLiteral(s) => Some(s.value.as_str()),
        Expression::TemplateLiteral(t) if t.expressions.is_empty() => {
            t.quasis.first()?.value.cooked.as_ref().map(|c| c.as_str())
        }
        _ => None,
    }
}

/// The literal `source` of an options object (`{ source: "reporting" }`),
/// as `ctx.db.query(sql, params, options)` names its data source.
fn source_option<'a>(arg: Option<&'a Argument<'a>>) -> Option<&'a str> {
    let Expression::ObjectExpression(obj) = arg?.as_expression()? else {
        return None;
    };
    obj.properties.iter().find_map(|p| match p {
        oxc::ast::ast::ObjectPropertyKind::ObjectProperty(p)
            if p.key.static_name().is_some_and(|k| k == "source") =>
        {
            match &p.value {
                Expression::StringLiteral(s) => Some(s.value.as_str()),
                _ => None,
            }
        }
        _ => None,
    })
}

fn is_function(arg: Option<&Argument<'_>>) -> bool {
    // A named handler (`hook("x", onX)`) is fine; only what is surely not
    // callable is refused.
    arg.and_then(|a| a.as_expression()).is_some_and(|e| {
        !matches!(
            e,
            Expression::StringLiteral(_)
                | Expression::NumericLiteral(_)
                | Expression::BooleanLiteral(_)
                | Expression::NullLiteral(_)
                | Expression::ObjectExpression(_)
                | Expression::ArrayExpression(_)
                | Expression::TemplateLiteral(_)
        )
    })
}

impl<'a> Visit<'a> for Scanner<'_> {
    fn visit_static_member_expression(&mut self, it: &oxc::ast::ast::StaticMemberExpression<'a>) {
        if let Expression::Identifier(id) = &it.object
            && id.name == "ctx"
            && let Some(capability) = CAPABILITIES
                .iter()
                .copied()
                .find(|c| *c == it.property.name.as_str())
        {
            let (line, column) = self.lines.position(it.span.start);
            self.uses.push(Use {
                capability,
                name: None,
                line,
                column,
            });
        }
        walk::walk_static_member_expression(self, it);
    }

    fn visit_call_expression(&mut self, it: &CallExpression<'a>) {
        // `ctx.secrets.get("KEY")` and the like: the name asked for.
        // A query names its data source in its options (`{source}`).
        if let Expression::StaticMemberExpression(m) = &it.callee
            && let Some(capability) = ctx_capability(&m.object)
            && let Some(name) = match (capability, m.property.name.as_str()) {
                ("secrets", "get") | ("events", "emit") => literal(it.arguments.first()),
                ("db", "query") => source_option(it.arguments.get(2)),
                _ => None,
            }
        {
            let (line, column) = self.lines.position(it.span.start);
            self.uses.push(Use {
                capability,
                name: Some(name.to_owned()),
                line,
                column,
            });
        }
        if let Expression::Identifier(id) = &it.callee {
            let kind = match id.name.as_str() {
                "hook" => Some(Kind::Hook),
                "route" => Some(Kind::Route),
                "job" => Some(Kind::Job),
                _ => None,
            };
            if let Some(kind) = kind {
                self.registration(kind, it);
            }
        }
        walk::walk_call_expression(self, it);
    }
}

impl Scanner<'_> {
    fn registration(&mut self, kind: Kind, call: &CallExpression<'_>) {
        let (line, column) = self.lines.position(call.span.start);
        let args = &call.arguments;
        let mut unreadable = |code, message: String| {
            self.unreadable.push(Unreadable {
                code,
                message,
                line,
                column,
            });
        };
        use crate::diag::codes::{DYNAMIC_REGISTRATION, INVALID_REGISTRATION};
        match kind {
            Kind::Hook | Kind::Job => {
                let what = if kind == Kind::Hook { "hook" } else { "job" };
                let Some(name) = literal(args.first()) else {
                    return unreadable(
                        DYNAMIC_REGISTRATION,
                        format!(
                            "the first argument of `{what}(…)` must be a string literal so it can be checked against the manifest"
                        ),
                    );
                };
                if args.len() != 2 || !is_function(args.get(1)) {
                    return unreadable(
                        INVALID_REGISTRATION,
                        format!(
                            "`{what}(\"{name}\", handler)` takes a name and a handler function"
                        ),
                    );
                }
                self.found.push(Registration {
                    kind,
                    name: name.to_owned(),
                    method: None,
                    line,
                    column,
                });
            }
            Kind::Route => {
                let (Some(method), Some(path)) = (literal(args.first()), literal(args.get(1)))
                else {
                    return unreadable(
                        DYNAMIC_REGISTRATION,
                        "the method and path of `route(…)` must be string literals so they can be checked against the manifest".into(),
                    );
                };
                let Some(m) = Method::parse(method) else {
                    return unreadable(
                        INVALID_REGISTRATION,
                        format!("`{method}` is not a route method (GET, POST, PUT, PATCH, DELETE)"),
                    );
                };
                if args.len() != 3 || !is_function(args.get(2)) {
                    return unreadable(
                        INVALID_REGISTRATION,
                        format!(
                            "`route(\"{method}\", \"{path}\", handler)` takes a method, a path and a handler function"
                        ),
                    );
                }
                self.found.push(Registration {
                    kind,
                    name: path.to_owned(),
                    method: Some(m),
                    line,
                    column,
                });
            }
        }
    }
}

/// Byte offsets to 1-based lines and columns (columns count characters).
pub(crate) struct Lines<'s> {
    text: &'s str,
    starts: Vec<usize>,
}

impl<'s> Lines<'s> {
    pub fn new(text: &'s str) -> Lines<'s> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    pub fn position(&self, offset: u32) -> (u32, u32) {
        let offset = (offset as usize).min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line as u32 + 1, column as u32 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_registrations_where_they_are() {
        let src = "const x = 1;\nhook(\"auth.user.created\", async (ctx, e) => {});\n  route(\"get\", `/ping`, onPing);\njob('daily', async (ctx) => { hook(\"a.b\", f); });\nhook(name, f);\nroute(\"GET\", \"/x\");\nctx.hook(\"not.sdk\", f);\n";
        let Scan {
            registrations: found,
            unreadable: bad,
            ..
        } = scan(src, EntryLanguage::Js);
        let got: Vec<_> = found
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.method, r.line, r.column))
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::Hook, "auth.user.created", None, 2, 1),
                (Kind::Route, "/ping", Some(Method::Get), 3, 3),
                (Kind::Job, "daily", None, 4, 1),
                (Kind::Hook, "a.b", None, 4, 31),
            ]
        );
        let bad: Vec<_> = bad.iter().map(|u| (u.code, u.line)).collect();
        assert_eq!(
            bad,
            vec![("dynamic_registration", 5), ("invalid_registration", 6)]
        );
    }

    #[test]
    fn typescript_and_top_level_return() {
        let src = "type E = { id: string };\nhook(\"x.y\", async (ctx: unknown, e: E) => e.id);\nreturn;\n";
        let found = scan(src, EntryLanguage::Ts);
        assert_eq!(found.registrations.len(), 1);
        assert!(found.unreadable.is_empty());
    }

    #[test]
    fn capability_uses() {
        let src = "hook(\"a.b\", async (ctx) => {\n  await ctx.kv.get(\"k\");\n  await ctx.secrets.get(\"API_KEY\");\n  await ctx.db.query(name, []);\n  await ctx.db.query(\"SELECT 1\", [], { source: \"reporting\" });\n  other.kv.get(1);\n});\n";
        let uses: Vec<_> = scan(src, EntryLanguage::Js)
            .uses
            .into_iter()
            .map(|u| (u.capability, u.name, u.line, u.column))
            .collect();
        assert_eq!(
            uses,
            vec![
                ("kv", None, 2, 9),
                ("secrets", Some("API_KEY".to_owned()), 3, 9),
                ("secrets", None, 3, 9),
                ("db", None, 4, 9),
                ("db", Some("reporting".to_owned()), 5, 9),
                ("db", None, 5, 9),
            ]
        );
    }
}
