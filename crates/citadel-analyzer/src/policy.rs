//! Tenant policy: which rules are ignored, which are raised to errors, and
//! which have another severity. Only errors block a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::RULES;
use crate::{Diagnostic, NESTING_RULE, SYNTAX_RULE, Severity};

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
