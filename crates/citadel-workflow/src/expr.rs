//! Expressions (`when`, `condition`) and `{{ … }}` templates, evaluated by
//! minijinja inside a fence of our own.
//!
//! minijinja already has no way to reach Rust internals (there is no
//! `__class__` to walk to) and counts fuel. What it does not bound is the
//! *size* of what an expression builds, so the language accepted here is
//! narrowed until the size of a result is bounded by the size of the values
//! it reads:
//!
//! - a template is text and `{{ expression }}` only: `{% … %}` statements are
//!   refused, so there is no `set`, no loop and no macro to double a string
//!   in;
//! - `*` and `**` are refused: string and list repetition are the operators
//!   whose result is not bounded by their operands (`'a' * 100000000`);
//! - the filters and tests are an allowlist of ones whose output is at most
//!   linear in their input (no `replace`, `indent`, `center`, no `range`);
//! - attributes starting with `_` are refused outright, and undefined values
//!   are errors, not empty strings;
//! - fuel, a recursion limit, a length cap on each expression and a cap on
//!   each rendered result bound the rest.
//!
//! The names an expression can see are `inputs`, `steps.<id>.output`,
//! `.status` and `.exit_code`, `env` and `secrets` (only what the [`Scope`]
//! grants; reading anything else is [`EvalError::NotGranted`]), and `item`
//! and `index` inside a `foreach`. Step ids may contain `-`:
//! `steps.run-tests.exit_code` names the step `run-tests` (write `a - b`
//! with spaces to subtract).

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;

use crate::diag::codes;

/// The longest expression accepted, in bytes.
pub const MAX_EXPR_BYTES: usize = 4096;
/// The longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// The most `{{ … }}` one template may hold.
pub const MAX_TEMPLATE_EXPRS: usize = 64;
/// The most names (`inputs…`, `steps…`) one expression may read: with the
/// caps on what each value holds, this bounds what `~` can build.
pub const MAX_EXPR_REFS: usize = 32;
/// The largest result one template or expression may render to.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Instructions one expression may execute.
pub const EXPR_FUEL: u64 = 50_000;
/// minijinja's recursion budget for one expression.
pub const EXPR_RECURSION_LIMIT: usize = 64;

/// A reference an expression makes, found statically.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ref {
    /// `inputs.<name>`, or `inputs` as a whole (`None`).
    Input(Option<String>),
    /// `steps.<id>`, or `steps` as a whole (`None`).
    Step(Option<String>),
    /// `env.<NAME>`, or `env` as a whole.
    Env(Option<String>),
    /// `secrets.<NAME>`, or `secrets` as a whole.
    Secret(Option<String>),
    /// `item` or `index`, inside a `foreach`.
    Item,
}

/// Why an expression or template was refused before it ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub code: &'static str,
    pub message: String,
}

impl ExprError {
    fn new(code: &'static str, message: impl Into<String>) -> ExprError {
        ExprError {
            code,
            message: message.into(),
        }
    }
}

/// Why evaluating an expression failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("`{scope}.{name}` is not granted to this run")]
    NotGranted { scope: &'static str, name: String },
    #[error("the expression used up its fuel ({EXPR_FUEL} instructions)")]
    OutOfFuel,
    #[error("the expression nests or recurses too deeply")]
    TooDeep,
    #[error("the result is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("`{0}` is undefined")]
    Undefined(String),
    #[error("the expression was refused: {0}")]
    Refused(#[from] ExprError),
    #[error("the expression failed: {0}")]
    Failed(String),
}

/// A parsed expression: the text as written and as handed to minijinja
/// (with `steps.a-b` rewritten to `steps["a-b"]`), and what it refers to.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    rewritten: String,
    refs: Vec<Ref>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Dot,
    Open(char),
    Close(char),
    Op(String),
    Num,
}

