//! Cron schedules on scripts: create or replace, list, fetch, delete, and
//! run now. The engine's scheduler fires them; see `citadel_engine`'s
//! `scheduler.rs` for how exactly one node fires each occurrence and what
//! happens to occurrences missed during downtime.

use citadel_domain::{Missed, Trigger};
use citadel_engine::{JobRequest, RunSpec};
use citadel_scripts::{CronSchedule, validate_name};
use citadel_store::{Schedule, new_id, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::runs::{live_or_refuse, refusal};
use crate::{App, AppError, AppResult, Caller, checked_name};

/// A schedule to create or replace.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The script to run (its live version at each fire time).
    pub script: String,
    pub cron: String,
    /// An IANA time zone.
    pub timezone: String,
    /// The runs' `input` as JSON text.
    pub input_json: String,
    pub missed: Missed,
    pub enabled: bool,
}

/// Checks a schedule name (the same rules as script names).
fn checked_schedule_name(name: &str) -> AppResult<()> {
    validate_name(name)
        .map_err(|e| AppError::invalid(format!("invalid schedule name `{}`: {}", e.name, e.reason)))
}

/// The caller's tenant and one of its schedules, once the caller holds
/// `permission` on the schedule's script.
async fn schedule_with(
    app: &App,
    caller: &Caller,
    permission: Permission,
    name: &str,
) -> AppResult<(String, Schedule)> {
    checked_schedule_name(name)?;
    let tenant = caller.tenant(app).await?;
    let Some(schedule) = app.store.schedule(&tenant, name).await? else {
        return Err(AppError::not_found(format!("schedule `{name}` not found")));
    };
    caller
        .require(app, permission, Some(&schedule.script_name))
        .await?;
    Ok((tenant, schedule))
}

/// Creates or replaces a schedule; true when created. Needs `script.run`
/// on the script (and on the script a replaced schedule ran). A malformed
/// cron expression or an unknown time zone is `invalid` with the reason.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    spec: ScheduleSpec,
) -> AppResult<(Schedule, bool)> {
    checked_schedule_name(name)?;
    checked_name(&spec.script)?;
    // A plugin's jobs are scheduled by the plugin.
    crate::scripts::refuse_reserved(name)?;
    crate::scripts::refuse_reserved(&spec.script)?;
    let cron = CronSchedule::parse(&spec.cron, &spec.timezone).map_err(AppError::invalid)?;
    let tenant = caller
        .tenant_with(app, Permission::ScriptRun, Some(&spec.script))
        .await?;
    if let Some(old) = app.store.schedule(&tenant, name).await?
        && old.script_name != spec.script
    {
        caller
            .require(app, Permission::ScriptRun, Some(&old.script_name))
            .await?;
    }
    if app.store.script(&tenant, &spec.script).await?.is_none() {
        return Err(AppError::not_found(format!(
            "script `{}` not found",
            spec.script
        )));
    }
    let now = now_ms();
    let new = Schedule {
        id: new_id("sch"),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        script_name: spec.script,
        cron: cron.expression().to_owned(),
        timezone: cron.timezone().to_owned(),
        input: spec.input_json,
        missed: spec.missed,
        enabled: spec.enabled,
        // Occurrences from now on; a replaced schedule starts afresh.
        next_fire_at: cron.next_after(now).unwrap_or(i64::MAX),
        last_fired_at: None,
        created_at: now,
        updated_at: now,
    };
    let stored = app.store.put_schedule(&new).await?;
    let created = stored.id == new.id;
    caller
        .record_change(
            app,
            &tenant,
            "schedule.put",
            name,
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
    Ok((stored, created))
}

/// The tenant's schedules on scripts the caller may read, by name.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<Schedule>> {
    let tenant = caller.tenant(app).await?;
    caller
        .require_somewhere(app, Permission::ScriptRead)
        .await?;
    let all = app.store.list_schedules(&tenant).await?;
    Ok(all
        .into_iter()
        .filter(|s| {
            caller
                .principal
                .allows(Permission::ScriptRead, Some(&s.script_name))
        })
        .collect())
}

/// One schedule.
pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<Schedule> {
    Ok(schedule_with(app, caller, Permission::ScriptRead, name)
        .await?
        .1)
}

/// Deletes a schedule (needs `script.run` on its script).
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    crate::scripts::refuse_reserved(name)?;
    let (tenant, schedule) = schedule_with(app, caller, Permission::ScriptRun, name).await?;
    if !app.store.delete_schedule(&tenant, name).await? {
        return Err(AppError::not_found(format!("schedule `{name}` not found")));
    }
    caller
        .record_change(
            app,
            &tenant,
            "schedule.delete",
            name,
            json!({ "script": schedule.script_name }),
        )
        .await
}

/// Enqueues a run of the schedule's script now, with the schedule's input
/// (trigger `manual`); the schedule itself is unchanged. Answers the run's
/// id.
pub async fn run_now(app: &App, caller: &Caller, name: &str) -> AppResult<String> {
    let engine = app.engine()?;
    let (tenant, schedule) = schedule_with(app, caller, Permission::ScriptRun, name).await?;
    let script = &schedule.script_name;
    let live = live_or_refuse(app, engine, &tenant, script).await?;
    let spec = RunSpec {
        tenant_id: tenant.clone(),
        live,
        input_json: schedule.input.clone(),
        trigger: Trigger::Manual,
        principal: Some(caller.principal.actor().to_owned()),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let (run_id, _) = engine
        .enqueue_run(spec, JobRequest::default())
        .await
        .map_err(|e| refusal(e, script))?;
    caller
        .record_change(
            app,
            &tenant,
            "schedule.run_now",
            name,
            json!({ "script": script, "run_id": run_id }),
        )
        .await?;
    Ok(run_id)
}
