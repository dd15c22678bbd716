//! What the analyzer reports and how a tenant's policy judges it: the rule
//! catalogue, severities, diagnostics and the policy. The analysis itself
//! (parsing with oxc) lives in `citadel-analyzer`; these are plain data and
//! pure rules so settings can carry a policy without depending on a parser.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::states::Language;

/// How serious a diagnostic is. Only errors block a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One finding, located in the user's source (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The rule that fired, e.g. `no-eval`; `syntax` for parse errors.
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// The rule id of parse errors. Policies cannot allow or downgrade it.
pub const SYNTAX_RULE: &str = "syntax";

/// The rule id of sources that nest deeper than the analyzer's nesting
/// limits; they are refused before parsing. Policies cannot allow or
/// downgrade it.
pub const NESTING_RULE: &str = "nesting-limit";

/// Every rule id this analyzer reports, with its default severity.
pub const RULES: &[(&str, Severity)] = &[
    ("no-eval", Severity::Error),
    ("no-new-function", Severity::Error),
    ("no-with", Severity::Error),
    ("no-dynamic-import", Severity::Error),
    ("no-prototype-mutation", Severity::Error),
    ("no-unbounded-loop", Severity::Error),
    ("hardcoded-credential", Severity::Error),
    ("high-entropy-string", Severity::Warning),
];

/// Decides which diagnostics block a script.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Rules whose findings are dropped.
    pub allow: Vec<String>,
    /// Rules whose findings become errors.
    pub deny: Vec<String>,
    /// Per-rule severity overrides, applied before `allow` and `deny`.
    pub severity: BTreeMap<String, Severity>,
}

/// A policy that names a rule the analyzer does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown rule `{0}` in policy")]
    UnknownRule(String),
    #[error("the `syntax` and `nesting-limit` rules cannot be allowed or downgraded")]
    SyntaxRule,
}

impl Policy {
    /// Checks that every rule the policy names exists.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let named = self
            .allow
            .iter()
            .chain(&self.deny)
            .chain(self.severity.keys());
        for rule in named {
            if rule == SYNTAX_RULE || rule == NESTING_RULE {
                return Err(PolicyError::SyntaxRule);
            }
            if !RULES.iter().any(|(id, _)| id == rule) {
                return Err(PolicyError::UnknownRule(rule.clone()));
            }
        }
        Ok(())
    }

    /// The diagnostics as this policy sees them: allowed rules removed,
    /// severities overridden and denied rules raised to errors. Syntax and
    /// nesting errors pass through unchanged.
    pub fn apply(&self, diagnostics: &[Diagnostic]) -> Vec<Diagnostic> {
        let fixed = |d: &Diagnostic| d.rule == SYNTAX_RULE || d.rule == NESTING_RULE;
        diagnostics
            .iter()
            .filter(|d| fixed(d) || !self.allow.contains(&d.rule))
            .map(|d| {
                let mut d = d.clone();
                if !fixed(&d) {
                    if let Some(s) = self.severity.get(&d.rule) {
                        d.severity = *s;
                    }
                    if self.deny.contains(&d.rule) {
                        d.severity = Severity::Error;
                    }
                }
                d
            })
            .collect()
    }

    /// True when any diagnostic is an error under this policy.
    pub fn blocks(&self, diagnostics: &[Diagnostic]) -> bool {
        self.apply(diagnostics)
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}
