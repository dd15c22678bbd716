//! Durable workflow runs. A workflow run is a run of a workflow version
//! (a catalog entry whose language is `workflow`), queued as a job of kind
//! [`WORKFLOW_JOB`] with the run's id. Whichever node claims the job drives
//! the workflow through [`crate::steps::drive`], writing each step's state,
//! attempts and output to the store as it starts and ends; a node that dies
//! leaves the job to its lease, and the node that claims it next resumes
//! from the steps that finished (the ones that were running start again).
//!
//! An `approval` step waiting for a decision holds no worker: once nothing
//! else runs, the job goes back to the queue until the approval's deadline,
//! and a decision through the API makes it due at once. A run's steps log
//! their progress to the run's log lines, so a run's event stream shows the
//! timeline as it happens.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use citadel_domain::{JobState, Language, StepStatus, Trigger};
use citadel_jail::Jail;
use citadel_sandbox::{LogLevel, LogLine};
use citadel_scripts::{CapabilitySpec, EventsGrant, HttpGrant, LimitOverrides};
use citadel_store::{Job, Run, StepDecision, StoreError, WorkflowStep, now_ms};
use citadel_workflow::{
    Action, Profile, Progress, ScriptSource, Step, StepResult, Workflow, check_inputs,
};
use serde_json::{Value, json};

use crate::gateway::CallContext;
use crate::steps::{
    self, At, DecisionFuture, Driven, HookFuture, HttpFuture, StepEffects, StepFuture, failure,
    success,
};
use crate::{
    Engine, EngineError, ErrorCode, InFlight, LiveScript, Registration, RunSpec, STOP_ABANDONED,
    STOP_KILLED, StoredError, lock, patiently,
};

/// The job kind of a workflow run.
pub const WORKFLOW_JOB: &str = "workflow";

/// How long an approval waits when its step sets no `timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What the platform allows workflow runs on this node.
#[derive(Debug, Clone)]
pub struct WorkflowSettings {
    /// The highest profile any tenant's workflow runs under (a tenant's
    /// settings and a workflow may ask for less).
    pub max_profile: Profile,
    /// A step's timeout when it sets none.
    pub default_timeout: Duration,
    /// Steps of one run running at once at most.
    pub max_parallel_steps: usize,
    /// Hosts `http` steps may reach (the tenant's `http_allow` narrows
    /// them further); none when empty.
    pub allowed_hosts: Vec<String>,
    /// The process jail `shell` steps run in (`None`: they fail with why).
    pub jail: Option<Arc<Jail>>,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        WorkflowSettings {
            max_profile: Profile::Standard,
            default_timeout: Duration::from_secs(300),
            max_parallel_steps: 16,
            allowed_hosts: Vec::new(),
            jail: None,
        }
    }
}

/// How a workflow job's turn ended.
pub(crate) enum JobTurn {
    /// The run ended and is recorded: finish the job so.
    Ended(citadel_domain::JobState, Option<String>),
    /// It waits for an approval; the job is back in the queue.
    Suspended,
    /// This node no longer holds it, or could not read its steps: the
    /// job's lease decides what happens next.
    Left,
}

impl Engine {
    /// The profile a tenant's workflows run under at most: the platform's,
    /// lowered by the tenant's settings.
    pub fn workflow_profile(&self, settings: &citadel_scripts::TenantSettings) -> Profile {
        let platform = self.config.workflows.max_profile;
        match settings
            .workflow_profile
            .as_deref()
            .and_then(|p| p.parse::<Profile>().ok())
        {
            Some(tenant) => Profile::effective(platform, Some(tenant)),
            None => platform,
        }
    }

    /// A run's steps as stored, in the workflow's order.
    pub async fn workflow_steps(
        &self,
        tenant_id: &str,
        run_id: &str,
    ) -> Result<Vec<WorkflowStep>, StoreError> {
        self.store.workflow_steps(tenant_id, run_id).await
    }

