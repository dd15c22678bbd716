//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
struct Status {
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Status)))]
async fn health() -> axum::Json<Status> {
    axum::Json(Status {
        status: "ok".into(),
    })
}

#[derive(Serialize, ToSchema)]
struct Readiness {
    status: String,
    database: String,
    sandbox_hosts: Option<usize>,
}

/// Readiness: the database answers with current migrations and takes
/// writes, and the sandbox pool is up.
#[utoipa::path(get, path = "/ready", responses((status = 200, body = Readiness), (status = 503, body = ErrorBody)))]
async fn ready(State(state): State<AppState>) -> ApiResult<axum::Json<Readiness>> {
    let unavailable = |msg: String| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            msg,
        )
    };
    state
        .app
        .store
        .ready()
        .await
        .map_err(|e| unavailable(format!("database: {e}")))?;
    // Reads can succeed on a database that takes no writes (a read-only
    // file, a full disk): runs would then finish unrecorded.
    if let Some(engine) = &state.app.engine {
        engine
            .check_writable()
            .await
            .map_err(|e| unavailable(format!("database: not writable: {e}")))?;
    }
    let pool = state.pool.as_ref().map(|p| p.status());
    // Hosts start on demand, so none running is fine; none startable is not.
    if let Some(why) = pool
        .as_ref()
        .and_then(citadel_pool::PoolStatus::unavailable)
    {
        return Err(unavailable(why));
    }
    let hosts = pool.map(|s| s.hosts);
    let database = serde_json::to_value(state.app.store.backend())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(axum::Json(Readiness {
        status: "ready".into(),
        database,
        sandbox_hosts: hosts,
    }))
}

/// Prometheus metrics in the text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> Response {
    // Queue depth by state, across every tenant and node.
    let jobs = match state.app.store.job_counts(None).await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count jobs for /metrics");
            Vec::new()
        }
    };
    let now = citadel_store::now_ms();
    let within = citadel_app::secrets::EXPIRING_WITHIN_MS;
    let secrets_expiring = match state.app.store.secrets_expiring(now, now + within).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count expiring secrets for /metrics");
            None
        }
    };
    let scraped = crate::metrics::Scraped {
        jobs,
        secrets_expiring,
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state, &scraped),
    )
        .into_response()
}
