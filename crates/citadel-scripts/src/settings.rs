//! A tenant's settings for its scripts.

use citadel_domain::{Isolation, Policy};
use serde::{Deserialize, Serialize};

use crate::limits::LimitOverrides;
use crate::names::validate_folder;

/// The workflow security profiles, lowest first (their rules are
/// citadel-workflow's; this crate only names them).
pub const WORKFLOW_PROFILES: [&str; 4] = ["plan_only", "restricted", "standard", "elevated"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// New versions of every script need approval before going live.
    pub approval_required: bool,
    /// Folders (`billing/`) whose scripts need approval even when
    /// `approval_required` is off.
    pub approval_folders: Vec<String>,
    /// Defaults for this tenant's runs, within the platform maxima.
    pub limits: LimitOverrides,
    /// Which analyzer findings block a save.
    pub policy: Policy,
    /// Runs of this tenant never reuse a warm context: a version that asks
    /// for `isolation: version` runs with a fresh context per run.
    pub forbid_version_isolation: bool,
    /// The tenant's ceiling on `api.http.fetch`: a version reaches a host
    /// only if its own grant and this list both allow it. `None`: no
    /// ceiling beyond the grants; `[]`: no outgoing HTTP at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_allow: Option<Vec<String>>,
    /// The IANA time zone of the tenant's scripts' local time
    /// (`new Date(2020, 0, 1)`, `getHours()`, `Intl.DateTimeFormat`
    /// without `timeZone`); UTC when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The highest security profile this tenant's workflows run under
    /// (`plan_only`, `restricted`, `standard`, `elevated`), within the
    /// platform's; the platform's when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_profile: Option<String>,
    /// The tenant's ceiling on what plugins may be granted: the capability
    /// names (`http`, `kv`, …) a plugin's `permissions` may use. `None`:
    /// any; `[]`: none (a plugin that asks for one is refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_capabilities: Option<Vec<String>>,
    /// The embedded editor: which origins may frame it, and its theme.
    /// `None`: no embed sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed: Option<EmbedSettings>,
}

/// How the host product embeds the editor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedSettings {
    /// The origins (`https://app.example.com`, `http://localhost:3000`)
    /// that may frame `/embed` and receive its messages; at most 16.
    pub origins: Vec<String>,
    pub theme: EmbedTheme,
}

/// The embedded editor's look. Every value is checked against a strict
/// shape, so none can carry CSS or markup of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedTheme {
    /// `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent: Option<String>,
    /// `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A font family name: letters, digits, spaces and `-`, at most 40.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
    /// An `https://` image URL, at most 512 bytes, of URL-safe characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
}

/// The most origins a tenant may let frame its embedded editor.
pub const MAX_EMBED_ORIGINS: usize = 16;

impl EmbedSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.origins.len() > MAX_EMBED_ORIGINS {
            return Err(format!("embed.origins: at most {MAX_EMBED_ORIGINS}"));
        }
        if let Some(bad) = self.origins.iter().find(|o| !is_origin(o)) {
            return Err(format!(
                "embed.origins: `{bad}` is not an origin (`https://app.example.com`, `http://localhost:3000`)"
            ));
        }
        let t = &self.theme;
        for (field, value) in [
            ("accent", &t.accent),
            ("background", &t.background),
            ("text", &t.text),
        ] {
            if let Some(v) = value
                && !is_hex_colour(v)
            {
                return Err(format!(
                    "embed.theme.{field}: `{v}` is not a #rrggbb colour"
                ));
            }
        }
        if let Some(f) = &t.font
            && (f.is_empty()
                || f.len() > 40
                || !f
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-'))
        {
            return Err(format!(
                "embed.theme.font: `{f}` is not a font family name (letters, digits, spaces, `-`; at most 40)"
            ));
        }
        if let Some(u) = &t.logo_url
            && !is_logo_url(u)
        {
            return Err(format!(
                "embed.theme.logo_url: `{u}` is not an https:// URL of at most 512 URL-safe characters"
            ));
        }
        Ok(())
    }
}

