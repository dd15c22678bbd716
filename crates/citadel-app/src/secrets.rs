//! A tenant's secrets: create, list (metadata only), rotate, roll back,
//! delete, and who read them. Values go into the vault and come out only
//! to a run whose version is granted the name; no answer here carries one,
//! and no audit entry does.

use citadel_secrets::{KEPT_VERSIONS, MIN_SECRET_BYTES, Vault, VaultError};
use citadel_store::{SecretChange, SecretMeta, SecretUse, StoreError, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller, page_limit};

/// How far ahead a secret counts as expiring soon: 7 days.
pub const EXPIRING_WITHIN_MS: i64 = 7 * 24 * 3600 * 1000;
/// The longest value a secret may hold.
pub const MAX_SECRET_BYTES: usize = 64 << 10;
/// The longest description.
pub const MAX_DESCRIPTION_BYTES: usize = 1000;

/// A secret to create.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub name: String,
    pub value: String,
    pub description: String,
    pub expires_at: Option<i64>,
}

/// A secret's metadata with what the listing adds.
#[derive(Debug, Clone)]
pub struct SecretView {
    pub meta: SecretMeta,
    /// Expires within [`EXPIRING_WITHIN_MS`] (and has not yet).
    pub expiring_soon: bool,
    pub expired: bool,
    /// The versions kept for rolling back to (number, created), oldest
    /// first; only where one secret is asked for.
    pub versions: Vec<(i64, i64)>,
}

impl SecretView {
    fn new(meta: SecretMeta, now: i64) -> Self {
        let expired = meta.expires_at.is_some_and(|e| e <= now);
        let expiring_soon = !expired
            && meta
                .expires_at
                .is_some_and(|e| e <= now + EXPIRING_WITHIN_MS);
        SecretView {
            meta,
            expiring_soon,
            expired,
            versions: Vec::new(),
        }
    }
}

pub(crate) fn vault(app: &App) -> AppResult<&Vault> {
    app.engine()?
        .vault()
        .map(|v| v.as_ref())
        .ok_or_else(|| AppError::unavailable("secrets are not configured (no master key)"))
}

fn checked_secret_name(name: &str) -> AppResult<()> {
    if citadel_scripts::is_secret_name(name) {
        return Ok(());
    }
    Err(AppError::invalid(format!(
        "`{}` is not a secret name: A-Z, 0-9 and _, starting with a letter, at most 253 bytes",
        name.chars().take(64).collect::<String>()
    ))
    .with_details(json!({ "field": "name" })))
}

pub(crate) fn checked_value(value: &str) -> AppResult<()> {
    if value.len() < MIN_SECRET_BYTES {
        // Redaction matches values verbatim: a short one would redact
        // ordinary text and could be guessed from what it hides.
        return Err(AppError::invalid(format!(
            "a secret's value is at least {MIN_SECRET_BYTES} bytes"
        ))
        .with_details(json!({ "field": "value" })));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(AppError::invalid(format!(
            "a secret's value is at most {MAX_SECRET_BYTES} bytes"
        ))
        .with_details(json!({ "field": "value" })));
    }
    Ok(())
}

fn checked_description(d: &str) -> AppResult<()> {
    if d.len() > MAX_DESCRIPTION_BYTES {
        return Err(AppError::invalid(format!(
            "a description is at most {MAX_DESCRIPTION_BYTES} bytes"
        ))
        .with_details(json!({ "field": "description" })));
    }
    Ok(())
}

fn checked_expiry(expires_at: Option<i64>, now: i64) -> AppResult<()> {
    if expires_at.is_some_and(|e| e <= now) {
        return Err(
            AppError::invalid("`expires_at` is in the past (Unix milliseconds)")
                .with_details(json!({ "field": "expires_at" })),
        );
    }
    Ok(())
}

pub(crate) fn vault_error(e: VaultError) -> AppError {
    match e {
        VaultError::Store(e) => e.into(),
        VaultError::NotFound(name) => AppError::not_found(format!("secret `{name}` not found")),
        other => AppError::internal(other),
    }
}

/// The value of a secret that verifies incoming signatures; `invalid_state`
/// with `missing()` as the message when it is not set.
pub(crate) async fn reveal_to_verify(
    app: &App,
    tenant: &str,
    name: &str,
    missing: impl FnOnce() -> String,
) -> AppResult<zeroize::Zeroizing<String>> {
    match vault(app)?.reveal(tenant, name, now_ms()).await {
        Ok(v) => Ok(v.value),
        Err(VaultError::NotFound(_)) => Err(AppError::new(
            crate::error::ErrorCode::InvalidState,
            missing(),
        )),
        Err(e) => Err(vault_error(e)),
    }
}