    /// Approves or rejects a waiting approval step (by the person `by`),
    /// and wakes its run. False when the step is not waiting.
    pub async fn decide_approval(
        &self,
        tenant_id: &str,
        run_id: &str,
        step_id: &str,
        approve: bool,
        by: &str,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (status, decision) = if approve {
            (StepStatus::Succeeded, "approve")
        } else {
            (StepStatus::Rejected, "reject")
        };
        let mut output = json!({ "decision": decision, "by": by });
        if let Some(reason) = reason {
            output["reason"] = Value::String(reason.to_owned());
        }
        if !approve {
            output["error"] = Value::String(match reason {
                Some(r) => format!("rejected by {by}: {r}"),
                None => format!("rejected by {by}"),
            });
        }
        let output = output.to_string();
        let decided = self
            .store
            .decide_step(&StepDecision {
                tenant_id,
                run_id,
                step_id,
                status,
                output: &output,
                decided_by: Some(by),
                at: now_ms(),
            })
            .await?;
        if decided {
            self.worker.wake.notify_one();
        }
        Ok(decided)
    }

    /// Starts a new run of a finished workflow run's exact version and
    /// input that starts at step `from` (by default the first step that
    /// failed the run): the new run begins with the old run's results for
    /// every step that is neither `from` nor downstream of it, so only
    /// those run again. Answers the new run's id; `None` when the tenant
    /// has no such run.
    pub async fn rerun_workflow(
        &self,
        tenant_id: &str,
        run_id: &str,
        from: Option<&str>,
        principal: Option<String>,
    ) -> Result<Option<String>, EngineError> {
        let refuse = |why: String| Err(EngineError::NotRerunnable(why));
        let Some(job) = self.store.job(tenant_id, run_id).await? else {
            return Ok(None);
        };
        if job.kind != WORKFLOW_JOB {
            return refuse(format!(
                "run `{run_id}` is a script's run, not a workflow's"
            ));
        }
        if matches!(job.state, JobState::Queued | JobState::Running) {
            return refuse(format!("run `{run_id}` has not finished"));
        }
        let payload: crate::worker::RunPayload =
            serde_json::from_str(&job.payload).map_err(|e| {
                EngineError::NotRerunnable(format!("run `{run_id}` is unreadable: {e}"))
            })?;
        let Some(live) = self.version_of(tenant_id, &payload).await? else {
            return refuse(format!(
                "version {} of `{}` no longer exists",
                payload.version, payload.script_name
            ));
        };
        let settings = self.settings(tenant_id).await?;
        let workflow =
            citadel_workflow::validate(&live.version.source, self.workflow_profile(&settings))
                .map_err(|d| {
                    EngineError::NotRerunnable(format!(
                        "version {} no longer validates: {}",
                        payload.version,
                        d.first().map(ToString::to_string).unwrap_or_default()
                    ))
                })?;
        let rows = self.store.workflow_steps(tenant_id, run_id).await?;
        let start = match from {
            Some(step) if workflow.step(step).is_some() => step.to_owned(),
            Some(step) => return refuse(format!("`{}` has no step `{step}`", workflow.name)),
            None => match workflow.steps.iter().find(|s| {
                !s.continue_on_error
                    && rows.iter().any(|r| {
                        r.step_id == s.id
                            && !matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped)
                    })
            }) {
                Some(step) => step.id.clone(),
                None => {
                    return refuse(format!(
                        "run `{run_id}` has no failed step: name the step to start from"
                    ));
                }
            },
        };
        // The step and everything downstream of it run again.
        let mut again = std::collections::BTreeSet::from([start.clone()]);
        loop {
            let more: Vec<String> = workflow
                .steps
                .iter()
                .filter(|s| {
                    !again.contains(&s.id) && s.depends_on.iter().any(|d| again.contains(d))
                })
                .map(|s| s.id.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            again.extend(more);
        }
        let new_id = citadel_store::new_time_ordered_id("run");
        let kept: Vec<WorkflowStep> = rows
            .into_iter()
            .filter(|r| r.status.is_final() && !again.contains(&r.step_id))
            .map(|r| WorkflowStep {
                run_id: new_id.clone(),
                ..r
            })
            .collect();
        self.store.seed_steps(&kept).await?;
        let spec = RunSpec {
            tenant_id: tenant_id.to_owned(),
            live,
            input_json: payload.input,
            trigger: Trigger::ApiAsync,
            principal,
            timeout_ms: payload.timeout_ms,
            run_id: Some(new_id),
            created_at: None,
        };
        let (id, _) = self.enqueue_run(spec, crate::JobRequest::default()).await?;
        Ok(Some(id))
    }

