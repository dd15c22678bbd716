//! [`JobStore`]: the durable job queue and the nodes that work it. Every
//! change to a running job on behalf of a node is one conditional statement
//! (`state = 'running' AND lease_owner = node`), so it is atomic on both
//! databases without a transaction. What differs is claiming: PostgreSQL
//! picks and takes jobs in one statement with `FOR UPDATE SKIP LOCKED`, so
//! nodes claiming at once pass each other by ([`claim_postgres`]); SQLite
//! has one writer, so it picks and takes them inside a `BEGIN IMMEDIATE`
//! transaction ([`claim_sqlite`]).
//!
//! Claim order: highest priority first; at one priority, every tenant's
//! k-th job before any tenant's (k+1)-th (its turn, counting the jobs it has
//! running), then the oldest. Only
//! each waiting tenant's first `limit` due jobs can be among the first
//! `limit` of that order, so both backends rank just those: the tenants with
//! queued jobs are found by skipping through the queued-jobs index (one
//! probe per tenant), then each one's next jobs are read from the same index.
//! The cost grows with the tenants waiting and `limit`, not with the backlog.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use citadel_domain::JobState;
use futures_util::TryStreamExt;
use sqlx::{FromRow, Postgres, Sqlite};

use crate::sql::{Dialect, SqlStore, conflict, params};
use crate::{Backend, FinishedJob, Job, NewJob, Node, StoreError, StoreFuture, StoreResult};

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
        state: JobState,
        error: Option<&'a str>,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let job = FinishedJob {
                id: id.to_owned(),
                state,
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
    ) -> StoreFuture<'a, Option<JobState>>;
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

/// Ids bound per statement when a list of ids is given (well below every
/// SQLite and PostgreSQL limit on parameters).
const CHUNK: usize = 500;

/// Jobs claimed per call at most.
const MAX_CLAIM: i64 = 1000;

const JOB_COLUMNS: &str = "id, tenant_id, kind, payload, priority, state, run_at, attempts, \
     max_attempts, timeout_ms, idempotency_key, lease_owner, lease_expires_at, cancel_requested, \
     last_error, created_at, updated_at, finished_at, script_key, script_cap";

const NODE_COLUMNS: &str = "id, role, version, hostname, started_at, heartbeat_at, running, state";

/// Enqueues one job unless the tenant used its idempotency key already.
/// Spelled out (not built from [`JOB_COLUMNS`]) as it is on the run path.
const INSERT_JOB: &str = "INSERT INTO jobs (id, tenant_id, kind, payload, priority, state, \
     run_at, attempts, max_attempts, timeout_ms, idempotency_key, lease_owner, lease_expires_at, \
     cancel_requested, last_error, created_at, updated_at, finished_at, script_key, script_cap) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING";

/// Ends a running job, if `$5` still holds it.
const FINISH_JOB: &str = "UPDATE jobs SET state = $1, last_error = $2, finished_at = $3, \
     updated_at = $3, lease_owner = NULL, lease_expires_at = NULL \
     WHERE id = $4 AND state = 'running' AND lease_owner = $5";

static JOB_BY_KEY: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2")
});
static JOB_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"));
/// Strictly older in (created_at, id) order than `$3`; an unknown job
/// compares as NULL, which selects nothing.
static JOBS_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
         AND ($3 IS NULL OR (created_at, id) < \
             (SELECT b.created_at, b.id FROM jobs b WHERE b.tenant_id = $1 AND b.id = $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )
});
/// One statement: a queued job is cancelled, a running one flagged (the
/// right-hand sides see the row before).
static CANCEL_JOB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE jobs SET \
         state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, \
         finished_at = CASE WHEN state = 'queued' THEN $3 ELSE finished_at END, \
         cancel_requested = CASE WHEN state = 'running' THEN TRUE ELSE cancel_requested END, \
         updated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running') \
         RETURNING {JOB_COLUMNS}"
    )
});
static REGISTER_NODE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO nodes ({NODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET role = excluded.role, version = excluded.version, \
         hostname = excluded.hostname, started_at = excluded.started_at, \
         heartbeat_at = excluded.heartbeat_at, running = excluded.running, state = excluded.state"
    )
});
static LIST_NODES: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY started_at, id"));

