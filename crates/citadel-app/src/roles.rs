//! Roles: the built-in ones and a tenant's own.

use citadel_store::{CustomRole, Store, now_ms};
use serde_json::json;

use crate::access::{BUILTIN_ROLES, Permission, builtin_role, parse_permissions};
use crate::tenants::validate_name;
use crate::{App, AppError, AppResult, Caller};

/// The permissions of a role of a tenant (built-in or custom); a custom
/// role whose stored permissions do not decode is an error, not a role
/// with fewer or more permissions.
pub async fn role_permissions(
    store: &dyn Store,
    tenant_id: &str,
    role: &str,
) -> AppResult<Option<Vec<Permission>>> {
    if let Some(p) = builtin_role(role) {
        return Ok(Some(p.to_vec()));
    }
    match store
        .roles(tenant_id)
        .await?
        .into_iter()
        .find(|r| r.name == role)
    {
        Some(r) => Ok(Some(decoded(&r)?)),
        None => Ok(None),
    }
}

/// A stored custom role's permissions.
pub(crate) fn decoded(role: &CustomRole) -> AppResult<Vec<Permission>> {
    parse_permissions(&role.name, &role.permissions).map_err(|why| {
        AppError::internal(format!(
            "tenant {}: stored role does not decode: {why}",
            role.tenant_id
        ))
    })
}

/// A role and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<Permission>,
}

/// The built-in roles, then the tenant's own.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<RoleInfo>> {
    let tenant = caller.tenant_with(app, Permission::RoleRead, None).await?;
    let mut roles: Vec<RoleInfo> = BUILTIN_ROLES
        .iter()
        .map(|r| RoleInfo {
            name: (*r).into(),
            builtin: true,
            permissions: builtin_role(r).unwrap_or(&[]).to_vec(),
        })
        .collect();
    for r in app.store.roles(&tenant).await? {
        roles.push(RoleInfo {
            permissions: decoded(&r)?,
            name: r.name,
            builtin: false,
        });
    }
    Ok(roles)
}

/// Creates or replaces a custom role of the caller's tenant.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    permissions: &[String],
) -> AppResult<RoleInfo> {
    let tenant = caller.tenant_with(app, Permission::RoleWrite, None).await?;
    validate_name("role name", name)?;
    if builtin_role(name).is_some() {
        return Err(AppError::conflict(format!("`{name}` is a built-in role")));
    }
    let mut granted = Vec::with_capacity(permissions.len());
    for p in permissions {
        match p.parse::<Permission>() {
            Ok(p) if p.is_grantable() => granted.push(p),
            _ => return Err(AppError::invalid(format!("unknown permission `{p}`"))),
        }
    }
    let role = CustomRole {
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        permissions: permissions.to_vec(),
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
        permissions: granted,
    })
}

/// Deletes a custom role of the caller's tenant.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller.tenant_with(app, Permission::RoleWrite, None).await?;
    if !app.store.delete_role(&tenant, name).await? {
        return Err(AppError::not_found(format!("role `{name}` not found")));
    }
    app.forget_principals();
    caller
        .record_change(app, &tenant, "role.delete", name, json!({}))
        .await
}
