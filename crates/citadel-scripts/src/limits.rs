//! The limits a run gets: the platform's default, overridden by the tenant,
//! then by the script version, then (timeout only) by the request; every
//! value capped by the platform's maximum.

use std::time::Duration;

use citadel_domain::{DEFAULT_WARM_RUNS, DEFAULT_WARM_TTL_SECONDS, Isolation, Limits};
use serde::{Deserialize, Serialize};

/// Values a tenant or a version may override; `None`: inherit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
    /// Runs of one script at once (queued jobs across every node;
    /// synchronous runs per node). Not a sandbox limit: the engine applies it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u64>,
    /// `run` (a fresh context per run) or `version` (a warm context per
    /// version, reused; see [`Isolation`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// With `isolation: version`: runs one warm context serves at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_runs: Option<u64>,
    /// With `isolation: version`: seconds a warm context is reused at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_seconds: Option<u64>,
}

/// The highest `concurrency` a script may ask for.
pub const MAX_SCRIPT_CONCURRENCY: u64 = 100_000;

/// A full set of the overridable values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitValues {
    pub timeout_ms: u64,
    pub memory_mb: u64,
    pub log_bytes: u64,
    /// Runs one warm context (`isolation: version`) serves at most.
    #[serde(default = "default_warm_runs")]
    pub warm_runs: u64,
    /// Seconds one warm context (`isolation: version`) is reused at most.
    #[serde(default = "default_warm_seconds")]
    pub warm_seconds: u64,
}

fn default_warm_runs() -> u64 {
    u64::from(DEFAULT_WARM_RUNS)
}

fn default_warm_seconds() -> u64 {
    DEFAULT_WARM_TTL_SECONDS
}

/// The platform's default caps on warm contexts: how many runs one serves
/// and for how long, at most, whatever a tenant or version asks for.
pub const MAX_WARM_RUNS: u64 = 100_000;
pub const MAX_WARM_SECONDS: u64 = 3_600;

/// The platform's defaults and maxima (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformLimits {
    pub default: LimitValues,
    pub max: LimitValues,
}

impl Default for PlatformLimits {
    fn default() -> Self {
        PlatformLimits {
            default: LimitValues {
                timeout_ms: 5_000,
                memory_mb: 64,
                log_bytes: 64 << 10,
                warm_runs: default_warm_runs(),
                warm_seconds: default_warm_seconds(),
            },
            max: LimitValues {
                timeout_ms: 60_000,
                memory_mb: 512,
                log_bytes: 1 << 20,
                warm_runs: MAX_WARM_RUNS,
                warm_seconds: MAX_WARM_SECONDS,
            },
        }
    }
}

/// An override outside what the platform allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be between 1 and the platform maximum {max} (got {got})")]
pub struct LimitError {
    pub field: &'static str,
    pub got: u64,
    pub max: u64,
}

impl PlatformLimits {
    /// Checks overrides a tenant or an author asks for.
    pub fn check(&self, o: &LimitOverrides) -> Result<(), LimitError> {
        let fields = [
            ("timeout_ms", o.timeout_ms, self.max.timeout_ms),
            ("memory_mb", o.memory_mb, self.max.memory_mb),
            ("log_bytes", o.log_bytes, self.max.log_bytes),
            ("concurrency", o.concurrency, MAX_SCRIPT_CONCURRENCY),
            ("warm_runs", o.warm_runs, self.max.warm_runs),
            ("warm_seconds", o.warm_seconds, self.max.warm_seconds),
        ];
        for (field, got, max) in fields {
            if let Some(got) = got
                && (got == 0 || got > max)
            {
                return Err(LimitError { field, got, max });
            }
        }
        Ok(())
    }