/// The tenants with queued jobs (and a final NULL), one index probe each:
/// the next tenant id after the previous one.
const WAITING_TENANTS: &str = "waiting (tenant_id) AS ( \
         SELECT (SELECT tenant_id FROM jobs WHERE state = 'queued' ORDER BY tenant_id LIMIT 1) \
         UNION ALL \
         SELECT (SELECT j.tenant_id FROM jobs j WHERE j.state = 'queued' AND j.tenant_id > w.tenant_id \
                 ORDER BY j.tenant_id LIMIT 1) \
         FROM waiting w WHERE w.tenant_id IS NOT NULL \
     )";

/// Each tenant's next jobs in its own order (the queued-jobs index order),
/// for the jobs table as `alias`.
fn tenant_order(alias: &str) -> String {
    format!("ORDER BY {alias}.priority DESC, {alias}.run_at, {alias}.created_at, {alias}.id")
}

/// Drops the `heads` (candidate jobs) that would exceed a concurrency cap —
/// a script key's `script_cap`, or the tenant cap `cap` (NULL: none) —
/// counting the jobs running now and those ahead in this claim, then ranks
/// the rest in claim order: `ord` 1, 2, 3… Scripts are capped before
/// tenants, so a tenant's capped script does not use up its tenant's turns.
/// A job's turn counts its tenant's running jobs: a tenant with many jobs in
/// flight waits behind one with few, also when one slot frees at a time.
fn ranked(cap: &str) -> String {
    format!(
        "busy_scripts AS ( \
             SELECT script_key, COUNT(*) AS n FROM jobs \
             WHERE state = 'running' AND script_key IN (SELECT script_key FROM heads WHERE script_cap IS NOT NULL) \
             GROUP BY script_key \
         ), busy_tenants AS ( \
             SELECT tenant_id, COUNT(*) AS n FROM jobs \
             WHERE state = 'running' AND tenant_id IN (SELECT tenant_id FROM heads) \
             GROUP BY tenant_id \
         ), fits AS ( \
             SELECT s.id, s.tenant_id, s.priority, s.run_at, s.created_at FROM ( \
                 SELECT h.*, ROW_NUMBER() OVER ( \
                     PARTITION BY h.script_key ORDER BY h.priority DESC, h.run_at, h.created_at, h.id) AS script_turn \
                 FROM heads h \
             ) s LEFT JOIN busy_scripts b ON b.script_key = s.script_key \
             WHERE s.script_cap IS NULL OR s.script_turn + COALESCE(b.n, 0) <= s.script_cap \
         ), ranked AS ( \
             SELECT t.id, ROW_NUMBER() OVER ( \
                 ORDER BY t.priority DESC, t.turn + COALESCE(bt.n, 0), t.run_at, t.id) AS ord FROM ( \
                 SELECT f.id, f.tenant_id, f.priority, f.run_at, \
                        ROW_NUMBER() OVER (PARTITION BY f.tenant_id, f.priority ORDER BY f.run_at, f.created_at, f.id) AS turn, \
                        ROW_NUMBER() OVER ( \
                            PARTITION BY f.tenant_id ORDER BY f.priority DESC, f.run_at, f.created_at, f.id) AS tenant_turn \
                 FROM fits f \
             ) t LEFT JOIN busy_tenants bt ON bt.tenant_id = t.tenant_id \
             WHERE {cap} IS NULL OR t.tenant_turn + COALESCE(bt.n, 0) <= {cap} \
         )"
    )
}

