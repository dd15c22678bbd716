//! Runs: start one (synchronously, or queued), list, fetch, cancel, and
//! follow one as it changes.

use std::time::Duration;

use citadel_domain::{RunStatus, Trigger};
use citadel_engine::{
    BatchItem, CancelOutcome, Engine, EngineError, JobRequest, LiveScript, Priority, RUN_STATUSES,
    RunSpec, WatchSlot,
};
use citadel_store::{Run, RunQuery};
use serde_json::json;
use tokio::sync::watch;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller, ErrorCode, checked_name, page_limit};

/// A run to start.
#[derive(Debug, Clone, Default)]
pub struct StartRun {
    /// The script's `input` as JSON text.
    pub input_json: String,
    /// Wait for the result, or queue the run and answer its id.
    pub wait: bool,
    /// A timeout for this run, capped by the platform maximum.
    pub timeout_ms: Option<u64>,
    /// Queue priority of a queued run.
    pub priority: Priority,
    /// Queued runs: a second request with the same key (per tenant) answers
    /// the first run's id instead of enqueuing another.
    pub idempotency_key: Option<String>,
}

/// What starting a run did.
#[derive(Debug)]
pub enum Started {
    /// The run, finished (`wait: true`).
    Finished(Box<Run>),
    /// The run is queued; `duplicate` when an earlier request with the same
    /// idempotency key enqueued it.
    Queued { run_id: String, duplicate: bool },
}

/// The live version of a tenant's script, or why there is none to run:
/// `no_live_version` for a script not approved yet, `not_found` for none.
pub(crate) async fn live_or_refuse(
    app: &App,
    engine: &Engine,
    tenant: &str,
    name: &str,
) -> AppResult<std::sync::Arc<LiveScript>> {
    match engine.live(tenant, name).await? {
        Some(live) => Ok(live),
        None => Err(match app.store.script(tenant, name).await? {
            Some(_) => AppError::new(
                ErrorCode::NoLiveVersion,
                format!("`{name}` has no live version yet (approve one first)"),
            ),
            None => AppError::not_found(format!("script `{name}` not found")),
        }),
    }
}

/// A workflow is started with `POST /v1/workflows/{name}/run`, not as a
/// script.
fn refuse_workflow(live: &LiveScript, name: &str) -> AppResult<()> {
    if live.script.kind == citadel_domain::ScriptKind::Plugin {
        return Err(AppError::invalid(format!(
            "`{name}` is a plugin's handler module: its hooks, routes and jobs run it"
        )));
    }
    if live.language.is_script() {
        return Ok(());
    }
    Err(AppError::invalid(format!(
        "`{name}` is a workflow: start it with POST /v1/workflows/{}/run",
        name.replace('/', "%2F")
    )))
}

/// Runs the script's live version, waiting for it or queueing it. A kill
/// switch covering the script answers `killed`.
pub async fn start(app: &App, caller: &Caller, name: &str, body: StartRun) -> AppResult<Started> {
    checked_name(name)?;
    let engine = app.engine()?;
    let tenant = caller
        .tenant_with(app, Permission::ScriptRun, Some(name))
        .await?;
    check_timeout(engine, body.timeout_ms)?;
    let live = live_or_refuse(app, engine, &tenant, name).await?;
    refuse_workflow(&live, name)?;
    let spec = RunSpec {
        tenant_id: tenant,
        live,
        input_json: body.input_json,
        trigger: if body.wait {
            Trigger::Api
        } else {
            Trigger::ApiAsync
        }
        .to_owned(),
        principal: Some(caller.principal.actor().to_owned()),
        timeout_ms: body.timeout_ms,
        run_id: None,
        created_at: None,
    };
    if let Some(key) = &body.idempotency_key {
        check_idempotency_key(key)?;
    }
    if body.wait {
        let run = engine.run_sync(spec).await.map_err(|e| refusal(e, name))?;
        Ok(Started::Finished(Box::new(run)))
    } else {
        let request = JobRequest {
            priority: body.priority,
            idempotency_key: body.idempotency_key,
            ..JobRequest::default()
        };
        let (run_id, created) = engine
            .enqueue_run(spec, request)
            .await
            .map_err(|e| refusal(e, name))?;
        Ok(Started::Queued {
            run_id,
            duplicate: !created,
        })
    }
}

/// The most runs one batch enqueues.
pub const MAX_BATCH: usize = 1000;

