//! Static analysis and preparation of tenant scripts.
//!
//! A script is the body of an async function that receives `input` and `api`.
//! [`prepare`] parses it once with oxc, runs the lint rules over the tree, and —
//! when it parses — produces the JavaScript the sandbox compiles: the body
//! wrapped in its function, with TypeScript types stripped. Positions in that
//! JavaScript map back to the user's own line and column through
//! [`PositionMap`].
//!
//! This crate knows nothing of QuickJS, tenants, HTTP or storage.

mod globals;
mod nesting;
mod positions;
mod rules;
mod secrets;

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::ast::ast::{Expression, Statement};
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::{ParseOptions, Parser};
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

pub use globals::{Globals, group_of};
pub use nesting::{MAX_DEPTH, MAX_NESTING};
// The analyzer's vocabulary is domain data (settings carry a policy without
// depending on a parser); re-exported so users keep their paths.
pub use citadel_domain::{
    Diagnostic, Language, NESTING_RULE, Policy, PolicyError, RULES, SYNTAX_RULE, Severity,
};
use positions::LineIndex;
pub use positions::PositionMap;

/// What the wrapped program starts with. It stays on the user's first line so
/// every other line keeps its number.
pub const WRAP_PREFIX: &str = "(async function (input, api) {";
/// What the wrapped program ends with. The newline ends a trailing `//` comment.
pub const WRAP_SUFFIX: &str = "\n})";

/// The largest source accepted, in bytes. Bigger sources are rejected before
/// parsing so a hostile upload cannot make the parser the bottleneck.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// The stack of the thread [`prepare_on_own_stack`] analyses on: far more
/// than the deepest source the nesting limits let through needs (under
/// 2 MiB even in an unoptimised build), so the limits are the rule and this
/// the margin.
pub const ANALYSIS_STACK_BYTES: usize = 64 << 20;

/// A script ready for the sandbox: the diagnostics of every rule and, when the
/// source parses, the JavaScript to compile.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub diagnostics: Vec<Diagnostic>,
    /// `None` when the source has syntax errors.
    pub program: Option<Program>,
}

/// Executable JavaScript: one parenthesised async function expression.
#[derive(Debug, Clone)]
pub struct Program {
    pub js: String,
    pub positions: PositionMap,
    /// The optional built-in groups the program can reach; a context made
    /// for it needs only these (see [`Globals`]).
    pub globals: Globals,
}

impl Prepared {
    /// True when the source failed to parse.
    pub fn has_syntax_errors(&self) -> bool {
        self.program.is_none()
    }
}

