//! `/v1/tenants` (platform admins).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_tenant, list_tenants))
}

/// A tenant.
#[derive(Serialize, ToSchema)]
struct Tenant {
    id: String,
    name: String,
    created_at: i64,
}

impl From<citadel_store::Tenant> for Tenant {
    fn from(t: citadel_store::Tenant) -> Self {
        Tenant {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// Creates a tenant (platform admins only).
#[utoipa::path(post, path = "/v1/tenants", request_body = NewTenant,
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    let tenant = citadel_app::tenants::create_by(&state.app, &caller, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(tenant.into())))
}

/// Lists tenants (platform admins only).
#[utoipa::path(get, path = "/v1/tenants", responses((status = 200, body = Vec<Tenant>), (status = 403, body = ErrorBody)))]
async fn list_tenants(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<Tenant>>> {
    let tenants = citadel_app::tenants::list(&state.app, &caller).await?;
    Ok(axum::Json(tenants.into_iter().map(Tenant::from).collect()))
}
