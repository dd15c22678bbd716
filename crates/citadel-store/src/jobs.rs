//! [`JobStore`] for SQLite and PostgreSQL. Like the rest of the store the
//! SQL is shared (written with `$N` parameters) through one macro; what
//! differs is claiming: PostgreSQL picks and takes jobs in one statement
//! with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once pass each other
//! by; SQLite has one writer, so it picks and takes them inside a
//! `BEGIN IMMEDIATE` transaction.
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
use std::fmt::Write as _;

use sqlx::Row;

use crate::backend::{PgStore, SqliteStore, conflict};
use crate::{FinishedJob, Job, JobStore, NewJob, Node, StoreError, StoreFuture, StoreResult};

/// Ids bound per statement when a list of ids is given (well below every
/// SQLite and PostgreSQL limit on parameters).
const CHUNK: usize = 500;

/// Jobs claimed per call at most.
const MAX_CLAIM: i64 = 1000;

// Column lists and shared statement parts as macros (not consts) so
// `concat!` builds every fixed statement at compile time.
macro_rules! job_columns {
    () => {
        "id, tenant_id, kind, payload, priority, state, run_at, attempts, max_attempts, timeout_ms, \
         idempotency_key, lease_owner, lease_expires_at, cancel_requested, last_error, created_at, \
         updated_at, finished_at, script_key, script_cap"
    };
}

macro_rules! job_from {
    ($r:expr) => {
        Job {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            kind: $r.try_get("kind")?,
            payload: $r.try_get("payload")?,
            priority: $r.try_get("priority")?,
            state: $r.try_get("state")?,
            run_at: $r.try_get("run_at")?,
            attempts: $r.try_get("attempts")?,
            max_attempts: $r.try_get("max_attempts")?,
            timeout_ms: $r.try_get("timeout_ms")?,
            idempotency_key: $r.try_get("idempotency_key")?,
            lease_owner: $r.try_get("lease_owner")?,
            lease_expires_at: $r.try_get("lease_expires_at")?,
            cancel_requested: $r.try_get("cancel_requested")?,
            last_error: $r.try_get("last_error")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
            finished_at: $r.try_get("finished_at")?,
            script_key: $r.try_get("script_key")?,
            script_cap: $r.try_get("script_cap")?,
        }
    };
}

macro_rules! node_columns {
    () => {
        "id, role, version, hostname, started_at, heartbeat_at, running, state"
    };
}

/// The tenants with queued jobs (and a final NULL), one index probe each:
/// the next tenant id after the previous one.
macro_rules! waiting_tenants {
    () => {
        "waiting (tenant_id) AS ( \
             SELECT (SELECT tenant_id FROM jobs WHERE state = 'queued' ORDER BY tenant_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT j.tenant_id FROM jobs j WHERE j.state = 'queued' AND j.tenant_id > w.tenant_id \
                     ORDER BY j.tenant_id LIMIT 1) \
             FROM waiting w WHERE w.tenant_id IS NOT NULL \
         )"
    };
}

/// Each tenant's next jobs in its own order (the queued-jobs index order).
macro_rules! tenant_order {
    ($p:literal) => {
        concat!(
            "ORDER BY ",
            $p,
            "priority DESC, ",
            $p,
            "run_at, ",
            $p,
            "created_at, ",
            $p,
            "id"
        )
    };
}

