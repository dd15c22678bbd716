//! The limits a run gets: the platform's default, overridden by the tenant,
//! then by the script version, then (timeout only) by the request; every
//! value capped by the platform's maximum.

use std::time::Duration;

use citadel_domain::Limits;
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
}

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
            },
            max: LimitValues {
                timeout_ms: 60_000,
                memory_mb: 512,
                log_bytes: 1 << 20,
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
        Limits {
            timeout,
            // A run cannot use more CPU than wall-clock time; the CPU limit
            // then only matters for how the overrun is reported.
            cpu: timeout,
            memory_bytes: (memory_mb as usize) << 20,
            log_bytes: log_bytes as usize,
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
}
