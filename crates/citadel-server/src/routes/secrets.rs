//! `/v1/secrets`: the tenant's secrets — create, list (names and metadata,
//! never values), rotate, roll back, delete, and which runs read them.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_app::secrets::{self, NewSecret, SecretView};
use citadel_store::{SecretChange, SecretUse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(get_secret, rotate_secret, delete_secret))
        .routes(routes!(rollback_secret))
        .routes(routes!(secret_usage))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// `A-Z`, `0-9` and `_`, starting with a letter.
    name: String,
    /// At least 8 bytes (redaction matches values as they are), at most 64 KiB.
    value: String,
    #[serde(default)]
    description: String,
    /// Unix milliseconds; an expired secret is not served (`secret_expired`).
    expires_at: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// The new value, served at once.
    value: String,
    /// A new description (unchanged when absent).
    description: Option<String>,
    /// A new expiry (Unix ms); `null` clears it; unchanged when absent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    expires_at: Option<Option<i64>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// A kept version to serve again.
    version: i64,
}

/// A kept version of a secret.
#[derive(Serialize, ToSchema)]
struct VersionView {
    version: i64,
    created_at: i64,
}

/// What a secret is, never what it holds.
#[derive(Serialize, ToSchema)]
struct SecretMetaView {
    name: String,
    description: String,
    /// The version served.
    version: i64,
    created_at: i64,
    rotated_at: Option<i64>,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    /// Expires within 7 days.
    expiring_soon: bool,
    expired: bool,
    /// The versions kept for rolling back (one secret only; empty in
    /// listings).
    versions: Vec<VersionView>,
}

impl From<SecretView> for SecretMetaView {
    fn from(v: SecretView) -> Self {
        SecretMetaView {
            name: v.meta.name,
            description: v.meta.description,
            version: v.meta.version,
            created_at: v.meta.created_at,
            rotated_at: v.meta.rotated_at,
            expires_at: v.meta.expires_at,
            last_used_at: v.meta.last_used_at,
            expiring_soon: v.expiring_soon,
            expired: v.expired,
            versions: v
                .versions
                .into_iter()
                .map(|(version, created_at)| VersionView {
                    version,
                    created_at,
                })
                .collect(),
        }
    }
}

/// One read of a secret by a run.
#[derive(Serialize, ToSchema)]
struct UseView {
    /// The secret's version that was read.
    version: i64,
    script: String,
    script_version: String,
    run_id: String,
    at: i64,
}

impl From<SecretUse> for UseView {
    fn from(u: SecretUse) -> Self {
        UseView {
            version: u.version,
            script: u.script_name,
            script_version: u.script_version,
            run_id: u.run_id,
            at: u.at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// At most this many reads, 1–1000 (default 100).
    limit: Option<i64>,
}

/// Creates a secret, encrypted at rest (needs `secret.write`). 409 when it
/// exists.
#[utoipa::path(post, path = "/v1/secrets", request_body = CreateBody,
    responses((status = 201, body = SecretMetaView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<(StatusCode, axum::Json<SecretMetaView>)> {
    let new = NewSecret {
        name: body.name,
        value: body.value,
        description: body.description,
        expires_at: body.expires_at,
    };
    let view = secrets::create(&state.app, &caller, new).await?;
    Ok((StatusCode::CREATED, axum::Json(view.into())))
}

/// The tenant's secrets by name, with which expire within 7 days (needs
/// `secret.read`).
#[utoipa::path(get, path = "/v1/secrets", responses((status = 200, body = Vec<SecretMetaView>), (status = 403, body = ErrorBody)))]
async fn list_secrets(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<SecretMetaView>>> {
    let all = secrets::list(&state.app, &caller).await?;
    Ok(axum::Json(all.into_iter().map(Into::into).collect()))
}

/// One secret's metadata and kept versions (needs `secret.read`).
#[utoipa::path(get, path = "/v1/secrets/{name}", params(("name" = String, Path)),
    responses((status = 200, body = SecretMetaView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<SecretMetaView>> {
    Ok(axum::Json(
        secrets::get(&state.app, &caller, &name).await?.into(),
    ))
}

/// Rotates a secret: the new value is served at once, the last 5 versions
/// are kept for rolling back (needs `secret.write`).
#[utoipa::path(put, path = "/v1/secrets/{name}", params(("name" = String, Path)), request_body = RotateBody,
    responses((status = 200, body = SecretMetaView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn rotate_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RotateBody>,
) -> ApiResult<axum::Json<SecretMetaView>> {
    let change = SecretChange {
        description: body.description,
        expires_at: body.expires_at,
    };
    let view = secrets::rotate(&state.app, &caller, &name, &body.value, change).await?;
    Ok(axum::Json(view.into()))
}

/// Serves a kept older version again (needs `secret.write`).
#[utoipa::path(post, path = "/v1/secrets/{name}/rollback", params(("name" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = SecretMetaView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rollback_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<axum::Json<SecretMetaView>> {
    let view = secrets::rollback(&state.app, &caller, &name, body.version).await?;
    Ok(axum::Json(view.into()))
}

/// Deletes a secret and every version of it (needs `secret.write`).
#[utoipa::path(delete, path = "/v1/secrets/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    secrets::delete(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which script, version and run read the secret, when; newest first
/// (needs `secret.read` and `script.read`).
#[utoipa::path(get, path = "/v1/secrets/{name}/usage", params(("name" = String, Path), UsageQuery),
    responses((status = 200, body = Vec<UseView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn secret_usage(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<UseView>>> {
    let Query(q) = query?;
    let uses = secrets::usage(&state.app, &caller, &name, q.limit).await?;
    Ok(axum::Json(uses.into_iter().map(Into::into).collect()))
}
