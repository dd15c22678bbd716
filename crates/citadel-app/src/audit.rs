//! Reading the audit trail: a tenant's own entries (with `audit.read`), or
//! everything for a platform admin. Entries are appended by the use cases
//! themselves ([`crate::App::record`], [`crate::App::audit_event`]).

use citadel_store::{AuditEntry, AuditQuery};

use crate::access::Permission;
use crate::{App, AppResult, Caller, page_limit};

/// Filters of an audit page, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub principal: Option<String>,
    pub outcome: Option<String>,
    /// Entries older than this sequence number (the next page).
    pub before: Option<i64>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<i64>,
}

/// A page of entries and the `before` of the next page (absent on the
/// last one).
pub async fn page(
    app: &App,
    caller: &Caller,
    filter: AuditFilter,
) -> AppResult<(Vec<AuditEntry>, Option<i64>)> {
    let tenant_id = if caller.principal.is_platform_admin() {
        None
    } else {
        caller.require(app, Permission::AuditRead, None).await?;
        caller.principal.tenant_id.clone()
    };
    let limit = page_limit(filter.limit, 50, "limit must be 1-1000")?;
    let query = AuditQuery {
        tenant_id,
        action: filter.action,
        principal: filter.principal,
        outcome: filter.outcome,
        before: filter.before,
        limit,
    };
    let entries = app.store.audit_page(&query).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok((entries, next_before))
}

/// Whether the hash chain is intact, as a console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub intact: bool,
    /// The first entry that does not verify.
    pub broken_at: Option<i64>,
    /// Platform admins only: how many entries verified, and why the chain
    /// breaks (the chain is the platform's, so a tenant learns only
    /// whether it holds).
    pub entries: Option<i64>,
    pub reason: Option<String>,
}

/// Verifies the whole chain (what `citadel audit verify` does). Needs
/// `audit.read`, or a platform admin.
pub async fn verify(app: &App, caller: &Caller) -> AppResult<ChainStatus> {
    let admin = caller.principal.is_platform_admin();
    if !admin {
        caller.require(app, Permission::AuditRead, None).await?;
    }
    Ok(match app.store.verify_audit().await? {
        citadel_store::AuditVerdict::Intact { entries } => ChainStatus {
            intact: true,
            broken_at: None,
            entries: admin.then_some(entries),
            reason: None,
        },
        citadel_store::AuditVerdict::Broken { seq, reason } => ChainStatus {
            intact: false,
            broken_at: Some(seq),
            entries: None,
            reason: admin.then_some(reason),
        },
    })
}