/// Drops the `heads` (candidate jobs) that would exceed a concurrency cap —
/// a script key's `script_cap`, or the tenant cap `$cap` (NULL: none) —
/// counting the jobs running now and those ahead in this claim, then ranks
/// the rest in claim order: `ord` 1, 2, 3… Scripts are capped before
/// tenants, so a tenant's capped script does not use up its tenant's turns.
/// A job's turn counts its tenant's running jobs: a tenant with many jobs in
/// flight waits behind one with few, also when one slot frees at a time.
macro_rules! ranked {
    ($cap:literal) => {
        concat!(
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
                 WHERE ",
            $cap,
            " IS NULL OR t.tenant_turn + COALESCE(bt.n, 0) <= ",
            $cap,
            " \
             )"
        )
    };
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
const PG_CLAIM: &str = concat!(
    "WITH RECURSIVE ",
    waiting_tenants!(),
    ", heads AS ( \
         SELECT h.* FROM waiting w CROSS JOIN LATERAL ( \
             SELECT j.id, j.tenant_id, j.priority, j.run_at, j.created_at, j.script_key, j.script_cap FROM jobs j \
             WHERE j.state = 'queued' AND j.tenant_id = w.tenant_id AND j.run_at <= $2 ",
    tenant_order!("j."),
    " LIMIT $4) h \
     ), ",
    ranked!("CAST($5 AS BIGINT)"),
    ", picked AS ( \
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
     ) SELECT ",
    job_columns!(),
    " FROM claimed ORDER BY ord"
);

/// SQLite: the ids to claim, in claim order. `$1` now, `$2` limit, `$3`
/// tenant cap. (SQLite
/// has no LATERAL; a correlated `IN` list reads each tenant's next jobs.)
const SQLITE_CLAIM_ORDER: &str = concat!(
    "WITH RECURSIVE ",
    waiting_tenants!(),
    ", heads AS ( \
         SELECT j.id, j.tenant_id, j.priority, j.run_at, j.created_at, j.script_key, j.script_cap \
         FROM waiting w JOIN jobs j ON j.id IN ( \
             SELECT x.id FROM jobs x \
             WHERE x.state = 'queued' AND x.tenant_id = w.tenant_id AND x.run_at <= $1 ",
    tenant_order!("x."),
    " LIMIT $2) \
     ), ",
    ranked!("$3"),
    " SELECT id FROM ranked ORDER BY ord LIMIT $2"
);

/// `$first, $first+1, …` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(s, "{sep}${}", first + i);
    }
    s
}

/// The transaction-scoped advisory lock PostgreSQL claims take in turn: a
/// claim counts the running jobs a cap allows, so two claims at once could
/// each see room for the same last slot. (Reading committed data, each
/// claim sees the jobs the one before it took.)
const PG_CLAIM_LOCK: i64 = 0x6369_7461_6465_6c01;

impl PgStore {
    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> StoreResult<Vec<Job>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_CLAIM_LOCK)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(PG_CLAIM)
            .bind(node)
            .bind(now)
            .bind(lease_ms)
            .bind(limit)
            .bind(tenant_cap)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(job_from!(r));
        }
        Ok(out)
    }
}

impl SqliteStore {
    async fn claim_due(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> StoreResult<Vec<Job>> {
        // The write lock is taken first, so nothing changes between picking
        // the jobs and taking them.
        let mut tx = self.write_tx().await?;
        let ids: Vec<String> = sqlx::query_scalar(SQLITE_CLAIM_ORDER)
            .bind(now)
            .bind(limit)
            .bind(tenant_cap)
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut claimed = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                concat!(
                    "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
                     attempts = attempts + 1, updated_at = $3 WHERE state = 'queued' AND id IN ({}) RETURNING ",
                    job_columns!()
                ),
                params(4, chunk.len())
            );
            let mut update = sqlx::query(&sql).bind(node).bind(now + lease_ms).bind(now);
            for id in chunk {
                update = update.bind(id);
            }
            for r in update.fetch_all(&mut *tx).await? {
                claimed.push(job_from!(r));
            }
        }
        tx.commit().await?;
        let order: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        claimed.sort_by_key(|j| order.get(j.id.as_str()).copied());
        Ok(claimed)
    }
}

