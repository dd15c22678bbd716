//! The durable queue as the API shows it: a tenant's jobs (dead letters
//! included) and retrying them by hand; the nodes working the queue
//! (platform admins).

use axum::extract::{Path, Query, State};
use citadel_store::{Job, Node, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::runs::Page;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(list_nodes))
}

/// Every state a queue job can have, in the order metrics list them.
pub(crate) const JOB_STATES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "dead",
];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "critical"];

/// A queue entry. A run job's id is its run's id.
#[derive(Serialize, ToSchema)]
struct JobView {
    id: String,
    kind: String,
    #[schema(value_type = crate::openapi::JobState)]
    state: String,
    #[schema(value_type = crate::openapi::Priority)]
    priority: String,
    run_at: i64,
    /// The key a duplicate enqueue is recognised by (a schedule's runs:
    /// `schedule:{schedule id}:{occurrence ms}`).
    idempotency_key: Option<String>,
    attempts: i64,
    max_attempts: i64,
    /// The node running it.
    lease_owner: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        JobView {
            priority: PRIORITIES
                .get(j.priority.clamp(0, 3) as usize)
                .copied()
                .unwrap_or("normal")
                .to_owned(),
            id: j.id,
            kind: j.kind,
            state: j.state,
            run_at: j.run_at,
            idempotency_key: j.idempotency_key,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            lease_owner: j.lease_owner,
            last_error: j.last_error,
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    /// Only jobs in this state (`dead` for the dead-letter queue).
    #[param(value_type = Option<crate::openapi::JobState>)]
    state: Option<String>,
    /// Jobs older than this job id (paging: the previous page's
    /// `X-Next-Cursor`).
    before: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
}

/// The tenant's jobs, newest first. A page holds at most `limit` jobs and
/// about 4 MiB; when more may follow, the `X-Next-Cursor` header is the
/// `before` of the next page.
#[utoipa::path(get, path = "/v1/jobs", params(JobsQuery),
    responses((status = 200, description = "A page of jobs, newest first.", body = Vec<JobView>,
        headers(("X-Next-Cursor" = String, description = "Present when more may follow: the `before` of the next page."))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_jobs(
    State(state): State<AppState>,
    auth: Authed,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::response::Response> {
    let Query(q) = query?;
    if let Some(s) = &q.state
        && !JOB_STATES.contains(&s.as_str())
    {
        return Err(ApiError::invalid(format!(
            "unknown state `{s}` (one of {})",
            JOB_STATES.join(", ")
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1..=1000"));
    }
    let tenant = auth.tenant_with(&state, "script.read", None).await?;
    let mut page = Page::default();
    let mut before = q.before;
    'fill: while !page.done(limit) {
        let want = page.want(limit);
        let jobs = state
            .store
            .list_jobs(&tenant, q.state.as_deref(), before.as_deref(), want)
            .await?;
        let end = (jobs.len() as i64) < want;
        for job in jobs {
            before = Some(job.id.clone());
            if !page.push(&job.id.clone(), JobView::from(job)) {
                break 'fill;
            }
        }
        if end {
            break;
        }
    }
    Ok(page.into_response(limit))
}

/// Puts a dead job back in the queue with fresh attempts.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", params(("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_job(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<JobView>> {
    let tenant = auth.tenant_with(&state, "script.run", None).await?;
    let Some(job) = state.store.job(&tenant, &id).await? else {
        return Err(ApiError::not_found(format!("job `{id}` not found")));
    };
    if !state.store.retry_dead(&tenant, &id, now_ms()).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "invalid_state",
            format!(
                "job `{id}` is {}; only a dead job can be retried",
                job.state
            ),
        ));
    }
    auth.record_change(
        &state,
        &tenant,
        "job.retry",
        &id,
        json!({ "attempts": job.attempts }),
    )
    .await?;
    let job = state
        .store
        .job(&tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job `{id}` not found")))?;
    Ok(axum::Json(job.into()))
}

/// A node sharing the database.
#[derive(Serialize, ToSchema)]
struct NodeView {
    id: String,
    /// `serve` or `worker`.
    role: String,
    version: String,
    hostname: String,
    started_at: i64,
    heartbeat_at: i64,
    /// Jobs running at its last heartbeat.
    running: i64,
    #[schema(value_type = crate::openapi::NodeState)]
    state: String,
}

impl From<Node> for NodeView {
    fn from(n: Node) -> Self {
        NodeView {
            id: n.id,
            role: n.role,
            version: n.version,
            hostname: n.hostname,
            started_at: n.started_at,
            heartbeat_at: n.heartbeat_at,
            // A node that is down runs nothing (its jobs are reclaimed),
            // whatever it reported last.
            running: if n.state == "down" { 0 } else { n.running },
            state: n.state,
        }
    }
}

/// The nodes working the queue (platform admins only). Nodes down for
/// longer than the retention (an hour by default) are forgotten.
#[utoipa::path(get, path = "/v1/nodes", responses((status = 200, body = Vec<NodeView>), (status = 403, body = ErrorBody)))]
async fn list_nodes(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<NodeView>>> {
    auth.require_platform_admin(&state).await?;
    let nodes = state.store.list_nodes().await?;
    Ok(axum::Json(nodes.into_iter().map(NodeView::from).collect()))
}