struct Lexed {
    toks: Vec<(Tok, usize, usize)>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits an expression into tokens: just enough of minijinja's grammar to
/// find string literals, names, attributes and operators. `stop_at_close`
/// ends at the first `}}` outside a string and returns its offset.
fn lex(src: &str, stop_at_close: bool) -> Result<(Lexed, Option<usize>), ExprError> {
    let bytes: Vec<(usize, char)> = src.char_indices().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (at, c) = bytes[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '}' && bytes.get(i + 1).map(|b| b.1) == Some('}') {
            if stop_at_close {
                return Ok((Lexed { toks }, Some(at)));
            }
            // minijinja would read it as the end of a `{{ … }}` (and, in
            // 2.24, panic on what follows).
            return Err(ExprError::new(
                codes::EXPR_SYNTAX,
                "`}}` cannot appear in an expression (write `} }` to close two mappings)",
            ));
        }
        if c == '\'' || c == '"' {
            let mut value = String::new();
            let mut j = i + 1;
            loop {
                let Some(&(_, d)) = bytes.get(j) else {
                    return Err(ExprError::new(codes::EXPR_SYNTAX, "unterminated string"));
                };
                if d == '\\' {
                    if let Some(&(_, e)) = bytes.get(j + 1) {
                        value.push(e);
                    }
                    j += 2;
                    continue;
                }
                if d == c {
                    break;
                }
                value.push(d);
                j += 1;
            }
            let end = bytes.get(j + 1).map_or(src.len(), |b| b.0);
            toks.push((Tok::Str(value), at, end));
            i = j + 1;
            continue;
        }
        if is_ident_start(c) {
            let mut j = i;
            while j < bytes.len() && is_ident(bytes[j].1) {
                j += 1;
            }
            let end = bytes.get(j).map_or(src.len(), |b| b.0);
            toks.push((Tok::Ident(src[at..end].to_owned()), at, end));
            i = j;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < bytes.len() && (is_ident(bytes[j].1) || bytes[j].1 == '.') {
                j += 1;
            }
            let end = bytes.get(j).map_or(src.len(), |b| b.0);
            toks.push((Tok::Num, at, end));
            i = j;
            continue;
        }
        let tok = match c {
            '.' => Tok::Dot,
            '(' | '[' | '{' => Tok::Open(c),
            ')' | ']' | '}' => Tok::Close(c),
            _ => {
                let mut op = c.to_string();
                if let Some(&(_, d)) = bytes.get(i + 1)
                    && matches!(
                        (c, d),
                        ('*', '*') | ('=', '=') | ('!', '=') | ('<', '=') | ('>', '=') | ('/', '/')
                    )
                {
                    op.push(d);
                }
                Tok::Op(op)
            }
        };
        // Offsets count bytes, `i` counts characters.
        let (bytes_len, chars_len) = match &tok {
            Tok::Op(op) => (op.len(), op.chars().count()),
            _ => (c.len_utf8(), 1),
        };
        toks.push((tok, at, at + bytes_len));
        i += chars_len;
    }
    if stop_at_close {
        return Err(ExprError::new(
            codes::EXPR_SYNTAX,
            "`{{` without a closing `}}`",
        ));
    }
    Ok((Lexed { toks }, None))
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None",
];

/// The filters an expression may use: each one's output is at most linear
/// in its input.
const FILTERS: &[&str] = &[
    "lower",
    "upper",
    "trim",
    "length",
    "default",
    "first",
    "last",
    "int",
    "float",
    "string",
    "bool",
    "abs",
    "round",
    "join",
    "list",
    "capitalize",
    "title",
    "items",
    "keys",
];

/// The tests an expression may use (`x is defined`).
const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "boolean",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "mapping",
    "true",
    "false",
    "odd",
    "even",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "startingwith",
    "endingwith",
];

impl Expr {
    /// Parses and checks one expression (a `when`, or the inside of
    /// `{{ … }}`). `item` says whether `item` and `index` are in scope.
    pub fn parse(src: &str, item: bool) -> Result<Expr, ExprError> {
        if src.len() > MAX_EXPR_BYTES {
            return Err(ExprError::new(
                codes::EXPR_TOO_LONG,
                format!("the expression is over {MAX_EXPR_BYTES} bytes"),
            ));
        }
        let (lexed, _) = lex(src, false)?;
        Expr::from_tokens(src, &lexed, item)
    }