    /// Marks the steps of a queued workflow run that was cancelled, which
    /// wait for an approval, as cancelled.
    pub(crate) async fn cancel_waiting_steps(&self, tenant_id: &str, run_id: &str) {
        let output = json!({ "error": "the workflow run was cancelled" }).to_string();
        let steps = match self.store.workflow_steps(tenant_id, run_id).await {
            Ok(steps) => steps,
            Err(e) => {
                tracing::warn!(error = %e, run = %run_id, "cannot read a cancelled run's steps");
                return;
            }
        };
        for step in steps.iter().filter(|s| s.status == StepStatus::Waiting) {
            let decision = StepDecision {
                tenant_id,
                run_id,
                step_id: &step.step_id,
                status: StepStatus::Cancelled,
                output: &output,
                decided_by: None,
                at: now_ms(),
            };
            if let Err(e) = self.store.decide_step(&decision).await {
                tracing::warn!(error = %e, run = %run_id, "cannot cancel a waiting step");
            }
        }
    }

    /// One turn of a workflow job: resume the run from its stored steps
    /// and drive it until it ends, waits, or this node loses it.
    pub(crate) async fn drive_workflow_job(&self, job: &Job, spec: RunSpec, depth: i64) -> JobTurn {
        let registration = match self.admit(
            &spec,
            citadel_domain::RunStatus::Running,
            crate::IfDropped::LeaveToJob,
        ) {
            Ok(r) => r,
            Err(EngineError::Killed(switch)) => {
                let run = crate::worker::refused_run(&spec, &switch);
                if let Err(e) = self.recorder.record(run.clone()).await {
                    tracing::error!(error = %e, job = %job.id, "cannot record a refused run");
                    return JobTurn::Left;
                }
                self.counters.count(citadel_domain::RunStatus::Killed);
                return JobTurn::Ended(citadel_domain::JobState::Cancelled, run.error);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a workflow run");
                return JobTurn::Left;
            }
        };
        let flight = Arc::clone(&registration.flight);
        let settings = match self.settings(&spec.tenant_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, job = %job.id, "tenant settings unavailable; the workflow run waits");
                return JobTurn::Left;
            }
        };
        // The run's log lines are its step timeline, kept within the
        // tenant's log limit like a script's.
        lock(&flight.live_logs).limit = self
            .config
            .platform
            .effective(&settings.limits, &spec.live.limits, None)
            .log_bytes;
        let max = self.workflow_profile(&settings);
        let prepared = prepare(&spec.live.version.source, &spec.input_json, max);
        let (workflow, inputs, profile) = match prepared {
            Ok(p) => p,
            Err(why) => {
                let error = StoredError::new(ErrorCode::InvalidWorkflow, "InvalidWorkflow", &why);
                return self
                    .end_workflow(
                        registration,
                        None,
                        citadel_domain::RunStatus::Failed,
                        Some(error),
                    )
                    .await;
            }
        };
        let stored = match self.store.workflow_steps(&spec.tenant_id, &job.id).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, job = %job.id, "cannot read a workflow run's steps");
                return JobTurn::Left;
            }
        };
        let mut results = BTreeMap::new();
        for row in &stored {
            if row.status.is_final() {
                results.insert(row.step_id.clone(), result_of(row));
            }
        }
        let resumed = !stored.is_empty();
        let mut progress = Progress::resume(&workflow, inputs, profile, results);
        let grant = Arc::new(LiveScript {
            capabilities: CapabilitySpec {
                http: Some(HttpGrant {
                    allow: self.config.workflows.allowed_hosts.clone(),
                }),
                // The event types are in the reviewed definition itself.
                events: Some(EventsGrant {
                    emit: vec!["*".into()],
                }),
                // The secrets it declares, granted with its version.
                secrets: spec.live.capabilities.secrets.clone(),
                ..CapabilitySpec::default()
            },
            limits: LimitOverrides::default(),
            language: Language::Workflow,
            script: spec.live.script.clone(),
            version: spec.live.version.clone(),
        });
        let durable = Arc::new_cyclic(|this| Durable {
            this: this.clone(),
            engine: self.clone(),
            tenant_id: spec.tenant_id.clone(),
            run_id: job.id.clone(),
            principal: spec.principal.clone(),
            depth,
            grant,
            flight: Arc::clone(&flight),
            http_ceiling: settings.http_allow.clone(),
            rows: Mutex::new(stored.into_iter().map(|r| (r.step_id.clone(), r)).collect()),
            positions: workflow
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i as i64))
                .collect(),
        });
        // Templates read the declared secrets; what a run read is redacted
        // from everything it leaves, as for a script.
        let mut secrets = BTreeMap::new();
        for name in &workflow.secrets {
            let ctx = durable.call_context(Duration::from_secs(30));
            match self.secret_get(&ctx, name.clone()).await {
                Ok(Value::String(value)) => {
                    secrets.insert(name.clone(), value);
                }
                Ok(_) => {}
                Err(e) => {
                    let why = format!("secret `{name}`: {}: {}", e.code, e.message);
                    let error =
                        StoredError::new(ErrorCode::InvalidWorkflow, "SecretUnavailable", &why);
                    return self
                        .end_workflow(
                            registration,
                            None,
                            citadel_domain::RunStatus::Failed,
                            Some(error),
                        )
                        .await;
                }
            }
        }
        progress.grant(BTreeMap::new(), secrets);
        durable.log(
            LogLevel::Info,
            format!(
                "workflow {} {} {} under the `{profile}` profile",
                workflow.name,
                workflow.version,
                if resumed { "resumed" } else { "started" },
            ),
        );
        let cfg = &self.config.workflows;
        let driven = steps::drive(
            &durable,
            &mut progress,
            At { depth: 0, profile },
            cfg.max_parallel_steps,
            cfg.default_timeout,
            flight.cancel.cancelled(),
        )
        .await;
        match driven {
            Driven::Finished(outcome) => {
                let (status, error) = match &outcome.failed_step {
                    _ if outcome.status == StepStatus::Succeeded => {
                        (citadel_domain::RunStatus::Succeeded, None)
                    }
                    Some(step) => {
                        let result = progress.results().get(step);
                        let why = result
                            .and_then(|r| r.output.get("error"))
                            .and_then(Value::as_str)
                            .unwrap_or("it failed");
                        let status = match result.map(|r| r.status) {
                            Some(StepStatus::TimedOut) => citadel_domain::RunStatus::TimedOut,
                            _ => citadel_domain::RunStatus::Failed,
                        };
                        let text =
                            format!("step `{step}` {}: {why}", word(result.map(|r| r.status)));
                        (
                            status,
                            Some(StoredError::new(ErrorCode::StepFailed, "StepFailed", &text)),
                        )
                    }
                    None => {
                        let text = outcome
                            .output_errors
                            .iter()
                            .map(|(name, e)| format!("output `{name}`: {e}"))
                            .collect::<Vec<_>>()
                            .join("; ");
                        (
                            citadel_domain::RunStatus::Failed,
                            Some(StoredError::new(
                                ErrorCode::StepFailed,
                                "OutputFailed",
                                &text,
                            )),
                        )
                    }
                };
                let outputs = Value::Object(outcome.outputs).to_string();
                self.end_workflow(registration, Some(outputs), status, error)
                    .await
            }
            Driven::Waiting => {
                let (deadline, waiting) = durable.waiting();
                let deadline = deadline.unwrap_or_else(now_ms);
                durable.log(LogLevel::Info, "waiting for an approval".to_owned());
                lock(&self.worker.finishing).insert(job.id.clone());
                let suspended = self
                    .store
                    .suspend_job(&job.id, self.worker.node_id(), deadline, &waiting, now_ms())
                    .await;
                drop(registration);
                match suspended {
                    Ok(true) => JobTurn::Suspended,
                    Ok(false) => JobTurn::Left,
                    Err(e) => {
                        tracing::error!(error = %e, job = %job.id, "cannot suspend a workflow run");
                        JobTurn::Left
                    }
                }
            }
            Driven::Stopped => {
                let stop = flight.stop.load(Ordering::SeqCst);
                if stop == STOP_ABANDONED {
                    return JobTurn::Left;
                }
                durable.cancel_open_steps().await;
                let (status, error) = if stop == STOP_KILLED {
                    (
                        citadel_domain::RunStatus::Killed,
                        crate::killed_error(&flight),
                    )
                } else {
                    (
                        citadel_domain::RunStatus::Cancelled,
                        StoredError::new(
                            ErrorCode::Sandbox(citadel_sandbox::ErrorKind::Cancelled),
                            "Cancelled",
                            "the workflow run was cancelled",
                        ),
                    )
                };
                self.end_workflow(registration, None, status, Some(error))
                    .await
            }
        }
    }

    /// Records a workflow run's end and says how to finish its job.
    async fn end_workflow(
        &self,
        mut registration: Registration,
        result: Option<String>,
        status: citadel_domain::RunStatus,
        error: Option<StoredError>,
    ) -> JobTurn {
        let flight = Arc::clone(&registration.flight);
        let mut run: Run = lock(&flight.run).clone();
        let now = now_ms();
        let lines = std::mem::take(&mut lock(&flight.live_logs).lines);
        run.status = status;
        run.result = result.map(|r| flight.redact_json(r));
        run.logs = serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into());
        run.error = error.as_ref().map(StoredError::to_json);
        run.duration_ms = Some(now - run.started_at.unwrap_or(now));
        run.cpu_ms = Some(0);
        run.peak_memory_bytes = Some(0);
        run.finished_at = Some(now);
        registration.ended = true;
        let recorded = self.recorder.record(run.clone()).await;
        drop(registration);
        if let Err(e) = recorded {
            tracing::error!(error = %e, run = %run.id, "could not record a finished workflow run");
            return JobTurn::Left;
        }
        self.count_recorded(status);
        let state = match status {
            citadel_domain::RunStatus::Succeeded => citadel_domain::JobState::Succeeded,
            citadel_domain::RunStatus::Cancelled | citadel_domain::RunStatus::Killed => {
                citadel_domain::JobState::Cancelled
            }
            _ => citadel_domain::JobState::Failed,
        };
        JobTurn::Ended(state, run.error)
    }
}

