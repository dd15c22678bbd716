//! A tenant's settings for its scripts.

use citadel_domain::Policy;
use serde::{Deserialize, Serialize};

use crate::limits::LimitOverrides;
use crate::names::validate_folder;

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
}

impl TenantSettings {
    /// Whether a new version of `script` starts as a draft.
    pub fn approval_required_for(&self, script: &str) -> bool {
        self.approval_required
            || self
                .approval_folders
                .iter()
                .any(|f| script.starts_with(f.as_str()))
    }

    /// Checks folders and policy (limits are checked against the platform
    /// by the caller).
    pub fn validate(&self) -> Result<(), String> {
        for f in &self.approval_folders {
            validate_folder(f).map_err(|e| format!("approval_folders: {e}"))?;
        }
        self.policy.validate().map_err(|e| format!("policy: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