/// Creates a secret (its version 1). Needs `secret.write`.
pub async fn create(app: &App, caller: &Caller, new: NewSecret) -> AppResult<SecretView> {
    let tenant = caller
        .tenant_with(app, Permission::SecretWrite, None)
        .await?;
    checked_secret_name(&new.name)?;
    checked_value(&new.value)?;
    checked_description(&new.description)?;
    let now = now_ms();
    checked_expiry(new.expires_at, now)?;
    let meta = SecretMeta {
        tenant_id: tenant.clone(),
        name: new.name.clone(),
        description: new.description,
        version: 1,
        created_at: now,
        rotated_at: None,
        expires_at: new.expires_at,
        last_used_at: None,
    };
    match vault(app)?.create(&meta, &new.value).await {
        Ok(()) => {}
        Err(VaultError::Store(StoreError::Conflict(_))) => {
            return Err(AppError::conflict(format!(
                "secret `{}` already exists; rotate it with PUT",
                new.name
            )));
        }
        Err(e) => return Err(vault_error(e)),
    }
    caller
        .record_change(
            app,
            &tenant,
            "secret.create",
            &new.name,
            json!({ "version": 1, "expires_at": new.expires_at }),
        )
        .await?;
    Ok(SecretView::new(meta, now))
}

/// The tenant's secrets, by name, never their values. Needs `secret.read`.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<SecretView>> {
    let tenant = caller
        .tenant_with(app, Permission::SecretRead, None)
        .await?;
    let now = now_ms();
    Ok(app
        .store
        .secrets(&tenant)
        .await?
        .into_iter()
        .map(|m| SecretView::new(m, now))
        .collect())
}

/// One secret's metadata and its kept versions. Needs `secret.read`.
pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<SecretView> {
    let tenant = caller
        .tenant_with(app, Permission::SecretRead, None)
        .await?;
    checked_secret_name(name)?;
    let Some(meta) = app.store.secret(&tenant, name).await? else {
        return Err(AppError::not_found(format!("secret `{name}` not found")));
    };
    let mut view = SecretView::new(meta, now_ms());
    view.versions = app.store.secret_versions(&tenant, name).await?;
    Ok(view)
}

/// A new value for a secret, served at once; the last
/// [`KEPT_VERSIONS`] are kept for rolling back. Needs `secret.write`.
pub async fn rotate(
    app: &App,
    caller: &Caller,
    name: &str,
    value: &str,
    change: SecretChange,
) -> AppResult<SecretView> {
    let tenant = caller
        .tenant_with(app, Permission::SecretWrite, None)
        .await?;
    checked_secret_name(name)?;
    checked_value(value)?;
    if let Some(d) = &change.description {
        checked_description(d)?;
    }
    let now = now_ms();
    if let Some(expiry) = change.expires_at {
        checked_expiry(expiry, now)?;
    }
    let version = vault(app)?
        .rotate(&tenant, name, value, &change, now)
        .await
        .map_err(vault_error)?;
    app.engine()?.forget_secret(&tenant, name);
    caller
        .record_change(
            app,
            &tenant,
            "secret.rotate",
            name,
            json!({ "version": version, "kept": KEPT_VERSIONS }),
        )
        .await?;
    get(app, caller, name).await
}

/// Serves an older kept version of a secret again. Needs `secret.write`.
pub async fn rollback(
    app: &App,
    caller: &Caller,
    name: &str,
    version: i64,
) -> AppResult<SecretView> {
    let tenant = caller
        .tenant_with(app, Permission::SecretWrite, None)
        .await?;
    checked_secret_name(name)?;
    if app.store.secret(&tenant, name).await?.is_none() {
        return Err(AppError::not_found(format!("secret `{name}` not found")));
    }
    if !app
        .store
        .serve_secret_version(&tenant, name, version, now_ms())
        .await?
    {
        return Err(AppError::not_found(format!(
            "secret `{name}` keeps no version {version} (the last {KEPT_VERSIONS} are kept)"
        )));
    }
    app.engine()?.forget_secret(&tenant, name);
    caller
        .record_change(
            app,
            &tenant,
            "secret.rollback",
            name,
            json!({ "version": version }),
        )
        .await?;
    get(app, caller, name).await
}

/// Deletes a secret and every version of it. Needs `secret.write`.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller
        .tenant_with(app, Permission::SecretWrite, None)
        .await?;
    checked_secret_name(name)?;
    if !app.store.delete_secret(&tenant, name).await? {
        return Err(AppError::not_found(format!("secret `{name}` not found")));
    }
    if let Ok(engine) = app.engine() {
        engine.forget_secret(&tenant, name);
    }
    caller
        .record_change(app, &tenant, "secret.delete", name, json!({}))
        .await?;
    Ok(())
}

/// Which runs read a secret, newest first. Needs `secret.read` and
/// `script.read` (the usage names scripts and runs).
pub async fn usage(
    app: &App,
    caller: &Caller,
    name: &str,
    limit: Option<i64>,
) -> AppResult<Vec<SecretUse>> {
    let tenant = caller
        .tenant_with(app, Permission::SecretRead, None)
        .await?;
    caller.require(app, Permission::ScriptRead, None).await?;
    checked_secret_name(name)?;
    let limit = page_limit(limit, 100, "`limit` must be 1..=1000")?;
    if app.store.secret(&tenant, name).await?.is_none() {
        return Err(AppError::not_found(format!("secret `{name}` not found")));
    }
    Ok(app.store.secret_uses(&tenant, name, limit).await?)
}
