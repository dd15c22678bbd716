//! The durable queue's consumer: each node claims due jobs (priority first,
//! tenants interleaved), runs them up to a concurrency limit — an awaiting
//! run holds no CPU, so the limit is in thousands — renews their leases by
//! heartbeat, retries infrastructure failures with exponential backoff and
//! jitter, and gives a job up to the dead-letter state after its attempts.
//! Every node also reclaims the jobs of nodes that stopped heart-beating.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use citadel_domain::{JobState, NodeState, RunStatus, Trigger};
use citadel_sandbox::ErrorKind;
use citadel_store::{
    FinishedJob, Job, KillSwitch, NewJob, Node, Run, Script, StoreError, new_id,
    new_time_ordered_id, now_ms,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::quota::QuotaState;
use crate::{
    Ended, Engine, EngineError, EngineInner, ErrorCode, IfDropped, LiveScript, RunSpec,
    StoredError, lock, upgrade,
};

/// The job kind of a script run.
pub const RUN_JOB: &str = "run";

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub node_id: String,
    /// `serve` or `worker`.
    pub role: String,
    /// Jobs in flight on this node at most.
    pub concurrency: usize,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// How often an idle node looks for due jobs (it is also woken at once
    /// by jobs enqueued through it).
    pub poll: Duration,
    pub heartbeat: Duration,
    /// A node silent this long is marked down and its jobs reclaimed.
    pub node_timeout: Duration,
    /// Attempts a job gets (infrastructure failures are retried).
    pub max_attempts: i64,
    /// Jobs claimed per query.
    pub claim_batch: i64,
    /// How long a node that is down (stopped, or silent past
    /// `node_timeout`) stays listed before it is forgotten.
    pub node_retention: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            node_id: new_id("node"),
            role: "serve".into(),
            concurrency: 2048,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(20),
            heartbeat: Duration::from_millis(500),
            node_timeout: Duration::from_secs(10),
            max_attempts: 3,
            claim_batch: 128,
            node_retention: Duration::from_secs(3600),
        }
    }
}

pub use citadel_domain::Priority;

/// How to enqueue a run.
#[derive(Debug, Clone, Default)]
pub struct JobRequest {
    pub priority: Priority,
    /// A second enqueue with the same key returns the first job.
    pub idempotency_key: Option<String>,
    /// Not before this time (Unix ms); now when `None`.
    pub run_at: Option<i64>,
    /// How deep in an event chain the run is (0 unless an event caused it).
    pub depth: i64,
}

/// One run of a batch ([`Engine::enqueue_runs`]).
#[derive(Debug, Clone, Default)]
pub struct BatchItem {
    /// The run's input as JSON text.
    pub input_json: String,
    pub idempotency_key: Option<String>,
}

/// What a run job carries: enough to run the exact version asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunPayload {
    pub(crate) script_id: String,
    pub(crate) script_name: String,
    pub(crate) version: String,
    /// JSON text.
    pub(crate) input: String,
    pub(crate) trigger: Trigger,
    pub(crate) principal: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    /// Event-chain depth (see `events.rs`).
    #[serde(default)]
    pub(crate) depth: i64,
}

pub(crate) struct WorkerState {
    node_id: String,
    started_at: i64,
    running: Mutex<HashSet<String>>,
    /// Jobs of `running` whose run has ended here and whose end is being
    /// written: a renewal that misses them raced that write.
    pub(crate) finishing: Mutex<HashSet<String>>,
    draining: AtomicBool,
    pub(crate) wake: Arc<Notify>,
}

impl WorkerState {
    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn new(config: Option<&WorkerConfig>) -> Self {
        WorkerState {
            node_id: config.map_or_else(|| new_id("node"), |c| c.node_id.clone()),
            started_at: now_ms(),
            running: Mutex::new(HashSet::new()),
            finishing: Mutex::new(HashSet::new()),
            draining: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
        }
    }
}

