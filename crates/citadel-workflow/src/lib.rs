//! What a workflow is: a YAML DAG of typed steps with typed inputs,
//! `when` conditions, templates, retries, timeouts, approvals and outputs,
//! checked against a security profile.
//!
//! Pure rules, no I/O: [`validate`] turns YAML text into a [`Workflow`] or
//! every located [`Diagnostic`] at once; [`check_inputs`] checks a run's
//! input; [`plan`] resolves the DAG and renders what it can with nothing
//! executed; [`Progress`] decides, step result by step result, what runs
//! next and how a run ends; [`Expr`], [`Template`] and [`ShellCommand`]
//! evaluate what the engine needs at run time. The engine runs workflows, the store keeps
//! them, the server and CLI speak about them.
//!
//! ```
//! use citadel_workflow::{Decision, Profile, Rendered, plan, validate};
//!
//! let yaml = r#"
//! name: hello-world
//! version: 1.0
//! inputs:
//!   name: { type: string, default: "Developer" }
//! steps:
//!   - id: greet
//!     type: shell
//!     command: "echo 'Hello {{ inputs.name }}!'"
//! "#;
//! // Shell steps need the elevated profile.
//! let errors = validate(yaml, Profile::Standard).unwrap_err();
//! assert_eq!(errors[0].code, "step.forbidden");
//! assert_eq!((errors[0].line, errors[0].column), (8, 11));
//!
//! let workflow = validate(yaml, Profile::Elevated).unwrap();
//! let plan = plan(&workflow, &serde_json::json!({}), Profile::Elevated).unwrap();
//! assert_eq!(plan.steps[0].decision, Decision::Runs("no condition".into()));
//! assert_eq!(
//!     plan.steps[0].fields[0].rendered,
//!     Rendered::Value("echo 'Hello Developer!'".into())
//! );
//! ```

mod diag;
mod expr;
mod inputs;
mod model;
mod plan;
mod profile;
mod progress;
mod shell;
mod validate;
mod yaml;

pub use diag::{Diagnostic, Pos, codes};
pub use expr::{
    EXPR_FUEL, EXPR_RECURSION_LIMIT, EvalError, Expr, ExprError, MAX_EXPR_BYTES, MAX_EXPR_REFS,
    MAX_RENDERED_BYTES, MAX_TEMPLATE_BYTES, MAX_TEMPLATE_EXPRS, Ref, Scope, Segment, StepResult,
    StepStatus, Template,
};
pub use inputs::{InputError, Violation, check_inputs, check_value, input_codes};
pub use model::*;
pub use plan::*;
pub use profile::{Network, Profile, Rules, UnknownProfile};
pub use progress::{Outcome, Progress, Ready};
pub use shell::{Quoting, ShellCommand, escape};
pub use validate::{MAX_SUBWORKFLOW_DEPTH, Resolver, did_you_mean, validate, validate_with};
pub use yaml::{MAX_WORKFLOW_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES};
