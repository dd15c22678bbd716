//! Runs scripts for the server (and, later, for queue workers): picks the
//! live version, applies the tenant's limits, refuses runs a kill switch
//! covers, keeps the runs in flight so they can be cancelled or killed, and
//! records every run.
//!
//! The engine knows tenants and scripts, not HTTP. It reaches the database
//! only through the `Store` trait.

mod batch;
pub mod caps;
mod error;
mod events;
mod executor;
mod gateway;
mod killswitch;
mod quota;
mod scheduler;
pub mod steps;
mod webhooks;
mod worker;
mod workflows;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use citadel_analyzer::{Diagnostic, Language};
use citadel_domain as domain;
use citadel_pool::PoolRun;
use citadel_sandbox::{CancelToken, LogLine, RunOutcome, RunStatus};
use citadel_scripts::{CapabilitySpec, LimitOverrides, PlatformLimits, TenantSettings};
use citadel_store::{
    KillSwitch, Run, Script, ScriptVersion, Store, StoreError, new_time_ordered_id, now_ms,
};
use lru::LruCache;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use batch::{Enqueuer, Finisher, Recorder};
pub use error::{ErrorCode, StoredError};
pub use events::{
    MAX_EVENT_DEPTH, matches as event_matches, validate_event_type, validate_pattern,
};
pub use executor::{Executor, InProcess};
pub use gateway::{
    GatewayMetrics, KV_LIST_DEFAULT, KV_LIST_MAX, KV_MAX_TTL_S, fetch_request, response_json,
};
pub use killswitch::{KillScope, covers};
pub use quota::Quotas;
pub use scheduler::{LATE_TOLERANCE_MS, SCHEDULE_TRIGGER, occurrence_key};
pub use webhooks::{Attempted, ExtensionMetrics, WEBHOOK_JOB, parse_endpoint};
pub use worker::{BatchItem, CancelOutcome, JobRequest, Priority, RUN_JOB, WorkerConfig};
pub use workflows::{DEFAULT_APPROVAL_TIMEOUT, WORKFLOW_JOB, WorkflowSettings};

/// Every status a run can have, in the order metrics list them.
pub const RUN_STATUSES: [&str; 7] = [
    domain::RunStatus::Queued.as_str(),
    domain::RunStatus::Running.as_str(),
    domain::RunStatus::Succeeded.as_str(),
    domain::RunStatus::Failed.as_str(),
    domain::RunStatus::TimedOut.as_str(),
    domain::RunStatus::Cancelled.as_str(),
    domain::RunStatus::Killed.as_str(),
];

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub platform: PlatformLimits,
    /// How long a node trusts its cached view of a live version or a
    /// tenant's settings changed on another node. Changes made through this
    /// node apply at once.
    pub cache_ttl: Duration,
    /// How often kill switches engaged on other nodes are picked up.
    pub kill_switch_poll: Duration,
    /// Work the durable queue from this node (`None`: enqueue only).
    pub worker: Option<WorkerConfig>,
    pub quotas: Quotas,
    /// Opens tenants' secrets for `api.secrets.get` (`None`: no master key
    /// on this node, and the capability answers `unavailable`).
    pub vault: Option<Arc<citadel_secrets::Vault>>,
    /// Makes `api.http.fetch` requests (`None`: the capability answers
    /// `unavailable`).
    pub egress: Option<Arc<citadel_egress::Egress>>,
    /// Serves `api.db.query` (`None`: the capability answers
    /// `unavailable`).
    pub datasources: Option<DataSourceConfig>,
    /// What workflow runs may do on this node.
    pub workflows: WorkflowSettings,
}

/// Where SQLite data sources live and what one query may take.
#[derive(Debug, Clone)]
pub struct DataSourceConfig {
    /// SQLite sources are files under this directory (never outside it).
    pub root: std::path::PathBuf,
    /// Rows, time and bytes of one query (the run's deadline also bounds
    /// its time).
    pub limits: citadel_datasource::QueryLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            platform: PlatformLimits::default(),
            cache_ttl: Duration::from_secs(1),
            kill_switch_poll: Duration::from_millis(50),
            worker: Some(WorkerConfig::default()),
            quotas: Quotas::default(),
            vault: None,
            egress: None,
            datasources: None,
            workflows: WorkflowSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("stopped by the {} kill switch: {}", .0.scope, .0.reason)]
    Killed(Box<KillSwitch>),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database did not take a write this answer depends on (the run's
    /// record): nothing is answered as done that is not durable.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the tenant's rate of runs is exceeded; retry in {0:?}")]
    RateLimited(Duration),
    #[error("the {what} has {limit} runs in flight, its limit")]
    Busy {
        /// `tenant` or `script`.
        what: &'static str,
        limit: u64,
    },
    #[error("events may chain at most {0} deep")]
    TooDeep(i64),
    /// A batch of runs larger than the tenant's rate could ever admit at
    /// once on this node.
    #[error(
        "a batch of {asked} runs is more than the {per_node} runs per minute this node admits for the tenant"
    )]
    BatchOverRate { asked: usize, per_node: u64 },
    /// A workflow run that cannot be re-run as asked (why).
    #[error("{0}")]
    NotRerunnable(String),
}

/// A script with its live version, decoded once and shared by its runs.
#[derive(Debug)]
pub struct LiveScript {
    pub script: Script,
    pub version: ScriptVersion,
    pub language: Language,
    pub capabilities: CapabilitySpec,
    pub limits: LimitOverrides,
}

