//! Roles: the built-in ones and a tenant's own.

use citadel_store::{CustomRole, Store, StoreError, now_ms};
use serde_json::json;

use crate::access::{BUILTIN_ROLES, PERMISSIONS, builtin_role, is_permission};
use crate::tenants::validate_name;
use crate::{App, AppError, AppResult, Caller};

/// The permissions of a role of a tenant (built-in or custom).
pub async fn role_permissions(
    store: &dyn Store,
    tenant_id: &str,
    role: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    if let Some(p) = builtin_role(role) {
        return Ok(Some(p.iter().map(|s| (*s).to_owned()).collect()));
    }
    Ok(store
        .roles(tenant_id)
        .await?
        .into_iter()
        .find(|r| r.name == role)
        .map(|r| r.permissions))
}

/// A role and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

/// The built-in roles, then the tenant's own, and every permission there
/// is with what it allows.
pub async fn list(
    app: &App,
    caller: &Caller,
) -> AppResult<(Vec<RoleInfo>, &'static [(&'static str, &'static str)])> {
    let tenant = caller.tenant_with(app, "role.read", None).await?;
    let mut roles: Vec<RoleInfo> = BUILTIN_ROLES
        .iter()
        .map(|r| RoleInfo {
            name: (*r).into(),
            builtin: true,
            permissions: builtin_role(r)
                .unwrap_or(&[])
                .iter()
                .map(|p| (*p).into())
                .collect(),
        })
        .collect();
    roles.extend(
        app.store
            .roles(&tenant)
            .await?
            .into_iter()
            .map(|r| RoleInfo {
                name: r.name,
                builtin: false,
                permissions: r.permissions,
            }),
    );
    Ok((roles, PERMISSIONS))
}

/// Creates or replaces a custom role of the caller's tenant.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    permissions: Vec<String>,
) -> AppResult<RoleInfo> {
    let tenant = caller.tenant_with(app, "role.write", None).await?;
    validate_name("role name", name)?;
    if builtin_role(name).is_some() {
        return Err(AppError::conflict(format!("`{name}` is a built-in role")));
    }
    if let Some(unknown) = permissions.iter().find(|p| !is_permission(p)) {
        return Err(AppError::invalid(format!("unknown permission `{unknown}`")));
    }
    let role = CustomRole {
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        permissions,
        created_at: now_ms(),
    };
    app.store.put_role(&role).await?;
    app.forget_principals();
    caller
        .record_change(
            app,
            &tenant,
            "role.put",
            name,
            json!({ "permissions": role.permissions }),
        )
        .await?;
    Ok(RoleInfo {
        name: role.name,
        builtin: false,
        permissions: role.permissions,
    })
}

/// Deletes a custom role of the caller's tenant.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller.tenant_with(app, "role.write", None).await?;
    if !app.store.delete_role(&tenant, name).await? {
        return Err(AppError::not_found(format!("role `{name}` not found")));
    }
    app.forget_principals();
    caller
        .record_change(app, &tenant, "role.delete", name, json!({}))
        .await
}