/// The workflow of a run's version, validated under `max`, its checked
/// inputs, and the profile it runs under; or why it cannot run.
fn prepare(
    source: &str,
    input_json: &str,
    max: Profile,
) -> Result<(Workflow, serde_json::Map<String, Value>, Profile), String> {
    let workflow = citadel_workflow::validate(source, max).map_err(|d| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let given: Value =
        serde_json::from_str(input_json).map_err(|e| format!("the input is not JSON: {e}"))?;
    let inputs = check_inputs(&workflow, &given).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("input `{}`: {}", e.input, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let profile = Profile::effective(max, workflow.profile);
    if !profile.executes() {
        return Err(format!("the `{profile}` profile never executes a workflow"));
    }
    Ok((workflow, inputs, profile))
}

/// A stored step's result as the workflow's expressions see it.
fn result_of(row: &WorkflowStep) -> StepResult {
    StepResult {
        status: row.status,
        output: serde_json::from_str(&row.output).unwrap_or(Value::Null),
        exit_code: row.exit_code,
    }
}

fn word(status: Option<StepStatus>) -> &'static str {
    match status {
        Some(StepStatus::TimedOut) => "timed out",
        Some(StepStatus::Rejected) => "was rejected",
        Some(StepStatus::Cancelled) => "was cancelled",
        _ => "failed",
    }
}

fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Script { .. } => "script",
        Action::Assert { .. } => "assert",
        Action::Http { .. } => "http",
        Action::Emit { .. } => "emit",
        Action::Approval { .. } => "approval",
        Action::Sleep { .. } => "sleep",
        Action::Shell { .. } => "shell",
        Action::Workflow { .. } => "workflow",
        Action::Foreach { .. } => "foreach",
    }
}