    fn from_tokens(src: &str, lexed: &Lexed, item: bool) -> Result<Expr, ExprError> {
        let toks = &lexed.toks;
        if toks.is_empty() {
            return Err(ExprError::new(
                codes::EXPR_SYNTAX,
                "the expression is empty",
            ));
        }
        let mut refs = Vec::new();
        let mut rewritten = String::with_capacity(src.len());
        let mut copied = 0;
        let mut i = 0;
        while i < toks.len() {
            let (tok, start, _) = &toks[i];
            let prev = i.checked_sub(1).map(|p| &toks[p].0);
            match tok {
                Tok::Op(op) if op == "*" || op == "**" => {
                    return Err(ExprError::new(
                        codes::EXPR_OPERATOR,
                        format!("the `{op}` operator is not available in workflow expressions"),
                    ));
                }
                Tok::Ident(name) if matches!(prev, Some(Tok::Dot)) && name.starts_with('_') => {
                    return Err(ExprError::new(
                        codes::EXPR_PRIVATE,
                        format!("the attribute `{name}` is not accessible"),
                    ));
                }
                // Any other attribute is not a name in scope.
                Tok::Ident(_) if matches!(prev, Some(Tok::Dot)) => {}
                Tok::Str(s)
                    if matches!(prev, Some(Tok::Open('[')))
                        && s.starts_with('_')
                        && matches!(toks.get(i + 1).map(|t| &t.0), Some(Tok::Close(']'))) =>
                {
                    return Err(ExprError::new(
                        codes::EXPR_PRIVATE,
                        format!("the attribute `{s}` is not accessible"),
                    ));
                }
                Tok::Ident(name) => {
                    let after_pipe = matches!(prev, Some(Tok::Op(op)) if op == "|");
                    let after_is = matches!(prev, Some(Tok::Ident(k)) if k == "is")
                        || (matches!(prev, Some(Tok::Ident(k)) if k == "not")
                            && i >= 2
                            && matches!(&toks[i - 2].0, Tok::Ident(k) if k == "is"));
                    let keyword_arg =
                        matches!(toks.get(i + 1).map(|t| &t.0), Some(Tok::Op(op)) if op == "=");
                    if after_pipe {
                        if !FILTERS.contains(&name.as_str()) {
                            return Err(ExprError::new(
                                codes::EXPR_UNKNOWN_NAME,
                                format!("the filter `{name}` is not available"),
                            ));
                        }
                    } else if after_is && !KEYWORDS.contains(&name.as_str()) {
                        if !TESTS.contains(&name.as_str()) {
                            return Err(ExprError::new(
                                codes::EXPR_UNKNOWN_NAME,
                                format!("the test `{name}` is not available"),
                            ));
                        }
                    } else if !KEYWORDS.contains(&name.as_str()) && !keyword_arg {
                        let scope = match name.as_str() {
                            "inputs" | "steps" | "env" | "secrets" => name.as_str(),
                            "item" | "index" if item => {
                                refs.push(Ref::Item);
                                i += 1;
                                continue;
                            }
                            _ => {
                                return Err(ExprError::new(
                                    codes::EXPR_UNKNOWN_NAME,
                                    format!(
                                        "unknown name `{name}`: expressions see inputs, steps, env and secrets{}",
                                        if item { ", item and index" } else { "" }
                                    ),
                                ));
                            }
                        };
                        // The member: `.name` (for steps, greedily with `-`)
                        // or `["name"]`.
                        let mut member = None;
                        match (toks.get(i + 1), toks.get(i + 2)) {
                            (Some((Tok::Dot, _, _)), Some((Tok::Ident(_), m_start, m_end))) => {
                                let mut end = *m_end;
                                let mut j = i + 3;
                                if scope == "steps" {
                                    // `steps.run-tests`: `-` joined with no
                                    // space on either side continues the id.
                                    while let (
                                        Some((Tok::Op(op), o_start, o_end)),
                                        Some((Tok::Ident(_) | Tok::Num, n_start, n_end)),
                                    ) = (toks.get(j), toks.get(j + 1))
                                    {
                                        if op == "-" && *o_start == end && *n_start == *o_end {
                                            end = *n_end;
                                            j += 2;
                                        } else {
                                            break;
                                        }
                                    }
                                }
                                let id = src[*m_start..end].to_owned();
                                if id.starts_with('_') {
                                    return Err(ExprError::new(
                                        codes::EXPR_PRIVATE,
                                        format!("the attribute `{id}` is not accessible"),
                                    ));
                                }
                                if id.contains('-') {
                                    rewritten.push_str(&src[copied..*start]);
                                    rewritten.push_str("steps[");
                                    rewritten
                                        .push_str(&serde_json::to_string(&id).unwrap_or_default());
                                    rewritten.push(']');
                                    copied = end;
                                }
                                member = Some(id);
                                i = j;
                            }
                            (Some((Tok::Open('['), _, _)), Some((Tok::Str(s), _, _)))
                                if matches!(
                                    toks.get(i + 3).map(|t| &t.0),
                                    Some(Tok::Close(']'))
                                ) =>
                            {
                                if s.starts_with('_') {
                                    return Err(ExprError::new(
                                        codes::EXPR_PRIVATE,
                                        format!("the attribute `{s}` is not accessible"),
                                    ));
                                }
                                member = Some(s.clone());
                                i += 4;
                            }
                            _ => i += 1,
                        }
                        refs.push(match scope {
                            "inputs" => Ref::Input(member),
                            "steps" => Ref::Step(member),
                            "env" => Ref::Env(member),
                            _ => Ref::Secret(member),
                        });
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        if refs.len() > MAX_EXPR_REFS {
            return Err(ExprError::new(
                codes::EXPR_TOO_LONG,
                format!("the expression reads more than {MAX_EXPR_REFS} names"),
            ));
        }
        rewritten.push_str(&src[copied..]);
        // Let minijinja have the final word on the syntax.
        compile(&rewritten)?;
        refs.sort();
        refs.dedup();
        Ok(Expr {
            source: src.to_owned(),
            rewritten,
            refs,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn refs(&self) -> &[Ref] {
        &self.refs
    }

    /// The step ids this expression reads.
    pub fn step_refs(&self) -> impl Iterator<Item = &str> {
        self.refs.iter().filter_map(|r| match r {
            Ref::Step(Some(id)) => Some(id.as_str()),
            _ => None,
        })
    }

    /// Evaluates the expression to JSON.
    pub fn eval(&self, scope: &Scope) -> Result<serde_json::Value, EvalError> {
        let value = self.eval_value(scope)?;
        to_json(&value)
    }

    /// Evaluates the expression as a condition (Jinja truthiness).
    pub fn eval_bool(&self, scope: &Scope) -> Result<bool, EvalError> {
        Ok(self.eval_value(scope)?.is_true())
    }

    fn eval_value(&self, scope: &Scope) -> Result<Value, EvalError> {
        let compiled = compile(&self.rewritten)?;
        let (root, guards) = scope.root();
        // A panic in the engine must not take the process with it.
        let result = catch_unwind(AssertUnwindSafe(|| compiled.eval(root))).unwrap_or_else(|_| {
            Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "the expression engine failed",
            ))
        });
        for guard in &guards {
            if let Some(name) = guard.denied.lock().ok().and_then(|d| d.first().cloned()) {
                return Err(EvalError::NotGranted {
                    scope: guard.scope,
                    name,
                });
            }
        }
        let value = result.map_err(|e| match e.kind() {
            ErrorKind::UndefinedError => EvalError::Undefined(self.source.trim().to_owned()),
            _ => eval_error(&e),
        })?;
        if value.is_undefined() {
            return Err(EvalError::Undefined(self.source.trim().to_owned()));
        }
        Ok(value)
    }
}

/// Compiles an expression, a panic in the engine's parser becoming a
/// syntax error.
fn compile(src: &str) -> Result<minijinja::Expression<'static, 'static>, ExprError> {
    catch_unwind(AssertUnwindSafe(|| {
        env().compile_expression_owned(src.to_owned())
    }))
    .unwrap_or_else(|_| {
        Err(minijinja::Error::new(
            ErrorKind::SyntaxError,
            "the expression could not be parsed",
        ))
    })
    .map_err(|e| ExprError::new(codes::EXPR_SYNTAX, syntax_message(&e)))
}

fn syntax_message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn eval_error(e: &minijinja::Error) -> EvalError {
    match e.kind() {
        ErrorKind::OutOfFuel => EvalError::OutOfFuel,
        ErrorKind::UndefinedError => {
            EvalError::Undefined(e.detail().unwrap_or("a value").to_owned())
        }
        _ if e.to_string().contains("recursion") => EvalError::TooDeep,
        _ => EvalError::Failed(syntax_message(e)),
    }
}

fn to_json(value: &Value) -> Result<serde_json::Value, EvalError> {
    serde_json::to_value(value).map_err(|e| EvalError::Failed(e.to_string()))
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        use minijinja::{filters as f, tests as t};
        let mut env = Environment::empty();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(EXPR_FUEL));
        env.set_recursion_limit(EXPR_RECURSION_LIMIT);
        env.add_filter("lower", f::lower);
        env.add_filter("upper", f::upper);
        env.add_filter("trim", f::trim);
        env.add_filter("length", f::length);
        env.add_filter("default", f::default);
        env.add_filter("first", f::first);
        env.add_filter("last", f::last);
        env.add_filter("int", f::int);
        env.add_filter("float", f::float);
        env.add_filter("string", f::string);
        env.add_filter("bool", f::bool);
        env.add_filter("abs", f::abs);
        env.add_filter("round", f::round);
        env.add_filter("join", f::join);
        env.add_filter("list", f::list);
        env.add_filter("capitalize", f::capitalize);
        env.add_filter("title", f::title);
        env.add_filter("items", f::items);
        env.add_filter("keys", keys);
        env.add_test("defined", t::is_defined);
        env.add_test("undefined", t::is_undefined);
        env.add_test("none", t::is_none);
        env.add_test("boolean", t::is_boolean);
        env.add_test("number", t::is_number);
        env.add_test("integer", t::is_integer);
        env.add_test("float", t::is_float);
        env.add_test("string", t::is_string);
        env.add_test("sequence", t::is_sequence);
        env.add_test("mapping", t::is_mapping);
        env.add_test("true", t::is_true);
        env.add_test("false", t::is_false);
        env.add_test("odd", t::is_odd);
        env.add_test("even", t::is_even);
        env.add_test("eq", t::is_eq);
        env.add_test("ne", t::is_ne);
        env.add_test("lt", t::is_lt);
        env.add_test("le", t::is_le);
        env.add_test("gt", t::is_gt);
        env.add_test("ge", t::is_ge);
        env.add_test("in", t::is_in);
        env.add_test("startingwith", t::is_startingwith);
        env.add_test("endingwith", t::is_endingwith);
        env
    })
}

fn keys(value: &Value) -> Result<Value, minijinja::Error> {
    let keys: Vec<Value> = value.try_iter()?.collect();
    Ok(Value::from(keys))
}

/// How a step ended, as expressions see it (`steps.x.status ==
/// 'succeeded'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
    TimedOut,
    Cancelled,
    /// An approval step that was rejected.
    Rejected,
}

impl StepStatus {
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Rejected => "rejected",
        }
    }
}

