//! Tenants (platform admins), and the naming rules shared by tenants,
//! roles, tokens and folder scopes.

use citadel_store::Tenant;
use serde_json::json;

use crate::{App, AppError, AppResult, Caller, Principal};

/// Tenant names are URL-safe: lowercase letters, digits and dashes, 1–63
/// characters, starting with a letter or digit.
pub fn validate_tenant_name(name: &str) -> AppResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "tenant names are 1-63 of a-z, 0-9 and `-`, not starting with `-`",
        ))
    }
}

/// Role and token names: printable, 1–100 characters.
pub fn validate_name(what: &str, name: &str) -> AppResult<()> {
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "{what} must be 1-100 printable characters"
        )));
    }
    Ok(())
}

/// Path prefixes scope roles to folders: `""` or segments ending in `/`.
pub fn validate_path_prefix(prefix: &str) -> AppResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok = prefix.len() <= 200
        && prefix.ends_with('/')
        && !prefix.starts_with('/')
        && prefix.split('/').filter(|s| !s.is_empty()).all(|s| {
            s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "a path prefix is like `billing/` or `team/reports/`",
        ))
    }
}

/// Creates a tenant. `actor` is `None` for an operator's command.
pub async fn create(
    app: &App,
    actor: Option<&Principal>,
    name: &str,
    request_id: &str,
) -> AppResult<Tenant> {
    validate_tenant_name(name)?;
    let tenant = app.store.create_tenant(name).await?;
    app.record(
        actor,
        Some(&tenant.id),
        "tenant.create",
        &tenant.name,
        "ok",
        request_id,
        json!({}),
    )
    .await?;
    Ok(tenant)
}

/// Creates a tenant on a platform admin's behalf.
pub async fn create_by(app: &App, caller: &Caller, name: &str) -> AppResult<Tenant> {
    caller.require_platform_admin(app).await?;
    create(app, Some(&caller.principal), name, &caller.request_id).await
}

/// Every tenant (platform admins only).
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<Tenant>> {
    caller.require_platform_admin(app).await?;
    Ok(app.store.list_tenants().await?)
}

/// The id of the tenant called `name`, if there is one.
pub async fn id_of(app: &App, name: &str) -> AppResult<Option<String>> {
    Ok(app.store.tenant_by_name(name).await?.map(|t| t.id))
}