/// What the steps of one durable run share.
struct Durable {
    this: Weak<Durable>,
    engine: Engine,
    tenant_id: String,
    run_id: String,
    principal: Option<String>,
    depth: i64,
    /// What `http` and `emit` steps may do, as a grant the gateway checks.
    grant: Arc<LiveScript>,
    /// The workflow run in flight: its log lines, its stop flag.
    flight: Arc<InFlight>,
    http_ceiling: Option<Vec<String>>,
    /// The run's stored steps, by id, as this node last wrote them.
    rows: Mutex<HashMap<String, WorkflowStep>>,
    positions: HashMap<String, i64>,
}

impl Durable {
    fn log(&self, level: LogLevel, message: String) {
        self.flight.push_logs(vec![LogLine { level, message }]);
    }

    fn row(&self, step: &Step) -> WorkflowStep {
        lock(&self.rows)
            .get(&step.id)
            .cloned()
            .unwrap_or_else(|| WorkflowStep {
                run_id: self.run_id.clone(),
                tenant_id: self.tenant_id.clone(),
                step_id: step.id.clone(),
                position: self.positions.get(&step.id).copied().unwrap_or(0),
                kind: kind_of(&step.action).to_owned(),
                status: StepStatus::Running,
                attempts: 0,
                output: "null".into(),
                exit_code: None,
                started_at: None,
                finished_at: None,
                deadline_at: None,
                decided_by: None,
            })
    }

