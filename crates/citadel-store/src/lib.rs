//! Storage behind one trait, [`Store`], with two implementations: SQLite (the
//! embedded default: one file, WAL mode) and PostgreSQL (many nodes). Each has
//! its own migrations, applied at start. The backend is chosen once, from the
//! database URL ([`connect`]).
//!
//! Only this crate knows SQL. Every tenant-owned query takes the tenant id as
//! an argument, so callers cannot forget it.

mod backend;
mod events;
mod jobs;
mod model;
mod schedules;
mod scripts;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use events::{Delivery, Event, EventStore, Subscription};
pub use model::*;
pub use schedules::ScheduleStore;

/// Errors of the store. `Conflict` and `NotFound` are for the caller to map;
/// everything else is the database's problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    BadUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// The database cannot be reached just now (down, restarting, out of
    /// connections): the same call may succeed later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_),
            ) => true,
            // PostgreSQL: class 08 (connection exception), 57P01–57P03
            // (shut down by an administrator, crash, cannot connect now).
            // SQLite: busy or locked past the busy timeout.
            StoreError::Database(sqlx::Error::Database(db)) => db.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("57P") || c == "5" || c == "6"
            }),
            _ => false,
        }
    }
}

impl StoreError {
    /// Worth trying again: the database is unavailable, or PostgreSQL
    /// aborted the transaction to break a deadlock (40P01) or a
    /// serialization conflict (40001) between nodes.
    pub fn is_transient(&self) -> bool {
        self.is_unavailable()
            || matches!(self, StoreError::Database(sqlx::Error::Database(db))
                if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The future every store method returns (boxed so `Store` is object safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything Citadel keeps. Implemented for SQLite and PostgreSQL.
pub trait Store: ScriptStore + JobStore + EventStore + ScheduleStore + Send + Sync {
    fn backend(&self) -> Backend;
    /// Reachable, and every migration this build knows is applied.
    fn ready(&self) -> StoreFuture<'_, ()>;

    fn create_tenant<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Tenant>;
    fn tenant<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Tenant>>;
    fn tenant_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tenant>>;
    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>>;

    /// Creates a token and, for tenant tokens with a role, its binding, in
    /// one transaction; minted by nobody (an administrator's command or a
    /// login), so it acts for its user or for itself.
    fn create_token<'a>(&'a self, new: &'a NewToken) -> StoreFuture<'a, Token> {
        static UNMINTED: TokenOrigin = TokenOrigin {
            created_by: None,
            person: None,
        };
        self.create_token_by(new, &UNMINTED)
    }
    /// [`Store::create_token`] for a token minted by another principal.
    fn create_token_by<'a>(
        &'a self,
        new: &'a NewToken,
        origin: &'a TokenOrigin,
    ) -> StoreFuture<'a, Token>;
    fn token_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Token>>;
    /// A tenant's token by id.
    fn token<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Token>>;
    fn list_tokens<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Token>>;
    /// Revokes a tenant's token; false when the tenant has no such token.
    fn revoke_token<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;

    fn create_user<'a>(&'a self, new: &'a NewUser) -> StoreFuture<'a, User>;
    fn user_by_name<'a>(
        &'a self,
        tenant_id: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<User>>;
    fn list_users<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<User>>;
    /// A tenant's user by id.
    fn user<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<User>>;
    /// The (role, path prefix) pairs of a user.
    fn user_roles<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>>;
    /// Disables a user and revokes its session tokens; false when the tenant
    /// has no such user.
    fn disable_user<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;

    fn bindings<'a>(
        &'a self,
        tenant_id: &'a str,
        token_id: &'a str,
    ) -> StoreFuture<'a, Vec<RoleBinding>>;
    /// Every role binding of a tenant's tokens.
    fn tenant_bindings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<RoleBinding>>;
    fn create_binding<'a>(&'a self, binding: &'a RoleBinding) -> StoreFuture<'a, ()>;

    /// Creates or replaces a tenant's custom role.
    fn put_role<'a>(&'a self, role: &'a CustomRole) -> StoreFuture<'a, ()>;
    fn roles<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<CustomRole>>;
    fn delete_role<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;

    /// Appends to the audit chain; appends are serialised so the chain has
    /// no forks.
    fn append_audit<'a>(&'a self, entry: &'a NewAuditEntry) -> StoreFuture<'a, AuditEntry>;
    fn audit_page<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditEntry>>;
    /// Recomputes every hash of the chain.
    fn verify_audit(&self) -> StoreFuture<'_, AuditVerdict>;
}

/// Computes the semantic version of a new script version from the latest
/// one's (`None` for the first version).
pub type NextVersion<'a> = &'a (dyn Fn(Option<&str>) -> String + Send + Sync);

/// Scripts, their versions, runs, tenant settings and kill switches.
pub trait ScriptStore: Send + Sync {
    /// A tenant's settings document (JSON), if it ever set one.
    fn tenant_settings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Option<String>>;
    fn put_tenant_settings<'a>(
        &'a self,
        tenant_id: &'a str,
        settings: &'a str,
        at: i64,
    ) -> StoreFuture<'a, ()>;

    /// Saves a version, creating the script on its first save, in one
    /// transaction. When the latest version has the same `hash`, nothing is
    /// stored and that version is returned. Two saves racing for the same
    /// script are serialised; each gets the next version.
    fn save_version<'a>(
        &'a self,
        new: &'a NewVersion,
        next_version: NextVersion<'a>,
    ) -> StoreFuture<'a, SaveOutcome>;
    fn script<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, Option<Script>>;
    fn list_scripts<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Script>>;
    /// A script and its live version, in one query.
    fn live_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<(Script, ScriptVersion)>>;
    /// A version by its semantic version (`1.0.3`).
    fn version<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<ScriptVersion>>;
    /// Every version of a script, oldest first.
    fn versions<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
    ) -> StoreFuture<'a, Vec<ScriptVersion>>;
    /// Applies a state change if the version is in one of `from`; false
    /// (and nothing changed) otherwise. Sets `state`, `reviewed_by`,
    /// `review_reason` and `reviewed_at` (to `at`) and, with `make_live`,
    /// makes the version live in the same transaction.
    fn transition_version<'a>(&'a self, t: &'a VersionTransition) -> StoreFuture<'a, bool>;
    /// Makes a version live; false when the script has no such version.
    fn set_live<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
        seq: i64,
        at: i64,
    ) -> StoreFuture<'a, bool>;

    /// Inserts or updates runs (by id), all in one transaction. An update
    /// changes only what changes while a run runs (status, result, logs,
    /// error, usage, start and finish times) and never touches a run of
    /// another tenant.
    fn put_runs<'a>(&'a self, runs: &'a [Run]) -> StoreFuture<'a, ()>;
    fn run<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Run>>;
    /// A tenant's runs, newest first (by creation time, then id). `before`
    /// pages to the runs strictly older than that run of the tenant (an
    /// unknown id gives an empty page); `limit` is clamped to 1..=1000.
    fn list_runs<'a>(&'a self, query: &'a RunQuery) -> StoreFuture<'a, Vec<Run>>;

    /// Engages a kill switch; false when that switch was already engaged
    /// (the first engagement is kept).
    fn engage_kill_switch<'a>(&'a self, switch: &'a KillSwitch) -> StoreFuture<'a, bool>;
    /// Releases a kill switch; false when it was not engaged.
    fn release_kill_switch<'a>(
        &'a self,
        scope: &'a str,
        tenant_id: &'a str,
        target: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Every engaged kill switch, on every tenant, oldest first.
    fn kill_switches(&self) -> StoreFuture<'_, Vec<KillSwitch>>;
}