impl LiveScript {
    /// Decodes a version's language, grant and limits. A field that does not
    /// decode is an error, never a default: an unreadable grant must not
    /// become "no capabilities" nor unreadable limits the platform's.
    pub fn decode(script: Script, version: ScriptVersion) -> Result<LiveScript, Undecodable> {
        let at = |field: &'static str, cause: String| Undecodable {
            tenant: version.tenant_id.clone(),
            script: Some(script.name.clone()),
            version: Some(version.version.clone()),
            field,
            cause,
        };
        let language = version.language;
        let capabilities = serde_json::from_str(&version.capabilities)
            .map_err(|e| at("capabilities", e.to_string()))?;
        let limits =
            serde_json::from_str(&version.limits).map_err(|e| at("limits", e.to_string()))?;
        Ok(LiveScript {
            capabilities,
            limits,
            language,
            script,
            version,
        })
    }
}

/// A stored row the engine cannot decode: which tenant (and script and
/// version) it belongs to, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant `{tenant}`{}: `{field}` does not decode: {cause}", self.location())]
pub struct Undecodable {
    pub tenant: String,
    pub script: Option<String>,
    pub version: Option<String>,
    /// The column, e.g. `capabilities`, `limits`, `settings`.
    pub field: &'static str,
    pub cause: String,
}

impl Undecodable {
    fn location(&self) -> String {
        let mut at = String::new();
        if let Some(script) = &self.script {
            at.push_str(&format!(", script `{script}`"));
        }
        if let Some(version) = &self.version {
            at.push_str(&format!(", version `{version}`"));
        }
        at
    }

    /// As the store's error for a column that does not decode, so every
    /// caller that reads through the store refuses it as it refuses any
    /// other bad row.
    pub fn into_store_error(self) -> StoreError {
        StoreError::Database(sqlx::Error::ColumnDecode {
            index: self.field.to_owned(),
            source: Box::new(self),
        })
    }

    /// A store error for a script's row that did not decode, with the
    /// tenant and script it belongs to; any other error as it is.
    pub fn locate(e: StoreError, tenant: &str, script: &str) -> StoreError {
        match e {
            StoreError::Database(sqlx::Error::ColumnDecode { index, source })
                if !source.is::<Undecodable>() =>
            {
                // The columns a version row has that can fail to decode
                // (sqlx names a column by its quoted name).
                let column = index.trim_matches('"');
                let field = ["language", "state", "capabilities", "limits"]
                    .into_iter()
                    .find(|c| *c == column)
                    .unwrap_or("row");
                Undecodable {
                    tenant: tenant.to_owned(),
                    script: Some(script.to_owned()),
                    version: None,
                    field,
                    cause: source.to_string(),
                }
                .into_store_error()
            }
            other => other,
        }
    }

    /// True when a store error is a row that did not decode (as opposed to
    /// a database that cannot be reached just now).
    pub fn is_in(e: &StoreError) -> bool {
        matches!(
            e,
            StoreError::Database(sqlx::Error::ColumnDecode { source, .. })
                if source.is::<Undecodable>()
        )
    }
}

/// One run to start.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub tenant_id: String,
    pub live: Arc<LiveScript>,
    /// The input as JSON text.
    pub input_json: String,
    pub trigger: domain::Trigger,
    pub principal: Option<String>,
    /// A timeout for this run only (still capped by the platform).
    pub timeout_ms: Option<u64>,
    /// The run's id and creation time when it was decided earlier (a queued
    /// job's run); new ones otherwise.
    pub run_id: Option<String>,
    pub created_at: Option<i64>,
}

/// Why a run in flight was stopped from outside.
const STOP_NONE: u8 = 0;
const STOP_CANCELLED: u8 = 1;
const STOP_KILLED: u8 = 2;
/// This node lost the run's job (its lease passed to another node, or it was
/// handed back on drain): the run stops and is not recorded, since the job's
/// next run records it.
const STOP_ABANDONED: u8 = 3;

struct InFlight {
    run: Mutex<Run>,
    /// Log lines delivered while the run is in flight (the outcome brings
    /// them all at the end).
    live_logs: Mutex<LiveLogs>,
    tenant_id: String,
    script_name: String,
    cancel: CancelToken,
    /// Events this run emitted (capped by `Quotas::events_per_run`).
    emitted: AtomicU64,
    stop: AtomicU8,
    killed_by: Mutex<Option<KillSwitch>>,
    done: watch::Sender<bool>,
    /// Bumped whenever the run changes as its watchers see it (started,
    /// log lines delivered, finished and recorded): streams wait on it
    /// instead of polling.
    changes: watch::Sender<u64>,
    /// The secrets this run read, redacted from all it leaves behind.
    revealed: Mutex<Revealed>,
    /// Capabilities whose denial this run has audited (a bit each).
    denials_audited: AtomicU8,
    /// HTTP requests this run made (capped by `Quotas::http_calls_per_run`).
    http_calls: AtomicU64,
    /// Queries this run made (capped by `Quotas::db_queries_per_run`).
    db_calls: AtomicU64,
}

/// Secret values a run has read, and the redactor made of them.
#[derive(Default)]
struct Revealed {
    values: Vec<(String, zeroize::Zeroizing<String>)>,
    redactor: Option<Arc<citadel_secrets::Redactor>>,
}

#[derive(Default)]
struct LiveLogs {
    lines: Vec<LogLine>,
    bytes: usize,
    /// The run's log limit: lines past it are not kept.
    limit: usize,
}

impl InFlight {
    /// Keeps delivered log lines up to the run's log limit (a host process
    /// could send more than its run was allowed to log).
    fn push_logs(&self, lines: Vec<LogLine>) {
        let redactor = self.redactor();
        let mut live = lock(&self.live_logs);
        for mut line in lines {
            if let Some(r) = &redactor {
                line.message = r.redact(&line.message).into_owned();
            }
            let bytes = live.bytes + line.message.len();
            if bytes > live.limit {
                return;
            }
            live.bytes = bytes;
            live.lines.push(line);
        }
        drop(live);
        self.changed();
    }

    /// The redactor of what this run read from the vault, if it read any.
    fn redactor(&self) -> Option<Arc<citadel_secrets::Redactor>> {
        lock(&self.revealed).redactor.clone()
    }

