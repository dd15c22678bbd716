//! Security profiles: what a workflow may do, from nothing at all to shell
//! commands in the process jail. The platform sets a tenant's maximum, a
//! workflow may ask for less (`profile:` in its YAML), and the run gets the
//! lower of the two: asking for more than the maximum never raises it.
//!
//! | profile | executes | network | shell |
//! |---|---|---|---|
//! | `plan_only` | never: validate and plan only | — | — |
//! | `restricted` | yes | none | no |
//! | `standard` | yes | `http` steps to allowlisted domains | no |
//! | `elevated` | yes | `http` steps to allowlisted domains | in the jail, without network |
//!
//! `plan_only` forbids execution itself rather than step types: since
//! nothing runs, any workflow can be validated and planned under it, and
//! the plan says what a higher profile would let it do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::StepType;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    PlanOnly,
    Restricted,
    /// What a tenant gets unless the platform says otherwise.
    #[default]
    Standard,
    Elevated,
}

/// Where a profile lets a workflow reach on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    None,
    /// Through `http` steps and the capability gateway, to the tenant's
    /// allowlisted domains only.
    AllowlistedDomains,
}

/// What a profile allows, for `plan` to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rules {
    pub profile: Profile,
    /// Whether anything runs at all.
    pub executes: bool,
    pub step_types: Vec<StepType>,
    pub network: Network,
    /// Whether `shell` steps run (in the process jail).
    pub shell: bool,
}

impl Profile {
    pub const ALL: [Profile; 4] = [
        Profile::PlanOnly,
        Profile::Restricted,
        Profile::Standard,
        Profile::Elevated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::PlanOnly => "plan_only",
            Profile::Restricted => "restricted",
            Profile::Standard => "standard",
            Profile::Elevated => "elevated",
        }
    }

    /// The profile a run gets: the tenant's maximum, or the lower profile
    /// the workflow asks for.
    pub fn effective(tenant_max: Profile, workflow_asked: Option<Profile>) -> Profile {
        workflow_asked.map_or(tenant_max, |asked| asked.min(tenant_max))
    }

    pub fn executes(self) -> bool {
        self != Profile::PlanOnly
    }

    pub fn network(self) -> Network {
        match self {
            Profile::PlanOnly | Profile::Restricted => Network::None,
            Profile::Standard | Profile::Elevated => Network::AllowlistedDomains,
        }
    }

    pub fn shell(self) -> bool {
        self == Profile::Elevated
    }

    /// Whether a workflow validated under this profile may have steps of
    /// this type.
    pub fn allows(self, step: StepType) -> bool {
        match step {
            StepType::Shell => matches!(self, Profile::PlanOnly | Profile::Elevated),
            StepType::Http => self != Profile::Restricted,
            _ => true,
        }
    }

    /// The lowest executing profile that allows `step`.
    pub fn lowest_allowing(step: StepType) -> Profile {
        Profile::ALL
            .into_iter()
            .filter(|p| p.executes())
            .find(|p| p.allows(step))
            .unwrap_or(Profile::Elevated)
    }

    pub fn rules(self) -> Rules {
        Rules {
            profile: self,
            executes: self.executes(),
            step_types: StepType::ALL
                .into_iter()
                .filter(|t| self.allows(*t))
                .collect(),
            network: self.network(),
            shell: self.shell(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown profile name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown security profile `{0}` (expected plan_only, restricted, standard or elevated)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_can_only_lower_its_profile() {
        assert_eq!(
            Profile::effective(Profile::Standard, None),
            Profile::Standard
        );
        assert_eq!(
            Profile::effective(Profile::Standard, Some(Profile::Elevated)),
            Profile::Standard
        );
        assert_eq!(
            Profile::effective(Profile::Standard, Some(Profile::Restricted)),
            Profile::Restricted
        );
        assert_eq!(
            Profile::effective(Profile::PlanOnly, Some(Profile::Elevated)),
            Profile::PlanOnly
        );
    }

    #[test]
    fn what_each_profile_allows() {
        assert!(!Profile::Restricted.allows(StepType::Http));
        assert!(!Profile::Restricted.allows(StepType::Shell));
        assert!(Profile::Standard.allows(StepType::Http));
        assert!(!Profile::Standard.allows(StepType::Shell));
        assert!(Profile::Elevated.allows(StepType::Shell));
        assert!(!Profile::PlanOnly.executes());
        assert_eq!(Profile::lowest_allowing(StepType::Shell), Profile::Elevated);
        assert_eq!(Profile::lowest_allowing(StepType::Http), Profile::Standard);
        assert_eq!("standard".parse::<Profile>(), Ok(Profile::Standard));
        assert!("root".parse::<Profile>().is_err());
    }
}