/// What cancelling a run did.
#[derive(Debug)]
pub enum CancelOutcome {
    /// It runs on this node; the receiver turns true once it is recorded.
    Local(watch::Receiver<bool>),
    /// It was queued and is now cancelled.
    Dequeued(Box<Run>),
    /// It runs on another node, which will stop it.
    Requested,
    /// It had already finished (its final state).
    AlreadyFinished(&'static str),
    NotFound,
}

/// A claimed job counted among this node's running jobs (and, once its end
/// is being written, its finishing ones) until dropped: a job's task that
/// stops anywhere (a panic, a runtime shutting down) leaves neither set
/// holding it, so it neither takes a concurrency slot nor has its lease
/// renewed forever.
struct RunningJob {
    engine: Engine,
    id: String,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        lock(&self.engine.worker.running).remove(&self.id);
        lock(&self.engine.worker.finishing).remove(&self.id);
        self.engine.worker.wake.notify_one();
    }
}

impl Engine {
    fn job_running(&self, id: &str) -> RunningJob {
        lock(&self.worker.running).insert(id.to_owned());
        RunningJob {
            engine: self.clone(),
            id: id.to_owned(),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.worker.node_id
    }

    /// Jobs this node runs now.
    pub fn jobs_running(&self) -> usize {
        lock(&self.worker.running).len()
    }

    /// Enqueues a run of the script's live version as a durable job. Returns
    /// the run's id and whether the job is new (`false`: the idempotency key
    /// was used before, and this is the first job's id).
    pub async fn enqueue_run(
        &self,
        spec: RunSpec,
        request: JobRequest,
    ) -> Result<(String, bool), EngineError> {
        self.refuse_if_killed(&spec)?;
        self.quota
            .take(&spec.tenant_id, &self.config.quotas, self.nodes_up())
            .map_err(EngineError::RateLimited)?;
        let script_cap = self.script_cap(&spec).await?;
        let job = self.new_run_job(spec, &request, script_cap);
        let (job, created) = self.enqueuer.enqueue(job).await?;
        if created {
            self.worker.wake.notify_one();
        }
        Ok((job.id, created))
    }

    /// Enqueues one run of the script's live version per input, all in one
    /// transaction: every run is queued, or (on any refusal) none is. Each
    /// input may carry its own idempotency key; a key used before (or
    /// earlier in the batch) answers that job's id, marked not new. The
    /// rate quota is taken for the whole batch at once.
    pub async fn enqueue_runs(
        &self,
        spec: RunSpec,
        request: JobRequest,
        items: Vec<BatchItem>,
    ) -> Result<Vec<(String, bool)>, EngineError> {
        self.refuse_if_killed(&spec)?;
        let nodes = self.nodes_up();
        self.quota
            .take_many(&spec.tenant_id, &self.config.quotas, nodes, items.len())
            .map_err(|wait| match wait {
                Some(wait) => EngineError::RateLimited(wait),
                None => EngineError::BatchOverRate {
                    asked: items.len(),
                    per_node: QuotaState::runs_capacity(&self.config.quotas, nodes),
                },
            })?;
        let items_len = items.len();
        let tenant = spec.tenant_id.clone();
        let give_back = || {
            self.quota
                .give_back(&tenant, &self.config.quotas, nodes, items_len)
        };
        let script_cap = match self.script_cap(&spec).await {
            Ok(cap) => cap,
            Err(e) => {
                give_back();
                return Err(e);
            }
        };
        let mut jobs: Vec<(usize, NewJob)> = items
            .into_iter()
            .map(|item| {
                let spec = RunSpec {
                    input_json: item.input_json,
                    ..spec.clone()
                };
                let request = JobRequest {
                    idempotency_key: item.idempotency_key,
                    ..request.clone()
                };
                self.new_run_job(spec, &request, script_cap)
            })
            .enumerate()
            .collect();
        // Written in key order, so two batches sharing keys take their rows
        // in the same order and cannot deadlock each other on PostgreSQL;
        // answered in the items' order.
        jobs.sort_by(|(_, a), (_, b)| a.idempotency_key.cmp(&b.idempotency_key));
        let (order, jobs): (Vec<usize>, Vec<NewJob>) = jobs.into_iter().unzip();
        // One transaction, not the group-commit writer: that one may split
        // a batch over two commits, and a batch is atomic.
        let done = match self.store.enqueue_many(&jobs).await {
            Ok(done) => done,
            Err(e) => {
                give_back();
                return Err(e.into());
            }
        };
        if done.iter().any(|(_, created)| *created) {
            self.worker.wake.notify_one();
        }
        let mut answers = vec![(String::new(), false); done.len()];
        for (slot, (job, created)) in order.into_iter().zip(done) {
            answers[slot] = (job.id, created);
        }
        Ok(answers)
    }

    fn refuse_if_killed(&self, spec: &RunSpec) -> Result<(), EngineError> {
        if let Some(switch) = self.kill_switch_for(&spec.tenant_id, &spec.live.script.name) {
            self.counters
                .refused_by_kill_switch
                .fetch_add(1, Ordering::Relaxed);
            return Err(EngineError::Killed(Box::new(switch)));
        }
        Ok(())
    }

    /// The durable job of a run of the script's live version.
    fn new_run_job(&self, spec: RunSpec, request: &JobRequest, script_cap: Option<u64>) -> NewJob {
        let payload = RunPayload {
            script_id: spec.live.script.id.clone(),
            script_name: spec.live.script.name.clone(),
            version: spec.live.version.version.clone(),
            input: spec.input_json,
            trigger: spec.trigger,
            principal: spec.principal,
            timeout_ms: spec.timeout_ms,
            depth: request.depth,
        };
        let max_attempts = self
            .config
            .worker
            .as_ref()
            .map_or(WorkerConfig::default().max_attempts, |w| w.max_attempts);
        NewJob {
            id: spec
                .run_id
                .clone()
                .unwrap_or_else(|| new_time_ordered_id("run")),
            tenant_id: spec.tenant_id,
            // A workflow's run is driven step by step, a script's run once.
            kind: if spec.live.language.is_script() {
                RUN_JOB
            } else {
                crate::WORKFLOW_JOB
            }
            .into(),
            payload: serde_json::to_string(&payload).unwrap_or_default(),
            priority: request.priority.as_i64(),
            run_at: request.run_at.unwrap_or_else(now_ms),
            max_attempts,
            timeout_ms: spec
                .timeout_ms
                .map_or(self.config.platform.max.timeout_ms, |t| t) as i64,
            idempotency_key: request.idempotency_key.clone(),
            script_key: script_cap.map(|_| payload.script_id.clone()),
            script_cap: script_cap.map(|c| c as i64),
        }
    }

    /// A run that is not recorded yet, as its job describes it (queued, or
    /// running on some node).
    pub async fn run_from_job(&self, tenant_id: &str, id: &str) -> Result<Option<Run>, StoreError> {
        let Some(job) = self.store.job(tenant_id, id).await? else {
            return Ok(None);
        };
        Ok(job_run(&job))
    }

    /// A run as it stands now, wherever it is: in flight on this node,
    /// recorded, or still a job (queued, or running on some node).
    ///
    /// The three places are read one after another while the run moves
    /// between them, so a run can finish between two reads: missed in
    /// flight and in the records, then found as a finished job. A job
    /// finishes only after its run's record is committed, so a finished job
    /// means the record is there now: it is read again rather than
    /// answering the job's summary, which has no result.
    pub async fn find_run(&self, tenant_id: &str, id: &str) -> Result<Option<Run>, StoreError> {
        if let Some(run) = self.in_flight_run(tenant_id, id) {
            return Ok(Some(run));
        }
        if let Some(run) = self.store.run(tenant_id, id).await? {
            return Ok(Some(run));
        }
        let Some(job) = self.store.job(tenant_id, id).await? else {
            return Ok(None);
        };
        if !matches!(job.state, JobState::Queued | JobState::Running)
            && let Some(run) = self.store.run(tenant_id, id).await?
        {
            return Ok(Some(run));
        }
        Ok(job_run(&job))
    }

    /// Cancels a run wherever it is: in flight here, queued, or running on
    /// another node.
    pub async fn cancel_anywhere(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<CancelOutcome, StoreError> {
        if let Some(done) = self.cancel(tenant_id, id) {
            return Ok(CancelOutcome::Local(done));
        }
        let Some(job) = self.store.request_cancel(tenant_id, id, now_ms()).await? else {
            return Ok(match self.store.run(tenant_id, id).await? {
                Some(run) => CancelOutcome::AlreadyFinished(run.status.as_str()),
                None => CancelOutcome::NotFound,
            });
        };
        match job.state {
            JobState::Cancelled => {
                if let Some(run) = self.store.run(tenant_id, id).await? {
                    return Ok(CancelOutcome::AlreadyFinished(run.status.as_str()));
                }
                let mut run = job_run(&job).unwrap_or_else(|| unknown_run(&job));
                run.status = RunStatus::Cancelled;
                run.error = Some(
                    StoredError::new(
                        ErrorCode::Sandbox(ErrorKind::Cancelled),
                        "Cancelled",
                        "cancelled while queued",
                    )
                    .to_json(),
                );
                run.finished_at = Some(now_ms());
                if job.kind == crate::WORKFLOW_JOB {
                    self.cancel_waiting_steps(tenant_id, id).await;
                }
                if let Err(e) = self.recorder.record(run.clone()).await {
                    tracing::error!(error = %e, run = %id, "cannot record a cancelled run");
                }
                self.counters.count(RunStatus::Cancelled);
                Ok(CancelOutcome::Dequeued(Box::new(run)))
            }
            JobState::Running => Ok(CancelOutcome::Requested),
            _ => Ok(CancelOutcome::AlreadyFinished(job.state.as_str())),
        }
    }

    /// Stops claiming, lets jobs in flight finish for up to `grace`, then
    /// hands the rest back to the queue for other nodes.
    pub async fn drain(&self, grace: Duration) {
        self.worker.draining.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        while self.jobs_running() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left: Vec<String> = lock(&self.worker.running).iter().cloned().collect();
        for id in &left {
            match self
                .store
                .requeue_job(
                    id,
                    &self.worker.node_id,
                    now_ms(),
                    Some("handed back: node draining"),
                    false,
                    now_ms(),
                )
                .await
            {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, job = %id, "could not hand a job back"),
            }
            self.stop_local(id, crate::STOP_ABANDONED);
        }
        let _ = self
            .store
            .node_heartbeat(&self.worker.node_id, now_ms(), 0, NodeState::Down.as_str())
            .await;
    }

    fn stop_local(&self, id: &str, reason: u8) {
        let flight = lock(&self.in_flight).get(id).cloned();
        if let Some(f) = flight {
            f.stop(reason, None);
        }
    }

    pub(crate) async fn version_of(
        &self,
        tenant_id: &str,
        p: &RunPayload,
    ) -> Result<Option<Arc<LiveScript>>, StoreError> {
        let Some(version) = self
            .store
            .version(tenant_id, &p.script_id, &p.version)
            .await?
        else {
            return Ok(None);
        };
        let script = Script {
            id: p.script_id.clone(),
            tenant_id: tenant_id.to_owned(),
            name: p.script_name.clone(),
            // The plugins' folder holds only plugins' handler modules.
            kind: if citadel_scripts::plugin_of_entry(&p.script_name).is_some() {
                citadel_domain::ScriptKind::Plugin
            } else {
                citadel_domain::ScriptKind::of(version.language)
            },
            live_seq: None,
            latest_seq: 0,
            created_at: 0,
            updated_at: 0,
        };
        let live =
            LiveScript::decode(script, version).map_err(crate::Undecodable::into_store_error)?;
        Ok(Some(Arc::new(live)))
    }

    async fn run_job(&self, job: Job) {
        let node = self.worker.node_id.clone();
        let end = |state: JobState, error: Option<String>| {
            let id = job.id.clone();
            async move {
                lock(&self.worker.finishing).insert(id.clone());
                let done = FinishedJob {
                    id: id.clone(),
                    state,
                    error,
                };
                match self.finisher.finish(done).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %id, "the job's lease was lost before it finished")
                    }
                    Err(e) => tracing::error!(error = %e, job = %id, "cannot finish a job"),
                }
            }
        };
        if job.kind == crate::WEBHOOK_JOB {
            return self.run_webhook_job(&job).await;
        }
        let payload: RunPayload = match (job.kind.as_str(), serde_json::from_str(&job.payload)) {
            (RUN_JOB | crate::WORKFLOW_JOB, Ok(p)) => p,
            _ => {
                return end(
                    JobState::Failed,
                    Some(format!("unreadable `{}` job", job.kind)),
                )
                .await;
            }
        };
        let live = match self.version_of(&job.tenant_id, &payload).await {
            Ok(Some(live)) => live,
            Ok(None) => {
                return end(
                    JobState::Failed,
                    Some(format!(
                        "version {} of `{}` no longer exists",
                        payload.version, payload.script_name
                    )),
                )
                .await;
            }
            Err(e) => {
                let _ = self
                    .store
                    .requeue_job(
                        &job.id,
                        &node,
                        now_ms() + 1_000,
                        Some(&e.to_string()),
                        true,
                        now_ms(),
                    )
                    .await;
                return;
            }
        };
        let spec = RunSpec {
            tenant_id: job.tenant_id.clone(),
            live,
            input_json: payload.input,
            trigger: payload.trigger,
            principal: payload.principal,
            timeout_ms: payload.timeout_ms,
            run_id: Some(job.id.clone()),
            created_at: Some(job.created_at),
        };
        if job.kind == crate::WORKFLOW_JOB {
            return match self.drive_workflow_job(&job, spec, payload.depth).await {
                crate::workflows::JobTurn::Ended(state, error) => end(state, error).await,
                crate::workflows::JobTurn::Suspended | crate::workflows::JobTurn::Left => {}
            };
        }
        let (run, error) = match self.admit(&spec, RunStatus::Running, IfDropped::LeaveToJob) {
            Ok(registration) => match self.execute(registration, spec, payload.depth).await {
                Ok(Ended { run, error }) => (run, error),
                Err(e) => {
                    // Not recorded: the job is left to its lease, which
                    // expires, and a later attempt runs and records it.
                    tracing::error!(error = %e, job = %job.id, "a job's run was not recorded");
                    return;
                }
            },
            Err(EngineError::Killed(switch)) => {
                let run = refused_run(&spec, &switch);
                if let Err(e) = self.recorder.record(run.clone()).await {
                    tracing::error!(error = %e, job = %job.id, "cannot record a refused run");
                    return;
                }
                self.counters.count(RunStatus::Killed);
                (run, Some(ErrorCode::Killed))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start a job's run");
                return;
            }
        };
        let infrastructure = error.is_some_and(ErrorCode::is_infrastructure);
        match run.status {
            RunStatus::Succeeded => end(JobState::Succeeded, None).await,
            RunStatus::Cancelled | RunStatus::Killed => {
                end(JobState::Cancelled, run.error.clone()).await
            }
            RunStatus::Failed if infrastructure => {
                lock(&self.worker.finishing).insert(job.id.clone());
                let at = now_ms() + backoff_ms(job.attempts);
                match self
                    .store
                    .requeue_job(&job.id, &node, at, run.error.as_deref(), true, now_ms())
                    .await
                {
                    Ok(Some(state)) => {
                        tracing::info!(job = %job.id, state = state.as_str(), "retrying after an infrastructure failure")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, job = %job.id, "cannot requeue a job"),
                }
            }
            _ => end(JobState::Failed, run.error.clone()).await,
        }
    }
}

