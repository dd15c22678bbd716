//! `/v1/roles`: the built-in roles and the tenant's own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use citadel_app::Permission;
use citadel_app::roles::{self, RoleInfo};
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
        .routes(routes!(list_roles))
        .routes(routes!(put_role, delete_role))
}

#[derive(Serialize, ToSchema)]
struct RoleView {
    name: String,
    builtin: bool,
    permissions: Vec<String>,
}

impl From<RoleInfo> for RoleView {
    fn from(r: RoleInfo) -> Self {
        RoleView {
            name: r.name,
            builtin: r.builtin,
            permissions: r
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct RoleList {
    roles: Vec<RoleView>,
    /// Every permission there is, with what it allows: `[name, description]`
    /// pairs. (Declared as string arrays: tuple schemas (`prefixItems`)
    /// defeat common client generators.)
    #[schema(value_type = Vec<Vec<String>>)]
    permissions: Vec<(String, String)>,
}

/// Lists the built-in roles and the tenant's own.
#[utoipa::path(get, path = "/v1/roles", responses((status = 200, body = RoleList), (status = 403, body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<RoleList>> {
    let roles = roles::list(&state.app, &caller).await?;
    Ok(axum::Json(RoleList {
        roles: roles.into_iter().map(RoleView::from).collect(),
        permissions: Permission::grantable()
            .map(|p| (p.as_str().into(), p.description().unwrap_or("").into()))
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    permissions: Vec<String>,
}

/// Creates or replaces a custom role of the caller's tenant.
#[utoipa::path(put, path = "/v1/roles/{name}", params(("name" = String, Path)), request_body = RoleBody,
    responses((status = 200, body = RoleView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_role(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<axum::Json<RoleView>> {
    let role = roles::put(&state.app, &caller, &name, &body.permissions).await?;
    Ok(axum::Json(role.into()))
}

/// Deletes a custom role of the caller's tenant.
#[utoipa::path(delete, path = "/v1/roles/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    roles::delete(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
