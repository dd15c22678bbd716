//! `/v1/scripts/{name}/run`, `/v1/scripts/{name}/run:batch` and `/v1/runs`:
//! start a run (synchronously or queued) or a batch of queued runs, list,
//! fetch, cancel, and follow one as Server-Sent Events.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use citadel_app::runs::{self, Listed, RunFilter, StartBatch, StartRun, Started};
use citadel_engine::{BatchItem, Priority, RUN_STATUSES};
use citadel_store::Run;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::page::Page;
use crate::routes::{json_text, raw};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_stats))
        .routes(routes!(run_script))
        .routes(routes!(run_batch))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(cancel_run))
        .routes(routes!(run_events))
}

/// One run. JSON fields are passed through as stored, not re-encoded.
#[derive(Serialize, ToSchema)]
pub(crate) struct RunView {
    id: String,
    script: String,
    version: String,
    #[schema(value_type = crate::openapi::RunStatus)]
    status: String,
    /// What started it: `api` (sync), `api_async`, …
    #[schema(value_type = crate::openapi::Trigger)]
    trigger: String,
    principal: Option<String>,
    /// The run's input: any JSON value, `null` included.
    #[schema(value_type = serde_json::Value)]
    input: Box<RawValue>,
    /// What the script returned: any JSON value; `null` until it succeeds.
    #[schema(value_type = serde_json::Value)]
    result: Option<Box<RawValue>>,
    #[schema(value_type = Vec<serde_json::Value>)]
    logs: Box<RawValue>,
    logs_truncated: bool,
    /// `null` unless the run failed; then `{code, name, message, line,
    /// column}`.
    #[schema(value_type = serde_json::Value)]
    error: Option<Box<RawValue>>,
    duration_ms: Option<i64>,
    cpu_ms: Option<i64>,
    peak_memory_bytes: Option<i64>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        RunView {
            id: r.id,
            script: r.script_name,
            version: r.version,
            status: r.status.as_str().to_owned(),
            trigger: r.trigger.as_str().to_owned(),
            principal: r.principal,
            input: raw(r.input),
            result: r.result.map(raw),
            logs: raw(r.logs),
            logs_truncated: r.logs_truncated,
            error: r.error.map(raw),
            duration_ms: r.duration_ms,
            cpu_ms: r.cpu_ms,
            peak_memory_bytes: r.peak_memory_bytes,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The script's `input` (any JSON; `null` if absent).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    input: Option<Box<RawValue>>,
    /// Wait for the result (default) or answer 202 with the run's id.
    #[serde(default = "yes")]
    wait: bool,
    /// A timeout for this run, capped by the platform maximum.
    timeout_ms: Option<u64>,
    /// Queue priority of an asynchronous run: `low`, `normal` (default),
    /// `high` or `critical`.
    #[serde(default)]
    #[schema(value_type = crate::openapi::Priority)]
    priority: Priority,
    /// Asynchronous runs: a second request with the same key (per tenant)
    /// answers the first run's id instead of enqueuing another.
    idempotency_key: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
pub(super) struct Accepted {
    pub(super) run_id: String,
    /// True when an earlier request with the same idempotency key enqueued
    /// this run.
    pub(super) duplicate: bool,
}

/// Runs the script's live version. With `wait: true` (the default) answers
/// the finished run; with `wait: false`, 202 and the run's id. A kill switch
/// covering the script answers 423 `killed`.
#[utoipa::path(post, path = "/v1/scripts/{name}/run", params(("name" = String, Path)), request_body = RunBody,
    responses((status = 200, body = RunView), (status = 202, body = Accepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn run_script(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<Response> {
    let start = StartRun {
        input_json: json_text(body.input),
        wait: body.wait,
        timeout_ms: body.timeout_ms,
        priority: body.priority,
        idempotency_key: body.idempotency_key,
    };
    Ok(
        match runs::start(&state.app, &caller, &name, start).await? {
            Started::Finished(run) => axum::Json(RunView::from(*run)).into_response(),
            Started::Queued { run_id, duplicate } => (
                StatusCode::ACCEPTED,
                axum::Json(Accepted { run_id, duplicate }),
            )
                .into_response(),
        },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// One queued run per item, 1 to 1000.
    items: Vec<BatchItemBody>,
    /// A timeout for each run, capped by the platform maximum.
    timeout_ms: Option<u64>,
    /// Queue priority of the runs: `low`, `normal` (default), `high` or
    /// `critical`.
    #[serde(default)]
    #[schema(value_type = crate::openapi::Priority)]
    priority: Priority,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchItemBody {
    /// The run's `input` (any JSON; `null` if absent).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    input: Option<Box<RawValue>>,
    /// A second enqueue with the same key (per tenant; in this batch or
    /// any request) answers the first run's id instead of another run.
    idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct BatchAccepted {
    /// One per item, in the items' order.
    runs: Vec<Accepted>,
}

/// Queues one run of the script's live version per item, in one
/// transaction: all of them or, on any refusal, none. The tenant's runs
/// per minute are taken for the whole batch (429 `rate_limited` with
/// `Retry-After` when they are used up); a kill switch covering the script
/// answers 423 `killed`.
#[utoipa::path(post, path = "/v1/scripts/{name}/run:batch", params(("name" = String, Path)), request_body = BatchBody,
    responses((status = 202, body = BatchAccepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn run_batch(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<BatchBody>,
) -> ApiResult<Response> {
    let batch = StartBatch {
        items: body
            .items
            .into_iter()
            .map(|item| BatchItem {
                input_json: json_text(item.input),
                idempotency_key: item.idempotency_key,
            })
            .collect(),
        timeout_ms: body.timeout_ms,
        priority: body.priority,
    };
    let runs = runs::start_batch(&state.app, &caller, &name, batch)
        .await?
        .into_iter()
        .map(|q| Accepted {
            run_id: q.run_id,
            duplicate: q.duplicate,
        })
        .collect();
    Ok((StatusCode::ACCEPTED, axum::Json(BatchAccepted { runs })).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    /// Only runs of this script.
    script: Option<String>,
    /// Only runs with this status.
    #[param(value_type = Option<crate::openapi::RunStatus>)]
    status: Option<String>,
    /// Only runs started this way.
    #[param(value_type = Option<crate::openapi::Trigger>)]
    trigger: Option<String>,
    /// Only runs created at or after this time (ms since the epoch).
    since: Option<i64>,
    /// Only runs created before this time (ms since the epoch).
    until: Option<i64>,
    /// Runs older than this run id (paging: the previous page's
    /// `X-Next-Cursor`).
    before: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
}

/// The tenant's runs, newest first, that the caller may read. A page holds
/// at most `limit` runs and about 4 MiB; when more may follow, the
/// `X-Next-Cursor` header is the `before` of the next page.
#[utoipa::path(get, path = "/v1/runs", params(RunsQuery),
    responses((status = 200, description = "A page of runs, newest first.", body = Vec<RunView>,
        headers(("X-Next-Cursor" = String, description = "Present when more may follow: the `before` of the next page."))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    Authed(caller): Authed,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    let filter = RunFilter {
        script: q.script,
        status: q.status,
        trigger: q.trigger,
        since: q.since,
        until: q.until,
        before: q.before,
        limit: q.limit,
    };
    let mut listing = runs::listing(&state.app, &caller, filter).await?;
    let limit = listing.limit;
    let mut page = Page::default();
    'fill: while !page.done(limit) {
        for listed in listing.next(&state.app, page.want(limit)).await? {
            match listed {
                Listed::Hidden(id) => page.skip(&id),
                Listed::Shown(run) => {
                    let id = run.id.clone();
                    if !page.push(&id, RunView::from(*run)) {
                        break 'fill;
                    }
                }
            }
        }
        if listing.ended() {
            break;
        }
    }
    Ok(page.into_response(limit))
}

/// One run; while it is in flight on this node, its current state.
#[utoipa::path(get, path = "/v1/runs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunView>> {
    Ok(axum::Json(
        runs::get(&state.app, &caller, &id).await?.into(),
    ))
}

/// Cancels a queued or running run and answers it once it has stopped.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_run(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunView>> {
    Ok(axum::Json(
        runs::cancel(&state.app, &caller, &id).await?.into(),
    ))
}

/// Where a client's event stream stopped, from the `id:` of the last event
/// it got (`Last-Event-ID`). An id names the run's progress when the event
/// was sent, `{status}.{log lines sent}`, or `end` for the final `run`
/// event, so a new stream can resume from it without replaying: each
/// stream observes the run's states afresh, so counting events would not.
enum Resume {
    Start,
    After { status: String, logs: usize },
    End,
}

/// The `id:` of an event sent with the run at `status` and `logs` lines
/// sent.
fn event_id(status: &str, logs: usize) -> String {
    format!("{status}.{logs}")
}

fn resume_point(headers: &axum::http::HeaderMap) -> ApiResult<Resume> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(Resume::Start);
    };
    let bad = || {
        ApiError::invalid(
            "`Last-Event-ID` must be the id of an event of this stream \
             (`{status}.{log lines}` or `end`)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(Resume::Start);
    }
    if text == "end" {
        return Ok(Resume::End);
    }
    let (status, logs) = text.rsplit_once('.').ok_or_else(bad)?;
    if !RUN_STATUSES.contains(&status) {
        return Err(bad());
    }
    let logs = logs.parse::<usize>().map_err(|_| bad())?;
    Ok(Resume::After {
        status: status.to_owned(),
        logs,
    })
}

/// Streams a run as Server-Sent Events: a `status` event whenever its
/// status changes (`{"status": "running"}`, …), one `log` event per log
/// line as the run delivers it, and a final `run` event with the whole run,
/// then the stream ends. Every event has an `id:`; a client reconnecting
/// with `Last-Event-ID` gets only the events after that one (204 when it
/// already had the final `run` event, which tells an `EventSource` to stop
/// reconnecting). A tenant has at most `[quotas] streams` open on a node
/// (429 `too_many_streams` past it).
#[utoipa::path(get, path = "/v1/runs/{id}/events",
    params(("id" = String, Path),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id:` of the last event received: the stream resumes after it.")),
    responses((status = 200, description = "The run's events as they happen.", content_type = "text/event-stream", body = String),
        (status = 204, description = "The client already had the final event."),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn run_events(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::stream::{self, StreamExt};

    let resume = resume_point(&headers)?;
    let (last_status, logs_sent) = match resume {
        Resume::Start => (None, 0),
        Resume::After { status, logs } => (Some(status), logs),
        Resume::End => {
            // Still only for a run the caller may read.
            runs::get(&state.app, &caller, &id).await?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    };
    let follower = runs::follow(&state.app, &caller, &id).await?;
    struct Cursor {
        follower: runs::RunFollower,
        last_status: Option<String>,
        /// Log lines sent so far (lines arrive while the run is in flight
        /// on this node, and all of them with its record).
        logs_sent: usize,
        pending: std::collections::VecDeque<Event>,
        done: bool,
    }
    let cursor = Cursor {
        follower,
        last_status,
        logs_sent,
        pending: Default::default(),
        done: false,
    };
    let events = stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), c));
            }
            if c.done {
                return None;
            }
            let Some(run) = c.follower.next().await else {
                c.done = true;
                continue;
            };
            if c.last_status.as_deref() != Some(run.status.as_str()) {
                c.last_status = Some(run.status.as_str().to_owned());
                c.pending.push_back(
                    Event::default()
                        .event("status")
                        .data(json!({ "status": run.status }).to_string())
                        .id(event_id(run.status.as_str(), c.logs_sent)),
                );
            }
            if let Ok(lines) = serde_json::from_str::<Vec<&RawValue>>(&run.logs) {
                for (n, line) in lines.iter().enumerate().skip(c.logs_sent) {
                    c.pending.push_back(
                        Event::default()
                            .event("log")
                            .data(line.get())
                            .id(event_id(run.status.as_str(), n + 1)),
                    );
                }
                c.logs_sent = c.logs_sent.max(lines.len());
            }
            if run.finished_at.is_some() {
                let whole = serde_json::to_string(&RunView::from(run)).unwrap_or_default();
                c.pending
                    .push_back(Event::default().event("run").data(whole).id("end"));
                c.done = true;
            }
        }
    });
    Ok(Sse::new(events.boxed())
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    /// `hour` (default: per minute) or `day` (per 15 minutes).
    window: Option<String>,
}

/// Finished runs in one time bucket.
#[derive(Serialize, ToSchema)]
struct BucketView {
    /// The bucket's start, ms since the epoch.
    start: i64,
    finished: i64,
    /// Finished any other way than `succeeded`.
    failed: i64,
}

/// One script's finished runs in the window.
#[derive(Serialize, ToSchema)]
struct ScriptStatsView {
    script: String,
    finished: i64,
    failed: i64,
    p50_duration_ms: Option<i64>,
    p99_duration_ms: Option<i64>,
    p50_cpu_ms: Option<i64>,
    p99_cpu_ms: Option<i64>,
}

/// The dashboard's figures.
#[derive(Serialize, ToSchema)]
struct StatsView {
    window: String,
    /// The window's start, ms since the epoch.
    since: i64,
    bucket_ms: i64,
    /// Oldest first; buckets without finished runs are absent.
    buckets: Vec<BucketView>,
    /// Busiest first.
    scripts: Vec<ScriptStatsView>,
    /// How many of the newest runs the per-script figures read.
    sampled: usize,
    /// True when the window holds more runs than were read.
    truncated: bool,
}

/// Runs per bucket, failures, and per-script p50/p99 duration and CPU
/// over the last hour or day, for the scripts the caller may read.
#[utoipa::path(get, path = "/v1/stats", params(StatsQuery),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn run_stats(
    State(state): State<AppState>,
    Authed(caller): Authed,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<StatsView>> {
    let Query(q) = query?;
    let window = runs::StatsWindow::parse(q.window.as_deref().unwrap_or("hour"))?;
    let s = runs::stats(&state.app, &caller, window).await?;
    Ok(axum::Json(StatsView {
        window: s.window.as_str().to_owned(),
        since: s.since,
        bucket_ms: s.bucket_ms,
        buckets: s
            .buckets
            .into_iter()
            .map(|b| BucketView {
                start: b.start,
                finished: b.finished,
                failed: b.failed,
            })
            .collect(),
        scripts: s
            .scripts
            .into_iter()
            .map(|x| ScriptStatsView {
                script: x.script,
                finished: x.finished,
                failed: x.failed,
                p50_duration_ms: x.p50_duration_ms,
                p99_duration_ms: x.p99_duration_ms,
                p50_cpu_ms: x.p50_cpu_ms,
                p99_cpu_ms: x.p99_cpu_ms,
            })
            .collect(),
        sampled: s.sampled,
        truncated: s.truncated,
    }))
}