/// The durable job queue and the nodes that work it.
///
/// Claiming is safe with any number of nodes: on PostgreSQL it selects with
/// `FOR UPDATE SKIP LOCKED`, on SQLite inside a single-writer transaction.
/// Every change a node makes to a running job is conditional on it still
/// holding the lease, so a node whose lease expired cannot finish a job
/// another node has taken over.
pub trait JobStore: Send + Sync {
    /// Enqueues a job; with an idempotency key already used by this tenant,
    /// returns the existing job and `false` instead.
    fn enqueue<'a>(&'a self, job: &'a NewJob) -> StoreFuture<'a, (Job, bool)> {
        Box::pin(async move {
            self.enqueue_many(std::slice::from_ref(job))
                .await?
                .pop()
                .ok_or_else(|| StoreError::NotFound(format!("job `{}`", job.id)))
        })
    }
    /// Enqueues jobs in one transaction (as [`JobStore::enqueue`] each, in
    /// order): a busy node commits many enqueues at once.
    fn enqueue_many<'a>(&'a self, jobs: &'a [NewJob]) -> StoreFuture<'a, Vec<(Job, bool)>>;
    /// Claims up to `limit` due jobs (`run_at <= now`, state `queued`) for
    /// `node`: highest priority first, then oldest, interleaving tenants so
    /// one tenant's backlog cannot starve another (each tenant's k-th job
    /// comes before any tenant's (k+1)-th at the same priority, counting the
    /// jobs each tenant has running on any node). Claimed
    /// jobs become `running`, with `attempts + 1` and a lease until
    /// `now + lease_ms`.
    fn claim<'a>(
        &'a self,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreFuture<'a, Vec<Job>> {
        self.claim_capped(node, now, lease_ms, limit, None)
    }
    /// [`JobStore::claim`], leaving out jobs that would exceed a concurrency
    /// cap: a job with a `script_key` waits while `script_cap` jobs with
    /// that key run, and each tenant runs at most `tenant_cap` jobs (`None`:
    /// unlimited). Caps count every node's running jobs.
    fn claim_capped<'a>(
        &'a self,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> StoreFuture<'a, Vec<Job>>;
    /// Extends the leases `node` holds on these jobs to `until`; returns the
    /// ids it still holds (a job missing from the answer was lost).
    fn renew_leases<'a>(
        &'a self,
        node: &'a str,
        ids: &'a [String],
        until: i64,
    ) -> StoreFuture<'a, Vec<String>>;
    /// Ends a running job `node` holds: `succeeded`, `failed` or
    /// `cancelled`. False when the node no longer holds it.
    fn finish_job<'a>(
        &'a self,
        id: &'a str,
        node: &'a str,
        state: &'a str,
        error: Option<&'a str>,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let job = FinishedJob {
                id: id.to_owned(),
                state: state.to_owned(),
                error: error.map(str::to_owned),
            };
            Ok(self
                .finish_jobs(node, std::slice::from_ref(&job), now)
                .await?
                .first()
                .copied()
                .unwrap_or(false))
        })
    }
    /// [`JobStore::finish_job`] for many jobs of `node` in one transaction;
    /// for each, whether the node still held it.
    fn finish_jobs<'a>(
        &'a self,
        node: &'a str,
        jobs: &'a [FinishedJob],
        now: i64,
    ) -> StoreFuture<'a, Vec<bool>>;
    /// Puts a running job `node` holds back in the queue until `run_at`
    /// (a retry after a failure, or a hand-back on drain); `dead` instead
    /// when it has used all its attempts and `give_up_when_exhausted`.
    /// Returns the job's new state, or `None` when the node no longer holds it.
    fn requeue_job<'a>(
        &'a self,
        id: &'a str,
        node: &'a str,
        run_at: i64,
        error: Option<&'a str>,
        give_up_when_exhausted: bool,
        now: i64,
    ) -> StoreFuture<'a, Option<String>>;
    /// Running jobs whose lease expired (their node died): back to `queued`,
    /// or `dead` when out of attempts. Returns how many were reclaimed.
    fn reclaim_expired(&self, now: i64) -> StoreFuture<'_, u64>;
    fn job<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Job>>;
    /// A tenant's jobs, newest first, optionally in one state, older than
    /// the job `before` (paging).
    fn list_jobs<'a>(
        &'a self,
        tenant_id: &'a str,
        state: Option<&'a str>,
        before: Option<&'a str>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<Job>>;
    /// Cancels a job: a queued one becomes `cancelled` at once; a running
    /// one gets `cancel_requested` (its node stops it). Returns the job
    /// after the change, `None` if the tenant has no such job.
    fn request_cancel<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<Job>>;
    /// Ids of running jobs `node` holds whose cancellation was requested.
    fn cancel_requests<'a>(&'a self, node: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// Puts a dead job back in the queue with fresh attempts; false unless
    /// it was dead.
    fn retry_dead<'a>(&'a self, tenant_id: &'a str, id: &'a str, now: i64)
    -> StoreFuture<'a, bool>;
    /// Jobs per state of one tenant (`None`: every tenant), for metrics.
    fn job_counts<'a>(&'a self, tenant_id: Option<&'a str>) -> StoreFuture<'a, Vec<(String, i64)>>;

    /// Registers a node (or re-registers it, state `up`).
    fn register_node<'a>(&'a self, node: &'a Node) -> StoreFuture<'a, ()>;
    /// Records a heartbeat; false when the node was marked down meanwhile
    /// (it must re-register).
    fn node_heartbeat<'a>(
        &'a self,
        id: &'a str,
        now: i64,
        running: i64,
        state: &'a str,
    ) -> StoreFuture<'a, bool>;
    fn list_nodes(&self) -> StoreFuture<'_, Vec<Node>>;
    /// Marks nodes silent since before `cutoff` as down and expires the
    /// leases they hold (so `reclaim_expired` requeues their jobs at once).
    /// Returns the ids marked down.
    fn mark_silent_nodes_down(&self, cutoff: i64) -> StoreFuture<'_, Vec<String>>;
    /// Forgets nodes that are down (stopped, or marked down) and silent
    /// since before `cutoff`, and write probes older than it. Returns how
    /// many nodes were removed.
    fn prune_nodes(&self, cutoff: i64) -> StoreFuture<'_, u64>;
    /// Writes one small row for `node`: proves the database takes writes
    /// now (readiness), which reads alone cannot (a read-only file, a full
    /// disk, a lost write permission).
    fn probe_write<'a>(&'a self, node: &'a str, now: i64) -> StoreFuture<'a, ()>;
}

/// Opens (creating if needed) and migrates the database at `url`:
/// `sqlite://PATH` or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(backend::SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(backend::PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_owned()))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A new random id with a type prefix, e.g. `tnt_3f9a…` (128 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}