    /// Writes a step's row, patiently: a row that is not written is a step
    /// a resumed run does again.
    /// Writes a step's row while this node holds the run (patiently: a row
    /// that is not written is a step a resumed run does again). A node
    /// that no longer holds it stops its copy of the run.
    async fn put(&self, row: WorkflowStep) {
        lock(&self.rows).insert(row.step_id.clone(), row.clone());
        let store = &self.engine.store;
        let node = self.engine.worker.node_id();
        match patiently(Duration::from_secs(10), || store.put_step(&row, node)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(run = %self.run_id, "the workflow run's lease was lost; stopping it here");
                self.flight.stop(STOP_ABANDONED, None);
            }
            Err(e) => {
                tracing::error!(error = %e, run = %self.run_id, step = %row.step_id, "cannot store a workflow step")
            }
        }
    }

    /// The steps waiting for a decision, and the first of their deadlines.
    fn waiting(&self) -> (Option<i64>, Vec<String>) {
        let rows = lock(&self.rows);
        let waiting = rows.values().filter(|r| r.status == StepStatus::Waiting);
        let deadline = waiting.clone().filter_map(|r| r.deadline_at).min();
        (deadline, waiting.map(|r| r.step_id.clone()).collect())
    }

    /// Marks the steps still running or waiting as cancelled.
    async fn cancel_open_steps(&self) {
        let open: Vec<WorkflowStep> = lock(&self.rows)
            .values()
            .filter(|r| !r.status.is_final())
            .cloned()
            .collect();
        for mut row in open {
            row.status = StepStatus::Cancelled;
            row.finished_at = Some(now_ms());
            row.output = json!({ "error": "the workflow run was cancelled" }).to_string();
            self.put(row).await;
        }
    }

    /// The context the gateway checks an `http` or `emit` step's call in.
    fn call_context(&self, timeout: Duration) -> CallContext {
        CallContext {
            tenant_id: self.tenant_id.clone(),
            run_id: self.run_id.clone(),
            depth: self.depth,
            live: Arc::clone(&self.grant),
            flight: Arc::clone(&self.flight),
            deadline: Instant::now() + timeout,
            http_ceiling: self.http_ceiling.clone(),
        }
    }

    async fn run_script(
        &self,
        source: &ScriptSource,
        input: Value,
        timeout: Duration,
    ) -> StepResult {
        let live = match source {
            ScriptSource::Saved(name) => match self.engine.live(&self.tenant_id, name).await {
                Ok(Some(live)) if live.language.is_script() => live,
                Ok(Some(_)) => {
                    return failure(
                        StepStatus::Failed,
                        format!("`{name}` is a workflow: run it with a `workflow` step"),
                    );
                }
                Ok(None) => {
                    return failure(
                        StepStatus::Failed,
                        format!("no script `{name}` with a live version"),
                    );
                }
                Err(e) => return failure(StepStatus::Failed, e.to_string()),
            },
            // Inline code runs as a run of the workflow, with no
            // capabilities: it was reviewed with the workflow's version.
            ScriptSource::Inline(code) => {
                let mut version = self.grant.version.clone();
                version.source = code.clone();
                version.language = Language::Js;
                Arc::new(LiveScript {
                    script: self.grant.script.clone(),
                    version,
                    language: Language::Js,
                    capabilities: CapabilitySpec::default(),
                    limits: LimitOverrides::default(),
                })
            }
        };
        let input_json = input.to_string();
        // A script's input is kept in its run's record, which the script's
        // own redaction does not cover: a secret is granted to the script
        // instead.
        if self.flight.redact_json(input_json.clone()) != input_json {
            return failure(
                StepStatus::Failed,
                "a script step's input may not carry a secret: grant the script the secret instead",
            );
        }
        let spec = RunSpec {
            tenant_id: self.tenant_id.clone(),
            live,
            input_json,
            trigger: Trigger::Workflow,
            principal: self.principal.clone(),
            timeout_ms: Some(timeout.as_millis() as u64),
            run_id: None,
            created_at: None,
        };
        let run = match self.engine.run_sync(spec).await {
            Ok(run) => run,
            Err(e) => return failure(StepStatus::Failed, e.to_string()),
        };
        let result = run
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        if run.status == citadel_domain::RunStatus::Succeeded {
            return success(result);
        }
        let error: Value = run
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or(Value::Null);
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        let name = error.get("name").and_then(Value::as_str).unwrap_or("Error");
        StepResult {
            status: if run.status == citadel_domain::RunStatus::TimedOut {
                StepStatus::TimedOut
            } else {
                StepStatus::Failed
            },
            output: json!({
                "error": format!("{name}: {message}"),
                "code": error.get("code"),
                "line": error.get("line"),
                "column": error.get("column"),
                "run_id": run.id,
            }),
            exit_code: None,
        }
    }

    async fn decide(&self, step: &Step, message: String) -> Option<StepResult> {
        // Read again: a decision may have come since the run resumed.
        let stored = match self
            .engine
            .store
            .workflow_steps(&self.tenant_id, &self.run_id)
            .await
        {
            Ok(rows) => rows.into_iter().find(|r| r.step_id == step.id),
            Err(e) => return Some(failure(StepStatus::Failed, e.to_string())),
        };
        let now = now_ms();
        match stored {
            Some(row) if row.status.is_final() => {
                lock(&self.rows).insert(row.step_id.clone(), row.clone());
                Some(result_of(&row))
            }
            Some(row) if row.deadline_at.is_some_and(|d| d <= now) => {
                let output =
                    json!({ "error": "nobody approved it before its timeout" }).to_string();
                let timed_out = self
                    .engine
                    .store
                    .decide_step(&StepDecision {
                        tenant_id: &self.tenant_id,
                        run_id: &self.run_id,
                        step_id: &step.id,
                        status: StepStatus::TimedOut,
                        output: &output,
                        decided_by: None,
                        at: now,
                    })
                    .await;
                match timed_out {
                    // Won: it timed out; lost: a decision came first.
                    Ok(_) => Box::pin(self.decide(step, message)).await,
                    Err(e) => Some(failure(StepStatus::Failed, e.to_string())),
                }
            }
            Some(row) => {
                lock(&self.rows).insert(row.step_id.clone(), row);
                None
            }
            None => {
                let timeout = step
                    .timeout
                    .map_or(DEFAULT_APPROVAL_TIMEOUT, Duration::from_secs);
                let mut row = self.row(step);
                row.status = StepStatus::Waiting;
                row.attempts = 1;
                row.started_at = Some(now);
                row.deadline_at = Some(now + timeout.as_millis() as i64);
                row.output = json!({ "message": message }).to_string();
                self.put(row).await;
                self.log(
                    LogLevel::Info,
                    format!("step {} waits for approval: {message}", step.id),
                );
                None
            }
        }
    }
}

