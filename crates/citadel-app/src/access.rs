//! Permissions, the built-in roles, what a capability grant needs its
//! author to hold, and the principal whose permissions they are. The one
//! place a permission is checked is [`crate::Caller::require`].

use serde::Serialize;

/// Every permission, with what it allows.
pub const PERMISSIONS: &[(&str, &str)] = &[
    ("script.read", "read scripts, versions and runs"),
    ("script.write", "save script versions"),
    ("script.run", "run scripts"),
    ("script.approve", "approve or reject script versions"),
    ("secret.read", "list secret names and metadata"),
    ("secret.write", "create, rotate and delete secrets"),
    ("plugin.install", "install and manage plugins"),
    ("audit.read", "read the audit log"),
    ("user.read", "list users"),
    ("user.write", "create and disable users"),
    ("token.read", "list API tokens"),
    ("token.write", "create and revoke API tokens"),
    ("role.read", "list roles"),
    ("role.write", "create and delete custom roles"),
    ("killswitch.write", "engage and release kill switches"),
    (
        "settings.write",
        "change the tenant's script settings (approval, limits, policy)",
    ),
];

/// The `owner` role: every permission there is.
static ALL: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| PERMISSIONS.iter().map(|(p, _)| *p).collect());

/// What only an owner may do: change who may do what.
const OWNER_ONLY: &[&str] = &["user.write", "token.write", "role.write"];

/// `admin`: everything an owner may, but changing who may do what.
static ADMIN: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    ALL.iter()
        .copied()
        .filter(|p| !OWNER_ONLY.contains(p))
        .collect()
});

/// The built-in roles and their permissions.
pub fn builtin_role(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "owner" => ALL.as_slice(),
        "admin" => ADMIN.as_slice(),
        "developer" => &["script.read", "script.write", "script.run", "secret.read"],
        "operator" => &["script.read", "script.run"],
        "approver" => &["script.read", "script.approve"],
        "viewer" => &["script.read"],
        _ => return None,
    })
}

pub const BUILTIN_ROLES: &[&str] = &[
    "owner",
    "admin",
    "developer",
    "operator",
    "approver",
    "viewer",
];

pub fn is_permission(name: &str) -> bool {
    PERMISSIONS.iter().any(|(p, _)| *p == name)
}

/// One granted permission, scoped to a path prefix (`""`: everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub permission: String,
    pub path_prefix: String,
}

/// What `POST /v1/events` needs (tenant-wide): publishing reaches every
/// subscribed script, in every folder.
pub const PUBLISH_EVENTS: &str = "script.run";
/// What reading events needs (tenant-wide): events carry data of every
/// folder.
pub const READ_EVENTS: &str = "script.read";

/// What granting one capability needs its author to hold, so a version
/// never grants more than its author may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityNeed {
    /// The capability as it is written in a grant (`events.emit`, `kv`).
    pub capability: &'static str,
    pub permission: &'static str,
    /// True when the capability reaches past the script's folder (the
    /// tenant's key-value store, data sources, secrets, event subscribers),
    /// so a folder-scoped grant of the permission is not enough.
    pub tenant_wide: bool,
}

/// What each capability of a grant needs. `http`, `sleep` and `echo` reach
/// nothing of the tenant's and need only the right to save the script.
pub fn capability_needs(spec: &citadel_scripts::CapabilitySpec) -> Vec<CapabilityNeed> {
    let mut needs = Vec::new();
    let mut need = |on: bool, capability, permission| {
        if on {
            needs.push(CapabilityNeed {
                capability,
                permission,
                tenant_wide: true,
            });
        }
    };
    // An emitted event triggers the scripts subscribed to it, anywhere:
    // the same as publishing one.
    need(
        spec.events.as_ref().is_some_and(|e| !e.emit.is_empty()),
        "events.emit",
        PUBLISH_EVENTS,
    );
    need(!spec.secrets.is_empty(), "secrets", "secret.read");
    // One key-value store and one set of data sources serve every folder.
    need(spec.kv, "kv", "script.write");
    need(!spec.db.is_empty(), "db", "script.write");
    needs
}

/// Who is calling: a tenant's token, or a platform admin.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    /// The person the token acts for: its user, else the root token of the
    /// chain that minted it. Authorship and review compare persons, so a
    /// second token minted by an author is still that author.
    pub person: String,
    /// The user a session token belongs to.
    pub user_id: Option<String>,
    /// `None` for a platform admin.
    pub tenant_id: Option<String>,
    pub grants: Vec<Grant>,
}

