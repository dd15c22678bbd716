//! `/v1/jobs` and `/v1/nodes`: the durable queue as the API shows it — a
//! tenant's jobs (dead letters included) and retrying them by hand; the
//! nodes working the queue (platform admins).

use axum::extract::{Path, Query, State};
use citadel_app::jobs;
use citadel_domain::{NodeState, Priority};
use citadel_store::{Job, Node};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::page::Page;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(list_nodes))
}

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
            priority: Priority::ALL
                .get(j.priority.clamp(0, 3) as usize)
                .copied()
                .unwrap_or_default()
                .as_str()
                .to_owned(),
            id: j.id,
            kind: j.kind,
            state: j.state.as_str().to_owned(),
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
    Authed(caller): Authed,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::response::Response> {
    let Query(q) = query?;
    let mut listing = jobs::listing(&state.app, &caller, q.state, q.before, q.limit).await?;
    let limit = listing.limit;
    let mut page = Page::default();
    'fill: while !page.done(limit) {
        for job in listing.next(&state.app, page.want(limit)).await? {
            let id = job.id.clone();
            if !page.push(&id, JobView::from(job)) {
                break 'fill;
            }
        }
        if listing.ended() {
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
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<JobView>> {
    Ok(axum::Json(
        jobs::retry(&state.app, &caller, &id).await?.into(),
    ))
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
            running: if n.state == NodeState::Down {
                0
            } else {
                n.running
            },
            state: n.state.as_str().to_owned(),
        }
    }
}

/// The nodes working the queue (platform admins only). Nodes down for
/// longer than the retention (an hour by default) are forgotten.
#[utoipa::path(get, path = "/v1/nodes", responses((status = 200, body = Vec<NodeView>), (status = 403, body = ErrorBody)))]
async fn list_nodes(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<NodeView>>> {
    let nodes = jobs::nodes(&state.app, &caller).await?;
    Ok(axum::Json(nodes.into_iter().map(NodeView::from).collect()))
}
