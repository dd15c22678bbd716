//! Workflows: versions saved, reviewed, diffed and rolled back exactly as
//! scripts are (they share the tenant's catalog and its rules; a name
//! keeps the kind of its first version), durable runs started on the
//! queue, their step timeline, and decisions on approval steps.
//!
//! The script permissions govern workflows too: `script.read`,
//! `script.write`, `script.run` and `script.approve` (which also decides
//! approval steps), folder scopes included.

use citadel_analyzer::{Diagnostic, Language, Severity};
use citadel_domain::{ScriptKind, Trigger};
use citadel_engine::{Engine, JobRequest, Priority, RunSpec};
use citadel_scripts::{Bump, CapabilitySpec, LimitOverrides, ReviewAction, TenantSettings};
use citadel_store::{Script, ScriptVersion, WorkflowStep};
/// A workflow step's type, as a run's graph names it.
pub use citadel_workflow::StepType;
use citadel_workflow::{Action, Plan, Profile, ScriptSource, Workflow};
use serde_json::{Value, json};

use crate::access::Permission;
use crate::scripts::{
    self, MAX_CHANGE_NOTE, SaveScript, Saved, ScriptSummary, VersionDiff, VersionOf,
};
use crate::{App, AppError, AppResult, Caller, checked_name};

/// A workflow version to save.
#[derive(Debug, Clone)]
pub struct SaveWorkflow {
    /// A path such as `ops/deploy`.
    pub name: String,
    /// The workflow's YAML.
    pub source: String,
    pub change_note: String,
    pub bump: Bump,
}

/// Saves a new immutable version of a workflow. A definition with any
/// problem (each located in the YAML) is `rejected`, as is inline script
/// code the tenant's policy blocks; the rest is a script's save: review,
/// audit, identical content answering the existing version.
pub async fn save(app: &App, caller: &Caller, body: SaveWorkflow) -> AppResult<Saved> {
    if body.change_note.len() > MAX_CHANGE_NOTE {
        return Err(AppError::invalid(format!(
            "change_note is longer than {MAX_CHANGE_NOTE} bytes"
        )));
    }
    // The secrets a workflow declares are its version's grant: reviewed
    // with it, and only saved by someone who may use them. (A definition
    // that does not validate is refused with its diagnostics below.)
    let secrets = citadel_workflow::validate(&body.source, Profile::Elevated)
        .map(|w| w.secrets)
        .unwrap_or_default();
    scripts::save_entry(
        app,
        caller,
        SaveScript {
            name: body.name,
            source: body.source,
            language: Language::Workflow,
            capabilities: CapabilitySpec {
                secrets,
                ..CapabilitySpec::default()
            },
            limits: LimitOverrides::default(),
            change_note: body.change_note,
            bump: body.bump,
        },
    )
    .await
}