    /// The limits of one run. Each layer overrides the one before; the
    /// result never exceeds the platform maxima (which may have been lowered
    /// since the overrides were saved).
    pub fn effective(
        &self,
        tenant: &LimitOverrides,
        script: &LimitOverrides,
        request_timeout_ms: Option<u64>,
    ) -> Limits {
        let pick =
            |d: u64, t: Option<u64>, s: Option<u64>, max: u64| s.or(t).unwrap_or(d).clamp(1, max);
        let timeout_ms = request_timeout_ms.unwrap_or_else(|| {
            pick(
                self.default.timeout_ms,
                tenant.timeout_ms,
                script.timeout_ms,
                self.max.timeout_ms,
            )
        });
        let timeout = Duration::from_millis(timeout_ms.clamp(1, self.max.timeout_ms));
        let memory_mb = pick(
            self.default.memory_mb,
            tenant.memory_mb,
            script.memory_mb,
            self.max.memory_mb,
        );
        let log_bytes = pick(
            self.default.log_bytes,
            tenant.log_bytes,
            script.log_bytes,
            self.max.log_bytes,
        );
        let warm_runs = pick(
            self.default.warm_runs,
            tenant.warm_runs,
            script.warm_runs,
            self.max.warm_runs,
        );
        let warm_seconds = pick(
            self.default.warm_seconds,
            tenant.warm_seconds,
            script.warm_seconds,
            self.max.warm_seconds,
        );
        Limits {
            timeout,
            // A run cannot use more CPU than wall-clock time; the CPU limit
            // then only matters for how the overrun is reported.
            cpu: timeout,
            memory_bytes: (memory_mb as usize) << 20,
            log_bytes: log_bytes as usize,
            isolation: script.isolation.or(tenant.isolation).unwrap_or_default(),
            warm_runs: u32::try_from(warm_runs).unwrap_or(u32::MAX),
            warm_ttl: Duration::from_secs(warm_seconds),
            ..Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_and_the_platform_caps() {
        let p = PlatformLimits::default();
        let none = LimitOverrides::default();
        let l = p.effective(&none, &none, None);
        assert_eq!(l.timeout, Duration::from_millis(5_000));
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!(l.log_bytes, 64 << 10);
        let tenant = LimitOverrides {
            timeout_ms: Some(2_000),
            memory_mb: Some(32),
            log_bytes: None,
            concurrency: Some(4),
            ..LimitOverrides::default()
        };
        let script = LimitOverrides {
            timeout_ms: Some(300),
            ..none
        };
        let l = p.effective(&tenant, &script, None);
        assert_eq!(l.timeout, Duration::from_millis(300));
        assert_eq!(l.memory_bytes, 32 << 20);
        assert_eq!(
            p.effective(&tenant, &script, Some(50)).timeout,
            Duration::from_millis(50)
        );
        assert_eq!(
            p.effective(&tenant, &script, Some(10_000_000)).timeout,
            Duration::from_millis(60_000)
        );
        let too_big = LimitOverrides {
            memory_mb: Some(4096),
            ..none
        };
        assert_eq!(
            p.check(&too_big).unwrap_err().to_string(),
            "memory_mb must be between 1 and the platform maximum 512 (got 4096)"
        );
        assert_eq!(p.effective(&too_big, &none, None).memory_bytes, 512 << 20);
        assert_eq!(p.check(&tenant), Ok(()));
        let no_runs = LimitOverrides {
            concurrency: Some(0),
            ..none
        };
        assert_eq!(p.check(&no_runs).unwrap_err().field, "concurrency");
    }

    #[test]
    fn isolation_defaults_to_run_and_the_version_picks_over_the_tenant() {
        let p = PlatformLimits::default();
        let none = LimitOverrides::default();
        let l = p.effective(&none, &none, None);
        assert_eq!(l.isolation, Isolation::Run);
        assert_eq!((l.warm_runs, l.warm_ttl), (1_000, Duration::from_secs(60)));
        let warm: LimitOverrides = serde_json::from_str(r#"{"isolation": "version"}"#).unwrap();
        assert_eq!(
            p.effective(&none, &warm, None).isolation,
            Isolation::Version
        );
        assert_eq!(
            p.effective(&warm, &none, None).isolation,
            Isolation::Version
        );
        let run: LimitOverrides = serde_json::from_str(r#"{"isolation": "run"}"#).unwrap();
        assert_eq!(p.effective(&warm, &run, None).isolation, Isolation::Run);
        let short: LimitOverrides =
            serde_json::from_str(r#"{"isolation": "version", "warm_runs": 10, "warm_seconds": 5}"#)
                .unwrap();
        let l = p.effective(&none, &short, None);
        assert_eq!((l.warm_runs, l.warm_ttl), (10, Duration::from_secs(5)));
        let long = LimitOverrides {
            warm_runs: Some(MAX_WARM_RUNS + 1),
            ..none
        };
        assert_eq!(
            p.check(&long).unwrap_err().to_string(),
            "warm_runs must be between 1 and the platform maximum 100000 (got 100001)"
        );
        assert_eq!(p.effective(&long, &none, None).warm_runs, 100_000);
        assert!(serde_json::from_str::<LimitOverrides>(r#"{"isolation": "tenant"}"#).is_err());
        // Saved overrides without the new fields keep their text, and so
        // their content hash.
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
    }

    #[test]
    fn configurations_without_warm_values_keep_the_defaults() {
        let v: LimitValues =
            serde_json::from_str(r#"{"timeout_ms": 1, "memory_mb": 2, "log_bytes": 3}"#).unwrap();
        assert_eq!((v.warm_runs, v.warm_seconds), (1_000, 60));
    }
}