/// PostgreSQL: one statement. `$1` node, `$2` now, `$3` lease length,
/// `$4` limit, `$5` tenant cap. The candidates are ranked from the statement's snapshot;
/// `picked` then locks them in that order, skipping those another claimer
/// holds and re-checking that each is still queued, so no job is taken
/// twice. (Row locks cannot sit in the ranking query itself: PostgreSQL
/// refuses `FOR UPDATE` beside window functions.) The candidates pass
/// through an array with its ordinality: the planner then probes them one by
/// one by primary key, already in claim order, and stops after `limit`;
/// joined to `ranked` directly it misjudges their number and scans every
/// queued job.
static PG_CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE {WAITING_TENANTS}, heads AS ( \
             SELECT h.* FROM waiting w CROSS JOIN LATERAL ( \
                 SELECT j.id, j.tenant_id, j.priority, j.run_at, j.created_at, j.script_key, j.script_cap FROM jobs j \
                 WHERE j.state = 'queued' AND j.tenant_id = w.tenant_id AND j.run_at <= $2 {} LIMIT $4) h \
         ), {}, picked AS ( \
             SELECT j.id, r.ord \
             FROM unnest(ARRAY(SELECT id FROM ranked ORDER BY ord)) WITH ORDINALITY AS r (id, ord) \
             JOIN jobs j ON j.id = r.id \
             WHERE j.state = 'queued' AND j.run_at <= $2 \
             ORDER BY r.ord LIMIT $4 \
             FOR UPDATE OF j SKIP LOCKED \
         ), claimed AS ( \
             UPDATE jobs j SET state = 'running', lease_owner = $1, lease_expires_at = $2 + $3, \
                    attempts = j.attempts + 1, updated_at = $2 \
             FROM picked p WHERE j.id = p.id \
             RETURNING j.*, p.ord \
         ) SELECT {JOB_COLUMNS} FROM claimed ORDER BY ord",
        tenant_order("j"),
        ranked("CAST($5 AS BIGINT)"),
    )
});

/// SQLite: the ids to claim, in claim order. `$1` now, `$2` limit, `$3`
/// tenant cap. (SQLite
/// has no LATERAL; a correlated `IN` list reads each tenant's next jobs.)
static SQLITE_CLAIM_ORDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE {WAITING_TENANTS}, heads AS ( \
             SELECT j.id, j.tenant_id, j.priority, j.run_at, j.created_at, j.script_key, j.script_cap \
             FROM waiting w JOIN jobs j ON j.id IN ( \
                 SELECT x.id FROM jobs x \
                 WHERE x.state = 'queued' AND x.tenant_id = w.tenant_id AND x.run_at <= $1 {} LIMIT $2) \
         ), {} SELECT id FROM ranked ORDER BY ord LIMIT $2",
        tenant_order("x"),
        ranked("$3"),
    )
});

/// The transaction-scoped advisory lock PostgreSQL claims take in turn: a
/// claim counts the running jobs a cap allows, so two claims at once could
/// each see room for the same last slot. (Reading committed data, each
/// claim sees the jobs the one before it took.)
const PG_CLAIM_LOCK: i64 = 0x6369_7461_6465_6c01;

/// [`Dialect::claim_due`] for PostgreSQL.
pub(crate) async fn claim_postgres(
    store: &SqlStore<Postgres>,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
    tenant_cap: Option<i64>,
) -> StoreResult<Vec<Job>> {
    let mut tx = store.tx().await?;
    Postgres::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_CLAIM_LOCK)
        .execute(&mut tx)
        .await?;
    let rows = sqlx::query(&PG_CLAIM)
        .bind(node)
        .bind(now)
        .bind(lease_ms)
        .bind(limit)
        .bind(tenant_cap)
        .fetch_all(&mut **tx)
        .await?;
    tx.commit().await?;
    // Decoded once committed: a row that does not decode fails this call
    // but stays claimed, so its lease runs out and it is requeued or dead
    // like any lost job instead of failing every claim that reaches it.
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(Job::from_row(r)?);
    }
    Ok(out)
}

