//! Located diagnostics: every problem validation finds, with the line and
//! column of the YAML node it concerns and a stable code that tools and
//! tests match on (the message is for people and may be reworded).

use std::fmt;

use serde::Serialize;

/// A position in the workflow's text, both 1-based. Column counts
/// characters, not bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub fn new(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem found in a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// A stable, dotted code such as `step.cycle` (see [`codes`]).
    pub code: &'static str,
    pub message: String,
    pub line: usize,
    pub column: usize,
    /// A suggestion, such as the field that was probably meant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            line: pos.line,
            column: pos.column,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} [{}]",
            self.line, self.column, self.message, self.code
        )?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// The diagnostic codes, one constant each so a typo is a compile error.
pub mod codes {
    /// The document is larger than [`crate::MAX_WORKFLOW_BYTES`].
    pub const YAML_TOO_LARGE: &str = "yaml.too_large";
    /// The YAML does not parse.
    pub const YAML_SYNTAX: &str = "yaml.syntax";
    /// An alias (`*name`): refused, so no expansion bomb can be built.
    pub const YAML_ALIAS: &str = "yaml.alias";
    /// Nesting deeper than [`crate::MAX_YAML_DEPTH`].
    pub const YAML_TOO_DEEP: &str = "yaml.too_deep";
    /// More nodes than [`crate::MAX_YAML_NODES`].
    pub const YAML_TOO_MANY_NODES: &str = "yaml.too_many_nodes";
    /// More than one document in the stream.
    pub const YAML_MULTIPLE_DOCUMENTS: &str = "yaml.multiple_documents";
    /// A key given twice in one mapping.
    pub const YAML_DUPLICATE_KEY: &str = "yaml.duplicate_key";
    /// A tag such as `!!python/object` (all tags are refused).
    pub const YAML_TAG: &str = "yaml.tag";

    /// A field this format does not have.
    pub const FIELD_UNKNOWN: &str = "field.unknown";
    /// A field that must be present is not.
    pub const FIELD_MISSING: &str = "field.missing";
    /// A field of the wrong shape (a list where a string was expected…).
    pub const FIELD_TYPE: &str = "field.type";
    /// A field whose value is out of range or malformed.
    pub const FIELD_VALUE: &str = "field.value";

    /// An input with an unknown `type`.
    pub const INPUT_TYPE: &str = "input.type";
    /// A `validation` rule that is malformed or does not apply to the type.
    pub const INPUT_VALIDATION: &str = "input.validation";
    /// A `default` that does not satisfy the input's own type or rules.
    pub const INPUT_DEFAULT: &str = "input.default";

    /// A step with an unknown `type`.
    pub const STEP_TYPE: &str = "step.type";
    /// Two steps with one id.
    pub const STEP_DUPLICATE_ID: &str = "step.duplicate_id";
    /// A `depends_on` naming no step.
    pub const STEP_UNKNOWN_DEPENDENCY: &str = "step.unknown_dependency";
    /// A cycle of `depends_on`.
    pub const STEP_CYCLE: &str = "step.cycle";
    /// A step type the security profile forbids.
    pub const STEP_FORBIDDEN: &str = "step.forbidden";

    /// An expression or template that does not parse.
    pub const EXPR_SYNTAX: &str = "expr.syntax";
    /// An operator left out of workflow expressions (`*`, `**`).
    pub const EXPR_OPERATOR: &str = "expr.operator";
    /// An attribute starting with `_` (`''.__class__`).
    pub const EXPR_PRIVATE: &str = "expr.private";
    /// A `{% … %}` statement or `{# … #}` comment: templates are
    /// `{{ expression }}` only.
    pub const EXPR_STATEMENT: &str = "expr.statement";
    /// A name that is not `inputs`, `steps`, `env`, `secrets` (or `item`
    /// and `index` inside a `foreach`).
    pub const EXPR_UNKNOWN_NAME: &str = "expr.unknown_name";
    /// An expression or template over the length cap.
    pub const EXPR_TOO_LONG: &str = "expr.too_long";
    /// A template referring to a step that does not exist.
    pub const TEMPLATE_UNKNOWN_STEP: &str = "template.unknown_step";
    /// A template referring to a step that does not run before this one.
    pub const TEMPLATE_NOT_UPSTREAM: &str = "template.not_upstream";
    /// A template referring to an input the workflow does not declare.
    pub const TEMPLATE_UNKNOWN_INPUT: &str = "template.unknown_input";
    /// A template reading an env variable or secret the workflow does not
    /// declare in its top-level `env:` or `secrets:`.
    pub const TEMPLATE_UNDECLARED: &str = "template.undeclared";
    /// A template in a shell command where no quoting can make it safe
    /// (inside `$(…)`, backquotes, `${…}`, a comment or a here-document).
    pub const SHELL_CONTEXT: &str = "shell.context";

    /// A `foreach` whose item cap is over the platform's maximum.
    pub const FOREACH_CAP: &str = "foreach.cap";
    /// A sub-workflow that calls itself, directly or not.
    pub const WORKFLOW_CYCLE: &str = "workflow.cycle";
    /// A sub-workflow the resolver does not know.
    pub const WORKFLOW_UNKNOWN: &str = "workflow.unknown";
    /// Sub-workflows nested deeper than the limit.
    pub const WORKFLOW_DEPTH: &str = "workflow.depth";
    /// An unknown security profile name.
    pub const PROFILE_UNKNOWN: &str = "profile.unknown";
}
