//! `/v1/kill-switch`: stop a script, a folder, a tenant or the platform at
//! once. Platform switches (and switches on another tenant) are for
//! platform admins; a tenant's own switches need `killswitch.write` on the
//! target.

use axum::extract::State;
use axum::http::StatusCode;
use citadel_engine::KillScope;
use citadel_scripts::{validate_folder, validate_name};
use citadel_store::{KillSwitch, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
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
            scope: k.scope,
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

/// Resolves and authorises a switch request: (scope, tenant id, target).
async fn resolve(
    state: &AppState,
    auth: &Authed,
    body: &SwitchBody,
) -> ApiResult<(KillScope, String, String)> {
    let Some(scope) = KillScope::parse(&body.scope) else {
        return Err(ApiError::invalid(format!(
            "unknown scope `{}` (platform, tenant, folder or script)",
            body.scope
        )));
    };
    match scope {
        KillScope::Platform | KillScope::Tenant if !body.target.is_empty() => {
            return Err(ApiError::invalid(format!(
                "a {} switch has no target",
                scope.as_str()
            )));
        }
        KillScope::Folder => {
            validate_folder(&body.target).map_err(|e| ApiError::invalid(format!("target: {e}")))?
        }
        KillScope::Script => {
            validate_name(&body.target).map_err(|e| ApiError::invalid(format!("target: {e}")))?
        }
        _ => {}
    }
    if scope == KillScope::Platform {
        auth.require_platform_admin(state).await?;
        return Ok((scope, String::new(), String::new()));
    }
    if auth.principal.is_platform_admin() {
        let Some(name) = &body.tenant else {
            return Err(ApiError::invalid(
                "a platform admin names the tenant of a tenant, folder or script switch",
            ));
        };
        let tenant = state
            .store
            .tenant_by_name(name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("tenant `{name}` not found")))?;
        return Ok((scope, tenant.id, body.target.clone()));
    }
    if body.tenant.is_some() {
        return Err(ApiError::invalid(
            "`tenant` is for platform admins; a tenant token acts on its own tenant",
        ));
    }
    let path = (!body.target.is_empty()).then_some(body.target.as_str());
    let tenant = auth.tenant_with(state, "killswitch.write", path).await?;
    Ok((scope, tenant, body.target.clone()))
}

/// Engaged switches: a tenant sees its own and the platform's; a platform
/// admin sees all.
#[utoipa::path(get, path = "/v1/kill-switch", responses((status = 200, body = Vec<SwitchView>)))]
async fn list_switches(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<SwitchView>>> {
    let engine = state.engine()?;
    let switches = engine.store().kill_switches().await?;
    let mine = auth.principal.tenant_id.clone();
    Ok(axum::Json(
        switches
            .into_iter()
            .filter(|k| {
                mine.as_ref()
                    .is_none_or(|t| k.tenant_id.is_empty() || &k.tenant_id == t)
            })
            .map(SwitchView::from)
            .collect(),
    ))
}

/// Engages a kill switch: new runs it covers are refused with `killed`, and
/// runs in flight are aborted. 201 when engaged now, 200 when it already was.
#[utoipa::path(post, path = "/v1/kill-switch", request_body = SwitchBody,
    responses((status = 201, body = SwitchView), (status = 200, body = SwitchView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn engage(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<SwitchBody>,
) -> ApiResult<(StatusCode, axum::Json<SwitchView>)> {
    let engine = state.engine()?;
    let (scope, tenant_id, target) = resolve(&state, &auth, &body).await?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > 1024 {
        return Err(ApiError::invalid("reason must be 1–1024 bytes"));
    }
    let switch = KillSwitch {
        scope: scope.as_str().to_owned(),
        tenant_id: tenant_id.clone(),
        target: target.clone(),
        reason: reason.to_owned(),
        engaged_by: Some(auth.principal.actor().to_owned()),
        engaged_at: now_ms(),
    };
    let new = engine.engage(switch.clone()).await?;
    if !new {
        let current = engine
            .kill_switches()
            .iter()
            .find(|k| k.scope == switch.scope && k.tenant_id == tenant_id && k.target == target)
            .cloned()
            .unwrap_or(switch);
        return Ok((StatusCode::OK, axum::Json(current.into())));
    }
    state
        .record(
            Some(&auth.principal),
            (!tenant_id.is_empty()).then_some(tenant_id.as_str()),
            "killswitch.engage",
            &format!("{}:{target}", scope.as_str()),
            "ok",
            &auth.request_id,
            json!({ "reason": reason }),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(switch.into())))
}

/// Releases a kill switch; 404 when it was not engaged.
#[utoipa::path(post, path = "/v1/kill-switch/release", request_body = SwitchBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn release(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<SwitchBody>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let engine = state.engine()?;
    let (scope, tenant_id, target) = resolve(&state, &auth, &body).await?;
    if !engine.release(scope.as_str(), &tenant_id, &target).await? {
        return Err(ApiError::not_found(format!(
            "no {} kill switch engaged on `{target}`",
            scope.as_str()
        )));
    }
    state
        .record(
            Some(&auth.principal),
            (!tenant_id.is_empty()).then_some(tenant_id.as_str()),
            "killswitch.release",
            &format!("{}:{target}", scope.as_str()),
            "ok",
            &auth.request_id,
            json!({}),
        )
        .await?;
    Ok(axum::Json(json!({ "released": true })))
}