/// [`Dialect::claim_due`] for SQLite.
pub(crate) async fn claim_sqlite(
    store: &SqlStore<Sqlite>,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: i64,
    tenant_cap: Option<i64>,
) -> StoreResult<Vec<Job>> {
    // The write lock is taken first, so nothing changes between picking
    // the jobs and taking them.
    let mut tx = store.write_tx().await?;
    let ids: Vec<(String,)> = Sqlite::query(&SQLITE_CLAIM_ORDER)
        .bind(now)
        .bind(limit)
        .bind(tenant_cap)
        .fetch_all(&mut tx)
        .await?;
    if ids.is_empty() {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let mut claimed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, updated_at = $3 WHERE state = 'queued' AND id IN ({}) \
             RETURNING {JOB_COLUMNS}",
            params(4, chunk.len())
        );
        let mut update = Sqlite::query(&sql)
            .bind(node)
            .bind(now + lease_ms)
            .bind(now);
        for (id,) in chunk {
            update = update.bind(id);
        }
        let mut rows = update.fetch::<Job>(&mut tx);
        while let Some(job) = rows.try_next().await? {
            claimed.push(job);
        }
    }
    tx.commit().await?;
    let order: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, (id,))| (id.as_str(), i))
        .collect();
    claimed.sort_by_key(|j: &Job| order.get(j.id.as_str()).copied());
    Ok(claimed)
}

