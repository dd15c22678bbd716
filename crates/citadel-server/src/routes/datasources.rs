//! `/v1/datasources`: the read-only data sources scripts query through
//! `api.db.query` — a SQLite file under the platform's data-source root,
//! or a PostgreSQL URL whose password is a secret of the tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use citadel_app::datasources::{self, DataSourceSpec};
use citadel_store::DataSource;
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
        .routes(routes!(list_sources))
        .routes(routes!(get_source, put_source, delete_source))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    /// `sqlite` or `postgres`.
    kind: String,
    /// SQLite: a path relative to the data-source root. PostgreSQL: a
    /// `postgres://user@host:port/db` URL without a password.
    location: String,
    /// PostgreSQL: the tenant's secret that holds the password.
    password_secret: Option<String>,
}

/// A data source.
#[derive(Serialize, ToSchema)]
struct SourceView {
    name: String,
    kind: String,
    location: String,
    password_secret: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<DataSource> for SourceView {
    fn from(d: DataSource) -> Self {
        SourceView {
            name: d.name,
            kind: d.kind,
            location: d.location,
            password_secret: d.password_secret,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// The tenant's data sources by name (needs `datasource.read`).
#[utoipa::path(get, path = "/v1/datasources", responses((status = 200, body = Vec<SourceView>), (status = 403, body = ErrorBody)))]
async fn list_sources(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<SourceView>>> {
    let all = datasources::list(&state.app, &caller).await?;
    Ok(axum::Json(all.into_iter().map(Into::into).collect()))
}

/// One data source (needs `datasource.read`).
#[utoipa::path(get, path = "/v1/datasources/{name}", params(("name" = String, Path)),
    responses((status = 200, body = SourceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_source(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<SourceView>> {
    Ok(axum::Json(
        datasources::get(&state.app, &caller, &name).await?.into(),
    ))
}

/// Creates or replaces a data source (needs `datasource.write`); 201 when
/// created, 200 when replaced.
#[utoipa::path(put, path = "/v1/datasources/{name}", params(("name" = String, Path)), request_body = SourceBody,
    responses((status = 200, body = SourceView), (status = 201, body = SourceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_source(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SourceBody>,
) -> ApiResult<(StatusCode, axum::Json<SourceView>)> {
    let spec = DataSourceSpec {
        kind: body.kind,
        location: body.location,
        password_secret: body.password_secret,
    };
    let (stored, created) = datasources::put(&state.app, &caller, &name, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(stored.into())))
}

/// Deletes a data source (needs `datasource.write`).
#[utoipa::path(delete, path = "/v1/datasources/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_source(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    datasources::delete(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
