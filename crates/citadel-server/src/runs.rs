//! Runs: start one (synchronously or in the background), list, fetch,
//! cancel.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use citadel_engine::{CancelOutcome, EngineError, JobRequest, Priority, RUN_STATUSES, RunSpec};
use citadel_store::{Run, RunQuery};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::scripts::checked_name;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_script))
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

fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("`null` is JSON"))
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        RunView {
            id: r.id,
            script: r.script_name,
            version: r.version,
            status: r.status,
            trigger: r.trigger,
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

/// Whole seconds to wait, at least one.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
struct Accepted {
    run_id: String,
    /// True when an earlier request with the same idempotency key enqueued
    /// this run.
    duplicate: bool,
}

/// Runs the script's live version. With `wait: true` (the default) answers
/// the finished run; with `wait: false`, 202 and the run's id. A kill switch
/// covering the script answers 423 `killed`.
#[utoipa::path(post, path = "/v1/scripts/{name}/run", params(("name" = String, Path)), request_body = RunBody,
    responses((status = 200, body = RunView), (status = 202, body = Accepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn run_script(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<Response> {
    checked_name(&name)?;
    let engine = state.engine()?;
    let tenant = auth.tenant_with(&state, "script.run", Some(&name)).await?;
    let max = engine.platform().max.timeout_ms;
    if let Some(t) = body.timeout_ms
        && (t == 0 || t > max)
    {
        return Err(ApiError::invalid(format!(
            "timeout_ms must be between 1 and the platform maximum {max} (got {t})"
        )));
    }
    let Some(live) = engine.live(&tenant, &name).await? else {
        return Err(match state.store.script(&tenant, &name).await? {
            Some(_) => ApiError::new(
                StatusCode::CONFLICT,
                "no_live_version",
                format!("`{name}` has no live version yet (approve one first)"),
            ),
            None => ApiError::not_found(format!("script `{name}` not found")),
        });
    };
    let spec = RunSpec {
        tenant_id: tenant,
        live,
        input_json: body
            .input
            .map_or_else(|| "null".to_owned(), |r| r.get().to_owned()),
        trigger: if body.wait { "api" } else { "api_async" }.to_owned(),
        principal: Some(auth.principal.actor().to_owned()),
        timeout_ms: body.timeout_ms,
        run_id: None,
        created_at: None,
    };
    if let Some(key) = &body.idempotency_key
        && (key.is_empty() || key.len() > 200)
    {
        return Err(ApiError::invalid("idempotency_key must be 1–200 bytes"));
    }
    let refused = |e: EngineError| refusal(e, &name);
    if body.wait {
        let run = engine.run_sync(spec).await.map_err(refused)?;
        Ok(axum::Json(RunView::from(run)).into_response())
    } else {
        let request = JobRequest {
            priority: body.priority,
            idempotency_key: body.idempotency_key,
            ..JobRequest::default()
        };
        let (run_id, created) = engine.enqueue_run(spec, request).await.map_err(refused)?;
        Ok((
            StatusCode::ACCEPTED,
            axum::Json(Accepted {
                run_id,
                duplicate: !created,
            }),
        )
            .into_response())
    }
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
    /// Runs older than this run id (paging: the previous page's
    /// `X-Next-Cursor`).
    before: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
}

/// Bytes of JSON one listing page holds at most (besides its first item):
/// runs can be large (results, logs), and a page of a thousand of them
/// must not cost the server gigabytes.
pub(crate) const PAGE_BUDGET_BYTES: usize = 4 << 20;

/// Rows read per query while a page fills, so a page cut by its byte budget
/// has not loaded many more rows than it answers. Fixed, not grown from the
/// sizes seen so far: small rows say nothing of the next ones, and a run
/// record may hold about 2 MiB within its caps.
pub(crate) const PAGE_CHUNK: i64 = 25;

/// Items of a listing page, already encoded, and the cursor to the next
/// page when the page stopped before the end of the listing.
#[derive(Default)]
pub(crate) struct Page {
    items: Vec<Box<RawValue>>,
    bytes: usize,
    /// The last item read (kept or not).
    last: Option<String>,
    scanned: i64,
    next: Option<String>,
}

impl Page {
    /// Adds an item unless the page is full by size: then `false`, and the
    /// cursor points after the last item kept.
    pub(crate) fn push(&mut self, id: &str, item: impl Serialize) -> bool {
        let item =
            serde_json::value::to_raw_value(&item).unwrap_or_else(|_| raw("null".to_owned()));
        if !self.items.is_empty() && self.bytes + item.get().len() > PAGE_BUDGET_BYTES {
            self.next = self.last.clone();
            return false;
        }
        self.bytes += item.get().len();
        self.items.push(item);
        self.skip(id);
        true
    }

    /// Counts an item read but not shown (the caller may not read it).
    pub(crate) fn skip(&mut self, id: &str) {
        self.last = Some(id.to_owned());
        self.scanned += 1;
    }

    /// The answer: a JSON array, with `X-Next-Cursor` (pass it as
    /// `before`) when there may be more.
    pub(crate) fn into_response(self, limit: i64) -> Response {
        let next = self
            .next
            .or_else(|| (self.scanned >= limit).then_some(self.last).flatten());
        let mut res = axum::Json(self.items).into_response();
        if let Some(next) = next
            && let Ok(value) = axum::http::HeaderValue::from_str(&next)
        {
            res.headers_mut().insert("x-next-cursor", value);
        }
        res
    }

    /// Whether the page is done (cut by size, or `limit` items read).
    pub(crate) fn done(&self, limit: i64) -> bool {
        self.next.is_some() || self.scanned >= limit
    }

    /// Rows to read next.
    pub(crate) fn want(&self, limit: i64) -> i64 {
        (limit - self.scanned).clamp(1, PAGE_CHUNK)
    }
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
    auth: Authed,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query?;
    if let Some(s) = &q.status
        && !RUN_STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid(format!(
            "unknown status `{s}` (one of {})",
            RUN_STATUSES.join(", ")
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1..=1000"));
    }
    let tenant = match &q.script {
        Some(name) => {
            checked_name(name)?;
            auth.tenant_with(&state, "script.read", Some(name)).await?
        }
        None => {
            let tenant = auth.tenant(&state).await?;
            auth.require_somewhere(&state, "script.read").await?;
            tenant
        }
    };
    let mut page = Page::default();
    let mut query = RunQuery {
        tenant_id: tenant,
        script_name: q.script,
        status: q.status,
        before: q.before,
        limit: 0,
    };
    'fill: while !page.done(limit) {
        query.limit = page.want(limit);
        let runs = state.store.list_runs(&query).await?;
        let end = (runs.len() as i64) < query.limit;
        for r in runs {
            query.before = Some(r.id.clone());
            if !auth.principal.allows("script.read", Some(&r.script_name)) {
                page.skip(&r.id);
            } else if !page.push(&r.id.clone(), RunView::from(r)) {
                break 'fill;
            }
        }
        if end {
            break;
        }
    }
    Ok(page.into_response(limit))
}

/// The caller's tenant and one of its runs (in flight here, or recorded),
/// once the caller holds `permission` on the run's script.
async fn run_with(
    state: &AppState,
    auth: &Authed,
    permission: &str,
    id: &str,
) -> ApiResult<(String, Run)> {
    let tenant = auth.tenant(state).await?;
    let engine = state.engine()?;
    let run = engine.find_run(&tenant, id).await?;
    let run = run.ok_or_else(|| ApiError::not_found(format!("run `{id}` not found")))?;
    auth.require(state, permission, Some(&run.script_name))
        .await?;
    Ok((tenant, run))
}

/// One run; while it is in flight on this node, its current state.
#[utoipa::path(get, path = "/v1/runs/{id}", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
async fn get_run(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunView>> {
    let (_, run) = run_with(&state, &auth, "script.read", &id).await?;
    Ok(axum::Json(run.into()))
}

/// Cancels a queued or running run and answers it once it has stopped.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_run(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunView>> {
    let (tenant, run) = run_with(&state, &auth, "script.run", &id).await?;
    let engine = state.engine()?;
    let answer = match engine.cancel_anywhere(&tenant, &id).await? {
        CancelOutcome::AlreadyFinished(status) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_finished",
                format!("run `{id}` already finished ({status})"),
            ));
        }
        CancelOutcome::NotFound => {
            return Err(ApiError::not_found(format!("run `{id}` not found")));
        }
        CancelOutcome::Local(mut done) => {
            // The isolate stops at its next interrupt check; a hung host is
            // killed by the pool's watchdog. Either way the run is recorded
            // shortly.
            let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
            None
        }
        CancelOutcome::Dequeued(run) => Some(*run),
        CancelOutcome::Requested => {
            // Its node sees the request at its next heartbeat.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(r) = state.store.run(&tenant, &id).await?
                    && r.finished_at.is_some()
                {
                    break Some(r);
                }
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    auth.record_change(
        &state,
        &tenant,
        "run.cancel",
        &id,
        json!({ "script": run.script_name }),
    )
    .await?;
    let run = match answer {
        Some(r) => r,
        None => run_with(&state, &auth, "script.run", &id).await?.1,
    };
    Ok(axum::Json(run.into()))
}

/// How often a run's event stream reads a run that is not in flight on
/// this node (queued, or running on another node). Runs in flight here are
/// pushed by the engine as they change.
const REMOTE_POLL: Duration = Duration::from_millis(500);

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
    auth: Authed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::stream::{self, StreamExt};

    let resume = resume_point(&headers)?;
    let (tenant, first) = run_with(&state, &auth, "script.read", &id).await?;
    let (last_status, logs_sent) = match resume {
        Resume::Start => (None, 0),
        Resume::After { status, logs } => (Some(status), logs),
        Resume::End => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let engine = state.engine()?.clone();
    let Some(slot) = engine.watch_slot(&tenant) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "the tenant has as many run event streams open as it may; close one first",
        )
        .with_retry_after(1));
    };
    struct Cursor {
        engine: citadel_engine::Engine,
        tenant: String,
        id: String,
        last_status: Option<String>,
        /// Log lines sent so far (lines arrive while the run is in flight
        /// on this node, and all of them with its record).
        logs_sent: usize,
        pending: std::collections::VecDeque<Event>,
        done: bool,
        first: Option<Run>,
        /// Changes of the run while it is in flight here.
        changes: Option<tokio::sync::watch::Receiver<u64>>,
        admissions: tokio::sync::watch::Receiver<u64>,
        _slot: citadel_engine::WatchSlot,
    }
    let mut admissions = engine.watch_admissions();
    admissions.mark_unchanged();
    // Subscribed first, then read again: a change between the first read
    // and the subscription (a log line, the start) is not missed.
    let changes = engine.watch_run(&tenant, &id);
    let first = match changes {
        Some(_) => engine.in_flight_run(&tenant, &id).unwrap_or(first),
        None => first,
    };
    let cursor = Cursor {
        changes,
        engine,
        tenant,
        id,
        last_status,
        logs_sent,
        pending: Default::default(),
        done: false,
        first: Some(first),
        admissions,
        _slot: slot,
    };
    let events = stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), c));
            }
            if c.done {
                return None;
            }
            let run = match c.first.take() {
                Some(r) => Some(r),
                None => {
                    next_state(
                        &c.engine,
                        &c.tenant,
                        &c.id,
                        &mut c.changes,
                        &mut c.admissions,
                    )
                    .await
                }
            };
            let Some(run) = run else {
                c.done = true;
                continue;
            };
            if c.last_status.as_deref() != Some(run.status.as_str()) {
                c.last_status = Some(run.status.clone());
                c.pending.push_back(
                    Event::default()
                        .event("status")
                        .data(json!({ "status": run.status }).to_string())
                        .id(event_id(&run.status, c.logs_sent)),
                );
            }
            if let Ok(lines) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(&run.logs)
            {
                for (n, line) in lines.iter().enumerate().skip(c.logs_sent) {
                    c.pending.push_back(
                        Event::default()
                            .event("log")
                            .data(line.get())
                            .id(event_id(&run.status, n + 1)),
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

/// Waits for the run's next state: pushed by the engine while the run is in
/// flight on this node; else read from the database after `REMOTE_POLL`,
/// or at once when a run is admitted here (it may be this one).
async fn next_state(
    engine: &citadel_engine::Engine,
    tenant: &str,
    id: &str,
    changes: &mut Option<tokio::sync::watch::Receiver<u64>>,
    admissions: &mut tokio::sync::watch::Receiver<u64>,
) -> Option<Run> {
    // Admissions of other runs wake the wait without pushing the read back.
    let poll_at = tokio::time::Instant::now() + REMOTE_POLL;
    loop {
        if let Some(rx) = changes {
            // An error means the run left the registry: read its record.
            let _ = rx.changed().await;
            if let Some(run) = engine.in_flight_run(tenant, id) {
                return Some(run);
            }
            *changes = None;
        } else {
            tokio::select! {
                () = tokio::time::sleep_until(poll_at) => {}
                _ = admissions.changed() => {
                    match engine.watch_run(tenant, id) {
                        Some(rx) => {
                            *changes = Some(rx);
                            if let Some(run) = engine.in_flight_run(tenant, id) {
                                return Some(run);
                            }
                        }
                        None => continue,
                    }
                }
            }
        }
        // Subscribed before the read, so no change after it is missed.
        *changes = engine.watch_run(tenant, id);
        engine
            .counters
            .stream_polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return engine.find_run(tenant, id).await.ok().flatten();
    }
}

/// The answer to a run the engine refused.
pub(crate) fn refusal(e: EngineError, script: &str) -> ApiError {
    match e {
        EngineError::Killed(switch) => ApiError::new(
            StatusCode::LOCKED,
            "killed",
            format!(
                "runs of `{script}` are stopped by the {} kill switch: {}",
                switch.scope, switch.reason
            ),
        )
        .with_details(
            json!({ "scope": switch.scope, "target": switch.target, "reason": switch.reason }),
        ),
        EngineError::RateLimited(wait) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "the tenant's runs per minute are used up; retry in {} s",
                retry_secs(wait)
            ),
        )
        .with_retry_after(retry_secs(wait)),
        EngineError::Busy { what, limit } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "concurrency_limit",
            format!("the {what} has {limit} runs in flight, its limit"),
        )
        .with_retry_after(1),
        EngineError::Store(e) => e.into(),
        EngineError::Unavailable(e) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e).with_retry_after(5)
        }
        EngineError::TooDeep(_) => ApiError::internal("an API run has no event depth"),
    }
}
