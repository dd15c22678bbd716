//! What a workflow is: a YAML DAG of typed steps.
mod diag;
mod expr;
mod shell;
mod yaml;
pub use diag::{Diagnostic, Pos, codes};
pub use expr::*;
pub use shell::{Quoting, ShellCommand, escape};
pub use yaml::{MAX_WORKFLOW_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES};