/// Exponential backoff with ±25 % jitter: 1 s, 2 s, 4 s, … up to 5 min.
fn backoff_ms(attempts: i64) -> i64 {
    let base = 1_000i64
        .saturating_mul(1 << attempts.clamp(1, 9).saturating_sub(1))
        .min(300_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as i64);
    base * 3 / 4 + nanos % (base / 2).max(1)
}

/// The run record of a job that has not recorded one yet.
fn job_run(job: &Job) -> Option<Run> {
    let p: RunPayload = serde_json::from_str(&job.payload).ok()?;
    Some(Run {
        id: job.id.clone(),
        tenant_id: job.tenant_id.clone(),
        script_id: p.script_id,
        script_name: p.script_name,
        version: p.version,
        status: job.state.run_status(),
        trigger: p.trigger,
        principal: p.principal,
        input: crate::caps::input_echo(&p.input),
        result: None,
        logs: "[]".into(),
        logs_truncated: false,
        error: job.last_error.as_ref().map(|e| {
            let code = if job.state == JobState::Dead {
                ErrorCode::DeadLetter
            } else {
                ErrorCode::JobFailed
            };
            StoredError::new(code, "JobError", e).to_json()
        }),
        duration_ms: None,
        cpu_ms: None,
        peak_memory_bytes: None,
        created_at: job.created_at,
        started_at: None,
        finished_at: job.finished_at,
    })
}