/// What checking a workflow's definition found, as the analyzer's
/// diagnostics (rule: the workflow's stable code), under the tenant's
/// highest profile; inline script code is analysed under its policy.
pub(crate) fn diagnostics(
    engine: &Engine,
    settings: &TenantSettings,
    source: &str,
) -> Vec<Diagnostic> {
    let profile = engine.workflow_profile(settings);
    let workflow = match citadel_workflow::validate(source, profile) {
        Ok(w) => w,
        Err(found) => {
            return found
                .into_iter()
                .map(|d| Diagnostic {
                    rule: d.code.to_owned(),
                    severity: Severity::Error,
                    message: match d.help {
                        Some(help) => format!("{} ({help})", d.message),
                        None => d.message,
                    },
                    line: d.line as u32,
                    column: d.column as u32,
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    for step in &workflow.steps {
        let mut action = &step.action;
        // A `foreach` body is the step's code too.
        while let Action::Foreach { action: inner, .. } = action {
            action = inner;
        }
        if let Action::Script {
            source: ScriptSource::Inline(code),
            ..
        } = action
        {
            for d in settings
                .policy
                .apply(&engine.analyze(code, Language::Js))
                .iter()
            {
                out.push(Diagnostic {
                    message: format!(
                        "step `{}`, code {}:{}: {}",
                        step.id, d.line, d.column, d.message
                    ),
                    line: step.pos.line as u32,
                    column: step.pos.column as u32,
                    ..d.clone()
                });
            }
        }
    }
    out
}

/// The caller's tenant's entry `name`, which must be a workflow.
async fn workflow_named(app: &App, caller: &Caller, name: &str) -> AppResult<Script> {
    checked_name(name)?;
    let tenant = caller.tenant(app).await?;
    match app.store.script(&tenant, name).await? {
        Some(s) if s.kind == ScriptKind::Workflow => Ok(s),
        _ => Err(AppError::not_found(format!("workflow `{name}` not found"))),
    }
}

/// The workflows the caller may read, by name.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<ScriptSummary>> {
    scripts::list_kind(app, caller, ScriptKind::Workflow).await
}

/// A workflow and its live version.
pub async fn get(
    app: &App,
    caller: &Caller,
    name: &str,
) -> AppResult<(Script, Option<ScriptVersion>)> {
    workflow_named(app, caller, name).await?;
    scripts::get(app, caller, name).await
}

/// Every version of a workflow, oldest first.
pub async fn versions(app: &App, caller: &Caller, name: &str) -> AppResult<Vec<VersionOf>> {
    workflow_named(app, caller, name).await?;
    scripts::versions(app, caller, name).await
}

/// One version of a workflow.
pub async fn version(app: &App, caller: &Caller, name: &str, v: &str) -> AppResult<VersionOf> {
    workflow_named(app, caller, name).await?;
    scripts::version(app, caller, name, v).await
}

/// The unified diff between two versions of a workflow.
pub async fn diff(
    app: &App,
    caller: &Caller,
    name: &str,
    from: &str,
    to: &str,
) -> AppResult<VersionDiff> {
    workflow_named(app, caller, name).await?;
    scripts::diff(app, caller, name, from, to).await
}

/// Submits, approves or rejects a workflow version (the no-self-review
/// rule holds as for scripts).
pub async fn review(
    app: &App,
    caller: &Caller,
    name: &str,
    version: &str,
    action: ReviewAction,
    reason: Option<&str>,
) -> AppResult<VersionOf> {
    workflow_named(app, caller, name).await?;
    scripts::review(app, caller, name, version, action, reason).await
}

/// Makes an earlier approved version of a workflow live again.
pub async fn rollback(
    app: &App,
    caller: &Caller,
    name: &str,
    version: &str,
) -> AppResult<VersionOf> {
    workflow_named(app, caller, name).await?;
    scripts::rollback(app, caller, name, version).await
}

/// A workflow run to start.
#[derive(Debug, Clone, Default)]
pub struct StartWorkflow {
    /// The inputs, a JSON object as text.
    pub input_json: String,
    pub priority: Priority,
    /// A second request with the same key answers the first run's id.
    pub idempotency_key: Option<String>,
}

/// Queues a run of the workflow's live version: its inputs are checked
/// against the definition first (`invalid`, each problem named), so a run
/// that is queued can start. Answers the run's id and whether it is new.
pub async fn start(
    app: &App,
    caller: &Caller,
    name: &str,
    body: StartWorkflow,
) -> AppResult<(String, bool)> {
    let (tenant, live, workflow, _) =
        live_workflow(app, caller, Permission::ScriptRun, name).await?;
    let engine = app.engine()?;
    if let Some(key) = &body.idempotency_key {
        crate::runs::check_idempotency_key(key)?;
    }
    let given: Value = serde_json::from_str(&body.input_json)
        .map_err(|e| AppError::invalid(format!("input is not JSON: {e}")))?;
    citadel_workflow::check_inputs(&workflow, &given).map_err(|e| inputs_refused(&e))?;
    let spec = RunSpec {
        tenant_id: tenant.clone(),
        live,
        input_json: body.input_json,
        trigger: Trigger::ApiAsync,
        principal: Some(caller.principal.actor().to_owned()),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let request = JobRequest {
        priority: body.priority,
        idempotency_key: body.idempotency_key,
        ..JobRequest::default()
    };
    let (run_id, created) = engine
        .enqueue_run(spec, request)
        .await
        .map_err(|e| crate::runs::refusal(e, name))?;
    if created {
        caller
            .record_change(app, &tenant, "workflow.run", name, json!({ "run": run_id }))
            .await?;
    }
    Ok((run_id, created))
}

/// The caller's tenant, the workflow's live version, its definition and
/// the profile it runs under, once the caller holds `permission` on it.
async fn live_workflow(
    app: &App,
    caller: &Caller,
    permission: Permission,
    name: &str,
) -> AppResult<(
    String,
    std::sync::Arc<citadel_engine::LiveScript>,
    Workflow,
    Profile,
)> {
    workflow_named(app, caller, name).await?;
    let engine = app.engine()?;
    let tenant = caller.tenant_with(app, permission, Some(name)).await?;
    let live = crate::runs::live_or_refuse(app, engine, &tenant, name).await?;
    let settings = engine.settings(&tenant).await?;
    let max = engine.workflow_profile(&settings);
    let workflow = citadel_workflow::validate(&live.version.source, max).map_err(|found| {
        AppError::invalid(format!(
            "the live version of `{name}` does not validate under the tenant's `{max}` profile: {}",
            found.first().map(ToString::to_string).unwrap_or_default()
        ))
    })?;
    Ok((tenant, live, workflow, max))
}

/// Inputs that do not fit the workflow: the first problem in the message,
/// every one in the details.
fn inputs_refused(errors: &[citadel_workflow::InputError]) -> AppError {
    let first = errors
        .first()
        .map(|e| format!("input `{}`: {}", e.input, e.message))
        .unwrap_or_default();
    let all: Vec<Value> = errors
        .iter()
        .map(|e| json!({ "input": e.input, "message": e.message }))
        .collect();
    AppError::invalid(first).with_details(json!({ "inputs": all }))
}

/// Checks a workflow definition without saving it: every problem, located,
/// under the tenant's highest profile (empty: it would save).
pub async fn check(app: &App, caller: &Caller, source: &str) -> AppResult<Vec<Diagnostic>> {
    caller
        .require_somewhere(app, Permission::ScriptWrite)
        .await?;
    let engine = app.engine()?;
    let tenant = caller.tenant(app).await?;
    let settings = engine.settings(&tenant).await?;
    Ok(diagnostics(engine, &settings, source))
}

/// The dry run of the workflow's live version with `input_json`: the
/// resolved DAG in order, which steps would run and why, templates
/// rendered; nothing is executed.
pub async fn plan(app: &App, caller: &Caller, name: &str, input_json: &str) -> AppResult<Plan> {
    let (_, _, workflow, max) = live_workflow(app, caller, Permission::ScriptRead, name).await?;
    let given: Value = serde_json::from_str(input_json)
        .map_err(|e| AppError::invalid(format!("input is not JSON: {e}")))?;
    citadel_workflow::plan(&workflow, &given, max).map_err(|e| inputs_refused(&e))
}

/// Re-runs a finished workflow run from `from` (by default the step that
/// failed it): a new run of the same version and input that keeps the old
/// run's results upstream of that step. Answers the new run's id;
/// `conflict` when the run has not finished, is not a workflow's, or has
/// no failed step and none is named.
pub async fn rerun(
    app: &App,
    caller: &Caller,
    run_id: &str,
    from: Option<&str>,
) -> AppResult<String> {
    let (tenant, run) = crate::runs::run_with(app, caller, Permission::ScriptRun, run_id).await?;
    let engine = app.engine()?;
    let principal = Some(caller.principal.actor().to_owned());
    let new = engine
        .rerun_workflow(&tenant, run_id, from, principal)
        .await
        .map_err(|e| crate::runs::refusal(e, &run.script_name))?
        .ok_or_else(|| AppError::not_found(format!("run `{run_id}` not found")))?;
    caller
        .record_change(
            app,
            &tenant,
            "workflow.rerun",
            run_id,
            json!({ "workflow": run.script_name, "run": new, "from_step": from }),
        )
        .await?;
    Ok(new)
}

/// A workflow run's steps as they stand, in the workflow's order (steps
/// not reached yet have no row).
pub async fn steps(app: &App, caller: &Caller, run_id: &str) -> AppResult<Vec<WorkflowStep>> {
    let (tenant, _) = crate::runs::run_with(app, caller, Permission::ScriptRead, run_id).await?;
    Ok(app.engine()?.workflow_steps(&tenant, run_id).await?)
}

/// One step of a run's graph: where it stands in the DAG and, once the
/// run has reached it, its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphStep {
    pub id: String,
    pub step_type: StepType,
    /// One more than its deepest dependency's (0 for a root).
    pub level: usize,
    pub depends_on: Vec<String>,
    /// `None` until the run reaches the step.
    pub status: Option<citadel_domain::StepStatus>,
}

/// The DAG of the version a workflow run runs, every step with its
/// dependencies and, where reached, its state: what a console draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGraph {
    pub workflow: String,
    pub version: String,
    pub steps: Vec<GraphStep>,
}

/// The graph of a workflow run (`script.read` on the workflow); 404 for a
/// run that is not a workflow's.
pub async fn graph(app: &App, caller: &Caller, run_id: &str) -> AppResult<RunGraph> {
    let (tenant, run) = crate::runs::run_with(app, caller, Permission::ScriptRead, run_id).await?;
    let not_workflow = || AppError::not_found(format!("run `{run_id}` is not a workflow run"));
    let script = match app.store.script(&tenant, &run.script_name).await? {
        Some(s) if s.kind == ScriptKind::Workflow => s,
        _ => return Err(not_workflow()),
    };
    let version = scripts::version_of(app, &tenant, &script, &run.version).await?;
    // The structure only: the profile that ran it decided what each step
    // may do, and that is in the steps' states.
    let workflow = citadel_workflow::validate(&version.source, Profile::Elevated)
        .map_err(|_| not_workflow())?;
    let rows = app.engine()?.workflow_steps(&tenant, run_id).await?;
    let levels = workflow.levels();
    let level_of = |id: &str| levels.iter().position(|l| l.contains(&id)).unwrap_or(0);
    let steps = workflow
        .steps
        .iter()
        .map(|s| GraphStep {
            id: s.id.clone(),
            step_type: s.step_type(),
            level: level_of(&s.id),
            depends_on: s.depends_on.clone(),
            status: rows.iter().find(|r| r.step_id == s.id).map(|r| r.status),
        })
        .collect();
    Ok(RunGraph {
        workflow: run.script_name,
        version: run.version,
        steps,
    })
}

/// Approves or rejects a waiting approval step of a run (`script.approve`
/// on the workflow); the run goes on at once on some node. `conflict` when
/// the step is not waiting (decided already, or timed out).
pub async fn decide(
    app: &App,
    caller: &Caller,
    run_id: &str,
    step_id: &str,
    approve: bool,
    reason: Option<&str>,
) -> AppResult<WorkflowStep> {
    let (tenant, run) =
        crate::runs::run_with(app, caller, Permission::ScriptApprove, run_id).await?;
    if let Some(reason) = reason
        && reason.len() > MAX_CHANGE_NOTE
    {
        return Err(AppError::invalid(format!(
            "reason is longer than {MAX_CHANGE_NOTE} bytes"
        )));
    }
    if run.status.is_final() {
        return Err(AppError::conflict(format!(
            "run `{run_id}` is already {}",
            run.status
        )));
    }
    let engine = app.engine()?;
    let step = |steps: Vec<WorkflowStep>| steps.into_iter().find(|s| s.step_id == step_id);
    let Some(current) = step(engine.workflow_steps(&tenant, run_id).await?) else {
        return Err(AppError::not_found(format!(
            "run `{run_id}` has no step `{step_id}` waiting or done"
        )));
    };
    if current.kind != "approval" {
        return Err(AppError::invalid(format!(
            "step `{step_id}` is a `{}` step, not an approval",
            current.kind
        )));
    }
    let by = caller.principal.person.clone();
    if !engine
        .decide_approval(&tenant, run_id, step_id, approve, &by, reason)
        .await?
    {
        return Err(AppError::conflict(format!(
            "step `{step_id}` is not waiting for a decision (it is {})",
            current.status
        )));
    }
    caller
        .record_change(
            app,
            &tenant,
            if approve {
                "workflow.step.approve"
            } else {
                "workflow.step.reject"
            },
            run_id,
            json!({ "workflow": run.script_name, "step": step_id, "reason": reason }),
        )
        .await?;
    let decided = step(engine.workflow_steps(&tenant, run_id).await?);
    decided.ok_or_else(|| AppError::not_found(format!("step `{step_id}` not found")))
}