/// `scheme://host[:port]` with scheme `http` or `https`, nothing after.
pub fn is_origin(s: &str) -> bool {
    let Ok(url) = url::Url::parse(s) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.origin().ascii_serialization() == s
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

fn is_logo_url(s: &str) -> bool {
    s.len() <= 512
        && s.starts_with("https://")
        && url::Url::parse(s).is_ok()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&*+,;=%".contains(&b))
}

impl TenantSettings {
    /// The zone runs of this tenant keep local time in.
    pub fn time_zone(&self) -> citadel_domain::TimeZoneName {
        self.time_zone
            .as_deref()
            .and_then(citadel_domain::TimeZoneName::new)
            .unwrap_or_default()
    }

    /// Whether a new version of `script` starts as a draft.
    pub fn approval_required_for(&self, script: &str) -> bool {
        self.approval_required
            || self
                .approval_folders
                .iter()
                .any(|f| script.starts_with(f.as_str()))
    }

    /// The isolation a run of this tenant gets when its limits ask for
    /// `wanted`. A tenant that forbids warm contexts gets a fresh context per
    /// run instead (the run is not refused: a script must work without a
    /// warm context anyway, since one is dropped at any time).
    pub fn isolation(&self, wanted: Isolation) -> Isolation {
        if self.forbid_version_isolation {
            Isolation::Run
        } else {
            wanted
        }
    }

    /// Checks folders and policy (limits are checked against the platform
    /// by the caller).
    pub fn validate(&self) -> Result<(), String> {
        if self.forbid_version_isolation && self.limits.isolation == Some(Isolation::Version) {
            return Err(
                "limits.isolation: `version` is forbidden by forbid_version_isolation".into(),
            );
        }
        for f in &self.approval_folders {
            validate_folder(f).map_err(|e| format!("approval_folders: {e}"))?;
        }
        if let Some(zone) = &self.time_zone
            && (citadel_domain::TimeZoneName::new(zone).is_none()
                || jiff::tz::TimeZone::get(zone).is_err())
        {
            return Err(format!(
                "time_zone: `{zone}` is not an IANA time zone (`Europe/Berlin`, `UTC`)"
            ));
        }
        if let Some(profile) = &self.workflow_profile
            && !WORKFLOW_PROFILES.contains(&profile.as_str())
        {
            return Err(format!(
                "workflow_profile: `{profile}` is not a profile (one of {})",
                WORKFLOW_PROFILES.join(", ")
            ));
        }
        if let Some(allow) = &self.http_allow {
            if allow.len() > 256 {
                return Err("http_allow: at most 256 entries".into());
            }
            if let Some(bad) = allow.iter().find(|p| !crate::grant::is_host_pattern(p)) {
                return Err(format!(
                    "http_allow: `{bad}` is not a host pattern (`api.example.com`, `*.example.com`, `*`, `http://host`, `host:port`)"
                ));
            }
        }
        if let Some(bad) = self
            .plugin_capabilities
            .iter()
            .flatten()
            .find(|c| c.parse::<citadel_domain::Capability>().is_err())
        {
            return Err(format!(
                "plugin_capabilities: `{bad}` is not a capability (http, secrets, kv, db, events, sleep, echo)"
            ));
        }
        if let Some(embed) = &self.embed {
            embed.validate()?;
        }
        self.policy.validate().map_err(|e| format!("policy: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_settings_take_only_strict_shapes() {
        let ok = EmbedSettings {
            origins: vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
            ],
            theme: EmbedTheme {
                accent: Some("#0a7cff".into()),
                font: Some("IBM Plex Sans".into()),
                logo_url: Some("https://cdn.example.com/logo.png".into()),
                ..EmbedTheme::default()
            },
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad_origin = |o: &str| EmbedSettings {
            origins: vec![o.into()],
            ..EmbedSettings::default()
        };
        for o in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "javascript:alert(1)",
            "https://user@app.example.com",
            "*",
            "app.example.com",
        ] {
            assert!(
                bad_origin(o)
                    .validate()
                    .unwrap_err()
                    .starts_with("embed.origins:"),
                "{o}"
            );
        }
        let theme = |t: EmbedTheme| EmbedSettings {
            theme: t,
            ..EmbedSettings::default()
        };
        for t in [
            EmbedTheme {
                accent: Some("red".into()),
                ..EmbedTheme::default()
            },
            EmbedTheme {
                background: Some("#fff;}body{x:y".into()),
                ..EmbedTheme::default()
            },
            EmbedTheme {
                font: Some("x';}</style>".into()),
                ..EmbedTheme::default()
            },
            EmbedTheme {
                logo_url: Some("https://x.example/a.png\");x".into()),
                ..EmbedTheme::default()
            },
            EmbedTheme {
                logo_url: Some("http://x.example/a.png".into()),
                ..EmbedTheme::default()
            },
        ] {
            assert!(
                theme(t.clone())
                    .validate()
                    .unwrap_err()
                    .starts_with("embed.theme."),
                "{t:?}"
            );
        }
    }

    #[test]
    fn folders_require_approval() {
        let s = TenantSettings {
            approval_folders: vec!["billing/".into()],
            ..TenantSettings::default()
        };
        assert!(s.approval_required_for("billing/on-paid"));
        assert!(!s.approval_required_for("billingx/on-paid"));
        assert!(!s.approval_required_for("hr/onboard"));
        assert_eq!(
            TenantSettings {
                approval_folders: vec!["billing".into()],
                ..TenantSettings::default()
            }
            .validate()
            .unwrap_err(),
            "approval_folders: invalid script name `billing`: a folder ends with `/`"
        );
    }

    #[test]
    fn a_tenant_can_forbid_warm_contexts() {
        let open = TenantSettings::default();
        assert_eq!(open.isolation(Isolation::Version), Isolation::Version);
        let closed: TenantSettings =
            serde_json::from_str(r#"{"forbid_version_isolation": true}"#).unwrap();
        assert_eq!(closed.isolation(Isolation::Version), Isolation::Run);
        assert_eq!(closed.isolation(Isolation::Run), Isolation::Run);
        assert_eq!(closed.validate(), Ok(()));
        let contradictory = TenantSettings {
            limits: LimitOverrides {
                isolation: Some(Isolation::Version),
                ..LimitOverrides::default()
            },
            ..closed
        };
        assert_eq!(
            contradictory.validate().unwrap_err(),
            "limits.isolation: `version` is forbidden by forbid_version_isolation"
        );
    }
}
