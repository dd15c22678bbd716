//! `/v1/kv`: the tenant's key-value store, the one scripts reach through
//! `api.kv` — read, page by prefix, write with compare-and-set and TTL,
//! delete.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_app::kv::{self, KvPut};
use citadel_store::KvEntry;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::routes::{json_text, raw};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(get_entry, put_entry, delete_entry))
}

/// One entry.
#[derive(Serialize, ToSchema)]
struct EntryView {
    key: String,
    #[schema(value_type = serde_json::Value)]
    value: Box<RawValue>,
    /// 1 when created, one more per write: what `if_version` compares.
    version: i64,
    /// Unix ms; absent for entries without a TTL.
    expires_at: Option<i64>,
    updated_at: i64,
}

impl From<KvEntry> for EntryView {
    fn from(e: KvEntry) -> Self {
        EntryView {
            value: raw(e.value),
            key: e.key,
            version: e.version,
            expires_at: e.expires_at,
            updated_at: e.updated_at,
        }
    }
}

/// A page of entries.
#[derive(Serialize, ToSchema)]
struct PageView {
    entries: Vec<EntryView>,
    /// The `cursor` of the next page; absent on the last.
    cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only keys starting with this.
    prefix: Option<String>,
    /// The previous page's `cursor`.
    cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PutBody {
    /// Any JSON.
    #[schema(value_type = serde_json::Value)]
    value: Option<Box<RawValue>>,
    /// Seconds until the entry expires.
    ttl_s: Option<i64>,
    /// Write only if the entry is at this version (0: only if absent);
    /// otherwise 412 `version_mismatch` with the current version.
    if_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct PutView {
    key: String,
    version: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete only if the entry is at this version.
    if_version: Option<i64>,
}

/// Entries by key, after `cursor` (needs `kv.read`).
#[utoipa::path(get, path = "/v1/kv", params(ListQuery),
    responses((status = 200, body = PageView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_entries(
    State(state): State<AppState>,
    Authed(caller): Authed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<PageView>> {
    let Query(q) = query?;
    let page = kv::list(
        &state.app,
        &caller,
        q.prefix.as_deref().unwrap_or(""),
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    Ok(axum::Json(PageView {
        entries: page.entries.into_iter().map(Into::into).collect(),
        cursor: page.cursor,
    }))
}

/// One entry (needs `kv.read`).
#[utoipa::path(get, path = "/v1/kv/{key}", params(("key" = String, Path, description = "URL-encoded")),
    responses((status = 200, body = EntryView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn get_entry(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> ApiResult<axum::Json<EntryView>> {
    Ok(axum::Json(kv::get(&state.app, &caller, &key).await?.into()))
}

/// Writes an entry (needs `kv.write`); 412 `version_mismatch` when
/// `if_version` does not hold, 413 past the key or value cap, 507
/// `quota_exceeded` when the tenant's store is full.
#[utoipa::path(put, path = "/v1/kv/{key}", params(("key" = String, Path, description = "URL-encoded")), request_body = PutBody,
    responses((status = 200, body = PutView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 413, body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn put_entry(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<PutBody>,
) -> ApiResult<axum::Json<PutView>> {
    let put = KvPut {
        value_json: json_text(body.value),
        ttl_s: body.ttl_s,
        if_version: body.if_version,
    };
    let version = kv::put(&state.app, &caller, &key, put).await?;
    Ok(axum::Json(PutView { key, version }))
}

/// Deletes an entry (needs `kv.write`).
#[utoipa::path(delete, path = "/v1/kv/{key}", params(("key" = String, Path, description = "URL-encoded"), DeleteQuery),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
async fn delete_entry(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(key): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = query?;
    kv::delete(&state.app, &caller, &key, q.if_version).await?;
    Ok(StatusCode::NO_CONTENT)
}