fn unknown_run(job: &Job) -> Run {
    Run {
        id: job.id.clone(),
        tenant_id: job.tenant_id.clone(),
        script_id: String::new(),
        script_name: String::new(),
        version: String::new(),
        status: job.state.run_status(),
        // The payload does not decode, so what started it is unknown; a
        // job is an asynchronous run.
        trigger: Trigger::ApiAsync,
        principal: None,
        input: "null".into(),
        result: None,
        logs: "[]".into(),
        logs_truncated: false,
        error: None,
        duration_ms: None,
        cpu_ms: None,
        peak_memory_bytes: None,
        created_at: job.created_at,
        started_at: None,
        finished_at: job.finished_at,
    }
}

/// A queued run a kill switch refused when its turn came.
pub(crate) fn refused_run(spec: &RunSpec, switch: &KillSwitch) -> Run {
    let now = now_ms();
    Run {
        id: spec
            .run_id
            .clone()
            .unwrap_or_else(|| new_time_ordered_id("run")),
        tenant_id: spec.tenant_id.clone(),
        script_id: spec.live.script.id.clone(),
        script_name: spec.live.script.name.clone(),
        version: spec.live.version.version.clone(),
        status: RunStatus::Killed,
        trigger: spec.trigger,
        principal: spec.principal.clone(),
        input: crate::caps::input_echo(&spec.input_json),
        result: None,
        logs: "[]".into(),
        logs_truncated: false,
        error: Some(
            StoredError::new(
                ErrorCode::Killed,
                "Killed",
                &format!(
                    "stopped by the {} kill switch: {}",
                    switch.scope, switch.reason
                ),
            )
            .to_json(),
        ),
        duration_ms: Some(0),
        cpu_ms: Some(0),
        peak_memory_bytes: Some(0),
        created_at: spec.created_at.unwrap_or(now),
        started_at: None,
        finished_at: Some(now),
    }
}