/// What a step left for the steps after it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepResult {
    pub status: StepStatus,
    pub output: serde_json::Value,
    pub exit_code: Option<i64>,
}

/// What an expression may see. The engine fills `steps` with the steps
/// upstream of the one being evaluated only, and `env` and `secrets` with
/// what is granted only.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub inputs: serde_json::Map<String, serde_json::Value>,
    pub steps: BTreeMap<String, StepResult>,
    pub env: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// `item` and `index` inside a `foreach`.
    pub item: Option<(serde_json::Value, usize)>,
}

impl Scope {
    pub fn with_inputs(inputs: serde_json::Map<String, serde_json::Value>) -> Scope {
        Scope {
            inputs,
            ..Scope::default()
        }
    }

    /// The scope the step `id` of `workflow` is evaluated in: this one with
    /// only the results of the steps upstream of it, so no template can read
    /// a step that has not finished before it.
    pub fn for_step(&self, workflow: &crate::model::Workflow, id: &str) -> Scope {
        let upstream = workflow.upstream_of(id);
        Scope {
            inputs: self.inputs.clone(),
            steps: self
                .steps
                .iter()
                .filter(|(k, _)| upstream.contains(k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            env: self.env.clone(),
            secrets: self.secrets.clone(),
            item: self.item.clone(),
        }
    }

    fn root(&self) -> (Value, Vec<Arc<Granted>>) {
        let env = Arc::new(Granted::new("env", &self.env));
        let secrets = Arc::new(Granted::new("secrets", &self.secrets));
        let mut root: BTreeMap<&str, Value> = BTreeMap::new();
        root.insert("inputs", Value::from_serialize(&self.inputs));
        root.insert("steps", Value::from_serialize(&self.steps));
        root.insert("env", Value::from_dyn_object(env.clone()));
        root.insert("secrets", Value::from_dyn_object(secrets.clone()));
        if let Some((item, index)) = &self.item {
            root.insert("item", Value::from_serialize(item));
            root.insert("index", Value::from(*index));
        }
        (Value::from(root), vec![env, secrets])
    }
}

/// `env` or `secrets`: hands out granted names only, remembers the first
/// name asked for that is not, and cannot be listed.
struct Granted {
    scope: &'static str,
    values: BTreeMap<String, Value>,
    denied: Mutex<Vec<String>>,
}

impl Granted {
    fn new(scope: &'static str, values: &BTreeMap<String, String>) -> Granted {
        Granted {
            scope,
            values: values
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
            denied: Mutex::new(Vec::new()),
        }
    }
}

impl fmt::Debug for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the values: they may be secrets.
        write!(f, "<{}>", self.scope)
    }
}