/// The shared implementation; claiming is the backends' own `claim_due`.
/// Every change to a running job on behalf of a node is one conditional
/// statement (`state = 'running' AND lease_owner = node`), so it is atomic
/// on both backends without a transaction.
macro_rules! impl_job_store {
    ($ty:ty) => {
        impl JobStore for $ty {
            fn enqueue_many<'a>(&'a self, new: &'a [NewJob]) -> StoreFuture<'a, Vec<(Job, bool)>> {
                Box::pin(async move {
                    let now = crate::now_ms();
                    let mut out = Vec::with_capacity(new.len());
                    let mut tx = self.write_tx().await?;
                    for new in new {
                        let job = Job {
                            id: new.id.clone(),
                            tenant_id: new.tenant_id.clone(),
                            kind: new.kind.clone(),
                            payload: new.payload.clone(),
                            priority: new.priority,
                            state: "queued".into(),
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
                        // A racing enqueue with the same key either inserts
                        // first (this one then does nothing and reads it) or
                        // waits for this one; so does a second job with the
                        // key in this batch.
                        let done = sqlx::query(concat!(
                            "INSERT INTO jobs (",
                            job_columns!(),
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                             $19, $20) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
                        ))
                        .bind(&job.id)
                        .bind(&job.tenant_id)
                        .bind(&job.kind)
                        .bind(&job.payload)
                        .bind(job.priority)
                        .bind(&job.state)
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
                        if done.rows_affected() == 1 {
                            out.push((job, true));
                            continue;
                        }
                        let key = new.idempotency_key.as_deref().unwrap_or_default();
                        let row = sqlx::query(concat!(
                            "SELECT ",
                            job_columns!(),
                            " FROM jobs WHERE tenant_id = $1 AND idempotency_key = $2"
                        ))
                        .bind(&new.tenant_id)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match row {
                            Some(r) => out.push((job_from!(r), false)),
                            None => return Err(StoreError::Conflict(format!("job with idempotency key `{key}`"))),
                        }
                    }
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
                    self.claim_due(node, now, lease_ms, limit.min(MAX_CLAIM), tenant_cap).await
                })
            }

            fn renew_leases<'a>(&'a self, node: &'a str, ids: &'a [String], until: i64) -> StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    // PostgreSQL: rows are locked in id order, as a finish
                    // batch takes them; a renewal taking them in plan order
                    // could deadlock with one (SQLite has one writer).
                    let in_order = match crate::Store::backend(self) {
                        crate::Backend::Postgres => " ORDER BY id FOR UPDATE",
                        crate::Backend::Sqlite => "",
                    };
                    let mut held = HashSet::with_capacity(ids.len());
                    for chunk in ids.chunks(CHUNK) {
                        let sql = format!(
                            "UPDATE jobs SET lease_expires_at = $1 \
                             WHERE state = 'running' AND lease_owner = $2 AND id IN ( \
                                 SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $2 \
                                 AND id IN ({}){in_order}) RETURNING id",
                            params(3, chunk.len())
                        );
                        let mut renew = sqlx::query_scalar::<_, String>(&sql).bind(until).bind(node);
                        for id in chunk {
                            renew = renew.bind(id);
                        }
                        held.extend(renew.fetch_all(&self.pool).await?);
                    }
                    Ok(ids.iter().filter(|id| held.contains(id.as_str())).cloned().collect())
                })
            }

            fn finish_jobs<'a>(
                &'a self,
                node: &'a str,
                jobs: &'a [FinishedJob],
                now: i64,
            ) -> StoreFuture<'a, Vec<bool>> {
                Box::pin(async move {
                    // Rows are locked in id order, as other writers of many
                    // running jobs take them, which keeps deadlocks rare
                    // (callers retry the one PostgreSQL breaks).
                    let mut order: Vec<usize> = (0..jobs.len()).collect();
                    order.sort_by(|a, b| jobs[*a].id.cmp(&jobs[*b].id));
                    let mut held = vec![false; jobs.len()];
                    let mut tx = self.write_tx().await?;
                    for i in order {
                        let job = &jobs[i];
                        let done = sqlx::query(
                            "UPDATE jobs SET state = $1, last_error = $2, finished_at = $3, updated_at = $3, \
                             lease_owner = NULL, lease_expires_at = NULL \
                             WHERE id = $4 AND state = 'running' AND lease_owner = $5",
                        )
                        .bind(&job.state)
                        .bind(&job.error)
                        .bind(now)
                        .bind(&job.id)
                        .bind(node)
                        .execute(&mut *tx)
                        .await?;
                        held[i] = done.rows_affected() == 1;
                    }
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
            ) -> StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    // `$1 AND attempts >= max_attempts`: it gives up.
                    let state = sqlx::query_scalar::<_, String>(
                        "UPDATE jobs SET \
                         state = CASE WHEN $1 AND attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                         run_at = CASE WHEN $1 AND attempts >= max_attempts THEN run_at ELSE $2 END, \
                         finished_at = CASE WHEN $1 AND attempts >= max_attempts THEN $4 ELSE NULL END, \
                         last_error = $3, lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, \
                         updated_at = $4 \
                         WHERE id = $5 AND state = 'running' AND lease_owner = $6 RETURNING state",
                    )
                    .bind(give_up_when_exhausted)
                    .bind(run_at)
                    .bind(error)
                    .bind(now)
                    .bind(id)
                    .bind(node)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(state)
                })
            }

            fn reclaim_expired(&self, now: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    // A lease renewed or a job finished meanwhile no longer
                    // matches (PostgreSQL re-checks the condition on the row
                    // it waited for), so a live node keeps its jobs.
                    let done = sqlx::query(
                        "UPDATE jobs SET \
                         state = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'dead' END, \
                         last_error = CASE WHEN attempts < max_attempts THEN last_error \
                             ELSE 'lease expired (node lost) after ' || CAST(attempts AS TEXT) || ' attempts' END, \
                         finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $1 END, \
                         lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                         WHERE state = 'running' AND lease_expires_at < $1",
                    )
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected())
                })
            }

            fn job<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Job>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!("SELECT ", job_columns!(), " FROM jobs WHERE tenant_id = $1 AND id = $2"))
                        .bind(tenant_id)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(job_from!(r)),
                        None => None,
                    })
                })
            }

            fn list_jobs<'a>(&'a self, tenant_id: &'a str, state: Option<&'a str>, before: Option<&'a str>, limit: i64) -> StoreFuture<'a, Vec<Job>> {
                Box::pin(async move {
                    // Strictly older in (created_at, id) order than `before`;
                    // an unknown job compares as NULL, which selects nothing.
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM jobs WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
                         AND ($3 IS NULL OR (created_at, id) < \
                             (SELECT b.created_at, b.id FROM jobs b WHERE b.tenant_id = $1 AND b.id = $3)) \
                         ORDER BY created_at DESC, id DESC LIMIT $4"
                    ))
                    .bind(tenant_id)
                    .bind(state)
                    .bind(before)
                    .bind(limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(job_from!(r));
                    }
                    Ok(out)
                })
            }

            fn request_cancel<'a>(&'a self, tenant_id: &'a str, id: &'a str, now: i64) -> StoreFuture<'a, Option<Job>> {
                Box::pin(async move {
                    // One statement: a queued job is cancelled, a running one
                    // flagged (the right-hand sides see the row before).
                    let row = sqlx::query(concat!(
                        "UPDATE jobs SET \
                         state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, \
                         finished_at = CASE WHEN state = 'queued' THEN $3 ELSE finished_at END, \
                         cancel_requested = CASE WHEN state = 'running' THEN TRUE ELSE cancel_requested END, \
                         updated_at = $3 \
                         WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running') RETURNING ",
                        job_columns!()
                    ))
                    .bind(tenant_id)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(r) = row {
                        return Ok(Some(job_from!(r)));
                    }
                    // Finished already (or no such job): unchanged.
                    self.job(tenant_id, id).await
                })
            }

            fn cancel_requests<'a>(&'a self, node: &'a str) -> StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let ids = sqlx::query_scalar::<_, String>(
                        "SELECT id FROM jobs WHERE state = 'running' AND lease_owner = $1 AND cancel_requested = TRUE ORDER BY id",
                    )
                    .bind(node)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(ids)
                })
            }

            fn retry_dead<'a>(&'a self, tenant_id: &'a str, id: &'a str, now: i64) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $3, finished_at = NULL, \
                         lease_owner = NULL, lease_expires_at = NULL, cancel_requested = FALSE, updated_at = $3 \
                         WHERE tenant_id = $1 AND id = $2 AND state = 'dead'",
                    )
                    .bind(tenant_id)
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn job_counts<'a>(&'a self, tenant_id: Option<&'a str>) -> StoreFuture<'a, Vec<(String, i64)>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT state, COUNT(*) AS n FROM jobs WHERE ($1 IS NULL OR tenant_id = $1) GROUP BY state ORDER BY state",
                    )
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push((r.try_get("state")?, r.try_get("n")?));
                    }
                    Ok(out)
                })
            }

            fn register_node<'a>(&'a self, node: &'a Node) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(concat!(
                        "INSERT INTO nodes (",
                        node_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (id) DO UPDATE SET role = excluded.role, version = excluded.version, \
                         hostname = excluded.hostname, started_at = excluded.started_at, \
                         heartbeat_at = excluded.heartbeat_at, running = excluded.running, state = excluded.state"
                    ))
                    .bind(&node.id)
                    .bind(&node.role)
                    .bind(&node.version)
                    .bind(&node.hostname)
                    .bind(node.started_at)
                    .bind(node.heartbeat_at)
                    .bind(node.running)
                    .bind(&node.state)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }

            fn node_heartbeat<'a>(&'a self, id: &'a str, now: i64, running: i64, state: &'a str) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE nodes SET heartbeat_at = $2, running = $3, state = $4 WHERE id = $1 AND state <> 'down'",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(running)
                    .bind(state)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn list_nodes(&self) -> StoreFuture<'_, Vec<Node>> {
                Box::pin(async move {
                    let rows = sqlx::query(concat!("SELECT ", node_columns!(), " FROM nodes ORDER BY started_at, id"))
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(Node {
                            id: r.try_get("id")?,
                            role: r.try_get("role")?,
                            version: r.try_get("version")?,
                            hostname: r.try_get("hostname")?,
                            started_at: r.try_get("started_at")?,
                            heartbeat_at: r.try_get("heartbeat_at")?,
                            running: r.try_get("running")?,
                            state: r.try_get("state")?,
                        });
                    }
                    Ok(out)
                })
            }

            fn mark_silent_nodes_down(&self, cutoff: i64) -> StoreFuture<'_, Vec<String>> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    let mut down = sqlx::query_scalar::<_, String>(
                        // A node marked down runs nothing any more: its jobs
                    // are reclaimed below.
                    "UPDATE nodes SET state = 'down', running = 0 WHERE state <> 'down' AND heartbeat_at < $1 RETURNING id",
                    )
                    .bind(cutoff)
                    .fetch_all(&mut *tx)
                    .await?;
                    if down.is_empty() {
                        tx.rollback().await?;
                        return Ok(down);
                    }
                    for chunk in down.chunks(CHUNK) {
                        let sql = format!(
                            "UPDATE jobs SET lease_expires_at = 0 WHERE state = 'running' AND lease_owner IN ({})",
                            params(1, chunk.len())
                        );
                        let mut expire = sqlx::query(&sql);
                        for id in chunk {
                            expire = expire.bind(id);
                        }
                        expire.execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    down.sort();
                    Ok(down)
                })
            }

            fn prune_nodes(&self, cutoff: i64) -> StoreFuture<'_, u64> {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM nodes WHERE state = 'down' AND heartbeat_at < $1")
                        .bind(cutoff)
                        .execute(&self.pool)
                        .await?;
                    // Every start is a new node id: old probes go too.
                    sqlx::query("DELETE FROM write_probes WHERE at < $1")
                        .bind(cutoff)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                })
            }

            fn probe_write<'a>(&'a self, node: &'a str, now: i64) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO write_probes (node, at) VALUES ($1, $2) \
                         ON CONFLICT (node) DO UPDATE SET at = excluded.at",
                    )
                    .bind(node)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                })
            }
        }
    };
}

impl_job_store!(SqliteStore);
impl_job_store!(PgStore);
