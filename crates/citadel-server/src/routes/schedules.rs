//! `/v1/schedules`: cron schedules on scripts — create or replace, list
//! (with the next fire times), fetch, delete, and run now.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use citadel_app::schedules::{self, ScheduleSpec};
use citadel_domain::Missed;
use citadel_scripts::CronSchedule;
use citadel_store::{Schedule, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::routes::{json_text, raw};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_schedules))
        .routes(routes!(put_schedule, get_schedule, delete_schedule))
        .routes(routes!(run_schedule_now))
}

/// How many upcoming fire times a schedule shows.
const UPCOMING: usize = 5;

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
    #[schema(value_type = crate::openapi::Missed)]
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
            input: raw(s.input.clone()),
            next_fire_at: (s.enabled && s.next_fire_at != i64::MAX).then_some(s.next_fire_at),
            next_fire_times,
            name: s.name,
            script: s.script_name,
            cron: s.cron,
            timezone: s.timezone,
            missed: s.missed.as_str().to_owned(),
            enabled: s.enabled,
            last_fired_at: s.last_fired_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
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
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<(StatusCode, axum::Json<ScheduleView>)> {
    let spec = ScheduleSpec {
        script: body.script,
        cron: body.cron,
        timezone: body.timezone,
        input_json: json_text(body.input),
        missed: body.missed,
        enabled: body.enabled,
    };
    let (stored, created) = schedules::put(&state.app, &caller, &name, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(ScheduleView::new(stored, now_ms()))))
}

/// The tenant's schedules on scripts the caller may read, by name.
#[utoipa::path(get, path = "/v1/schedules", responses((status = 200, body = Vec<ScheduleView>), (status = 403, body = ErrorBody)))]
async fn list_schedules(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<ScheduleView>>> {
    let all = schedules::list(&state.app, &caller).await?;
    let now = now_ms();
    Ok(axum::Json(
        all.into_iter().map(|s| ScheduleView::new(s, now)).collect(),
    ))
}

/// One schedule, with its next fire times.
#[utoipa::path(get, path = "/v1/schedules/{name}", params(("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_schedule(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScheduleView>> {
    let schedule = schedules::get(&state.app, &caller, &name).await?;
    Ok(axum::Json(ScheduleView::new(schedule, now_ms())))
}

/// Deletes a schedule (needs `script.run` on its script).
#[utoipa::path(delete, path = "/v1/schedules/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_schedule(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    schedules::delete(&state.app, &caller, &name).await?;
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
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let run_id = schedules::run_now(&state.app, &caller, &name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(RunNowAccepted { run_id })).into_response())
}