impl Object for Granted {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        match self.values.get(name) {
            Some(v) => Some(v.clone()),
            None => {
                if let Ok(mut denied) = self.denied.lock() {
                    denied.push(name.to_owned());
                }
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    Text(String),
    Expr(Expr),
}

/// A string with `{{ expression }}` holes.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

impl Template {
    /// Parses and checks a template. `item` says whether `item` and
    /// `index` are in scope (inside a `foreach`).
    pub fn parse(src: &str, item: bool) -> Result<Template, ExprError> {
        if src.len() > MAX_TEMPLATE_BYTES {
            return Err(ExprError::new(
                codes::EXPR_TOO_LONG,
                format!("the template is over {MAX_TEMPLATE_BYTES} bytes"),
            ));
        }
        let mut segments = Vec::new();
        let mut rest = src;
        let mut exprs = 0;
        loop {
            let next = ["{{", "{%", "{#"]
                .iter()
                .filter_map(|m| rest.find(m).map(|at| (at, *m)))
                .min();
            let Some((at, marker)) = next else {
                if !rest.is_empty() {
                    segments.push(Segment::Text(rest.to_owned()));
                }
                break;
            };
            if marker != "{{" {
                return Err(ExprError::new(
                    codes::EXPR_STATEMENT,
                    format!(
                        "`{marker}` blocks are not available: templates are text and `{{{{ expression }}}}` only"
                    ),
                ));
            }
            if at > 0 {
                segments.push(Segment::Text(rest[..at].to_owned()));
            }
            let inner = &rest[at + 2..];
            let (lexed, close) = lex(inner, true)?;
            let close = close.unwrap_or(inner.len());
            let body = &inner[..close];
            if body.len() > MAX_EXPR_BYTES {
                return Err(ExprError::new(
                    codes::EXPR_TOO_LONG,
                    format!("the expression is over {MAX_EXPR_BYTES} bytes"),
                ));
            }
            exprs += 1;
            if exprs > MAX_TEMPLATE_EXPRS {
                return Err(ExprError::new(
                    codes::EXPR_TOO_LONG,
                    format!("the template has more than {MAX_TEMPLATE_EXPRS} `{{{{ … }}}}`"),
                ));
            }
            segments.push(Segment::Expr(Expr::from_tokens(body, &lexed, item)?));
            rest = &inner[close + 2..];
        }
        Ok(Template {
            source: src.to_owned(),
            segments,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the template has no `{{ … }}` at all.
    pub fn is_literal(&self) -> bool {
        self.exprs().next().is_none()
    }

    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Expr(e) => Some(e),
            Segment::Text(_) => None,
        })
    }