impl StepEffects for Durable {
    fn script<'a>(
        &'a self,
        source: &'a ScriptSource,
        input: Value,
        timeout: Duration,
    ) -> StepFuture<'a> {
        Box::pin(self.run_script(source, input, timeout))
    }

    fn shell<'a>(&'a self, command: String, timeout: Duration) -> StepFuture<'a> {
        Box::pin(async move {
            match &self.engine.config.workflows.jail {
                Some(jail) => steps::shell_in_jail(jail, command, timeout).await,
                None => failure(
                    StepStatus::Failed,
                    "shell steps need the process jail, which this node does not have",
                ),
            }
        })
    }

    fn http<'a>(&'a self, url: String, options: Value, timeout: Duration) -> HttpFuture<'a> {
        Box::pin(async move {
            if self
                .grant
                .capabilities
                .http
                .as_ref()
                .is_none_or(|h| h.allow.is_empty())
            {
                return Err("no host is allowed: the platform lists the hosts http steps may reach in [workflows] allowed_domains".to_owned());
            }
            let ctx = self.call_context(timeout);
            self.engine
                .http_fetch(&ctx, url, options)
                .await
                .map_err(|e| format!("{}: {}", e.code, e.message))
        })
    }

    fn emit<'a>(&'a self, event: &'a str, data: Value, _at: At) -> StepFuture<'a> {
        Box::pin(async move {
            let ctx = self.call_context(Duration::from_secs(30));
            match self.engine.emit(&ctx, event.to_owned(), data.clone()).await {
                Ok(published) => {
                    success(json!({ "type": event, "data": data, "event": published }))
                }
                Err(e) => failure(StepStatus::Failed, format!("{}: {}", e.code, e.message)),
            }
        })
    }

    fn approval<'a>(
        &'a self,
        step: Option<&'a Step>,
        message: String,
        at: At,
    ) -> DecisionFuture<'a> {
        Box::pin(async move {
            match step {
                Some(step) if at.depth == 0 => self.decide(step, message).await,
                _ => Some(failure(
                    StepStatus::Rejected,
                    "only a workflow run's own approval steps wait for a decision (not one inside a sub-workflow or a foreach)",
                )),
            }
        })
    }

    fn sub_workflow<'a>(&'a self, name: &'a str, given: Value, at: At) -> StepFuture<'a> {
        Box::pin(async move {
            if at.depth >= citadel_workflow::MAX_SUBWORKFLOW_DEPTH {
                return failure(
                    StepStatus::Failed,
                    format!(
                        "sub-workflow `{name}`: workflows nest at most {} deep",
                        citadel_workflow::MAX_SUBWORKFLOW_DEPTH
                    ),
                );
            }
            let live = match self.engine.live(&self.tenant_id, name).await {
                Ok(Some(live)) if live.language == Language::Workflow => live,
                Ok(_) => {
                    return failure(
                        StepStatus::Failed,
                        format!("sub-workflow `{name}`: no workflow of that name is live"),
                    );
                }
                Err(e) => return failure(StepStatus::Failed, e.to_string()),
            };
            let prepared = prepare(&live.version.source, &given.to_string(), at.profile);
            let (workflow, inputs, profile) = match prepared {
                Ok(p) => p,
                Err(why) => {
                    return failure(StepStatus::Failed, format!("sub-workflow `{name}`: {why}"));
                }
            };
            let Some(this) = self.this.upgrade() else {
                return failure(StepStatus::Failed, "the run is over");
            };
            let mut progress = Progress::new(&workflow, inputs, profile);
            let cfg = &self.engine.config.workflows;
            let inner = At {
                depth: at.depth + 1,
                profile,
            };
            let driven = steps::drive(
                &this,
                &mut progress,
                inner,
                cfg.max_parallel_steps,
                cfg.default_timeout,
                std::future::pending(),
            )
            .await;
            match driven {
                Driven::Finished(outcome) => steps::sub_workflow_result(name, outcome),
                Driven::Waiting | Driven::Stopped => failure(
                    StepStatus::Failed,
                    format!("sub-workflow `{name}` did not finish"),
                ),
            }
        })
    }

    fn on_decided<'a>(
        &'a self,
        at: At,
        step: &'a Step,
        result: &'a StepResult,
        reason: &'a str,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            if at.depth > 0 {
                return;
            }
            self.log(
                LogLevel::Info,
                format!("step {} {}: {reason}", step.id, result.status),
            );
            let mut row = self.row(step);
            row.status = result.status;
            row.output = result.output.to_string();
            row.finished_at = Some(now_ms());
            self.put(row).await;
        })
    }

    fn on_started<'a>(&'a self, at: At, step: &'a Step, attempt: u32) -> HookFuture<'a> {
        Box::pin(async move {
            if at.depth > 0 {
                return;
            }
            let mut row = self.row(step);
            row.status = StepStatus::Running;
            row.attempts += 1;
            row.started_at.get_or_insert_with(now_ms);
            self.log(
                LogLevel::Info,
                format!(
                    "step {} started (attempt {})",
                    step.id,
                    row.attempts.max(i64::from(attempt))
                ),
            );
            self.put(row).await;
        })
    }

    fn on_finished<'a>(
        &'a self,
        at: At,
        step: &'a Step,
        result: &'a StepResult,
        took: Duration,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            if at.depth > 0 {
                return;
            }
            let mut row = self.row(step);
            row.status = result.status;
            let output = self.flight.redact_json(result.output.to_string());
            row.output = output;
            row.exit_code = result.exit_code;
            row.finished_at = Some(now_ms());
            let mut text = format!(
                "step {} {} in {} ms",
                step.id,
                result.status,
                took.as_millis()
            );
            if let Some(error) = result.output.get("error").and_then(Value::as_str) {
                text.push_str(&format!(": {error}"));
            }
            let level = if result.status == StepStatus::Succeeded {
                LogLevel::Info
            } else {
                LogLevel::Error
            };
            self.log(level, text);
            self.put(row).await;
        })
    }

    fn on_retrying(&self, at: At, step: &Step, attempt: u32, attempts: u32, delay_s: u64) {
        if at.depth == 0 {
            self.log(
                LogLevel::Warn,
                format!(
                    "step {} retries (attempt {attempt} of {attempts}) in {delay_s} s",
                    step.id
                ),
            );
        }
    }
}
