//! `/v1/audit`: the hash-chained audit log, newest first.

use axum::extract::{Query, State};
use citadel_app::audit::{self, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::routes::parse_json;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
}

/// One audit entry and its place in the hash chain.
#[derive(Serialize, ToSchema)]
struct AuditEntry {
    seq: i64,
    at: i64,
    tenant_id: Option<String>,
    principal: Option<String>,
    action: String,
    target: String,
    outcome: String,
    request_id: String,
    details: serde_json::Value,
    prev_hash: String,
    hash: String,
}

impl From<citadel_store::AuditEntry> for AuditEntry {
    fn from(a: citadel_store::AuditEntry) -> Self {
        let e = a.entry;
        AuditEntry {
            seq: a.seq,
            at: e.at,
            details: parse_json(&e.details),
            tenant_id: e.tenant_id,
            principal: e.principal,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            prev_hash: a.prev_hash,
            hash: a.hash,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    action: Option<String>,
    principal: Option<String>,
    outcome: Option<String>,
    /// Entries older than this sequence number (the next page).
    before: Option<i64>,
    /// Page size, 1-1000 (default 50).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last one.
    next_before: Option<i64>,
}

/// Pages through the audit log, newest first: the caller's tenant, or
/// everything for a platform admin.
#[utoipa::path(get, path = "/v1/audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    Authed(caller): Authed,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<AuditPage>> {
    let Query(params) = params?;
    let filter = AuditFilter {
        action: params.action,
        principal: params.principal,
        outcome: params.outcome,
        before: params.before,
        limit: params.limit,
    };
    let (entries, next_before) = audit::page(&state.app, &caller, filter).await?;
    Ok(axum::Json(AuditPage {
        entries: entries.into_iter().map(AuditEntry::from).collect(),
        next_before,
    }))
}

/// Whether the audit log's hash chain verifies.
#[derive(Serialize, ToSchema)]
struct ChainView {
    intact: bool,
    /// The first entry that does not verify.
    broken_at: Option<i64>,
    /// Platform admins only: entries verified.
    entries: Option<i64>,
    /// Platform admins only: why the chain breaks.
    reason: Option<String>,
}

/// Verifies the whole hash chain, as `citadel audit verify` does: an edited
/// or deleted entry breaks it. A tenant learns only whether it holds.
#[utoipa::path(get, path = "/v1/audit/verify",
    responses((status = 200, body = ChainView), (status = 403, body = ErrorBody)))]
async fn verify_audit(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<ChainView>> {
    let s = audit::verify(&state.app, &caller).await?;
    Ok(axum::Json(ChainView {
        intact: s.intact,
        broken_at: s.broken_at,
        entries: s.entries,
        reason: s.reason,
    }))
}
