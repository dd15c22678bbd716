//! The workflow as validation leaves it: every name checked, every
//! expression and template parsed, every step's type-specific fields in
//! their own variant. The engine runs this; it never sees the YAML.

use serde::Serialize;

use crate::diag::Pos;
use crate::expr::{EvalError, Expr, Ref, Scope, Template};
use crate::profile::Profile;
use crate::shell::ShellCommand;

/// The most items a `foreach` may be given a cap of.
pub const MAX_FOREACH_ITEMS: usize = 10_000;
/// The cap of a `foreach` that does not set `max_items`.
pub const DEFAULT_FOREACH_ITEMS: usize = 1_000;
/// The most items of one `foreach` that may run at once.
pub const MAX_FOREACH_PARALLELISM: u32 = 64;
/// The longest `timeout` and `sleep`, in seconds (a week: approvals wait).
pub const MAX_STEP_SECONDS: u64 = 7 * 24 * 3600;
/// The most attempts a `retry` may ask for.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;
/// The most steps one workflow may have.
pub const MAX_STEPS: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    Script,
    Assert,
    Http,
    Emit,
    Approval,
    Sleep,
    Shell,
    Workflow,
    Foreach,
}

impl StepType {
    pub const ALL: [StepType; 9] = [
        StepType::Script,
        StepType::Assert,
        StepType::Http,
        StepType::Emit,
        StepType::Approval,
        StepType::Sleep,
        StepType::Shell,
        StepType::Workflow,
        StepType::Foreach,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StepType::Script => "script",
            StepType::Assert => "assert",
            StepType::Http => "http",
            StepType::Emit => "emit",
            StepType::Approval => "approval",
            StepType::Sleep => "sleep",
            StepType::Shell => "shell",
            StepType::Workflow => "workflow",
            StepType::Foreach => "foreach",
        }
    }

    pub fn parse(s: &str) -> Option<StepType> {
        StepType::ALL.into_iter().find(|t| t.name() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    pub name: String,
    /// As written: `1.0` stays `"1.0"`.
    pub version: String,
    pub description: Option<String>,
    /// The profile the workflow asks for (it only ever lowers the one it
    /// is given).
    pub profile: Option<Profile>,
    pub inputs: Vec<InputSpec>,
    /// The environment variables the workflow reads (`env.NAME`); the
    /// platform's allowlist decides which it gets.
    pub env: Vec<String>,
    /// The secrets the workflow reads (`secrets.NAME`); the tenant's grant
    /// decides which it gets.
    pub secrets: Vec<String>,
    pub steps: Vec<Step>,
    pub outputs: Vec<Output>,
}

impl Workflow {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// Step ids by level, in file order within a level: a step's level is
    /// one more than its deepest dependency's, so the steps of one level
    /// may run in parallel once the levels before them are done. (A
    /// validated workflow has no cycle; a step in one would be left out.)
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let mut level: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        loop {
            let before = level.len();
            for step in &self.steps {
                if level.contains_key(step.id.as_str()) {
                    continue;
                }
                let deps: Option<Vec<usize>> = step
                    .depends_on
                    .iter()
                    .map(|d| level.get(d.as_str()).copied())
                    .collect();
                if let Some(deps) = deps {
                    level.insert(&step.id, deps.iter().max().map_or(0, |m| m + 1));
                }
            }
            if level.len() == before {
                break;
            }
        }
        let mut out: Vec<Vec<&str>> = Vec::new();
        for step in &self.steps {
            if let Some(&l) = level.get(step.id.as_str()) {
                if out.len() <= l {
                    out.resize_with(l + 1, Vec::new);
                }
                if !out[l].contains(&step.id.as_str()) {
                    out[l].push(&step.id);
                }
            }
        }
        out
    }

    /// The steps that run before `id`: its dependencies, theirs, and so
    /// on. The engine's [`Scope`] for a step holds these steps' results
    /// only.
    pub fn upstream_of(&self, id: &str) -> std::collections::BTreeSet<&str> {
        let deps: std::collections::HashMap<&str, &[String]> = self
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.depends_on.as_slice()))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<&str> = deps
            .get(id)
            .map(|d| d.iter().map(String::as_str).collect())
            .unwrap_or_default();
        while let Some(d) = stack.pop() {
            if seen.insert(d)
                && let Some(next) = deps.get(d)
            {
                stack.extend(next.iter().map(String::as_str));
            }
        }
        seen
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub name: String,
    pub template: Template,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl InputType {
    pub const ALL: [InputType; 6] = [
        InputType::String,
        InputType::Number,
        InputType::Integer,
        InputType::Boolean,
        InputType::Object,
        InputType::Array,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Integer => "integer",
            InputType::Boolean => "boolean",
            InputType::Object => "object",
            InputType::Array => "array",
        }
    }

    pub fn parse(s: &str) -> Option<InputType> {
        InputType::ALL.into_iter().find(|t| t.name() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub ty: InputType,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
    pub validation: Validation,
    pub pos: Pos,
}

/// An input's `validation` rules.
#[derive(Clone, Debug, Default)]
pub struct Validation {
    pub pattern: Option<regex::Regex>,
    pub one_of: Option<Vec<serde_json::Value>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
}

impl PartialEq for Validation {
    fn eq(&self, other: &Validation) -> bool {
        self.pattern.as_ref().map(regex::Regex::as_str)
            == other.pattern.as_ref().map(regex::Regex::as_str)
            && self.one_of == other.one_of
            && self.min == other.min
            && self.max == other.max
            && self.min_length == other.min_length
            && self.max_length == other.max_length
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Fixed,
    Linear,
    Exponential,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Seconds before the second attempt.
    pub delay: u64,
    pub backoff: Backoff,
}

impl Retry {
    /// Seconds to wait before attempt `attempt` (2 for the first retry).
    pub fn delay_before(&self, attempt: u32) -> u64 {
        let n = u64::from(attempt.saturating_sub(1).max(1));
        match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Linear => self.delay.saturating_mul(n),
            Backoff::Exponential => self.delay.saturating_mul(1u64 << (n - 1).min(32)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub id: String,
    pub pos: Pos,
    pub action: Action,
    pub depends_on: Vec<String>,
    pub when: Option<Expr>,
    /// Seconds.
    pub timeout: Option<u64>,
    pub retry: Option<Retry>,
    pub continue_on_error: bool,
    /// Where each `depends_on` entry is, in order.
    pub(crate) dependency_pos: Vec<Pos>,
    /// Where each template and expression of the step stands, with what it
    /// reads (for validation's upstream checks and the plan).
    pub(crate) sites: Vec<Site>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Site {
    pub pos: Pos,
    pub field: String,
    pub refs: Vec<Ref>,
}

impl Step {
    pub fn step_type(&self) -> StepType {
        self.action.step_type()
    }

    /// Why `profile` refuses this step (its type, or a `foreach` body's),
    /// if it does: the plan and a run's progress say it alike.
    pub fn forbidden_by(&self, profile: Profile) -> Option<String> {
        let ty = self.step_type();
        if !profile.allows(ty) {
            return Some(format!(
                "{} steps are not allowed under the `{profile}` profile",
                ty.name()
            ));
        }
        if let Action::Foreach { action, .. } = &self.action
            && !profile.allows(action.step_type())
        {
            return Some(format!(
                "its {} steps are not allowed under the `{profile}` profile",
                action.step_type().name()
            ));
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ScriptSource {
    /// A saved script, by name.
    Saved(String),
    /// Inline JavaScript, run in the sandbox like any script. Never
    /// templated: values reach it through `input` only.
    Inline(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Items {
    List(Vec<serde_json::Value>),
    /// A template that must yield a list (`"{{ inputs.hosts }}"`).
    Template(Template),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Script {
        source: ScriptSource,
        input: Option<Templated>,
    },
    Assert {
        condition: Expr,
        message: Option<Template>,
    },
    Http {
        method: String,
        url: Template,
        headers: Vec<(String, Template)>,
        body: Option<Templated>,
    },
    Emit {
        event: String,
        payload: Option<Templated>,
    },
    /// Suspends until a principal allowed to approve does, or rejects.
    Approval {
        message: Option<Template>,
    },
    Sleep {
        seconds: u64,
    },
    /// Runs in the process jail; elevated profile only.
    Shell {
        command: ShellCommand,
    },
    /// A sub-workflow by name.
    Workflow {
        workflow: String,
        inputs: Option<Templated>,
    },
    /// Runs `action` once per item, `item` and `index` in scope.
    Foreach {
        items: Items,
        action: Box<Action>,
        parallelism: u32,
        max_items: usize,
    },
}

impl Action {
    pub fn step_type(&self) -> StepType {
        match self {
            Action::Script { .. } => StepType::Script,
            Action::Assert { .. } => StepType::Assert,
            Action::Http { .. } => StepType::Http,
            Action::Emit { .. } => StepType::Emit,
            Action::Approval { .. } => StepType::Approval,
            Action::Sleep { .. } => StepType::Sleep,
            Action::Shell { .. } => StepType::Shell,
            Action::Workflow { .. } => StepType::Workflow,
            Action::Foreach { .. } => StepType::Foreach,
        }
    }
}

/// A JSON value whose strings may be templates (a script's `input`, an
/// http `body`).
#[derive(Clone, Debug, PartialEq)]
pub enum Templated {
    Literal(serde_json::Value),
    Template(Template),
    List(Vec<Templated>),
    Map(Vec<(String, Templated)>),
}

impl Templated {
    /// Renders every template leaf; a leaf that is exactly one
    /// `{{ expression }}` keeps the expression's type.
    pub fn render(&self, scope: &Scope) -> Result<serde_json::Value, EvalError> {
        Ok(match self {
            Templated::Literal(v) => v.clone(),
            Templated::Template(t) => t.render_value(scope)?,
            Templated::List(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|i| i.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            Templated::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.render(scope)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
        })
    }
}

impl Templated {
    /// Every reference of every template leaf.
    pub fn refs(&self) -> Vec<Ref> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_refs(&self, out: &mut Vec<Ref>) {
        match self {
            Templated::Literal(_) => {}
            Templated::Template(t) => out.extend(t.refs().cloned()),
            Templated::List(items) => items.iter().for_each(|i| i.collect_refs(out)),
            Templated::Map(entries) => entries.iter().for_each(|(_, v)| v.collect_refs(out)),
        }
    }
}

/// One templated field of a step, for the plan and the engine.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Template(&'a Template),
    Templated(&'a Templated),
    Shell(&'a ShellCommand),
    Expr(&'a Expr),
}

impl Field<'_> {
    pub fn refs(&self) -> Vec<Ref> {
        match self {
            Field::Template(t) => t.refs().cloned().collect(),
            Field::Templated(t) => t.refs(),
            Field::Shell(c) => c.template().refs().cloned().collect(),
            Field::Expr(e) => e.refs().to_vec(),
        }
    }

    /// The field as written.
    pub fn source(&self) -> String {
        match self {
            Field::Template(t) => t.source().to_owned(),
            Field::Templated(t) => templated_source(t).to_string(),
            Field::Shell(c) => c.template().source().to_owned(),
            Field::Expr(e) => e.source().to_owned(),
        }
    }

    /// Renders the field: a shell command escaped for the shell, an
    /// expression to its value.
    pub fn render(&self, scope: &Scope) -> Result<serde_json::Value, EvalError> {
        match self {
            Field::Template(t) => t.render(scope).map(serde_json::Value::String),
            Field::Templated(t) => t.render(scope),
            Field::Shell(c) => c.render(scope).map(serde_json::Value::String),
            Field::Expr(e) => e.eval(scope),
        }
    }
}

fn templated_source(t: &Templated) -> serde_json::Value {
    match t {
        Templated::Literal(v) => v.clone(),
        Templated::Template(t) => serde_json::Value::String(t.source().to_owned()),
        Templated::List(items) => {
            serde_json::Value::Array(items.iter().map(templated_source).collect())
        }
        Templated::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), templated_source(v)))
                .collect(),
        ),
    }
}

impl Action {
    /// The action's templated fields, by name, in a stable order.
    pub fn fields(&self) -> Vec<(String, Field<'_>)> {
        let mut out = Vec::new();
        match self {
            Action::Script { input, .. } => {
                if let Some(i) = input {
                    out.push(("input".into(), Field::Templated(i)));
                }
            }
            Action::Assert { condition, message } => {
                out.push(("condition".into(), Field::Expr(condition)));
                if let Some(m) = message {
                    out.push(("message".into(), Field::Template(m)));
                }
            }
            Action::Http {
                url, headers, body, ..
            } => {
                out.push(("url".into(), Field::Template(url)));
                for (name, value) in headers {
                    out.push((format!("headers.{name}"), Field::Template(value)));
                }
                if let Some(b) = body {
                    out.push(("body".into(), Field::Templated(b)));
                }
            }
            Action::Emit { payload, .. } => {
                if let Some(p) = payload {
                    out.push(("payload".into(), Field::Templated(p)));
                }
            }
            Action::Approval { message } => {
                if let Some(m) = message {
                    out.push(("message".into(), Field::Template(m)));
                }
            }
            Action::Sleep { .. } => {}
            Action::Shell { command } => out.push(("command".into(), Field::Shell(command))),
            Action::Workflow { inputs, .. } => {
                if let Some(i) = inputs {
                    out.push(("inputs".into(), Field::Templated(i)));
                }
            }
            Action::Foreach { items, action, .. } => {
                if let Items::Template(t) = items {
                    out.push(("items".into(), Field::Template(t)));
                }
                for (name, field) in action.fields() {
                    out.push((format!("do.{name}"), field));
                }
            }
        }
        out
    }
}

/// Why a `foreach`'s items cannot be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemsError {
    #[error("the foreach has {count} items, over its cap of {cap} items")]
    OverCap { count: usize, cap: usize },
    #[error("the foreach items are not a list but {0}")]
    NotAList(&'static str),
    #[error("the foreach items fail: {0}")]
    Eval(#[from] EvalError),
}

impl Items {
    /// The items, refused past `cap`.
    pub fn resolve(&self, scope: &Scope, cap: usize) -> Result<Vec<serde_json::Value>, ItemsError> {
        let list = match self {
            Items::List(list) => list.clone(),
            Items::Template(t) => {
                let value = match t.segments() {
                    [crate::expr::Segment::Expr(e)] => e.eval(scope)?,
                    _ => t.render_value(scope)?,
                };
                match value {
                    serde_json::Value::Array(list) => list,
                    serde_json::Value::Null => return Err(ItemsError::NotAList("null")),
                    serde_json::Value::Object(_) => return Err(ItemsError::NotAList("an object")),
                    _ => return Err(ItemsError::NotAList("a scalar")),
                }
            }
        };
        if list.len() > cap {
            return Err(ItemsError::OverCap {
                count: list.len(),
                cap,
            });
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_follow_the_backoff() {
        let retry = |backoff| Retry {
            attempts: 4,
            delay: 2,
            backoff,
        };
        let delays = |b| {
            (2..=4)
                .map(|a| retry(b).delay_before(a))
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(Backoff::Fixed), [2, 2, 2]);
        assert_eq!(delays(Backoff::Linear), [2, 4, 6]);
        assert_eq!(delays(Backoff::Exponential), [2, 4, 8]);
    }
}
