//! `/v1/kill-switch`: stop a script, a folder, a tenant or the platform at
//! once.

use axum::extract::State;
use axum::http::StatusCode;
use citadel_app::killswitch::{self, SwitchRequest};
use citadel_store::KillSwitch;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_switches, engage))
        .routes(routes!(release))
}

/// An engaged kill switch.
#[derive(Serialize, ToSchema)]
struct SwitchView {
    /// `platform`, `tenant`, `folder` or `script`.
    scope: String,
    /// The tenant's id (none for the platform).
    tenant_id: Option<String>,
    /// The folder (`billing/`) or script name; empty for platform and tenant.
    target: String,
    reason: String,
    engaged_by: Option<String>,
    engaged_at: i64,
}

impl From<KillSwitch> for SwitchView {
    fn from(k: KillSwitch) -> Self {
        SwitchView {
            scope: k.scope.as_str().to_owned(),
            tenant_id: (!k.tenant_id.is_empty()).then_some(k.tenant_id),
            target: k.target,
            reason: k.reason,
            engaged_by: k.engaged_by,
            engaged_at: k.engaged_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    /// `platform`, `tenant`, `folder` or `script`.
    scope: String,
    /// The folder (ending in `/`) or the script name.
    #[serde(default)]
    target: String,
    /// Platform admins only: the tenant (by name) a tenant, folder or script
    /// switch is for.
    tenant: Option<String>,
    /// Why (required to engage).
    #[serde(default)]
    reason: String,
}

impl From<SwitchBody> for SwitchRequest {
    fn from(b: SwitchBody) -> Self {
        SwitchRequest {
            scope: b.scope,
            target: b.target,
            tenant: b.tenant,
            reason: b.reason,
        }
    }
}

/// Engaged switches: a tenant sees its own and the platform's; a platform
/// admin sees all.
#[utoipa::path(get, path = "/v1/kill-switch", responses((status = 200, body = Vec<SwitchView>)))]
async fn list_switches(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<SwitchView>>> {
    let switches = killswitch::list(&state.app, &caller).await?;
    Ok(axum::Json(
        switches.into_iter().map(SwitchView::from).collect(),
    ))
}

/// Engages a kill switch: new runs it covers are refused with `killed`, and
/// runs in flight are aborted. 201 when engaged now, 200 when it already was.
#[utoipa::path(post, path = "/v1/kill-switch", request_body = SwitchBody,
    responses((status = 201, body = SwitchView), (status = 200, body = SwitchView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn engage(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<SwitchBody>,
) -> ApiResult<(StatusCode, axum::Json<SwitchView>)> {
    let (switch, new) = killswitch::engage(&state.app, &caller, &body.into()).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(switch.into())))
}

/// Releases a kill switch; 404 when it was not engaged.
#[utoipa::path(post, path = "/v1/kill-switch/release", request_body = SwitchBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn release(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<SwitchBody>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    killswitch::release(&state.app, &caller, &body.into()).await?;
    Ok(axum::Json(json!({ "released": true })))
}