    /// Every reference of every expression in the template.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.exprs().flat_map(|e| e.refs.iter())
    }

    /// Renders the template to a string.
    pub fn render(&self, scope: &Scope) -> Result<String, EvalError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Expr(e) => out.push_str(&display(&e.eval_value(scope)?)?),
            }
            if out.len() > MAX_RENDERED_BYTES {
                return Err(EvalError::TooLarge {
                    limit: MAX_RENDERED_BYTES,
                });
            }
        }
        Ok(out)
    }

    /// Renders the template to JSON: a template that is exactly one
    /// `{{ expression }}` keeps the expression's type (a number stays a
    /// number), any other is a string.
    pub fn render_value(&self, scope: &Scope) -> Result<serde_json::Value, EvalError> {
        if let [Segment::Expr(e)] = self.segments.as_slice() {
            let value = e.eval_value(scope)?;
            if value.as_str().is_none() {
                let json = to_json(&value)?;
                if json.to_string().len() > MAX_RENDERED_BYTES {
                    return Err(EvalError::TooLarge {
                        limit: MAX_RENDERED_BYTES,
                    });
                }
                return Ok(json);
            }
        }
        self.render(scope).map(serde_json::Value::String)
    }
}

/// How a value reads in text: strings as they are, `none` as nothing,
/// booleans as `true` and `false`, lists and mappings as JSON.
pub(crate) fn display(value: &Value) -> Result<String, EvalError> {
    use minijinja::value::ValueKind;
    let text = match value.kind() {
        ValueKind::Undefined => return Err(EvalError::Undefined("a value".into())),
        ValueKind::None => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        ValueKind::Bool => if value.is_true() { "true" } else { "false" }.to_owned(),
        ValueKind::Number => value.to_string(),
        _ => serde_json::to_string(value).map_err(|e| EvalError::Failed(e.to_string()))?,
    };
    if text.len() > MAX_RENDERED_BYTES {
        return Err(EvalError::TooLarge {
            limit: MAX_RENDERED_BYTES,
        });
    }
    Ok(text)
}