    /// `text` with this run's secrets redacted.
    fn redact<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        match self.redactor() {
            Some(r) => std::borrow::Cow::Owned(r.redact(text).into_owned()),
            None => std::borrow::Cow::Borrowed(text),
        }
    }

    /// JSON text with this run's secrets redacted, still JSON: a value that
    /// stood outside a string (a secret that reads as a number) turns the
    /// whole text into one JSON string.
    fn redact_json(&self, json: String) -> String {
        let Some(r) = self.redactor() else {
            return json;
        };
        match r.redact(&json) {
            std::borrow::Cow::Borrowed(_) => json,
            std::borrow::Cow::Owned(text) => {
                if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
                    text
                } else {
                    serde_json::Value::String(text).to_string()
                }
            }
        }
    }

    /// The value of a secret this run has read already.
    fn revealed_value(&self, name: &str) -> Option<String> {
        lock(&self.revealed)
            .values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
    }

    /// Remembers a secret the run read, so nothing the run leaves holds it.
    fn reveal(&self, name: String, value: &str) {
        let mut revealed = lock(&self.revealed);
        if revealed.values.iter().any(|(n, _)| *n == name) {
            return;
        }
        revealed
            .values
            .push((name, zeroize::Zeroizing::new(value.to_owned())));
        let redactor = citadel_secrets::Redactor::new(
            revealed
                .values
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        revealed.redactor = Some(Arc::new(redactor));
    }

    /// True the first time `capability` is denied to this run.
    fn first_denial(&self, capability: citadel_domain::Capability) -> bool {
        let bit = 1u8 << (capability as u8);
        self.denials_audited.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn stop(&self, reason: u8, switch: Option<KillSwitch>) {
        if self
            .stop
            .compare_exchange(STOP_NONE, reason, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            *lock(&self.killed_by) = switch;
        }
        self.cancel.cancel();
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineCounters {
    runs: [AtomicU64; RUN_STATUSES.len()],
    pub refused_by_kill_switch: AtomicU64,
    pub killed_in_flight: AtomicU64,
    pub analyses: AtomicU64,
    pub analysis_cache_hits: AtomicU64,
    /// Database reads by run event streams (they wait for changes of runs
    /// in flight on this node, and poll only for the others).
    pub stream_polls: AtomicU64,
    /// Jobs this node was running when it found their lease taken (another
    /// node reclaimed them): their local runs were stopped.
    pub leases_lost: AtomicU64,
}

impl EngineCounters {
    /// Finished runs by status.
    pub fn runs(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        RUN_STATUSES
            .iter()
            .zip(&self.runs)
            .map(|(s, n)| (*s, n.load(Ordering::Relaxed)))
    }

    fn count(&self, status: domain::RunStatus) {
        if let Some(i) = RUN_STATUSES.iter().position(|s| *s == status.as_str()) {
            self.runs[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Cached<T> = (Instant, T);
/// (tenant id, script name) → the live version as of the instant.
type LiveCache = LruCache<(String, String), Cached<Option<Arc<LiveScript>>>>;

/// Entries read at a time, kept for `cache_ttl`.
type TtlCache<K, V> = Mutex<LruCache<K, Cached<V>>>;

pub struct EngineInner {
    store: Arc<dyn Store>,
    executor: Executor,
    config: EngineConfig,
    in_flight: Mutex<HashMap<String, Arc<InFlight>>>,
    switches: Mutex<Arc<Vec<KillSwitch>>>,
    recorder: Recorder,
    enqueuer: Enqueuer,
    finisher: Finisher,
    attempts: batch::AttemptRecorder,
    deliveries_done: batch::DeliveryFinisher,
    published: batch::PublishWriter,
    audit_log: batch::AuditWriter,
    analyses: Mutex<LruCache<[u8; 32], Arc<Vec<Diagnostic>>>>,
    /// Tenants' webhook endpoints and plugins, as events and deliveries
    /// read them (for `cache_ttl`; changes through this node apply at once).
    endpoint_lists: TtlCache<String, Arc<Vec<citadel_store::WebhookEndpoint>>>,
    plugin_lists: TtlCache<String, Arc<Vec<citadel_store::Plugin>>>,
    tenant_names: TtlCache<String, Option<citadel_store::Tenant>>,
    /// Secret values webhook deliveries use, by tenant and name, kept for
    /// `cache_ttl`.
    delivery_secrets: TtlCache<(String, String), zeroize::Zeroizing<String>>,
    /// Parsed webhook endpoint documents by tenant, name and version.
    endpoints: Mutex<LruCache<(String, String, i64), Arc<citadel_plugin::Endpoint>>>,
    live: Mutex<LiveCache>,
    settings: Mutex<LruCache<String, Cached<Arc<TenantSettings>>>>,
    pub counters: EngineCounters,
    /// Bumped on every admission (see `watch_admissions`).
    admissions: watch::Sender<u64>,
    /// Nodes up at this node's last heartbeat (1 until it knows).
    nodes_up: std::sync::atomic::AtomicUsize,
    worker: worker::WorkerState,
    quota: quota::QuotaState,
    /// Capability calls counted for `/metrics`.
    pub gateway_metrics: GatewayMetrics,
    /// Plugin hook, route and job runs and webhook deliveries, per plugin
    /// and endpoint, for `/metrics`.
    pub extension_metrics: webhooks::ExtensionMetrics,
    /// PostgreSQL connections kept for `api.db.query`, bounded.
    db_pools: citadel_datasource::Pools,
    /// The egress of webhook deliveries: the node's, following no
    /// redirects (a receiver cannot send a delivery elsewhere).
    delivery_egress: Option<Arc<citadel_egress::Egress>>,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

impl std::ops::Deref for Engine {
    type Target = EngineInner;
    fn deref(&self) -> &EngineInner {
        &self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections leave their data consistent; a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Engine {
    /// Starts the engine's background tasks (run recorder, kill-switch
    /// poller). Must be called within a Tokio runtime.
    pub fn start(store: Arc<dyn Store>, executor: Executor, config: EngineConfig) -> Engine {
        let worker = worker::WorkerState::new(config.worker.as_ref());
        let engine = Engine(Arc::new(EngineInner {
            recorder: Recorder::start(Arc::clone(&store)),
            enqueuer: Enqueuer::start(Arc::clone(&store)),
            finisher: Finisher::start(Arc::clone(&store), worker.node_id().to_owned()),
            attempts: batch::AttemptRecorder::start(Arc::clone(&store)),
            published: batch::PublishWriter::start(Arc::clone(&store)),
            deliveries_done: batch::DeliveryFinisher::start(
                Arc::clone(&store),
                worker.node_id().to_owned(),
            ),
            audit_log: batch::AuditWriter::start(Arc::clone(&store)),
            store,
            executor,
            in_flight: Mutex::new(HashMap::new()),
            switches: Mutex::new(Arc::new(Vec::new())),
            analyses: Mutex::new(LruCache::new(cap(4096))),
            endpoints: Mutex::new(LruCache::new(cap(4096))),
            endpoint_lists: Mutex::new(LruCache::new(cap(4096))),
            delivery_secrets: Mutex::new(LruCache::new(cap(4096))),
            plugin_lists: Mutex::new(LruCache::new(cap(4096))),
            tenant_names: Mutex::new(LruCache::new(cap(4096))),
            live: Mutex::new(LruCache::new(cap(16384))),
            settings: Mutex::new(LruCache::new(cap(4096))),
            counters: EngineCounters::default(),
            admissions: watch::Sender::new(0),
            nodes_up: std::sync::atomic::AtomicUsize::new(1),
            worker,
            quota: quota::QuotaState::default(),
            gateway_metrics: GatewayMetrics::default(),
            extension_metrics: webhooks::ExtensionMetrics::default(),
            db_pools: citadel_datasource::Pools::new(),
            delivery_egress: config.egress.as_ref().and_then(|e| {
                citadel_egress::Egress::new(citadel_egress::EgressConfig {
                    max_redirects: 0,
                    ..e.config().clone()
                })
                .ok()
                .map(Arc::new)
            }),
            config,
        }));
        killswitch::spawn_poller(Arc::downgrade(&engine.0));
        if let Some(cfg) = engine.config.worker.clone() {
            worker::spawn(Arc::downgrade(&engine.0), cfg);
            scheduler::spawn(Arc::downgrade(&engine.0));
        }
        engine
    }

    /// Nodes working the queue as last seen (at least 1): quotas are shared
    /// among them.
    pub fn nodes_up(&self) -> usize {
        self.nodes_up.load(Ordering::Relaxed).max(1)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn platform(&self) -> &PlatformLimits {
        &self.config.platform
    }

    pub fn quotas(&self) -> &Quotas {
        &self.config.quotas
    }

    /// The vault that opens tenants' secrets, where this node has a master
    /// key.
    pub fn vault(&self) -> Option<&Arc<citadel_secrets::Vault>> {
        self.config.vault.as_ref()
    }

    /// The analyzer's findings for a source (before any tenant policy),
    /// computed once per content hash.
    pub fn analyze(&self, source: &str, language: Language) -> Arc<Vec<Diagnostic>> {
        let mut h = Sha256::new();
        h.update([language as u8]);
        h.update(source.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        if let Some(found) = lock(&self.analyses).get(&key) {
            self.counters
                .analysis_cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Arc::clone(found);
        }
        self.counters.analyses.fetch_add(1, Ordering::Relaxed);
        // Off the async worker's small stack: the analyzer's nesting limits
        // are the rule, its own large stack the margin.
        let diagnostics =
            Arc::new(citadel_analyzer::prepare_on_own_stack(source, language).diagnostics);
        lock(&self.analyses).put(key, Arc::clone(&diagnostics));
        diagnostics
    }

    /// A tenant's settings (defaults if it never set any).
    pub async fn settings(&self, tenant_id: &str) -> Result<Arc<TenantSettings>, StoreError> {
        if let Some((at, s)) = lock(&self.settings).get(tenant_id)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(Arc::clone(s));
        }
        // Settings that do not decode are an error, never the defaults: a
        // node that read them as defaults would treat approval as off.
        let settings = match self.store.tenant_settings(tenant_id).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Undecodable {
                    tenant: tenant_id.to_owned(),
                    script: None,
                    version: None,
                    field: "settings",
                    cause: e.to_string(),
                }
                .into_store_error()
            })?,
            None => TenantSettings::default(),
        };
        let settings = Arc::new(settings);
        lock(&self.settings).put(
            tenant_id.to_owned(),
            (Instant::now(), Arc::clone(&settings)),
        );
        Ok(settings)
    }

    pub async fn put_settings(
        &self,
        tenant_id: &str,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(settings).unwrap_or_default();
        self.store
            .put_tenant_settings(tenant_id, &json, now_ms())
            .await?;
        lock(&self.settings).pop(tenant_id);
        Ok(())
    }

    /// The script's live version, or `None` when the script does not exist
    /// or has no live version.
    pub async fn live(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> Result<Option<Arc<LiveScript>>, StoreError> {
        let key = (tenant_id.to_owned(), name.to_owned());
        if let Some((at, s)) = lock(&self.live).get(&key)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(s.clone());
        }
        let live = self
            .store
            .live_version(tenant_id, name)
            .await
            .map_err(|e| Undecodable::locate(e, tenant_id, name))?
            .map(|(script, version)| LiveScript::decode(script, version).map(Arc::new))
            .transpose()
            .map_err(Undecodable::into_store_error)?;
        lock(&self.live).put(key, (Instant::now(), live.clone()));
        Ok(live)
    }

    /// Forgets the cached live version of a script (after it changed here).
    pub fn invalidate_live(&self, tenant_id: &str, name: &str) {
        lock(&self.live).pop(&(tenant_id.to_owned(), name.to_owned()));
    }

    /// Runs a script and waits for its recorded outcome.
    ///
    /// Cancel-safe: when the caller stops waiting (drops this future, as
    /// axum does when a client disconnects or a request times out), the
    /// run's slots are given back, its isolate is stopped and it is
    /// recorded `cancelled` (`caller_gone`).
    pub async fn run_sync(&self, spec: RunSpec) -> Result<Run, EngineError> {
        let quotas = self.config.quotas;
        self.quota
            .take(&spec.tenant_id, &quotas, self.nodes_up())
            .map_err(EngineError::RateLimited)?;
        let Some(_tenant_slot) = self.slot(spec.tenant_id.clone(), quotas.concurrent_runs) else {
            return Err(EngineError::Busy {
                what: "tenant",
                limit: quotas.concurrent_runs,
            });
        };
        let _script_slot = match self.script_cap(&spec).await? {
            Some(cap) => match self.slot(spec.live.script.id.clone(), cap) {
                Some(slot) => Some(slot),
                None => {
                    return Err(EngineError::Busy {
                        what: "script",
                        limit: cap,
                    });
                }
            },
            None => None,
        };
        let registration = self.admit(
            &spec,
            domain::RunStatus::Running,
            IfDropped::RecordCancelled,
        )?;
        Ok(self.execute(registration, spec, 0).await?.run)
    }

    /// Counts a synchronous run against `key` (a tenant's or a script's
    /// id) until the slot drops, unless `limit` are in flight already.
    fn slot(&self, key: String, limit: u64) -> Option<Slot> {
        self.quota.enter(&key, limit).then(|| Slot {
            engine: self.clone(),
            key,
        })
    }

    /// How many runs of the script may run at once: its version's
    /// `concurrency`, else the tenant's default, else no cap.
    /// Settings that do not decode refuse the run.
    async fn script_cap(&self, spec: &RunSpec) -> Result<Option<u64>, EngineError> {
        let tenant_cap = match self.settings(&spec.tenant_id).await {
            Ok(s) => s.limits.concurrency,
            Err(e) if Undecodable::is_in(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "tenant settings unavailable; no script concurrency cap");
                None
            }
        };
        Ok(spec.live.limits.concurrency.or(tenant_cap))
    }

    /// Refuses a run a kill switch covers; else registers it in flight
    /// until the registration drops.
    fn admit(
        &self,
        spec: &RunSpec,
        status: domain::RunStatus,
        if_dropped: IfDropped,
    ) -> Result<Registration, EngineError> {
        if let Some(switch) = self.kill_switch_for(&spec.tenant_id, &spec.live.script.name) {
            self.counters
                .refused_by_kill_switch
                .fetch_add(1, Ordering::Relaxed);
            return Err(EngineError::Killed(Box::new(switch)));
        }
        let now = now_ms();
        let run = Run {
            id: spec
                .run_id
                .clone()
                .unwrap_or_else(|| new_time_ordered_id("run")),
            tenant_id: spec.tenant_id.clone(),
            script_id: spec.live.script.id.clone(),
            script_name: spec.live.script.name.clone(),
            version: spec.live.version.version.clone(),
            status,
            trigger: spec.trigger,
            principal: spec.principal.clone(),
            input: caps::input_echo(&spec.input_json),
            result: None,
            logs: "[]".to_owned(),
            logs_truncated: false,
            error: None,
            duration_ms: None,
            cpu_ms: None,
            peak_memory_bytes: None,
            created_at: spec.created_at.unwrap_or(now),
            started_at: (status == domain::RunStatus::Running).then_some(now),
            finished_at: None,
        };
        let flight = Arc::new(InFlight {
            tenant_id: run.tenant_id.clone(),
            script_name: run.script_name.clone(),
            cancel: CancelToken::new(),
            emitted: AtomicU64::new(0),
            stop: AtomicU8::new(STOP_NONE),
            killed_by: Mutex::new(None),
            done: watch::Sender::new(false),
            changes: watch::Sender::new(0),
            live_logs: Mutex::new(LiveLogs::default()),
            revealed: Mutex::new(Revealed::default()),
            denials_audited: AtomicU8::new(0),
            http_calls: AtomicU64::new(0),
            db_calls: AtomicU64::new(0),
            run: Mutex::new(run),
        });
        let id = lock(&flight.run).id.clone();
        lock(&self.in_flight).insert(id, Arc::clone(&flight));
        let registration = Registration {
            engine: self.clone(),
            flight,
            if_dropped,
            ended: false,
        };
        self.admissions.send_modify(|n| *n = n.wrapping_add(1));
        // A switch engaged between the check and the registration still
        // reaches this run: it is in the registry now.
        if let Some(switch) = self.kill_switch_for(&spec.tenant_id, &spec.live.script.name) {
            registration.flight.stop(STOP_KILLED, Some(switch));
        }
        Ok(registration)
    }

    /// Takes a run off the runs in flight (unless another run took its id
    /// since) and tells its watchers it ended.
    fn unregister(&self, flight: &Arc<InFlight>) {
        let id = lock(&flight.run).id.clone();
        {
            let mut flights = lock(&self.in_flight);
            if flights.get(&id).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                flights.remove(&id);
            }
        }
        flight.done.send_replace(true);
        // Watchers read the record now (it is committed, or it failed).
        flight.changed();
    }

    /// Counts a recorded run by status.
    fn count_recorded(&self, status: domain::RunStatus) {
        self.counters.count(status);
        if status == domain::RunStatus::Killed {
            self.counters
                .killed_in_flight
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs an admitted run; `depth` is how deep in an event chain it is.
    /// Answers the run once its record is committed, or `Unavailable` when
    /// the record could not be written (the run is not answered as done).
    async fn execute(
        &self,
        registration: Registration,
        spec: RunSpec,
        depth: i64,
    ) -> Result<Ended, EngineError> {
        // A plugin's runs are counted by what ran: its hooks run on events,
        // its jobs on schedules (or by hand), its routes on requests.
        let plugin = (spec.live.script.kind == domain::ScriptKind::Plugin).then(|| {
            let kind = match spec.trigger {
                domain::Trigger::Event => "hook",
                domain::Trigger::Schedule | domain::Trigger::Manual => "job",
                _ => "route",
            };
            (spec.tenant_id.clone(), spec.live.script.name.clone(), kind)
        });
        let started = std::time::Instant::now();
        let ended = self.execute_run(registration, spec, depth).await;
        if let (Some((tenant, name, kind)), Ok(e)) = (plugin, &ended) {
            let slug = citadel_scripts::plugin_of_entry(&name).unwrap_or(&name);
            let ok = e.run.status == domain::RunStatus::Succeeded;
            self.extension_metrics
                .observe(&tenant, slug, kind, ok, started.elapsed());
            // The seed's execution events, on the audit record.
            let action = match kind {
                "hook" => "hook.executed",
                "job" => "job.executed",
                _ => "route.accessed",
            };
            self.audit_log.append(citadel_store::NewAuditEntry {
                at: now_ms(),
                tenant_id: Some(tenant),
                principal: e.run.principal.clone(),
                action: action.into(),
                target: format!("plugin:{slug}"),
                outcome: if ok { "ok" } else { "failed" }.into(),
                request_id: e.run.id.clone(),
                details: serde_json::json!({
                    "run_id": e.run.id,
                    "status": e.run.status.as_str(),
                    "version": e.run.version,
                    "duration_ms": e.run.duration_ms,
                })
                .to_string(),
            });
        }
        ended
    }

    async fn execute_run(
        &self,
        mut registration: Registration,
        spec: RunSpec,
        depth: i64,
    ) -> Result<Ended, EngineError> {
        let flight = Arc::clone(&registration.flight);
        // Settings that do not decode fail the run (recorded, with the
        // cause); a database that cannot be reached just now does not.
        let (settings, undecodable) = match self.settings(&spec.tenant_id).await {
            Ok(s) => (s, None),
            Err(e) if Undecodable::is_in(&e) => (Arc::new(TenantSettings::default()), Some(e)),
            Err(e) => {
                tracing::warn!(error = %e, "tenant settings unavailable; platform defaults apply");
                (Arc::new(TenantSettings::default()), None)
            }
        };
        let mut limits =
            self.config
                .platform
                .effective(&settings.limits, &spec.live.limits, spec.timeout_ms);
        // A tenant may forbid warm contexts; its runs then get fresh ones.
        limits.isolation = settings.isolation(limits.isolation);
        limits.time_zone = settings.time_zone();
        {
            let mut run = lock(&flight.run);
            run.status = domain::RunStatus::Running;
            run.started_at.get_or_insert_with(now_ms);
        }
        flight.changed();
        lock(&flight.live_logs).limit = limits.log_bytes;
        let (log_limit, result_limit) = (limits.log_bytes, limits.result_bytes);
        let job = PoolRun {
            tenant: spec.tenant_id.clone(),
            source: spec.live.version.source.clone(),
            language: spec.live.language,
            input_json: spec.input_json,
            limits,
            grants: spec.live.capabilities.grants(),
            cancel: Some(flight.cancel.clone()),
            // The version, for a warm context (the pool adds the tenant).
            version_key: Some(format!(
                "{}@{}",
                spec.live.version.script_id, spec.live.version.seq
            )),
            fault: None,
        };
        let outcome = if flight.cancel.is_cancelled() {
            RunOutcome::failed(
                citadel_sandbox::RunError::new(
                    citadel_sandbox::ErrorKind::Cancelled,
                    "Cancelled",
                    "the run was cancelled before it started",
                ),
                Duration::ZERO,
            )
        } else if let Some(e) = undecodable {
            RunOutcome::failed(
                citadel_sandbox::RunError::new(
                    citadel_sandbox::ErrorKind::Internal,
                    "Internal",
                    e.to_string(),
                ),
                Duration::ZERO,
            )
        } else {
            let gateway = Arc::new(gateway::RunGateway {
                engine: Arc::downgrade(&self.0),
                call: Arc::new(gateway::CallContext {
                    tenant_id: spec.tenant_id.clone(),
                    run_id: lock(&flight.run).id.clone(),
                    depth,
                    live: Arc::clone(&spec.live),
                    flight: Arc::clone(&flight),
                    deadline: Instant::now() + limits.timeout,
                    http_ceiling: settings.http_allow.clone(),
                }),
            });
            // The isolate's run is a task of its own, so that a caller that
            // goes away does not drop the executor part-way: the pool gives
            // its host thread back, and tells the host to stop a cancelled
            // run, only from within that future. The registration's drop
            // cancels the run instead, which ends the task promptly.
            let executor = self.executor.clone();
            tokio::spawn(async move { executor.run(job, gateway).await })
                .await
                .unwrap_or_else(|e| {
                    RunOutcome::failed(
                        citadel_sandbox::RunError::new(
                            citadel_sandbox::ErrorKind::Internal,
                            "Internal",
                            format!("the run's task failed: {e}"),
                        ),
                        Duration::ZERO,
                    )
                })
        };
        let mut run = lock(&flight.run).clone();
        let error = finish(&mut run, outcome, &flight, log_limit, result_limit);
        // From here the run's end is decided: the recorder gets the run
        // during the first poll of `record` (the same poll as this line),
        // so a caller that goes away later leaves it recorded as it ended.
        registration.ended = true;
        if flight.stop.load(Ordering::SeqCst) == STOP_ABANDONED {
            return Ok(Ended { run, error });
        }
        let recorded = self.recorder.record(run.clone()).await;
        drop(registration);
        if let Err(e) = recorded {
            tracing::error!(error = %e, run = %run.id, "could not record a finished run");
            return Err(EngineError::Unavailable(format!(
                "run `{}` finished ({}) but its record could not be written: {e}",
                run.id, run.status
            )));
        }
        self.count_recorded(run.status);
        Ok(Ended { run, error })
    }

    /// Whether the database takes writes now: one small write, so that a
    /// read-only file, a full disk or a lost permission shows before a run
    /// is answered (reads keep working in all three).
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        self.store.probe_write(self.node_id(), now_ms()).await
    }

    /// A run of this tenant that is in flight on this node, as it stands.
    pub fn in_flight_run(&self, tenant_id: &str, id: &str) -> Option<Run> {
        let flights = lock(&self.in_flight);
        let f = flights.get(id).filter(|f| f.tenant_id == tenant_id)?;
        let mut run = lock(&f.run).clone();
        let live = lock(&f.live_logs);
        if !live.lines.is_empty() && run.finished_at.is_none() {
            run.logs = serde_json::to_string(&live.lines).unwrap_or_else(|_| "[]".into());
        }
        Some(run)
    }

    /// Changes of a run in flight on this node, to wait on instead of
    /// polling: the value is bumped when the run starts, delivers log lines
    /// and finishes (after its record is written). `None` when the run is
    /// not in flight here.
    pub fn watch_run(&self, tenant_id: &str, id: &str) -> Option<watch::Receiver<u64>> {
        let flights = lock(&self.in_flight);
        let f = flights.get(id).filter(|f| f.tenant_id == tenant_id)?;
        Some(f.changes.subscribe())
    }

    /// Bumped whenever a run is admitted on this node: a watcher of a run
    /// that is not in flight here (queued) looks again at once.
    pub fn watch_admissions(&self) -> watch::Receiver<u64> {
        self.admissions.subscribe()
    }

    /// Takes one of the tenant's run-watching slots on this node
    /// (`Quotas::streams`); the slot is given back when the guard drops.
    /// `None` when all are taken.
    pub fn watch_slot(&self, tenant_id: &str) -> Option<WatchSlot> {
        self.slot(watch_key(tenant_id), self.config.quotas.streams)
            .map(|slot| WatchSlot { _slot: slot })
    }

    /// Runs in flight on this node.
    pub fn in_flight_count(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Cancels a run in flight on this node. Returns a receiver that turns
    /// `true` once the run is recorded, or `None` when no such run is in
    /// flight here.
    pub fn cancel(&self, tenant_id: &str, id: &str) -> Option<watch::Receiver<bool>> {
        let flight = {
            let flights = lock(&self.in_flight);
            Arc::clone(flights.get(id).filter(|f| f.tenant_id == tenant_id)?)
        };
        let done = flight.done.subscribe();
        flight.stop(STOP_CANCELLED, None);
        Some(done)
    }
}

fn watch_key(tenant_id: &str) -> String {
    format!("watch:{tenant_id}")
}

/// One open watcher of runs (an event stream), counted against its
/// tenant's `streams` quota until dropped.
pub struct WatchSlot {
    _slot: Slot,
}

/// One of a quota key's slots on this node (`QuotaState::enter`), given
/// back when dropped: wherever the future holding it stops (an error
/// return, a caller that went away), the slot is not leaked.
struct Slot {
    engine: Engine,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.engine.quota.leave(&self.key);
    }
}

/// A run that ended, with its error typed (the record holds it as JSON).
struct Ended {
    run: Run,
    error: Option<ErrorCode>,
}

/// What becomes of a run whose future is dropped before its end is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfDropped {
    /// It is recorded `cancelled` (`caller_gone`): a synchronous run, whose
    /// caller went away.
    RecordCancelled,
    /// It is not recorded: a job's run, which the job's next attempt runs
    /// and records once this node's lease expires.
    LeaveToJob,
}

/// A run among the runs in flight, taken off them when dropped. Dropped
/// before the run's end is decided (its future stopped part-way), it stops
/// the run's isolate and, for a synchronous run, hands a `cancelled` record
/// to the group-commit writer (a `Drop` cannot await the write); the run
/// stays visible in flight until that record commits.
struct Registration {
    engine: Engine,
    flight: Arc<InFlight>,
    if_dropped: IfDropped,
    /// The run's end is decided (recorded or being recorded, or not to be
    /// recorded): dropping only unregisters it.
    ended: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.ended {
            self.engine.unregister(&self.flight);
            return;
        }
        self.flight.cancel.cancel();
        if self.if_dropped == IfDropped::LeaveToJob
            || self.flight.stop.load(Ordering::SeqCst) == STOP_ABANDONED
        {
            self.engine.unregister(&self.flight);
            return;
        }
        let run = dropped_run(&self.flight);
        *lock(&self.flight.run) = run.clone();
        self.flight.changed();
        let weak = Arc::downgrade(&self.engine.0);
        let flight = Arc::clone(&self.flight);
        let (id, status) = (run.id.clone(), run.status);
        let handed = self.engine.recorder.record_detached(run, move |recorded| {
            let Some(engine) = upgrade(&weak) else { return };
            match recorded {
                Ok(()) => engine.count_recorded(status),
                Err(e) => {
                    tracing::error!(error = %e, run = %id, "could not record a run whose caller went away")
                }
            }
            engine.unregister(&flight);
        });
        if !handed {
            tracing::error!(run = %lock(&self.flight.run).id, "the run recorder stopped; a run whose caller went away is not recorded");
            self.engine.unregister(&self.flight);
        }
    }
}

/// The record of a run whose caller went away before it finished: what it
/// logged so far, `cancelled` (or `killed`, when a kill switch had stopped
/// it already).
fn dropped_run(flight: &InFlight) -> Run {
    let mut run = lock(&flight.run).clone();
    let now = now_ms();
    let error = if flight.stop.load(Ordering::SeqCst) == STOP_KILLED {
        run.status = domain::RunStatus::Killed;
        killed_error(flight)
    } else {
        run.status = domain::RunStatus::Cancelled;
        StoredError::new(
            ErrorCode::CallerGone,
            "Cancelled",
            "the caller went away before the run finished",
        )
    };
    // The lines delivered so far, kept within the run's log limit.
    let logs = std::mem::take(&mut lock(&flight.live_logs).lines);
    run.logs = serde_json::to_string(&logs).unwrap_or_else(|_| "[]".into());
    run.result = None;
    run.error = Some(error.to_json());
    run.duration_ms = Some(run.started_at.map_or(0, |at| (now - at).max(0)));
    run.finished_at = Some(now);
    run
}

/// The error of a run a kill switch stopped.
fn killed_error(flight: &InFlight) -> StoredError {
    let message = match lock(&flight.killed_by).clone() {
        Some(s) => format!("stopped by the {} kill switch: {}", s.scope, s.reason),
        None => "stopped by a kill switch".to_owned(),
    };
    StoredError::new(ErrorCode::Killed, "Killed", &message)
}

/// Copies an outcome into its run record, every field within its cap (the
/// outcome comes from a sandbox host, which is not trusted to have kept its
/// limits).
fn finish(
    run: &mut Run,
    mut outcome: RunOutcome,
    flight: &InFlight,
    log_limit: usize,
    result_limit: usize,
) -> Option<ErrorCode> {
    if outcome
        .result
        .as_ref()
        .is_some_and(|r| r.get().len() > result_limit)
    {
        let bytes = outcome.result.take().map_or(0, |r| r.get().len());
        outcome.status = RunStatus::Failed;
        outcome.error = Some(citadel_sandbox::RunError::new(
            citadel_sandbox::ErrorKind::ResultTooLarge,
            "ResultTooLarge",
            format!("the result is {bytes} bytes; the limit is {result_limit}"),
        ));
    }
    if let Some(r) = flight.redactor() {
        redact_outcome(&r, &mut outcome);
    }
    let (logs, dropped) = caps::logs_within(std::mem::take(&mut outcome.logs), log_limit);
    outcome.logs = logs;
    outcome.logs_truncated |= dropped;
    let stop = flight.stop.load(Ordering::SeqCst);
    let status = match outcome.status {
        RunStatus::Succeeded => domain::RunStatus::Succeeded,
        RunStatus::Failed => domain::RunStatus::Failed,
        RunStatus::TimedOut => domain::RunStatus::TimedOut,
        RunStatus::Cancelled if stop == STOP_KILLED => domain::RunStatus::Killed,
        RunStatus::Cancelled => domain::RunStatus::Cancelled,
    };
    run.status = status;
    run.result = outcome.result.as_ref().map(|r| r.get().to_owned());
    run.logs = serde_json::to_string(&outcome.logs).unwrap_or_else(|_| "[]".into());
    run.logs_truncated = outcome.logs_truncated;
    let error = match (&outcome.error, status) {
        (_, domain::RunStatus::Killed) => Some(killed_error(flight)),
        (Some(e), _) => Some(StoredError::from_sandbox(e)),
        (None, _) => None,
    };
    run.error = error.as_ref().map(StoredError::to_json);
    run.duration_ms = Some(outcome.duration.as_millis() as i64);
    run.cpu_ms = Some(outcome.cpu.as_millis() as i64);
    run.peak_memory_bytes = Some(outcome.peak_memory_bytes as i64);
    run.finished_at = Some(now_ms());
    error.map(|e| e.code)
}

/// Replaces the secrets a run read wherever its outcome could carry them:
/// the result, the log lines, the error's name and message.
fn redact_outcome(r: &citadel_secrets::Redactor, outcome: &mut RunOutcome) {
    use std::borrow::Cow;
    if let Some(result) = &outcome.result
        && let Cow::Owned(text) = r.redact(result.get())
    {
        let text = if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
            text
        } else {
            serde_json::Value::String(text).to_string()
        };
        outcome.result = serde_json::value::RawValue::from_string(text).ok();
    }
    for line in &mut outcome.logs {
        if let Cow::Owned(text) = r.redact(&line.message) {
            line.message = text;
        }
    }
    if let Some(e) = &mut outcome.error {
        if let Cow::Owned(text) = r.redact(&e.message) {
            e.message = text;
        }
        if let Cow::Owned(text) = r.redact(&e.name) {
            e.name = text;
        }
        if let Some(stack) = &mut e.stack
            && let Cow::Owned(text) = r.redact(stack)
        {
            *stack = text;
        }
    }
}

/// Repeats a store call while the database is unavailable (restarting, a
/// dropped connection) or aborted it to break a deadlock, backing off up to 1 s between tries, for `patience`
/// at most: a node rides out a database restart instead of dropping work.
pub(crate) async fn patiently<T, F, Fut>(patience: Duration, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(e) if e.is_transient() && Instant::now() + pause < deadline => {
                // A deadlock or serialization abort between nodes is part
                // of normal contention; an unreachable database is news.
                if e.is_unavailable() {
                    tracing::warn!(error = %e, "the database is unavailable; retrying");
                } else {
                    tracing::info!(error = %e, "a transaction was aborted by the database; retrying");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

/// Used by the poller: `None` once the engine is gone.
fn upgrade(weak: &Weak<EngineInner>) -> Option<Engine> {
    weak.upgrade().map(Engine)
}
