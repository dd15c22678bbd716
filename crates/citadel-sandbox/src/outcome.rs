//! What a run returns.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    /// The script threw, broke a limit other than time, or could not run.
    Failed,
    /// The wall-clock or CPU deadline passed.
    TimedOut,
    Cancelled,
}

/// Why a run did not succeed. The serialised names are stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The script threw (or rejected) and did not catch it.
    ScriptError,
    /// The script used a capability its run was not granted.
    CapabilityDenied,
    /// The script used a granted capability that its host does not serve
    /// (yet), or cannot serve right now.
    Unavailable,
    /// The return value is not JSON (a function, a cycle, a BigInt…).
    InvalidResult,
    /// The script awaits a promise that nothing can ever settle.
    NeverSettles,
    /// The wall-clock timeout passed.
    Timeout,
    /// The CPU-time limit passed.
    CpuLimit,
    /// The heap limit was reached.
    MemoryLimit,
    /// The stack limit was reached.
    StackOverflow,
    /// The JSON result is larger than allowed.
    ResultTooLarge,
    /// Too many host calls at once, or one with oversize arguments.
    HostCallLimit,
    /// The run was cancelled from outside.
    Cancelled,
    /// The script does not compile; see its diagnostics.
    Rejected,
    /// The sandbox itself failed (e.g. could not allocate a runtime).
    Internal,
    /// The sandbox process running the isolate crashed, hung or broke the
    /// protocol; it was replaced and only its runs failed.
    SandboxCrashed,
}

impl ErrorKind {
    /// True for the kinds that mean a limit was hit.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::CpuLimit
                | ErrorKind::MemoryLimit
                | ErrorKind::StackOverflow
                | ErrorKind::ResultTooLarge
                | ErrorKind::HostCallLimit
        )
    }

    /// The run status this error ends a run with.
    pub fn status(self) -> RunStatus {
        match self {
            ErrorKind::Timeout | ErrorKind::CpuLimit => RunStatus::TimedOut,
            ErrorKind::Cancelled => RunStatus::Cancelled,
            _ => RunStatus::Failed,
        }
    }
}

/// A typed error with, where known, the user's line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    #[serde(rename = "code")]
    pub kind: ErrorKind,
    /// The JavaScript error name (`TypeError`, …) or the limit's name.
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl RunError {
    pub fn new(kind: ErrorKind, name: &str, message: impl Into<String>) -> Self {
        RunError {
            kind,
            name: name.to_owned(),
            message: message.into(),
            stack: None,
            line: None,
            column: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Log,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// The typed outcome of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    pub status: RunStatus,
    /// The return value as JSON text; `null` when the script returned nothing.
    pub result: Option<Box<RawValue>>,
    pub logs: Vec<LogLine>,
    /// True when log lines were dropped at the log-size limit.
    pub logs_truncated: bool,
    pub error: Option<RunError>,
    #[serde(
        rename = "duration_ms",
        serialize_with = "millis",
        deserialize_with = "from_millis"
    )]
    pub duration: Duration,
    #[serde(
        rename = "cpu_ms",
        serialize_with = "millis",
        deserialize_with = "from_millis"
    )]
    pub cpu: Duration,
    pub peak_memory_bytes: u64,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

fn from_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let ms = f64::deserialize(d)?;
    Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom)
}

impl RunOutcome {
    /// An outcome for a run that failed before or outside its isolate.
    pub fn failed(error: RunError, duration: Duration) -> Self {
        RunOutcome {
            status: error.kind.status(),
            result: None,
            logs: Vec::new(),
            logs_truncated: false,
            error: Some(error),
            duration,
            cpu: Duration::ZERO,
            peak_memory_bytes: 0,
        }
    }

    /// The result as a JSON value (`null` when there is none).
    pub fn result_value(&self) -> serde_json::Value {
        self.result
            .as_ref()
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }
}