pub(crate) fn eval_raw(expr: &Expr, scope: &Scope) -> Result<Value, EvalError> {
    expr.eval_value(scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope::with_inputs(
            json!({"name": "Developer", "environment": "dev", "n": 3})
                .as_object()
                .cloned()
                .unwrap(),
        );
        s.steps.insert(
            "run-tests".into(),
            StepResult {
                status: StepStatus::Succeeded,
                output: json!({"tag": "v1"}),
                exit_code: Some(0),
            },
        );
        s.env.insert("REGION".into(), "eu".into());
        s
    }

    #[test]
    fn hyphenated_step_ids_are_one_name() {
        let e = Expr::parse("steps.run-tests.exit_code == 0", false).unwrap();
        assert_eq!(e.step_refs().collect::<Vec<_>>(), ["run-tests"]);
        assert!(e.eval_bool(&scope()).unwrap());
        let e = Expr::parse("inputs.n - 1", false).unwrap();
        assert_eq!(e.eval(&scope()).unwrap(), json!(2));
    }

    #[test]
    fn membership_and_templates() {
        let e = Expr::parse("inputs.environment in ['dev', 'staging', 'prod']", false).unwrap();
        assert!(e.eval_bool(&scope()).unwrap());
        let t = Template::parse(
            "Hello {{ inputs.name }}! {{ steps['run-tests'].output.tag }}",
            false,
        )
        .unwrap();
        assert_eq!(t.render(&scope()).unwrap(), "Hello Developer! v1");
        let t = Template::parse("{{ inputs.n }}", false).unwrap();
        assert_eq!(t.render_value(&scope()).unwrap(), json!(3));
    }

    #[test]
    fn ungranted_names_are_typed_errors() {
        let t = Template::parse("{{ env.HOME }}", false).unwrap();
        assert_eq!(
            t.render(&scope()).unwrap_err(),
            EvalError::NotGranted {
                scope: "env",
                name: "HOME".into()
            }
        );
        let t = Template::parse("{{ env.REGION }}", false).unwrap();
        assert_eq!(t.render(&scope()).unwrap(), "eu");
        let t = Template::parse("{{ secrets.API_KEY | default('x') }}", false).unwrap();
        assert!(matches!(
            t.render(&scope()).unwrap_err(),
            EvalError::NotGranted { .. }
        ));
    }

    #[test]
    fn a_closing_brace_pair_in_an_expression_is_refused_not_a_panic() {
        // minijinja 2.24's `compile_expression` panics on `}}` followed by
        // more text (found by the property test).
        let err = Expr::parse(" }}$(", false).unwrap_err();
        assert_eq!(err.code, codes::EXPR_SYNTAX);
        let e = Expr::parse("{'a': {'b': 1} }", false).unwrap();
        assert_eq!(e.eval(&Scope::default()).unwrap(), json!({"a": {"b": 1}}));
    }

    #[test]
    fn a_wide_character_does_not_hide_what_follows() {
        // `€` is three bytes and one character: the lexer must not step
        // over the `}}` after it.
        let t = Template::parse("{{ €}}$(x) }}", false);
        assert!(t.is_err());
        let err = Expr::parse("€}}$(", false).unwrap_err();
        assert_eq!(err.code, codes::EXPR_SYNTAX);
        assert!(err.message.contains("}}"), "{err}");
    }

    #[test]
    fn undefined_values_name_the_expression() {
        let t = Template::parse("a {{ inputs.nope }} b", false).unwrap();
        let err = t.render(&scope()).unwrap_err();
        assert_eq!(err.to_string(), "`inputs.nope` is undefined");
        let e = Expr::parse("steps.build.output.tag == 'x'", false).unwrap();
        let err = e.eval(&scope()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`steps.build.output.tag == 'x'` is undefined"
        );
    }
}
