//! A run's error as the engine decides on it (whether a job is retried) and
//! as it is stored: typed until the run record is written, so nothing
//! parses the stored JSON back to learn what happened.

use citadel_sandbox::{ErrorKind, RunError};
use serde_json::json;

use crate::caps;

/// What ended a run with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Reported by the sandbox (or decided for it, e.g. a result too
    /// large).
    Sandbox(ErrorKind),
    /// A kill switch stopped the run, or refused it when its turn came.
    Killed,
    /// The caller of a synchronous run went away (disconnected, or its
    /// request timed out) before the run finished.
    CallerGone,
    /// A job's run not recorded yet, as its job describes it: the job's
    /// last error, and it will be retried…
    JobFailed,
    /// …or it used up its attempts.
    DeadLetter,
    /// A workflow run ended because one of its steps failed (the error
    /// names the step).
    StepFailed,
    /// A workflow run could not start: its definition, its inputs or its
    /// profile do not allow it.
    InvalidWorkflow,
}

impl ErrorCode {
    /// The stable code stored in the run's error (`code`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Killed => "killed",
            ErrorCode::CallerGone => "caller_gone",
            ErrorCode::JobFailed => "job_failed",
            ErrorCode::DeadLetter => "dead_letter",
            ErrorCode::StepFailed => "step_failed",
            ErrorCode::InvalidWorkflow => "invalid_workflow",
            ErrorCode::Sandbox(kind) => match kind {
                ErrorKind::ScriptError => "script_error",
                ErrorKind::CapabilityDenied => "capability_denied",
                ErrorKind::Unavailable => "unavailable",
                ErrorKind::InvalidResult => "invalid_result",
                ErrorKind::NeverSettles => "never_settles",
                ErrorKind::Timeout => "timeout",
                ErrorKind::CpuLimit => "cpu_limit",
                ErrorKind::MemoryLimit => "memory_limit",
                ErrorKind::StackOverflow => "stack_overflow",
                ErrorKind::ResultTooLarge => "result_too_large",
                ErrorKind::HostCallLimit => "host_call_limit",
                ErrorKind::Cancelled => "cancelled",
                ErrorKind::Rejected => "rejected",
                ErrorKind::Internal => "internal",
                ErrorKind::SandboxCrashed => "sandbox_crashed",
            },
        }
    }

    /// A failure of the platform rather than of the script: a job that
    /// fails so is retried.
    pub fn is_infrastructure(self) -> bool {
        matches!(
            self,
            ErrorCode::Sandbox(ErrorKind::SandboxCrashed | ErrorKind::Internal)
        )
    }
}

/// A run's error, every field within its cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredError {
    pub code: ErrorCode,
    pub name: String,
    pub message: String,
    /// Where in the user's source, for errors the sandbox reported (stored
    /// as `line` and `column`, `null` when unknown); `None` for errors
    /// decided outside the sandbox, which store no position.
    pub position: Option<(Option<u32>, Option<u32>)>,
}

impl StoredError {
    /// An error decided outside the sandbox.
    pub fn new(code: ErrorCode, name: &str, message: &str) -> StoredError {
        StoredError {
            code,
            name: caps::clip(name, caps::MAX_ERROR_NAME_BYTES),
            message: caps::clip(message, caps::MAX_ERROR_MESSAGE_BYTES),
            position: None,
        }
    }

    /// The error a sandbox reported (untrusted: capped here).
    pub fn from_sandbox(e: &RunError) -> StoredError {
        StoredError {
            position: Some((e.line, e.column)),
            ..StoredError::new(ErrorCode::Sandbox(e.kind), &e.name, &e.message)
        }
    }

    /// The JSON text stored in `runs.error`.
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "code": self.code.as_str(),
            "name": self.name,
            "message": self.message,
        });
        if let Some((line, column)) = self.position {
            v["line"] = json!(line);
            v["column"] = json!(column);
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored format is the one written before errors were typed.
    #[test]
    fn the_stored_json_is_unchanged() {
        let mut e = RunError::new(ErrorKind::ScriptError, "TypeError", "x is not a function");
        e.line = Some(3);
        assert_eq!(
            StoredError::from_sandbox(&e).to_json(),
            json!({
                "code": e.kind,
                "name": "TypeError",
                "message": "x is not a function",
                "line": Some(3),
                "column": None::<u32>,
            })
            .to_string()
        );
        assert_eq!(
            StoredError::new(ErrorCode::Killed, "Killed", "stopped").to_json(),
            json!({ "code": "killed", "name": "Killed", "message": "stopped" }).to_string()
        );
    }

    /// Every sandbox kind's code is its serialised name.
    #[test]
    fn sandbox_codes_are_their_serialised_names() {
        use ErrorKind::*;
        for kind in [
            ScriptError,
            CapabilityDenied,
            Unavailable,
            InvalidResult,
            NeverSettles,
            Timeout,
            CpuLimit,
            MemoryLimit,
            StackOverflow,
            ResultTooLarge,
            HostCallLimit,
            Cancelled,
            Rejected,
            Internal,
            SandboxCrashed,
        ] {
            assert_eq!(json!(ErrorCode::Sandbox(kind).as_str()), json!(kind));
        }
    }

    #[test]
    fn only_platform_failures_are_infrastructure() {
        assert!(ErrorCode::Sandbox(ErrorKind::SandboxCrashed).is_infrastructure());
        assert!(ErrorCode::Sandbox(ErrorKind::Internal).is_infrastructure());
        assert!(!ErrorCode::Sandbox(ErrorKind::ScriptError).is_infrastructure());
        assert!(!ErrorCode::Killed.is_infrastructure());
        assert!(!ErrorCode::CallerGone.is_infrastructure());
    }
}
