//! Permissions, the built-in roles, and the one place a permission is
//! checked ([`Principal::require`]).

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

/// Who is calling: a tenant's token, or a platform admin.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
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

    /// Who acts, as recorded (authors, reviewers, audit): the user behind
    /// a session, else the token.
    pub fn actor(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.token_id)
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
    fn builtin_roles_only_name_real_permissions() {
        for role in BUILTIN_ROLES {
            for p in builtin_role(role).unwrap() {
                assert!(is_permission(p), "{role}: {p}");
            }
        }
        assert_eq!(builtin_role("root"), None);
    }
}