/// Parses, analyses and (for TypeScript) strips types from a script body.
///
/// Never panics on any input; oversize sources and parse failures come back
/// as `syntax` diagnostics.
pub fn prepare(source: &str, language: Language) -> Prepared {
    if !language.is_script() {
        // A workflow's YAML is citadel-workflow's to read; nothing runs it
        // as a script.
        return Prepared {
            diagnostics: vec![Diagnostic {
                rule: SYNTAX_RULE.into(),
                severity: Severity::Error,
                message: "a workflow is not a script: it runs as a workflow".into(),
                line: 1,
                column: 1,
            }],
            program: None,
        };
    }
    if source.len() > MAX_SOURCE_BYTES {
        return Prepared {
            diagnostics: vec![Diagnostic {
                rule: SYNTAX_RULE.into(),
                severity: Severity::Error,
                message: format!(
                    "source is {} bytes, more than the limit of {MAX_SOURCE_BYTES}",
                    source.len()
                ),
                line: 1,
                column: 1,
            }],
            program: None,
        };
    }
    let mut wrapped = String::with_capacity(WRAP_PREFIX.len() + source.len() + WRAP_SUFFIX.len());
    wrapped.push_str(WRAP_PREFIX);
    wrapped.push_str(source);
    wrapped.push_str(WRAP_SUFFIX);
    let lines = LineIndex::new(&wrapped, WRAP_PREFIX.len() as u32);

    // Everything below recurses once per level of the tree; refuse what
    // would nest deeper than the limits before any of it runs.
    // The script is scanned as the body it is, so the limits count the
    // user's own levels, not the wrapper's.
    if let Err(too_deep) = nesting::check(source, language == Language::Ts) {
        let (line, column) = lines.user_position(WRAP_PREFIX.len() as u32 + too_deep.offset);
        return Prepared {
            diagnostics: vec![Diagnostic {
                rule: if too_deep.syntax {
                    SYNTAX_RULE
                } else {
                    NESTING_RULE
                }
                .into(),
                severity: Severity::Error,
                message: too_deep.message,
                line,
                column,
            }],
            program: None,
        };
    }

    let allocator = Allocator::default();
    // Sloppy script mode so that `with` parses and is reported by its rule;
    // the sandbox compiles the result in strict mode.
    let source_type = match language {
        // (`Workflow` was refused above.)
        Language::Js | Language::Workflow => SourceType::script(),
        Language::Ts => SourceType::ts().with_script(true),
    };
    let parsed = Parser::new(&allocator, &wrapped, source_type)
        .with_options(ParseOptions::default())
        .parse();

    let mut diagnostics = Vec::new();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        for d in parsed.diagnostics.iter() {
            let offset = d.labels.first().map_or(0, |l| l.offset());
            let (line, column) = lines.user_position(offset);
            diagnostics.push(Diagnostic {
                rule: SYNTAX_RULE.into(),
                severity: Severity::Error,
                message: d.message.to_string(),
                line,
                column,
            });
        }
        if diagnostics.is_empty() {
            diagnostics.push(syntax_at(&lines, 0, "the source could not be parsed"));
        }
        return Prepared {
            diagnostics,
            program: None,
        };
    }
    let mut program = parsed.program;

    // The body must stay inside its function: `}); other(); (function(){` is
    // valid JavaScript but escapes the wrapper.
    if let Some(offset) = wrapper_breach(&program.body, wrapped.len() as u32) {
        diagnostics.push(syntax_at(
            &lines,
            offset,
            "unbalanced `}`: the script body closes its function",
        ));
        return Prepared {
            diagnostics,
            program: None,
        };
    }

    rules::check(&program, &lines, &mut diagnostics);
    diagnostics.sort_by_key(|d| (d.line, d.column));

    let program = match language {
        Language::Js | Language::Workflow => Program {
            js: wrapped.clone(),
            positions: PositionMap::identity(),
            globals: globals::reachable(&program),
        },
        Language::Ts => {
            let semantic = SemanticBuilder::new().build(&program);
            let scoping = semantic.semantic.into_scoping();
            let options = TransformOptions::default();
            let ret = Transformer::new(&allocator, Path::new("script.ts"), &options)
                .build_with_scoping(scoping, &mut program);
            if let Some(d) = ret
                .diagnostics
                .iter()
                .find(|d| d.severity == oxc::diagnostics::Severity::Error)
            {
                let offset = d.labels.first().map_or(0, |l| l.offset());
                diagnostics.push(syntax_at(&lines, offset, &d.message));
                return Prepared {
                    diagnostics,
                    program: None,
                };
            }
            let out = Codegen::new()
                .with_options(CodegenOptions {
                    source_map_path: Some("script.ts".into()),
                    ..CodegenOptions::default()
                })
                .build(&program);
            let positions = match out.map {
                Some(map) => PositionMap::from_tokens(map.get_tokens().map(|t| {
                    (
                        t.get_dst_line(),
                        t.get_dst_col(),
                        t.get_src_line(),
                        t.get_src_col(),
                    )
                })),
                None => PositionMap::identity(),
            };
            // Codegen ends statements with `;` and a newline; the sandbox wants
            // the bare expression so the script evaluates to the function.
            let js = out.code.trim_end().trim_end_matches(';').to_owned();
            // Read from the program without its types: a name used only as
            // a type is no value the script can reach.
            let globals = globals::reachable(&program);
            Program {
                js,
                positions,
                globals,
            }
        }
    };
    Prepared {
        diagnostics,
        program: Some(program),
    }
}

/// [`prepare`] on a thread of its own with an [`ANALYSIS_STACK_BYTES`]
/// stack, for callers on small stacks (async runtime workers). Where no
/// thread can be started it prepares on the caller's thread, which the
/// nesting limits keep within a runtime worker's 2 MiB stack.
pub fn prepare_on_own_stack(source: &str, language: Language) -> Prepared {
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("citadel-analyzer".into())
            .stack_size(ANALYSIS_STACK_BYTES)
            .spawn_scoped(scope, || prepare(source, language))
        {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => prepare(source, language),
        }
    })
}

fn syntax_at(lines: &LineIndex, offset: u32, message: &str) -> Diagnostic {
    let (line, column) = lines.user_position(offset);
    Diagnostic {
        rule: SYNTAX_RULE.into(),
        severity: Severity::Error,
        message: message.to_owned(),
        line,
        column,
    }
}

/// Returns where the wrapper was broken, if it was: the program must be one
/// expression statement, a parenthesised function spanning the whole text.
fn wrapper_breach(body: &[Statement<'_>], total_len: u32) -> Option<u32> {
    let [Statement::ExpressionStatement(stmt)] = body else {
        // The first statement ends where the body escaped its function.
        return Some(
            body.first()
                .map_or(0, |s| oxc::span::GetSpan::span(s).end.saturating_sub(1)),
        );
    };
    match &stmt.expression {
        Expression::ParenthesizedExpression(p)
            if matches!(p.expression, Expression::FunctionExpression(_))
                && stmt.span.end == total_len =>
        {
            None
        }
        _ => Some(stmt.span.end.saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests;