impl<D: Dialect> SqlStore<D> {
    /// [`JobStore::enqueue_many`] inside the caller's write transaction.
    pub(crate) async fn enqueue_in(
        tx: &mut D::Connection,
        new: &[NewJob],
    ) -> Result<Vec<(Job, bool)>, StoreError> {
        let now = crate::now_ms();
        let mut out = Vec::with_capacity(new.len());
        for new in new {
            let job = Job {
                id: new.id.clone(),
                tenant_id: new.tenant_id.clone(),
                kind: new.kind.clone(),
                payload: new.payload.clone(),
                priority: new.priority,
                state: JobState::Queued,
                run_at: new.run_at,
                attempts: 0,
                max_attempts: new.max_attempts,
                timeout_ms: new.timeout_ms,
                idempotency_key: new.idempotency_key.clone(),
                lease_owner: None,
                lease_expires_at: None,
                cancel_requested: false,
                last_error: None,
                created_at: now,
                updated_at: now,
                finished_at: None,
                script_key: new.script_key.clone(),
                script_cap: new.script_cap,
            };
            // A racing enqueue with the same key either inserts first
            // (this one then does nothing and reads it) or waits for
            // this one; so does a second job with the key in this batch.
            let done = D::query(INSERT_JOB)
                .bind(&job.id)
                .bind(&job.tenant_id)
                .bind(&job.kind)
                .bind(&job.payload)
                .bind(job.priority)
                .bind(job.state.as_str())
                .bind(job.run_at)
                .bind(job.attempts)
                .bind(job.max_attempts)
                .bind(job.timeout_ms)
                .bind(&job.idempotency_key)
                .bind(&job.lease_owner)
                .bind(job.lease_expires_at)
                .bind(job.cancel_requested)
                .bind(&job.last_error)
                .bind(job.created_at)
                .bind(job.updated_at)
                .bind(job.finished_at)
                .bind(&job.script_key)
                .bind(job.script_cap)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        conflict(e, format!("tenant `{}`", new.tenant_id))
                    }
                    _ => conflict(e, format!("job `{}`", new.id)),
                })?;
            if done == 1 {
                out.push((job, true));
                continue;
            }
            let key = new.idempotency_key.as_deref().unwrap_or_default();
            let existing: Option<Job> = D::query(&JOB_BY_KEY)
                .bind(&new.tenant_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            match existing {
                Some(job) => out.push((job, false)),
                None => {
                    return Err(StoreError::Conflict(format!(
                        "job with idempotency key `{key}`"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// [`JobStore::finish_jobs`] inside the caller's write transaction.
    pub(crate) async fn finish_jobs_in<J: std::borrow::Borrow<FinishedJob>>(
        tx: &mut D::Connection,
        node: &str,
        jobs: &[J],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by(|a, b| jobs[*a].borrow().id.cmp(&jobs[*b].borrow().id));
        let mut held = vec![false; jobs.len()];
        for i in order {
            let job = jobs[i].borrow();
            let done = D::query(FINISH_JOB)
                .bind(job.state.as_str())
                .bind(&job.error)
                .bind(now)
                .bind(&job.id)
                .bind(node)
                .execute(&mut *tx)
                .await?;
            held[i] = done == 1;
        }
        Ok(held)
    }
}

impl<D: Dialect> JobStore for SqlStore<D> {
    fn enqueue_many<'a>(&'a self, new: &'a [NewJob]) -> StoreFuture<'a, Vec<(Job, bool)>> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let out = Self::enqueue_in(&mut tx, new).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    fn claim_capped<'a>(
        &'a self,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> StoreFuture<'a, Vec<Job>> {
        Box::pin(async move {
            if limit < 1 {
                return Ok(Vec::new());
            }
            D::claim_due(self, node, now, lease_ms, limit.min(MAX_CLAIM), tenant_cap).await
        })
    }

    fn renew_leases<'a>(
        &'a self,
        node: &'a str,
        ids: &'a [String],
        until: i64,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            // PostgreSQL: rows are locked in id order, as a finish batch
            // takes them; a renewal taking them in plan order could deadlock
            // with one (SQLite has one writer).
            let in_order = match D::BACKEND {
                Backend::Postgres => " ORDER BY id FOR UPDATE",
                Backend::Sqlite => "",
            };
            let mut held = HashSet::with_capacity(ids.len());
            let mut conn = self.write_conn().await?;
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "UPDATE jobs SET lease_expires_at = $1 \
                     WHERE state = 'running' AND lease_owner = $2 AND id IN ( \
                         SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $2 \
                         AND id IN ({}){in_order}) RETURNING id",
                    params(3, chunk.len())
                );
                let mut renew = D::query(&sql).bind(until).bind(node);
                for id in chunk {
                    renew = renew.bind(id);
                }
                let renewed: Vec<(String,)> = renew.fetch_all(&mut conn).await?;
                held.extend(renewed.into_iter().map(|(id,)| id));
            }
            Ok(ids
                .iter()
                .filter(|id| held.contains(id.as_str()))
                .cloned()
                .collect())
        })
    }

    fn finish_jobs<'a>(
        &'a self,
        node: &'a str,
        jobs: &'a [FinishedJob],
        now: i64,
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            // Rows are locked in id order, as other writers of many running
            // jobs take them, which keeps deadlocks rare (callers retry the
            // one PostgreSQL breaks).
            let mut tx = self.write_tx().await?;
            let held = Self::finish_jobs_in(&mut tx, node, jobs, now).await?;
            tx.commit().await?;
            Ok(held)
        })
    }

    fn requeue_job<'a>(
        &'a self,
        id: &'a str,
        node: &'a str,
        run_at: i64,
        error: Option<&'a str>,
        give_up_when_exhausted: bool,
        now: i64,
    ) -> StoreFuture<'a, Option<JobState>> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            // `$1 AND attempts >= max_attempts`: it gives up.
            let state: Option<(String,)> = D::query(
                "UPDATE jobs SET \
                 state = CASE WHEN $1 AND attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                 run_at = CASE WHEN $1 AND attempts >= max_attempts THEN run_at ELSE $2 END, \
                 finished_at = CASE WHEN $1 AND attempts >= max_attempts THEN $4 ELSE NULL END, \
                 last_error = $3, lease_owner = NULL, lease_expires_at = NULL, \
                 cancel_requested = FALSE, updated_at = $4 \
                 WHERE id = $5 AND state = 'running' AND lease_owner = $6 RETURNING state",
            )
            .bind(give_up_when_exhausted)
            .bind(run_at)
            .bind(error)
            .bind(now)
            .bind(id)
            .bind(node)
            .fetch_optional(&mut conn)
            .await?;
            state
                .map(|(state,)| state.parse::<JobState>())
                .transpose()
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        })
    }

    fn reclaim_expired(&self, now: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            // A lease renewed or a job finished meanwhile no longer matches
            // (PostgreSQL re-checks the condition on the row it waited for),
            // so a live node keeps its jobs.
            Ok(D::query(
                "UPDATE jobs SET \
                 state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'dead' END, \
                 last_error = CASE WHEN attempts < max_attempts THEN last_error \
                     ELSE 'lease expired (node lost) after ' || CAST(attempts AS TEXT) || ' attempts' END, \
                 finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $1 END, \
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE state = 'running' AND lease_expires_at < $1",
            )
            .bind(now)
            .execute(&mut conn)
            .await?)
        })
    }

    fn job<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Job>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&JOB_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_jobs<'a>(
        &'a self,
        tenant_id: &'a str,
        state: Option<&'a str>,
        before: Option<&'a str>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<Job>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&JOBS_PAGE)
                .bind(tenant_id)
                .bind(state)
                .bind(before)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn request_cancel<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<Job>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let changed: Option<Job> = D::query(&CANCEL_JOB)
                .bind(tenant_id)
                .bind(id)
                .bind(now)
                .fetch_optional(&mut conn)
                .await?;
            if changed.is_some() {
                return Ok(changed);
            }
            drop(conn);
            // Finished already (or no such job): unchanged.
            self.job(tenant_id, id).await
        })
    }

    fn cancel_requests<'a>(&'a self, node: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let ids: Vec<(String,)> = D::query(
                "SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $1 \
                 AND cancel_requested = TRUE ORDER BY id",
            )
            .bind(node)
            .fetch_all(&mut conn)
            .await?;
            Ok(ids.into_iter().map(|(id,)| id).collect())
        })
    }

    fn retry_dead<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $3, finished_at = NULL, \
                 lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND state = 'dead'",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn job_counts<'a>(&'a self, tenant_id: Option<&'a str>) -> StoreFuture<'a, Vec<(String, i64)>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT state, COUNT(*) AS n FROM jobs WHERE ($1 IS NULL OR tenant_id = $1) \
                 GROUP BY state ORDER BY state",
            )
            .bind(tenant_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn register_node<'a>(&'a self, node: &'a Node) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(&REGISTER_NODE)
                .bind(&node.id)
                .bind(&node.role)
                .bind(&node.version)
                .bind(&node.hostname)
                .bind(node.started_at)
                .bind(node.heartbeat_at)
                .bind(node.running)
                .bind(node.state.as_str())
                .execute(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn node_heartbeat<'a>(
        &'a self,
        id: &'a str,
        now: i64,
        running: i64,
        state: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "UPDATE nodes SET heartbeat_at = $2, running = $3, state = $4 \
                 WHERE id = $1 AND state <> 'down'",
            )
            .bind(id)
            .bind(now)
            .bind(running)
            .bind(state)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn list_nodes(&self) -> StoreFuture<'_, Vec<Node>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&LIST_NODES).fetch_all(&mut conn).await?)
        })
    }

    fn mark_silent_nodes_down(&self, cutoff: i64) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            // A node marked down runs nothing any more: its jobs are
            // reclaimed below.
            let down: Vec<(String,)> = D::query(
                "UPDATE nodes SET state = 'down', running = 0 \
                 WHERE state <> 'down' AND heartbeat_at < $1 RETURNING id",
            )
            .bind(cutoff)
            .fetch_all(&mut tx)
            .await?;
            let mut down: Vec<String> = down.into_iter().map(|(id,)| id).collect();
            if down.is_empty() {
                tx.rollback().await?;
                return Ok(down);
            }
            for chunk in down.chunks(CHUNK) {
                let sql = format!(
                    "UPDATE jobs SET lease_expires_at = 0 \
                     WHERE state = 'running' AND lease_owner IN ({})",
                    params(1, chunk.len())
                );
                let mut expire = D::query(&sql);
                for id in chunk {
                    expire = expire.bind(id);
                }
                expire.execute(&mut tx).await?;
            }
            tx.commit().await?;
            down.sort();
            Ok(down)
        })
    }

    fn prune_nodes(&self, cutoff: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query("DELETE FROM nodes WHERE state = 'down' AND heartbeat_at < $1")
                .bind(cutoff)
                .execute(&mut conn)
                .await?;
            // Every start is a new node id: old probes go too.
            D::query("DELETE FROM write_probes WHERE at < $1")
                .bind(cutoff)
                .execute(&mut conn)
                .await?;
            Ok(done)
        })
    }

    fn probe_write<'a>(&'a self, node: &'a str, now: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(
                "INSERT INTO write_probes (node, at) VALUES ($1, $2) \
                 ON CONFLICT (node) DO UPDATE SET at = excluded.at",
            )
            .bind(node)
            .bind(now)
            .execute(&mut conn)
            .await?;
            Ok(())
        })
    }
}
