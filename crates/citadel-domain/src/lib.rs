//! The domain's types, shared by every layer: id newtypes, the enums of run
//! status, job state, version review state, trigger, language, capability,
//! node state, priority and permission, the capability grant and the per-run limits, and
//! the analyzer's policy.
//!
//! No I/O and no heavy dependencies (serde and thiserror only), so a crate of
//! pure rules can depend on this one without pulling in QuickJS or oxc. Each
//! enum's strings are exactly those the API and the database use.

/// A closed set of names: each variant with the exact string the API and the
/// database use, `ALL`, `as_str`, `Display`, `FromStr` (a typed error naming
/// the bad value), and serde through the same strings (serde's own derive, so
/// its messages for a bad value stay what clients see today).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The string the API and the database use.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// For rows decoded from text columns (`#[sqlx(try_from = "String")]`):
        /// a value that names no variant is an error, never a default.
        impl TryFrom<String> for $name {
            type Error = $crate::UnknownVariant;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownVariant {
                        kind: $kind,
                        value: s.to_owned(),
                    }),
                }
            }
        }
    };
}

mod analysis;
mod capability;
mod ids;
mod limits;
mod permission;
mod states;

pub use analysis::{
    Diagnostic, Language, NESTING_RULE, Policy, PolicyError, RULES, SYNTAX_RULE, Severity,
};
pub use capability::{Capability, Grants};
pub use ids::{JobId, NodeId, RunId, ScriptId, TenantId, TokenId, UserId, VersionId};
pub use limits::{DEFAULT_WARM_RUNS, DEFAULT_WARM_TTL_SECONDS, Isolation, Limits, TimeZoneName};
pub use permission::Permission;
pub use states::{
    DeliveryState, JobState, KillScope, Missed, NodeState, Priority, RunStatus, ScriptKind,
    StepStatus, Trigger, VersionState,
};

/// A string that names no variant of a domain enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownVariant {
    /// What was being parsed, e.g. `run status`.
    pub kind: &'static str,
    /// The string that was given.
    pub value: String,
}