/// Runs to queue at once, one per item.
#[derive(Debug, Clone, Default)]
pub struct StartBatch {
    pub items: Vec<BatchItem>,
    /// A timeout for each run, capped by the platform maximum.
    pub timeout_ms: Option<u64>,
    pub priority: Priority,
}

/// One queued run of a batch: its id, and whether an earlier request (or
/// an earlier item of this one) with the same idempotency key enqueued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRun {
    pub run_id: String,
    pub duplicate: bool,
}

/// Queues one run of the script's live version per item, in one
/// transaction: all of them, or (on any refusal) none. The tenant's rate
/// quota is taken for the whole batch; a kill switch covering the script
/// answers `killed`.
pub async fn start_batch(
    app: &App,
    caller: &Caller,
    name: &str,
    batch: StartBatch,
) -> AppResult<Vec<QueuedRun>> {
    checked_name(name)?;
    let engine = app.engine()?;
    let tenant = caller
        .tenant_with(app, Permission::ScriptRun, Some(name))
        .await?;
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH {
        return Err(AppError::invalid(format!(
            "a batch holds 1 to {MAX_BATCH} items (got {})",
            batch.items.len()
        )));
    }
    for (i, item) in batch.items.iter().enumerate() {
        if let Some(key) = &item.idempotency_key {
            check_idempotency_key(key)
                .map_err(|e| AppError::invalid(format!("items[{i}]: {}", e.message)))?;
        }
    }
    check_timeout(engine, batch.timeout_ms)?;
    let live = live_or_refuse(app, engine, &tenant, name).await?;
    refuse_workflow(&live, name)?;
    let spec = RunSpec {
        tenant_id: tenant,
        live,
        input_json: String::new(),
        trigger: Trigger::ApiAsync,
        principal: Some(caller.principal.actor().to_owned()),
        timeout_ms: batch.timeout_ms,
        run_id: None,
        created_at: None,
    };
    let request = JobRequest {
        priority: batch.priority,
        ..JobRequest::default()
    };
    let queued = engine
        .enqueue_runs(spec, request, batch.items)
        .await
        .map_err(|e| refusal(e, name))?;
    Ok(queued
        .into_iter()
        .map(|(run_id, created)| QueuedRun {
            run_id,
            duplicate: !created,
        })
        .collect())
}