pub(crate) fn spawn(weak: Weak<EngineInner>, config: WorkerConfig) {
    tokio::spawn(claim_loop(weak.clone(), config.clone()));
    tokio::spawn(heartbeat_loop(weak, config));
}

async fn claim_loop(weak: Weak<EngineInner>, cfg: WorkerConfig) {
    loop {
        let Some(engine) = upgrade(&weak) else { return };
        if engine.worker.draining.load(Ordering::SeqCst) {
            return;
        }
        let wake = Arc::clone(&engine.worker.wake);
        let free = cfg.concurrency.saturating_sub(engine.jobs_running());
        let mut claimed = 0;
        if free > 0 {
            let limit = (free as i64).min(cfg.claim_batch);
            let tenant_cap = engine.config.quotas.concurrent_jobs as i64;
            match engine
                .store
                .claim_capped(
                    &cfg.node_id,
                    now_ms(),
                    cfg.lease.as_millis() as i64,
                    limit,
                    Some(tenant_cap),
                )
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        let running = engine.job_running(&job.id);
                        let e = engine.clone();
                        tokio::spawn(async move {
                            e.run_job(job).await;
                            drop(running);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs");
                    drop(engine);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        drop(engine);
        if claimed == 0 {
            tokio::select! {
                () = tokio::time::sleep(cfg.poll) => {}
                () = wake.notified() => {}
            }
        } else if (claimed as i64) < cfg.claim_batch {
            // The queue is drained for now. Jobs arriving one by one would
            // otherwise be claimed one query each (every enqueue and every
            // finished job wakes the loop); a short gap claims them together.
            tokio::time::sleep(CLAIM_GAP).await;
        }
    }
}

/// The pause after a claim that emptied the queue.
const CLAIM_GAP: Duration = Duration::from_millis(5);

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// This node's row in `nodes`.
fn node_row(cfg: &WorkerConfig, started_at: i64, state: NodeState) -> Node {
    Node {
        id: cfg.node_id.clone(),
        role: cfg.role.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: hostname(),
        started_at,
        heartbeat_at: now_ms(),
        running: 0,
        state,
    }
}

impl Engine {
    /// Registers this node (when it works the queue) and proves the
    /// database takes writes. A node that cannot do either at start-up
    /// would accept work it cannot record: callers treat this as fatal.
    pub async fn register(&self) -> Result<(), EngineError> {
        let fail = |what: &str, e: StoreError| {
            EngineError::Unavailable(format!("cannot {what} node `{}`: {e}", self.node_id()))
        };
        if let Some(cfg) = &self.config.worker {
            self.store
                .register_node(&node_row(cfg, self.worker.started_at, NodeState::Up))
                .await
                .map_err(|e| fail("register", e))?;
        }
        self.check_writable()
            .await
            .map_err(|e| fail("write the readiness probe of", e))
    }
}

async fn heartbeat_loop(weak: Weak<EngineInner>, cfg: WorkerConfig) {
    let Some(started_at) = upgrade(&weak).map(|e| e.worker.started_at) else {
        return;
    };
    let node = |state: NodeState| node_row(&cfg, started_at, state);
    if let Some(engine) = upgrade(&weak)
        && let Err(e) = engine.store.register_node(&node(NodeState::Up)).await
    {
        tracing::error!(error = %e, "cannot register this node");
    }
    loop {
        tokio::time::sleep(cfg.heartbeat).await;
        let Some(engine) = upgrade(&weak) else { return };
        let draining = engine.worker.draining.load(Ordering::SeqCst);
        if draining && engine.jobs_running() == 0 {
            return;
        }
        if let Err(e) = engine.beat(&cfg, draining, &node).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

impl Engine {
    async fn beat(
        &self,
        cfg: &WorkerConfig,
        draining: bool,
        node: &(dyn Fn(NodeState) -> Node + Send + Sync),
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut ids: Vec<String> = lock(&self.worker.running).iter().cloned().collect();
        ids.sort_unstable();
        let state = if draining {
            NodeState::Draining
        } else {
            NodeState::Up
        };
        if !self
            .store
            .node_heartbeat(&cfg.node_id, now, ids.len() as i64, state.as_str())
            .await?
        {
            tracing::warn!("this node was marked down; registering again");
            self.store.register_node(&node(state)).await?;
        }
        let held: HashSet<String> = self
            .store
            .renew_leases(&cfg.node_id, &ids, now + cfg.lease.as_millis() as i64)
            .await?
            .into_iter()
            .collect();
        for id in ids.iter().filter(|id| !held.contains(*id)) {
            // A job that ended here (its end being written, or written and
            // gone) left `running` in the database while the renewal ran:
            // no lost lease.
            let ended = lock(&self.worker.finishing).contains(id)
                || !lock(&self.worker.running).contains(id);
            if ended {
                continue;
            }
            // Another node owns it now; stop our copy.
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(job = %id, "lost the lease; stopping the local run");
            self.stop_local(id, crate::STOP_ABANDONED);
        }
        for id in self.store.cancel_requests(&cfg.node_id).await? {
            self.stop_local(&id, crate::STOP_CANCELLED);
        }
        let down = self
            .store
            .mark_silent_nodes_down(now - cfg.node_timeout.as_millis() as i64)
            .await?;
        if !down.is_empty() {
            tracing::warn!(nodes = ?down, "nodes stopped heart-beating; reclaiming their jobs");
        }
        let pruned = self
            .store
            .prune_nodes(now - cfg.node_retention.as_millis() as i64)
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "forgot nodes down for longer than the retention");
        }
        let cutoff = now - cfg.node_timeout.as_millis() as i64;
        let up = self
            .store
            .list_nodes()
            .await?
            .iter()
            .filter(|n| n.state != NodeState::Down && n.heartbeat_at >= cutoff)
            .count();
        self.nodes_up.store(up.max(1), Ordering::Relaxed);
        let reclaimed = self.store.reclaim_expired(now).await?;
        if reclaimed > 0 {
            tracing::info!(reclaimed, "requeued jobs whose lease expired");
            self.worker.wake.notify_one();
        }
        Ok(())
    }
}
