//! Cron schedules on scripts: create or replace, list (with the next fire
//! times), fetch, delete, and run now. The engine's scheduler fires them;
//! see `citadel_engine`'s `scheduler.rs` for how exactly one node fires each
//! occurrence and what happens to occurrences missed during downtime.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use citadel_engine::JobRequest;
use citadel_scripts::{CronSchedule, validate_name};
use citadel_store::{Schedule, new_id, now_ms};
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
        .routes(routes!(list_schedules))
        .routes(routes!(put_schedule, get_schedule, delete_schedule))
        .routes(routes!(run_schedule_now))
}

/// How many upcoming fire times a schedule shows.
const UPCOMING: usize = 5;

/// What a schedule does about occurrences missed while no node ran it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Missed {
    /// Drop them; the next occurrence runs as usual.
    #[default]
    Skip,
    /// One run for all of them (at the most recent one), then as usual.
    CatchUp,
}

impl Missed {
    fn as_str(self) -> &'static str {
        match self {
            Missed::Skip => "skip",
            Missed::CatchUp => "catch_up",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// The script to run (its live version at each fire time).
    script: String,
    /// `sec min hour day-of-month month day-of-week`, or the usual five
    /// fields (seconds 0); `MON`, `JAN`, `L`, `W`, `#`, `@daily` work.
    cron: String,
    /// An IANA time zone (`Europe/Berlin`); `UTC` by default.
    #[serde(default = "utc")]
    timezone: String,
    /// The runs' `input` (any JSON; `null` if absent).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    input: Option<Box<RawValue>>,
    /// After downtime: `skip` (default) or `catch_up`.
    #[serde(default)]
    missed: Missed,
    /// A disabled schedule keeps its settings and fires nothing.
    #[serde(default = "yes")]
    enabled: bool,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn yes() -> bool {
    true
}

/// One upcoming occurrence.
#[derive(Serialize, ToSchema)]
struct FireTime {
    /// Unix milliseconds.
    at: i64,
    /// RFC 3339, with the offset of the schedule's time zone.
    time: String,
}

/// A cron schedule on a script.
#[derive(Serialize, ToSchema)]
struct ScheduleView {
    name: String,
    script: String,
    cron: String,
    timezone: String,
    #[schema(value_type = serde_json::Value)]
    input: Box<RawValue>,
    /// `skip` or `catch_up`.
    missed: String,
    enabled: bool,
    /// The next occurrence the scheduler will fire (Unix ms); absent when
    /// disabled or when the expression has no more occurrences.
    next_fire_at: Option<i64>,
    /// The occurrences after now (up to 5; none while disabled).
    next_fire_times: Vec<FireTime>,
    /// The occurrence most recently fired.
    last_fired_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("`null` is JSON"))
}

impl ScheduleView {
    fn new(s: Schedule, now: i64) -> Self {
        let next_fire_times = match (s.enabled, CronSchedule::parse(&s.cron, &s.timezone)) {
            (true, Ok(cron)) => cron
                .upcoming(now, UPCOMING)
                .into_iter()
                .map(|at| FireTime {
                    at,
                    time: cron.rfc3339(at),
                })
                .collect(),
            _ => Vec::new(),
        };
        ScheduleView {
            input: raw(&s.input),
            next_fire_at: (s.enabled && s.next_fire_at != i64::MAX).then_some(s.next_fire_at),
            next_fire_times,
            name: s.name,
            script: s.script_name,
            cron: s.cron,
            timezone: s.timezone,
            missed: s.missed,
            enabled: s.enabled,
            last_fired_at: s.last_fired_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Checks a schedule name (the same rules as script names).
fn checked_schedule_name(name: &str) -> ApiResult<()> {
    validate_name(name)
        .map_err(|e| ApiError::invalid(format!("invalid schedule name `{}`: {}", e.name, e.reason)))
}

/// The caller's tenant and one of its schedules, once the caller holds
/// `permission` on the schedule's script.
async fn schedule_with(
    state: &AppState,
    auth: &Authed,
    permission: &str,
    name: &str,
) -> ApiResult<(String, Schedule)> {
    checked_schedule_name(name)?;
    let tenant = auth.tenant(state).await?;
    let Some(schedule) = state.store.schedule(&tenant, name).await? else {
        return Err(ApiError::not_found(format!("schedule `{name}` not found")));
    };
    auth.require(state, permission, Some(&schedule.script_name))
        .await?;
    Ok((tenant, schedule))
}

/// Creates or replaces a schedule (201 when created, 200 when replaced).
/// Needs `script.run` on the script (and on the script a replaced schedule
/// ran). A malformed cron expression or an unknown time zone is 400
/// `invalid` with the reason.
#[utoipa::path(put, path = "/v1/schedules/{name}", params(("name" = String, Path)), request_body = ScheduleBody,
    responses((status = 200, body = ScheduleView), (status = 201, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_schedule(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<(StatusCode, axum::Json<ScheduleView>)> {
    checked_schedule_name(&name)?;
    checked_name(&body.script)?;
    let cron = CronSchedule::parse(&body.cron, &body.timezone).map_err(ApiError::invalid)?;
    let tenant = auth
        .tenant_with(&state, "script.run", Some(&body.script))
        .await?;
    if let Some(old) = state.store.schedule(&tenant, &name).await?
        && old.script_name != body.script
    {
        auth.require(&state, "script.run", Some(&old.script_name))
            .await?;
    }
    if state.store.script(&tenant, &body.script).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "script `{}` not found",
            body.script
        )));
    }
    let now = now_ms();
    let new = Schedule {
        id: new_id("sch"),
        tenant_id: tenant.clone(),
        name: name.clone(),
        script_name: body.script,
        cron: cron.expression().to_owned(),
        timezone: cron.timezone().to_owned(),
        input: body
            .input
            .map_or_else(|| "null".to_owned(), |r| r.get().to_owned()),
        missed: body.missed.as_str().to_owned(),
        enabled: body.enabled,
        // Occurrences from now on; a replaced schedule starts afresh.
        next_fire_at: cron.next_after(now).unwrap_or(i64::MAX),
        last_fired_at: None,
        created_at: now,
        updated_at: now,
    };
    let stored = state.store.put_schedule(&new).await?;
    let created = stored.id == new.id;
    auth.record_change(
        &state,
        &tenant,
        "schedule.put",
        &name,
        json!({
            "script": stored.script_name,
            "cron": stored.cron,
            "timezone": stored.timezone,
            "missed": stored.missed,
            "enabled": stored.enabled,
            "created": created,
        }),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(ScheduleView::new(stored, now))))
}

/// The tenant's schedules on scripts the caller may read, by name.
#[utoipa::path(get, path = "/v1/schedules", responses((status = 200, body = Vec<ScheduleView>), (status = 403, body = ErrorBody)))]
async fn list_schedules(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<ScheduleView>>> {
    let tenant = auth.tenant(&state).await?;
    auth.require_somewhere(&state, "script.read").await?;
    let now = now_ms();
    let all = state.store.list_schedules(&tenant).await?;
    Ok(axum::Json(
        all.into_iter()
            .filter(|s| auth.principal.allows("script.read", Some(&s.script_name)))
            .map(|s| ScheduleView::new(s, now))
            .collect(),
    ))
}

/// One schedule, with its next fire times.
#[utoipa::path(get, path = "/v1/schedules/{name}", params(("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_schedule(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScheduleView>> {
    let (_, schedule) = schedule_with(&state, &auth, "script.read", &name).await?;
    Ok(axum::Json(ScheduleView::new(schedule, now_ms())))
}

/// Deletes a schedule (needs `script.run` on its script).
#[utoipa::path(delete, path = "/v1/schedules/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_schedule(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let (tenant, schedule) = schedule_with(&state, &auth, "script.run", &name).await?;
    if !state.store.delete_schedule(&tenant, &name).await? {
        return Err(ApiError::not_found(format!("schedule `{name}` not found")));
    }
    auth.record_change(
        &state,
        &tenant,
        "schedule.delete",
        &name,
        json!({ "script": schedule.script_name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct RunNowAccepted {
    run_id: String,
}

/// Enqueues a run of the schedule's script now, with the schedule's input
/// (trigger `manual`); the schedule itself is unchanged. 202 with the run's
/// id; 409 `no_live_version`, 423 `killed`.
#[utoipa::path(post, path = "/v1/schedules/{name}/run-now", params(("name" = String, Path)),
    responses((status = 202, body = RunNowAccepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn run_schedule_now(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let engine = state.engine()?;
    let (tenant, schedule) = schedule_with(&state, &auth, "script.run", &name).await?;
    let script = &schedule.script_name;
    let Some(live) = engine.live(&tenant, script).await? else {
        return Err(match state.store.script(&tenant, script).await? {
            Some(_) => ApiError::new(
                StatusCode::CONFLICT,
                "no_live_version",
                format!("`{script}` has no live version yet (approve one first)"),
            ),
            None => ApiError::not_found(format!("script `{script}` not found")),
        });
    };
    let spec = citadel_engine::RunSpec {
        tenant_id: tenant.clone(),
        live,
        input_json: schedule.input.clone(),
        trigger: "manual".to_owned(),
        principal: Some(auth.principal.actor().to_owned()),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let (run_id, _) = engine
        .enqueue_run(spec, JobRequest::default())
        .await
        .map_err(|e| crate::runs::refusal(e, script))?;
    auth.record_change(
        &state,
        &tenant,
        "schedule.run_now",
        &name,
        json!({ "script": script, "run_id": run_id }),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(RunNowAccepted { run_id })).into_response())
}