fn check_timeout(engine: &Engine, timeout_ms: Option<u64>) -> AppResult<()> {
    let max = engine.platform().max.timeout_ms;
    match timeout_ms {
        Some(t) if t == 0 || t > max => Err(AppError::invalid(format!(
            "timeout_ms must be between 1 and the platform maximum {max} (got {t})"
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn check_idempotency_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > 200 {
        return Err(AppError::invalid("idempotency_key must be 1–200 bytes"));
    }
    Ok(())
}

/// Whole seconds to wait, at least one.
fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The answer to a run the engine refused.
pub(crate) fn refusal(e: EngineError, script: &str) -> AppError {
    match e {
        EngineError::Killed(switch) => AppError::new(
            ErrorCode::Killed,
            format!(
                "runs of `{script}` are stopped by the {} kill switch: {}",
                switch.scope, switch.reason
            ),
        )
        .with_details(
            json!({ "scope": switch.scope, "target": switch.target, "reason": switch.reason }),
        ),
        EngineError::RateLimited(wait) => AppError::new(
            ErrorCode::RateLimited,
            format!(
                "the tenant's runs per minute are used up; retry in {} s",
                retry_secs(wait)
            ),
        )
        .with_retry_after(retry_secs(wait)),
        EngineError::Busy { what, limit } => AppError::new(
            ErrorCode::ConcurrencyLimit,
            format!("the {what} has {limit} runs in flight, its limit"),
        )
        .with_retry_after(1),
        EngineError::Store(e) => e.into(),
        EngineError::Unavailable(e) => AppError::unavailable(e).with_retry_after(5),
        EngineError::TooDeep(_) => AppError::internal("an API run has no event depth"),
        // No wait would admit it: the caller splits the batch.
        e @ EngineError::BatchOverRate { .. } => AppError::invalid(e.to_string()),
        EngineError::NotRerunnable(why) => AppError::conflict(why),
    }
}

/// Filters of a listing of runs, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub script: Option<String>,
    pub status: Option<String>,
    pub trigger: Option<String>,
    /// Runs created at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Runs created before this time (ms since the epoch).
    pub until: Option<i64>,
    /// Runs older than this run id (paging).
    pub before: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<i64>,
}

/// A listing of the tenant's runs the caller may read, read in chunks (so
/// a page cut by its size has not loaded many more rows than it shows).
pub struct RunListing {
    caller: Caller,
    query: RunQuery,
    /// The page size asked for.
    pub limit: i64,
    ended: bool,
}

/// One run read by a listing: shown, or hidden (the caller may not read
/// its script) but counted, so paging moves past it.
pub enum Listed {
    Shown(Box<Run>),
    Hidden(String),
}

impl Listed {
    pub fn id(&self) -> &str {
        match self {
            Listed::Shown(r) => &r.id,
            Listed::Hidden(id) => id,
        }
    }
}

/// Opens a listing after checking the filters and the caller's right to
/// read runs (of that script, or of some script).
pub async fn listing(app: &App, caller: &Caller, filter: RunFilter) -> AppResult<RunListing> {
    let status = match &filter.status {
        Some(s) => Some(s.parse::<RunStatus>().map_err(|_| {
            AppError::invalid(format!(
                "unknown status `{s}` (one of {})",
                RUN_STATUSES.join(", ")
            ))
        })?),
        None => None,
    };
    let trigger = match &filter.trigger {
        Some(t) => Some(t.parse::<Trigger>().map_err(|_| {
            AppError::invalid(format!(
                "unknown trigger `{t}` (one of {})",
                Trigger::ALL.map(Trigger::as_str).join(", ")
            ))
        })?),
        None => None,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(AppError::invalid("since must not be after until"));
    }
    let limit = page_limit(filter.limit, 100, "limit must be 1..=1000")?;
    let tenant = match &filter.script {
        Some(name) => {
            checked_name(name)?;
            caller
                .tenant_with(app, Permission::ScriptRead, Some(name))
                .await?
        }
        None => {
            let tenant = caller.tenant(app).await?;
            caller
                .require_somewhere(app, Permission::ScriptRead)
                .await?;
            tenant
        }
    };
    Ok(RunListing {
        caller: caller.clone(),
        query: RunQuery {
            tenant_id: tenant,
            script_name: filter.script,
            status,
            trigger,
            since: filter.since,
            until: filter.until,
            before: filter.before,
            limit: 0,
        },
        limit,
        ended: false,
    })
}

impl RunListing {
    /// The next `want` runs (fewer at the end of the listing; none after).
    pub async fn next(&mut self, app: &App, want: i64) -> AppResult<Vec<Listed>> {
        if self.ended {
            return Ok(Vec::new());
        }
        self.query.limit = want;
        let runs = app.store.list_runs(&self.query).await?;
        self.ended = (runs.len() as i64) < want;
        if let Some(last) = runs.last() {
            self.query.before = Some(last.id.clone());
        }
        Ok(runs
            .into_iter()
            .map(|r| {
                if self
                    .caller
                    .principal
                    .allows(Permission::ScriptRead, Some(&r.script_name))
                {
                    Listed::Shown(Box::new(r))
                } else {
                    Listed::Hidden(r.id)
                }
            })
            .collect())
    }

    /// True once the store has no more runs for this listing.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// The caller's tenant and one of its runs (in flight here, or recorded),
/// once the caller holds `permission` on the run's script.
pub(crate) async fn run_with(
    app: &App,
    caller: &Caller,
    permission: Permission,
    id: &str,
) -> AppResult<(String, Run)> {
    let tenant = caller.tenant(app).await?;
    let engine = app.engine()?;
    let run = engine.find_run(&tenant, id).await?;
    let run = run.ok_or_else(|| AppError::not_found(format!("run `{id}` not found")))?;
    caller
        .require(app, permission, Some(&run.script_name))
        .await?;
    Ok((tenant, run))
}

/// One run; while it is in flight on this node, its current state.
pub async fn get(app: &App, caller: &Caller, id: &str) -> AppResult<Run> {
    Ok(run_with(app, caller, Permission::ScriptRead, id).await?.1)
}

/// Cancels a queued or running run and answers it once it has stopped
/// (or as it is after a few seconds, if it has not).
pub async fn cancel(app: &App, caller: &Caller, id: &str) -> AppResult<Run> {
    let (tenant, run) = run_with(app, caller, Permission::ScriptRun, id).await?;
    let engine = app.engine()?;
    let answer = match engine.cancel_anywhere(&tenant, id).await? {
        CancelOutcome::AlreadyFinished(status) => {
            return Err(AppError::new(
                ErrorCode::AlreadyFinished,
                format!("run `{id}` already finished ({status})"),
            ));
        }
        CancelOutcome::NotFound => {
            return Err(AppError::not_found(format!("run `{id}` not found")));
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
                if let Some(r) = app.store.run(&tenant, id).await?
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
    caller
        .record_change(
            app,
            &tenant,
            "run.cancel",
            id,
            json!({ "script": run.script_name }),
        )
        .await?;
    match answer {
        Some(r) => Ok(r),
        None => Ok(run_with(app, caller, Permission::ScriptRun, id).await?.1),
    }
}

/// How often a followed run that is not in flight on this node (queued,
/// or running on another node) is read again. Runs in flight here are
/// pushed by the engine as they change.
const REMOTE_POLL: Duration = Duration::from_millis(500);

/// A run followed as it changes: each [`RunFollower::next`] is its state
/// after a change, until it has finished. Holds one of the tenant's
/// stream places on this node while it lives.
pub struct RunFollower {
    engine: Engine,
    tenant: String,
    id: String,
    first: Option<Run>,
    finished: bool,
    /// Changes of the run while it is in flight here.
    changes: Option<watch::Receiver<u64>>,
    admissions: watch::Receiver<u64>,
    _slot: WatchSlot,
}

/// Starts following a run the caller may read. A tenant follows at most
/// `[quotas] streams` runs at once on a node (`too_many_streams` past it).
pub async fn follow(app: &App, caller: &Caller, id: &str) -> AppResult<RunFollower> {
    let (tenant, first) = run_with(app, caller, Permission::ScriptRead, id).await?;
    let engine = app.engine()?.clone();
    let Some(slot) = engine.watch_slot(&tenant) else {
        return Err(AppError::new(
            ErrorCode::TooManyStreams,
            "the tenant has as many run event streams open as it may; close one first",
        )
        .with_retry_after(1));
    };
    let mut admissions = engine.watch_admissions();
    admissions.mark_unchanged();
    // Subscribed first, then read again: a change between the first read
    // and the subscription (a log line, the start) is not missed.
    let changes = engine.watch_run(&tenant, id);
    let first = match changes {
        Some(_) => engine.in_flight_run(&tenant, id).unwrap_or(first),
        None => first,
    };
    Ok(RunFollower {
        engine,
        tenant,
        id: id.to_owned(),
        first: Some(first),
        finished: false,
        changes,
        admissions,
        _slot: slot,
    })
}

impl RunFollower {
    /// The run's state now (first call) or after its next change; `None`
    /// once it has finished (after the state that says so) or is gone.
    pub async fn next(&mut self) -> Option<Run> {
        if self.finished {
            return None;
        }
        let run = match self.first.take() {
            Some(r) => Some(r),
            None => self.next_state().await,
        };
        match &run {
            Some(r) => self.finished = r.finished_at.is_some(),
            None => self.finished = true,
        }
        run
    }

    /// Waits for the run's next state: pushed by the engine while the run
    /// is in flight on this node; else read from the database after
    /// `REMOTE_POLL`, or at once when a run is admitted here (it may be
    /// this one).
    async fn next_state(&mut self) -> Option<Run> {
        let (engine, tenant, id) = (&self.engine, self.tenant.as_str(), self.id.as_str());
        // Admissions of other runs wake the wait without pushing the read
        // back.
        let poll_at = tokio::time::Instant::now() + REMOTE_POLL;
        loop {
            if let Some(rx) = &mut self.changes {
                // An error means the run left the registry: read its record.
                let _ = rx.changed().await;
                if let Some(run) = engine.in_flight_run(tenant, id) {
                    return Some(run);
                }
                self.changes = None;
            } else {
                tokio::select! {
                    () = tokio::time::sleep_until(poll_at) => {}
                    _ = self.admissions.changed() => {
                        match engine.watch_run(tenant, id) {
                            Some(rx) => {
                                self.changes = Some(rx);
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
            self.changes = engine.watch_run(tenant, id);
            engine
                .counters
                .stream_polls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return engine.find_run(tenant, id).await.ok().flatten();
        }
    }
}

/// The span a dashboard looks back over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsWindow {
    /// The last hour, per minute.
    Hour,
    /// The last day, per 15 minutes.
    Day,
}

impl StatsWindow {
    pub fn parse(s: &str) -> AppResult<Self> {
        match s {
            "hour" => Ok(StatsWindow::Hour),
            "day" => Ok(StatsWindow::Day),
            other => Err(AppError::invalid(format!(
                "unknown window `{other}` (one of hour, day)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatsWindow::Hour => "hour",
            StatsWindow::Day => "day",
        }
    }

    pub fn span_ms(self) -> i64 {
        match self {
            StatsWindow::Hour => 3_600_000,
            StatsWindow::Day => 86_400_000,
        }
    }

    pub fn bucket_ms(self) -> i64 {
        match self {
            StatsWindow::Hour => 60_000,
            StatsWindow::Day => 900_000,
        }
    }
}

/// How many of a window's newest runs the percentiles read: enough for a
/// steady p99, few enough that a busy tenant's dashboard stays cheap.
pub const STATS_SAMPLE_LIMIT: i64 = 20_000;

/// One script's finished runs in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStats {
    pub script: String,
    pub finished: i64,
    pub failed: i64,
    pub p50_duration_ms: Option<i64>,
    pub p99_duration_ms: Option<i64>,
    pub p50_cpu_ms: Option<i64>,
    pub p99_cpu_ms: Option<i64>,
}

/// A tenant's runs over a window: counts per bucket, and per-script
/// percentiles of the newest runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatsView {
    pub window: StatsWindow,
    pub since: i64,
    pub bucket_ms: i64,
    pub buckets: Vec<citadel_store::RunBucket>,
    /// Busiest first.
    pub scripts: Vec<ScriptStats>,
    /// How many runs the per-script figures read (at most
    /// [`STATS_SAMPLE_LIMIT`], the newest).
    pub sampled: usize,
    /// True when the window holds more runs than were read.
    pub truncated: bool,
}

/// The caller's dashboard: the runs of the scripts it may read. A caller
/// scoped to folders gets buckets counted from the sampled runs of its
/// folders only.
pub async fn stats(app: &App, caller: &Caller, window: StatsWindow) -> AppResult<RunStatsView> {
    let tenant = caller.tenant(app).await?;
    caller
        .require_somewhere(app, Permission::ScriptRead)
        .await?;
    let since = citadel_store::now_ms() - window.span_ms();
    let bucket_ms = window.bucket_ms();
    let raw = app
        .store
        .run_stats(&citadel_store::RunStatsQuery {
            tenant_id: tenant,
            since,
            bucket_ms,
            sample_limit: STATS_SAMPLE_LIMIT,
        })
        .await?;
    let truncated = raw.samples.len() as i64 >= STATS_SAMPLE_LIMIT;
    let tenant_wide = caller.principal.allows(Permission::ScriptRead, None);
    let samples: Vec<citadel_store::RunSample> = raw
        .samples
        .into_iter()
        .filter(|s| {
            tenant_wide
                || caller
                    .principal
                    .allows(Permission::ScriptRead, Some(&s.script_name))
        })
        .collect();
    let buckets = if tenant_wide {
        raw.buckets
    } else {
        // Counted from what the caller may see; the samples carry no time,
        // so a scoped dashboard shows its share in one bucket per window.
        let failed = samples
            .iter()
            .filter(|s| s.status != RunStatus::Succeeded)
            .count() as i64;
        if samples.is_empty() {
            Vec::new()
        } else {
            vec![citadel_store::RunBucket {
                start: since - since.rem_euclid(bucket_ms),
                finished: samples.len() as i64,
                failed,
            }]
        }
    };
    let mut by_script: std::collections::BTreeMap<&str, Vec<&citadel_store::RunSample>> =
        std::collections::BTreeMap::new();
    for s in &samples {
        by_script.entry(&s.script_name).or_default().push(s);
    }
    let mut scripts: Vec<ScriptStats> = by_script
        .into_iter()
        .map(|(script, runs)| {
            let mut durations: Vec<i64> = runs.iter().filter_map(|r| r.duration_ms).collect();
            let mut cpu: Vec<i64> = runs.iter().filter_map(|r| r.cpu_ms).collect();
            durations.sort_unstable();
            cpu.sort_unstable();
            ScriptStats {
                script: script.to_owned(),
                finished: runs.len() as i64,
                failed: runs
                    .iter()
                    .filter(|r| r.status != RunStatus::Succeeded)
                    .count() as i64,
                p50_duration_ms: percentile(&durations, 50),
                p99_duration_ms: percentile(&durations, 99),
                p50_cpu_ms: percentile(&cpu, 50),
                p99_cpu_ms: percentile(&cpu, 99),
            }
        })
        .collect();
    scripts.sort_by(|a, b| b.finished.cmp(&a.finished).then(a.script.cmp(&b.script)));
    Ok(RunStatsView {
        window,
        since,
        bucket_ms,
        buckets,
        scripts,
        sampled: samples.len(),
        truncated,
    })
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 99), Some(7));
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 99), Some(99));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 99), Some(3));
    }
}
