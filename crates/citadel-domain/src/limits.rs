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
    /// The IANA time zone a script's local time is in (`new Date(2020, 0,
    /// 1)`, `getHours()`, `toString()`, `Intl.DateTimeFormat` without a
    /// `timeZone`): the tenant's configured zone, `UTC` by default. The
    /// sandbox computes it from a compiled-in time-zone database; a name it
    /// does not know is UTC there, so a configured zone should be checked
    /// when it is set (`citadel_sandbox::time_zone_known`).
    #[serde(default, skip_serializing_if = "TimeZoneName::is_utc")]
    pub time_zone: TimeZoneName,
}

/// An IANA time zone name (`Europe/Berlin`), held inline so that
/// [`Limits`] stays `Copy`: 1 to [`TimeZoneName::MAX`] ASCII letters,
/// digits and `/ _ - +`. Whether the database knows it is the sandbox's
/// business.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZoneName {
    len: u8,
    bytes: [u8; TimeZoneName::MAX],
}

impl TimeZoneName {
    /// The longest name held (the longest in the IANA database has 32
    /// bytes).
    pub const MAX: usize = 48;

    /// `UTC`, the default.
    pub const UTC: TimeZoneName = {
        let mut bytes = [0; TimeZoneName::MAX];
        bytes[0] = b'U';
        bytes[1] = b'T';
        bytes[2] = b'C';
        TimeZoneName { len: 3, bytes }
    };

    /// `name`, if it has the shape of a time zone name.
    pub fn new(name: &str) -> Option<TimeZoneName> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
        if !ok {
            return None;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(TimeZoneName {
            len: name.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // `new` only admits ASCII.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("UTC")
    }

    pub fn is_utc(&self) -> bool {
        *self == Self::UTC
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        Self::UTC
    }
}

impl std::fmt::Debug for TimeZoneName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TimeZoneName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TimeZoneName::new(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("`{name}` is not a time zone name")))
    }
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
            time_zone: TimeZoneName::UTC,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zone_names_cross_the_wire_and_default_to_utc() {
        let mut limits = Limits::default();
        assert_eq!(limits.time_zone.as_str(), "UTC");
        let json = serde_json::to_string(&limits).unwrap();
        assert!(!json.contains("time_zone"));
        limits.time_zone = TimeZoneName::new("America/Argentina/ComodRivadavia").unwrap();
        let json = serde_json::to_string(&limits).unwrap();
        let back: Limits = serde_json::from_str(&json).unwrap();
        assert_eq!(back.time_zone.as_str(), "America/Argentina/ComodRivadavia");
        assert!(TimeZoneName::new("").is_none());
        assert!(TimeZoneName::new("../etc/passwd").is_none());
        assert!(TimeZoneName::new(&"A".repeat(49)).is_none());
        let bad = json.replace("America/Argentina/ComodRivadavia", "a b");
        assert!(serde_json::from_str::<Limits>(&bad).is_err());
    }
}
