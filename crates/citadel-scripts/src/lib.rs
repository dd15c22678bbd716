//! What a script is: its name and folder, how its versions are numbered and
//! reviewed, what it is granted, which limits it runs under, how two
//! versions differ, and the templates new scripts start from.
//!
//! Pure rules, no I/O: the store keeps scripts, the engine runs them, the
//! server speaks HTTP about them.

mod diff;
mod grant;
mod limits;
mod names;
mod review;
mod schedule;
mod semver;
mod settings;
mod templates;

pub use diff::unified_diff;
pub use grant::{CapabilitySpec, EventsGrant, HttpGrant, is_secret_name};
pub use limits::{
    LimitError, LimitOverrides, LimitValues, MAX_SCRIPT_CONCURRENCY, MAX_WARM_RUNS,
    MAX_WARM_SECONDS, PlatformLimits,
};
pub use names::{
    NameError, PLUGIN_FOLDER, folder_of, is_reserved_name, plugin_entry, plugin_kv_prefix,
    plugin_of_entry, plugin_secret_name, validate_folder, validate_name,
};
pub use review::{ReviewAction, ReviewError, VersionState};
pub use schedule::{CronSchedule, MAX_CRON_BYTES};
pub use semver::{Bump, SemVer};
pub use settings::{EmbedSettings, EmbedTheme, MAX_EMBED_ORIGINS, TenantSettings, is_origin};
pub use templates::{TEMPLATES, Template, template};

use sha2::{Digest, Sha256};

/// The content hash of a version: what makes two saves "identical". It
/// covers everything reviewed with the version, not only the source.
pub fn content_hash(
    source: &str,
    language: &str,
    capabilities: &CapabilitySpec,
    limits: &LimitOverrides,
) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields, so no two different contents hash alike.
    for part in [
        source,
        language,
        &serde_json::to_string(capabilities).unwrap_or_default(),
        &serde_json::to_string(limits).unwrap_or_default(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_grants_and_limits() {
        let none = CapabilitySpec::default();
        let sleep = CapabilitySpec {
            sleep: true,
            ..CapabilitySpec::default()
        };
        let limits = LimitOverrides::default();
        let a = content_hash("return 1", "js", &none, &limits);
        assert_eq!(a, content_hash("return 1", "js", &none, &limits));
        assert_eq!(a.len(), 64);
        assert_ne!(a, content_hash("return 1", "ts", &none, &limits));
        assert_ne!(a, content_hash("return 1", "js", &sleep, &limits));
        let tighter = LimitOverrides {
            timeout_ms: Some(100),
            ..LimitOverrides::default()
        };
        assert_ne!(a, content_hash("return 1", "js", &none, &tighter));
    }
}
