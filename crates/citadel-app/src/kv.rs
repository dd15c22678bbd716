//! The tenant's key-value store as its admins see it (`/v1/kv`): the same
//! entries scripts read and write through `api.kv`, under the same caps
//! and quota, with the same compare-and-set on versions.

use citadel_engine::{KV_LIST_DEFAULT, KV_LIST_MAX, KV_MAX_TTL_S, Quotas};
use citadel_store::{KvEntry, KvOutcome, KvWrite, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller, ErrorCode};

/// A write to make.
#[derive(Debug, Clone)]
pub struct KvPut {
    /// JSON text.
    pub value_json: String,
    pub ttl_s: Option<i64>,
    /// Write only at this version (0: only if absent).
    pub if_version: Option<i64>,
}

/// A page of entries and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct KvPage {
    pub entries: Vec<KvEntry>,
    pub cursor: Option<String>,
}

fn quotas(app: &App) -> AppResult<Quotas> {
    Ok(*app.engine()?.quotas())
}

fn checked_key(key: &str, q: &Quotas) -> AppResult<()> {
    if key.is_empty() {
        return Err(
            AppError::invalid("a key may not be empty").with_details(json!({"field": "key"}))
        );
    }
    if key.len() as u64 > q.kv_key_bytes {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!(
                "the key is {} bytes; keys are at most {}",
                key.len(),
                q.kv_key_bytes
            ),
        )
        .with_details(json!({"field": "key"})));
    }
    Ok(())
}

fn mismatch(key: &str, current: i64) -> AppError {
    AppError::new(
        ErrorCode::VersionMismatch,
        format!("entry `{key}` is at version {current}"),
    )
    .with_details(json!({ "version": current }))
}

/// One entry. Needs `kv.read`.
pub async fn get(app: &App, caller: &Caller, key: &str) -> AppResult<KvEntry> {
    let tenant = caller.tenant_with(app, Permission::KvRead, None).await?;
    checked_key(key, &quotas(app)?)?;
    app.store
        .kv_get(&tenant, key, now_ms())
        .await?
        .ok_or_else(|| AppError::not_found(format!("key `{key}` not found")))
}

/// Entries whose key starts with `prefix`, after `cursor`. Needs `kv.read`.
pub async fn list(
    app: &App,
    caller: &Caller,
    prefix: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> AppResult<KvPage> {
    let tenant = caller.tenant_with(app, Permission::KvRead, None).await?;
    let q = quotas(app)?;
    if prefix.len() as u64 > q.kv_key_bytes
        || cursor.is_some_and(|c| c.len() as u64 > q.kv_key_bytes)
    {
        return Err(AppError::invalid(format!(
            "a prefix or cursor is at most {} bytes",
            q.kv_key_bytes
        )));
    }
    let limit = limit.unwrap_or(KV_LIST_DEFAULT);
    if !(1..=KV_LIST_MAX).contains(&limit) {
        return Err(AppError::invalid(format!(
            "`limit` must be 1..={KV_LIST_MAX}"
        )));
    }
    let entries = app
        .store
        .kv_list(&tenant, prefix, cursor, limit, now_ms())
        .await?;
    let cursor = if entries.len() as i64 == limit {
        entries.last().map(|e| e.key.clone())
    } else {
        None
    };
    Ok(KvPage { entries, cursor })
}

/// Writes an entry; answers its version. Needs `kv.write`.
pub async fn put(app: &App, caller: &Caller, key: &str, put: KvPut) -> AppResult<i64> {
    let tenant = caller.tenant_with(app, Permission::KvWrite, None).await?;
    let q = quotas(app)?;
    checked_key(key, &q)?;
    if put.value_json.len() as u64 > q.kv_value_bytes {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!(
                "the value is {} bytes of JSON; values are at most {}",
                put.value_json.len(),
                q.kv_value_bytes
            ),
        )
        .with_details(json!({"field": "value"})));
    }
    if put.ttl_s.is_some_and(|t| !(1..=KV_MAX_TTL_S).contains(&t)) {
        return Err(
            AppError::invalid(format!("`ttl_s` must be 1..={KV_MAX_TTL_S} seconds"))
                .with_details(json!({"field": "ttl_s"})),
        );
    }
    if put.if_version.is_some_and(|v| v < 0) {
        return Err(AppError::invalid("`if_version` must be 0 or more")
            .with_details(json!({"field": "if_version"})));
    }
    let now = now_ms();
    let write = KvWrite {
        tenant_id: &tenant,
        key,
        value: &put.value_json,
        expires_at: put.ttl_s.map(|t| now + t * 1000),
        if_version: put.if_version,
        quota_bytes: q.kv_bytes as i64,
        now,
    };
    let version = match app.store.kv_set(&write).await? {
        KvOutcome::Done { version } => version,
        KvOutcome::VersionMismatch { current } => return Err(mismatch(key, current)),
        KvOutcome::QuotaExceeded { used, quota } => {
            return Err(AppError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the tenant's KV store holds {used} of {quota} bytes; this write does not fit"
                ),
            ));
        }
        KvOutcome::Missing => return Err(AppError::not_found(format!("key `{key}` not found"))),
    };
    caller
        .record_change(app, &tenant, "kv.put", key, json!({ "version": version }))
        .await?;
    Ok(version)
}

/// Deletes an entry (only at `if_version`, when given). Needs `kv.write`.
pub async fn delete(
    app: &App,
    caller: &Caller,
    key: &str,
    if_version: Option<i64>,
) -> AppResult<()> {
    let tenant = caller.tenant_with(app, Permission::KvWrite, None).await?;
    checked_key(key, &quotas(app)?)?;
    match app
        .store
        .kv_delete(&tenant, key, if_version, now_ms())
        .await?
    {
        KvOutcome::Done { .. } => {}
        KvOutcome::VersionMismatch { current } => return Err(mismatch(key, current)),
        KvOutcome::Missing | KvOutcome::QuotaExceeded { .. } => {
            return Err(AppError::not_found(format!("key `{key}` not found")));
        }
    }
    caller
        .record_change(app, &tenant, "kv.delete", key, json!({}))
        .await?;
    Ok(())
}
