//! Permissions, the built-in roles, what a capability grant needs its
//! author to hold, and the principal whose permissions they are. The one
//! place a permission is checked is [`crate::Caller::require`].

use serde::Serialize;

pub use citadel_domain::Permission;

/// What only an owner may do: change who may do what.
const OWNER_ONLY: [Permission; 3] = [
    Permission::UserWrite,
    Permission::TokenWrite,
    Permission::RoleWrite,
];

/// The `owner` role: every permission a role may carry.
static OWNER: std::sync::LazyLock<Vec<Permission>> =
    std::sync::LazyLock::new(|| Permission::grantable().collect());

/// `admin`: everything an owner may, but changing who may do what.
static ADMIN: std::sync::LazyLock<Vec<Permission>> = std::sync::LazyLock::new(|| {
    Permission::grantable()
        .filter(|p| !OWNER_ONLY.contains(p))
        .collect()
});

/// The built-in roles and their permissions.
pub fn builtin_role(name: &str) -> Option<&'static [Permission]> {
    use Permission::*;
    Some(match name {
        "owner" => OWNER.as_slice(),
        "admin" => ADMIN.as_slice(),
        "developer" => &[
            ScriptRead,
            ScriptWrite,
            ScriptRun,
            SecretRead,
            KvRead,
            KvWrite,
            DatasourceRead,
        ],
        "operator" => &[ScriptRead, ScriptRun],
        "approver" => &[ScriptRead, ScriptApprove],
        "viewer" => &[ScriptRead],
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

/// The permissions a custom role's stored names carry. A name that is not a
/// grantable permission is an error (the row is corrupt or from a newer
/// build): refusing is safe where guessing could widen or narrow a role.
pub fn parse_permissions(role: &str, names: &[String]) -> Result<Vec<Permission>, String> {
    names
        .iter()
        .map(|n| match n.parse::<Permission>() {
            Ok(p) if p.is_grantable() => Ok(p),
            _ => Err(format!(
                "role `{role}` carries the unknown permission `{n}`"
            )),
        })
        .collect()
}

/// One granted permission, scoped to a path prefix (`""`: everywhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub permission: Permission,
    pub path_prefix: String,
}

/// What `POST /v1/events` needs (tenant-wide): publishing reaches every
/// subscribed script, in every folder.
pub const PUBLISH_EVENTS: Permission = Permission::ScriptRun;
/// What reading events needs (tenant-wide): events carry data of every
/// folder.
pub const READ_EVENTS: Permission = Permission::ScriptRead;

/// What granting one capability needs its author to hold, so a version
/// never grants more than its author may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapabilityNeed {
    /// The capability as it is written in a grant (`events.emit`, `kv`).
    pub capability: &'static str,
    pub permission: Permission,
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
    need(!spec.secrets.is_empty(), "secrets", Permission::SecretRead);
    // One key-value store and one set of data sources serve every folder.
    need(spec.kv, "kv", Permission::KvWrite);
    need(!spec.db.is_empty(), "db", Permission::DatasourceRead);
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
    /// For an embed session: the host product's end user it acts for.
    pub end_user: Option<String>,
}

impl Principal {
    /// True when the principal holds `permission` for `path` (or, with no
    /// path, anywhere in its tenant).
    pub fn allows(&self, permission: Permission, path: Option<&str>) -> bool {
        self.grants.iter().any(|g| {
            g.permission == permission
                && (g.path_prefix.is_empty() || path.is_some_and(|p| p.starts_with(&g.path_prefix)))
        })
    }

    /// Who acts, as recorded in the audit log and on runs: the user behind
    /// a session, the host product's end user behind an embed session,
    /// else the token.
    pub fn actor(&self) -> &str {
        self.user_id
            .as_deref()
            .or(self.end_user.as_deref())
            .unwrap_or(&self.token_id)
    }

    /// The folders this principal holds `permission` in, when it holds it
    /// only in some (empty when it holds it everywhere or nowhere).
    pub fn scopes_of(&self, permission: Permission) -> Vec<&str> {
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
            end_user: None,
            grants: vec![Grant {
                permission: Permission::ScriptRun,
                path_prefix: "billing/".into(),
            }],
        };
        assert!(p.allows(Permission::ScriptRun, Some("billing/on-paid")));
        assert!(!p.allows(Permission::ScriptRun, Some("hr/payroll")));
        assert!(!p.allows(Permission::ScriptRun, None));
        assert!(!p.allows(Permission::ScriptWrite, Some("billing/on-paid")));
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
                ("secrets", Permission::SecretRead, true),
                ("kv", Permission::KvWrite, true),
                ("db", Permission::DatasourceRead, true),
            ]
        );
        let developer = |prefix: &str| Principal {
            token_id: "t".into(),
            person: "t".into(),
            user_id: None,
            tenant_id: Some("x".into()),
            end_user: None,
            grants: builtin_role("developer")
                .unwrap()
                .iter()
                .map(|p| Grant {
                    permission: *p,
                    path_prefix: prefix.into(),
                })
                .collect(),
        };
        assert_eq!(developer("").missing_for_grant(&spec, "billing/a"), None);
        let scoped = developer("billing/");
        let missing = scoped.missing_for_grant(&spec, "billing/a").unwrap();
        assert_eq!(missing.capability, "events.emit");
        assert_eq!(scoped.scopes_of(missing.permission), vec!["billing/"]);
        assert_eq!(
            developer("").scopes_of(Permission::ScriptRun),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn builtin_roles_carry_only_grantable_permissions() {
        for role in BUILTIN_ROLES {
            for p in builtin_role(role).unwrap() {
                assert!(p.is_grantable(), "{role}: {p}");
            }
        }
        assert_eq!(builtin_role("root"), None);
        assert_eq!(builtin_role("owner").unwrap().len(), 20);
        assert_eq!(builtin_role("admin").unwrap().len(), 17);
    }

    #[test]
    fn stored_role_permissions_decode_or_fail() {
        let ok = parse_permissions("r", &["script.run".into(), "audit.read".into()]);
        assert_eq!(ok, Ok(vec![Permission::ScriptRun, Permission::AuditRead]));
        for bad in ["script.exec", "platform.admin", ""] {
            assert_eq!(
                parse_permissions("r", &[bad.into()]),
                Err(format!("role `r` carries the unknown permission `{bad}`"))
            );
        }
    }
}
