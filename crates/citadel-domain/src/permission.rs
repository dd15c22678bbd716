//! Permissions: what a role lets a principal do, optionally only below a
//! folder.

string_enum! {
    /// A permission. The grantable ones make up roles; `tenant.member` and
    /// `platform.admin` name what a request needs when it is refused for
    /// not being a tenant's (or the platform's) principal, and are never
    /// granted.
    Permission, "permission" {
        ScriptRead = "script.read",
        ScriptWrite = "script.write",
        ScriptRun = "script.run",
        ScriptApprove = "script.approve",
        SecretRead = "secret.read",
        SecretWrite = "secret.write",
        KvRead = "kv.read",
        KvWrite = "kv.write",
        DatasourceRead = "datasource.read",
        DatasourceWrite = "datasource.write",
        PluginInstall = "plugin.install",
        AuditRead = "audit.read",
        UserRead = "user.read",
        UserWrite = "user.write",
        TokenRead = "token.read",
        TokenWrite = "token.write",
        RoleRead = "role.read",
        RoleWrite = "role.write",
        KillswitchWrite = "killswitch.write",
        SettingsWrite = "settings.write",
        TenantMember = "tenant.member",
        PlatformAdmin = "platform.admin",
    }
}

impl Permission {
    /// What it allows, for people; `None` for the two that are never
    /// granted.
    pub fn description(self) -> Option<&'static str> {
        Some(match self {
            Permission::ScriptRead => "read scripts, versions and runs",
            Permission::ScriptWrite => "save script versions",
            Permission::ScriptRun => "run scripts",
            Permission::ScriptApprove => "approve or reject script versions",
            Permission::SecretRead => "list secret names and metadata",
            Permission::SecretWrite => "create, rotate and delete secrets",
            Permission::KvRead => "read the tenant's key-value store",
            Permission::KvWrite => "write the tenant's key-value store",
            Permission::DatasourceRead => "list data sources and query them from scripts",
            Permission::DatasourceWrite => "configure and delete data sources",
            Permission::PluginInstall => "install and manage plugins",
            Permission::AuditRead => "read the audit log",
            Permission::UserRead => "list users",
            Permission::UserWrite => "create and disable users",
            Permission::TokenRead => "list API tokens",
            Permission::TokenWrite => "create and revoke API tokens",
            Permission::RoleRead => "list roles",
            Permission::RoleWrite => "create and delete custom roles",
            Permission::KillswitchWrite => "engage and release kill switches",
            Permission::SettingsWrite => {
                "change the tenant's script settings (approval, limits, policy)"
            }
            Permission::TenantMember | Permission::PlatformAdmin => return None,
        })
    }

    /// True for the permissions a role may carry.
    pub fn is_grantable(self) -> bool {
        self.description().is_some()
    }

    /// Every permission a role may carry, in order.
    pub fn grantable() -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(|p| p.is_grantable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_membership_and_platform_are_not_grantable() {
        let not: Vec<Permission> = Permission::ALL
            .into_iter()
            .filter(|p| !p.is_grantable())
            .collect();
        assert_eq!(not, [Permission::TenantMember, Permission::PlatformAdmin]);
        assert_eq!(Permission::grantable().count(), 20);
        assert_eq!("script.run".parse(), Ok(Permission::ScriptRun));
        assert_eq!(
            "script.exec".parse::<Permission>().unwrap_err().to_string(),
            "unknown permission `script.exec`"
        );
    }
}
