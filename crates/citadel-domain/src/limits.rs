//! The limits every run gets.

use std::time::Duration;

/// Per-run limits. Every run gets all of them; there is no "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Wall-clock time from start to finish, including time spent awaiting
    /// host calls.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Time on the CPU spent executing the script's JavaScript.
    #[serde(with = "duration_ms")]
    pub cpu: Duration,
    /// Bytes the isolate's heap may hold.
    pub memory_bytes: usize,
    /// Native stack the interpreter may use.
    pub stack_bytes: usize,
    /// Bytes of log text kept; later lines are dropped and the outcome says so.
    pub log_bytes: usize,
    /// Bytes of the JSON result.
    pub result_bytes: usize,
    /// Host calls awaiting at once.
    pub pending_host_calls: usize,
    /// Bytes of JSON arguments of one host call.
    pub host_call_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(5),
            cpu: Duration::from_secs(5),
            memory_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            log_bytes: 64 << 10,
            result_bytes: 1 << 20,
            pending_host_calls: 256,
            host_call_bytes: 1 << 20,
        }
    }
}

/// Durations on the wire, as whole milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
