//! The limits every run gets.

use std::time::Duration;

/// How a run's JavaScript context is chosen.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A fresh context per run: nothing one run does is seen by the next.
    #[default]
    Run,
    /// A warm context per script version on each isolate thread, reused by
    /// that version's runs for at most [`Limits::warm_runs`] runs and
    /// [`Limits::warm_ttl`], never by another version or tenant, and dropped
    /// after any run that does not succeed cleanly. Globals a run sets may be
    /// seen by later runs of the same version.
    Version,
}

impl Isolation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Isolation::Run => "run",
            Isolation::Version => "version",
        }
    }
}

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
    /// How the run's context is chosen.
    #[serde(default)]
    pub isolation: Isolation,
    /// With [`Isolation::Version`]: runs one warm context serves at most.
    #[serde(default = "default_warm_runs")]
    pub warm_runs: u32,
    /// With [`Isolation::Version`]: how long after its creation a warm
    /// context may still be reused.
    #[serde(default = "default_warm_ttl", with = "duration_ms")]
    pub warm_ttl: Duration,
}

/// The platform's default for [`Limits::warm_runs`].
pub const DEFAULT_WARM_RUNS: u32 = 1_000;
/// The platform's default for [`Limits::warm_ttl`], in seconds.
pub const DEFAULT_WARM_TTL_SECONDS: u64 = 60;

fn default_warm_runs() -> u32 {
    DEFAULT_WARM_RUNS
}

fn default_warm_ttl() -> Duration {
    Duration::from_secs(DEFAULT_WARM_TTL_SECONDS)
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
            isolation: Isolation::Run,
            warm_runs: DEFAULT_WARM_RUNS,
            warm_ttl: default_warm_ttl(),
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
