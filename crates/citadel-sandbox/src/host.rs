//! The capability interface between a script and its embedder.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Capability;
use crate::outcome::LogLine;

/// One call from a script to its host, with its JSON arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostCall {
    HttpFetch {
        url: String,
        options: Value,
    },
    SecretGet {
        name: String,
    },
    KvGet {
        key: String,
    },
    /// `options`: `{ttl_s, if_version}`, both optional.
    KvSet {
        key: String,
        value: Value,
        options: Value,
    },
    /// `options`: `{if_version}`, optional.
    KvDelete {
        key: String,
        options: Value,
    },
    /// `options`: `{prefix, cursor, limit}`, all optional.
    KvList {
        options: Value,
    },
    DbQuery {
        sql: String,
        params: Value,
        options: Value,
    },
    EventEmit {
        event_type: String,
        data: Value,
    },
    Echo {
        value: Value,
    },
}

impl HostCall {
    /// The capability this call needs.
    pub fn capability(&self) -> Capability {
        match self {
            HostCall::HttpFetch { .. } => Capability::Http,
            HostCall::SecretGet { .. } => Capability::Secrets,
            HostCall::KvGet { .. }
            | HostCall::KvSet { .. }
            | HostCall::KvDelete { .. }
            | HostCall::KvList { .. } => Capability::Kv,
            HostCall::DbQuery { .. } => Capability::Db,
            HostCall::EventEmit { .. } => Capability::Events,
            HostCall::Echo { .. } => Capability::Echo,
        }
    }
}

/// A failed host call, surfaced to the script as a thrown `Error` whose
/// `name` is `name` and whose `code` is `code`. Uncaught, the codes
/// `capability_denied` and `unavailable` end the run with that code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{name}: {message}")]
pub struct HostError {
    pub name: String,
    pub code: String,
    pub message: String,
}

impl HostError {
    /// An error with the conventional name for its code (`Unavailable` for
    /// `unavailable`, …; `HostError` for codes of the embedder's own).
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        HostError {
            name: Self::name_for(code).into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The JavaScript error name a code surfaces with.
    pub fn name_for(code: &str) -> &'static str {
        match code {
            "unavailable" => "Unavailable",
            "capability_denied" => "CapabilityDenied",
            "invalid_argument" => "TypeError",
            _ => "HostError",
        }
    }

    /// The capability is granted but this host does not serve it (yet), or
    /// cannot right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new("unavailable", message)
    }

    pub fn denied(capability: &str) -> Self {
        HostError {
            name: "CapabilityDenied".into(),
            code: "capability_denied".into(),
            message: format!("capability `{capability}` is not granted to this script"),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        HostError {
            name: "TypeError".into(),
            code: "invalid_argument".into(),
            message: message.into(),
        }
    }
}

/// The future a host call returns. Not `Send`: it runs beside its isolate.
pub type HostFuture = Pin<Box<dyn Future<Output = Result<Value, HostError>>>>;

/// Implemented by the embedder to serve capability calls. The sandbox only
/// forwards calls the run was granted; the host still checks its own policy
/// (allowlists, quotas) and may refuse with [`HostError`].
pub trait Host {
    fn call(&self, call: HostCall) -> HostFuture;

    /// Log lines written since the last time, delivered while the run
    /// awaits host calls so they can be shown live. They are also in the
    /// run's outcome.
    fn logs(&self, _lines: &[LogLine]) {}
}

/// A host that serves only `echo` (returning its argument) and refuses
/// everything else.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn call(&self, call: HostCall) -> HostFuture {
        Box::pin(async move {
            match call {
                HostCall::Echo { value } => Ok(value),
                other => Err(HostError::unavailable(format!(
                    "`{}` is not available in this host",
                    other.capability().name()
                ))),
            }
        })
    }
}