impl Principal {
    /// True when the principal holds `permission` for `path` (or, with no
    /// path, anywhere in its tenant).
    pub fn allows(&self, permission: &str, path: Option<&str>) -> bool {
        self.grants.iter().any(|g| {
            g.permission == permission
                && (g.path_prefix.is_empty() || path.is_some_and(|p| p.starts_with(&g.path_prefix)))
        })
    }

    /// Who acts, as recorded in the audit log and on runs: the user behind
    /// a session, else the token.
    pub fn actor(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.token_id)
    }

    /// The folders this principal holds `permission` in, when it holds it
    /// only in some (empty when it holds it everywhere or nowhere).
    pub fn scopes_of(&self, permission: &str) -> Vec<&str> {
        let prefixes: Vec<&str> = self
            .grants
            .iter()
            .filter(|g| g.permission == permission)
            .map(|g| g.path_prefix.as_str())
            .collect();
        if prefixes.contains(&"") {
            return Vec::new();
        }
        prefixes
    }

    /// The first capability of `spec` this principal may not grant to a
    /// script at `path`.
    pub fn missing_for_grant(
        &self,
        spec: &citadel_scripts::CapabilitySpec,
        path: &str,
    ) -> Option<CapabilityNeed> {
        capability_needs(spec).into_iter().find(|need| {
            let at = (!need.tenant_wide).then_some(path);
            !self.allows(need.permission, at)
        })
    }

    pub fn is_platform_admin(&self) -> bool {
        self.tenant_id.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_scopes_limit_grants() {
        let p = Principal {
            token_id: "t".into(),
            person: "t".into(),
            user_id: None,
            tenant_id: Some("x".into()),
            grants: vec![Grant {
                permission: "script.run".into(),
                path_prefix: "billing/".into(),
            }],
        };
        assert!(p.allows("script.run", Some("billing/on-paid")));
        assert!(!p.allows("script.run", Some("hr/payroll")));
        assert!(!p.allows("script.run", None));
        assert!(!p.allows("script.write", Some("billing/on-paid")));
    }

    #[test]
    fn a_grant_needs_what_its_capabilities_reach() {
        let spec: citadel_scripts::CapabilitySpec = serde_json::from_value(serde_json::json!({
            "http": {"allow": ["api.example.com"]},
            "sleep": true,
            "echo": true,
        }))
        .unwrap();
        assert_eq!(capability_needs(&spec), vec![]);
        let spec: citadel_scripts::CapabilitySpec = serde_json::from_value(serde_json::json!({
            "events": {"emit": ["order.*"]},
            "secrets": ["KEY"],
            "kv": true,
            "db": ["reporting"],
        }))
        .unwrap();
        let needs: Vec<_> = capability_needs(&spec)
            .into_iter()
            .map(|n| (n.capability, n.permission, n.tenant_wide))
            .collect();
        assert_eq!(
            needs,
            vec![
                ("events.emit", PUBLISH_EVENTS, true),
                ("secrets", "secret.read", true),
                ("kv", "script.write", true),
                ("db", "script.write", true),
            ]
        );
        let developer = |prefix: &str| Principal {
            token_id: "t".into(),
            person: "t".into(),
            user_id: None,
            tenant_id: Some("x".into()),
            grants: builtin_role("developer")
                .unwrap()
                .iter()
                .map(|p| Grant {
                    permission: (*p).into(),
                    path_prefix: prefix.into(),
                })
                .collect(),
        };
        assert_eq!(developer("").missing_for_grant(&spec, "billing/a"), None);
        let scoped = developer("billing/");
        let missing = scoped.missing_for_grant(&spec, "billing/a").unwrap();
        assert_eq!(missing.capability, "events.emit");
        assert_eq!(scoped.scopes_of(missing.permission), vec!["billing/"]);
        assert_eq!(developer("").scopes_of("script.run"), Vec::<&str>::new());
    }

    #[test]
    fn builtin_roles_only_name_real_permissions() {
        for role in BUILTIN_ROLES {
            for p in builtin_role(role).unwrap() {
                assert!(is_permission(p), "{role}: {p}");
            }
        }
        assert_eq!(builtin_role("root"), None);
    }
}
