//! [`ScriptStore`]: scripts and their versions, runs, tenant settings and
//! kill switches. The SQL is shared by both databases; what differs is how
//! the script row is locked while a version is saved (below).

use std::sync::{LazyLock, OnceLock};

use citadel_domain::{RunStatus, ScriptKind};

use crate::sql::{Dialect, SqlStore, Stmt, conflict, params};
use crate::{
    Backend, KillSwitch, NewVersion, Run, RunBucket, RunQuery, RunSample, RunStats, RunStatsQuery,
    SaveOutcome, Script, ScriptVersion, StoreFuture, VersionTransition, new_id, now_ms,
};

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
    /// A tenant's finished runs since a time: counted per bucket (exactly)
    /// and the newest of them as samples.
    fn run_stats<'a>(&'a self, query: &'a RunStatsQuery) -> StoreFuture<'a, RunStats>;

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

const SCRIPT_COLUMNS: &str =
    "id, tenant_id, name, kind, live_seq, latest_seq, created_at, updated_at";
const VERSION_COLUMNS: &str = "script_id, tenant_id, seq, version, hash, source, language, \
     capabilities, limits, diagnostics, change_note, author, state, reviewed_by, review_reason, \
     reviewed_at, created_at";
const RUN_COLUMNS: &str = "id, tenant_id, script_id, script_name, version, status, trigger_kind, \
     principal, input, result, logs, logs_truncated, error, duration_ms, cpu_ms, \
     peak_memory_bytes, created_at, started_at, finished_at";

static SCRIPT_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SCRIPT_COLUMNS} FROM scripts WHERE tenant_id = $1 AND name = $2")
});
/// [`SCRIPT_BY_NAME`], locking the row until the transaction ends.
static SCRIPT_BY_NAME_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *SCRIPT_BY_NAME));
static SCRIPTS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SCRIPT_COLUMNS} FROM scripts WHERE tenant_id = $1 ORDER BY name")
});
static VERSION_BY_SEQ: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {VERSION_COLUMNS} FROM script_versions WHERE script_id = $1 AND seq = $2")
});
static VERSION_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VERSION_COLUMNS} FROM script_versions \
         WHERE tenant_id = $1 AND script_id = $2 AND version = $3"
    )
});
static VERSIONS_OF_SCRIPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VERSION_COLUMNS} FROM script_versions \
         WHERE tenant_id = $1 AND script_id = $2 ORDER BY seq"
    )
});
static INSERT_VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO script_versions ({VERSION_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )
});
static RUN_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2"));

/// Whether no two runs share an id.
fn distinct_ids(runs: &[Run]) -> bool {
    if runs.len() < 2 {
        return true;
    }
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.windows(2).all(|w| w[0] != w[1])
}

/// Binds the values of `runs` to an [`upsert_runs`] statement of their
/// count, row after row.
fn bind_runs<'q, D: Dialect>(mut q: Stmt<'q, D>, runs: &'q [Run]) -> Stmt<'q, D> {
    for r in runs {
        q = q
            .bind(&r.id)
            .bind(&r.tenant_id)
            .bind(&r.script_id)
            .bind(&r.script_name)
            .bind(&r.version)
            .bind(r.status.as_str())
            .bind(r.trigger.as_str())
            .bind(&r.principal)
            .bind(&r.input)
            .bind(&r.result)
            .bind(&r.logs)
            .bind(r.logs_truncated)
            .bind(&r.error)
            .bind(r.duration_ms)
            .bind(r.cpu_ms)
            .bind(r.peak_memory_bytes)
            .bind(r.created_at)
            .bind(r.started_at)
            .bind(r.finished_at);
    }
    q
}

/// Runs one upsert statement writes at most (19 parameters each, well
/// inside both databases' limits on parameters per statement).
const RUNS_PER_UPSERT: usize = 64;

/// The upsert of `n` runs (1..=[`RUNS_PER_UPSERT`]): inserts each run, or
/// updates what changes while it runs (an existing run of another tenant is
/// left alone). Spelled out (not built from [`RUN_COLUMNS`]) as it is on the
/// run path; each text is made once, so each size is one cached prepared
/// statement per connection.
fn upsert_runs(n: usize) -> &'static str {
    static TEXTS: [OnceLock<String>; RUNS_PER_UPSERT] =
        [const { OnceLock::new() }; RUNS_PER_UPSERT];
    TEXTS[n - 1].get_or_init(|| {
        let rows: Vec<String> = (0..n).map(|i| format!("({})", params(i * 19 + 1, 19))).collect();
        format!(
            "INSERT INTO runs (id, tenant_id, script_id, script_name, version, \
             status, trigger_kind, principal, input, result, logs, logs_truncated, error, \
             duration_ms, cpu_ms, peak_memory_bytes, created_at, started_at, finished_at) \
             VALUES {} \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
             logs = excluded.logs, logs_truncated = excluded.logs_truncated, error = excluded.error, \
             duration_ms = excluded.duration_ms, cpu_ms = excluded.cpu_ms, \
             peak_memory_bytes = excluded.peak_memory_bytes, started_at = excluded.started_at, \
             finished_at = excluded.finished_at \
             WHERE runs.tenant_id = excluded.tenant_id",
            rows.join(", ")
        )
    })
}

/// A script and its live version, from one join: the script's columns
/// carry an `s_` prefix.
#[derive(sqlx::FromRow)]
struct LiveRow {
    s_id: String,
    s_tenant_id: String,
    s_name: String,
    #[sqlx(try_from = "crate::text::Text<ScriptKind>")]
    s_kind: ScriptKind,
    s_live_seq: Option<i64>,
    s_latest_seq: i64,
    s_created_at: i64,
    s_updated_at: i64,
    #[sqlx(flatten)]
    version: ScriptVersion,
}

impl<D: Dialect> ScriptStore for SqlStore<D> {
    fn tenant_settings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let row: Option<(String,)> =
                D::query("SELECT settings FROM tenant_settings WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(&mut conn)
                    .await?;
            Ok(row.map(|(settings,)| settings))
        })
    }

    fn put_tenant_settings<'a>(
        &'a self,
        tenant_id: &'a str,
        settings: &'a str,
        at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(
                "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(settings)
            .bind(at)
            .execute(&mut conn)
            .await
            .map_err(|e| conflict(e, format!("tenant `{tenant_id}`")))?;
            Ok(())
        })
    }

    fn save_version<'a>(
        &'a self,
        new: &'a NewVersion,
        next_version: NextVersion<'a>,
    ) -> StoreFuture<'a, SaveOutcome> {
        Box::pin(async move {
            let now = now_ms();
            let mut tx = self.write_tx().await?;
            D::query(
                "INSERT INTO scripts (id, tenant_id, name, kind, live_seq, latest_seq, created_at, \
                 updated_at) VALUES ($1, $2, $3, $5, NULL, 0, $4, $4) \
                 ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(new_id("scr"))
            .bind(&new.tenant_id)
            .bind(&new.name)
            .bind(now)
            .bind(new.kind.as_str())
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, format!("tenant `{}`", new.tenant_id)))?;
            // Two saves of one script must not both compute the same next
            // `seq`. PostgreSQL: the second waits on the row lock. SQLite:
            // the write transaction already holds the only write lock.
            let select = match D::BACKEND {
                Backend::Postgres => &*SCRIPT_BY_NAME_FOR_UPDATE,
                Backend::Sqlite => &*SCRIPT_BY_NAME,
            };
            let script: Script = D::query(select)
                .bind(&new.tenant_id)
                .bind(&new.name)
                .fetch_one(&mut tx)
                .await?;
            if script.kind != new.kind {
                tx.rollback().await?;
                return Ok(SaveOutcome::OtherKind(script.kind));
            }
            let latest: Option<ScriptVersion> = if script.latest_seq > 0 {
                Some(
                    D::query(&VERSION_BY_SEQ)
                        .bind(&script.id)
                        .bind(script.latest_seq)
                        .fetch_one(&mut tx)
                        .await?,
                )
            } else {
                None
            };
            if let Some(latest) = latest.as_ref().filter(|v| v.hash == new.hash) {
                tx.rollback().await?;
                return Ok(SaveOutcome::Unchanged(latest.clone()));
            }
            let created = ScriptVersion {
                script_id: script.id.clone(),
                tenant_id: new.tenant_id.clone(),
                seq: script.latest_seq + 1,
                version: next_version(latest.as_ref().map(|v| v.version.as_str())),
                hash: new.hash.clone(),
                source: new.source.clone(),
                language: new.language,
                capabilities: new.capabilities.clone(),
                limits: new.limits.clone(),
                diagnostics: new.diagnostics.clone(),
                change_note: new.change_note.clone(),
                author: new.author.clone(),
                state: new.state,
                reviewed_by: None,
                review_reason: None,
                reviewed_at: None,
                created_at: now,
            };
            D::query(&INSERT_VERSION)
                .bind(&created.script_id)
                .bind(&created.tenant_id)
                .bind(created.seq)
                .bind(&created.version)
                .bind(&created.hash)
                .bind(&created.source)
                .bind(created.language.as_str())
                .bind(&created.capabilities)
                .bind(&created.limits)
                .bind(&created.diagnostics)
                .bind(&created.change_note)
                .bind(&created.author)
                .bind(created.state.as_str())
                .bind(&created.reviewed_by)
                .bind(&created.review_reason)
                .bind(created.reviewed_at)
                .bind(created.created_at)
                .execute(&mut tx)
                .await
                .map_err(|e| {
                    conflict(
                        e,
                        format!("version {} of script `{}`", created.version, new.name),
                    )
                })?;
            D::query(
                "UPDATE scripts SET latest_seq = $1, updated_at = $2, \
                 live_seq = COALESCE($3, live_seq) WHERE id = $4",
            )
            .bind(created.seq)
            .bind(now)
            .bind(new.make_live.then_some(created.seq))
            .bind(&script.id)
            .execute(&mut tx)
            .await?;
            tx.commit().await?;
            Ok(SaveOutcome::Created(created))
        })
    }

    fn script<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, Option<Script>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SCRIPT_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_scripts<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Script>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SCRIPTS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn live_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<(Script, ScriptVersion)>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let row: Option<LiveRow> = D::query(
                "SELECT s.id AS s_id, s.tenant_id AS s_tenant_id, s.name AS s_name, \
                 s.kind AS s_kind, s.live_seq AS s_live_seq, s.latest_seq AS s_latest_seq, \
                 s.created_at AS s_created_at, s.updated_at AS s_updated_at, \
                 v.script_id, v.tenant_id, v.seq, v.version, v.hash, v.source, v.language, \
                 v.capabilities, v.limits, v.diagnostics, v.change_note, v.author, v.state, \
                 v.reviewed_by, v.review_reason, v.reviewed_at, v.created_at \
                 FROM scripts s JOIN script_versions v ON v.script_id = s.id AND v.seq = s.live_seq \
                 WHERE s.tenant_id = $1 AND s.name = $2",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
            Ok(row.map(|r| {
                let script = Script {
                    id: r.s_id,
                    tenant_id: r.s_tenant_id,
                    name: r.s_name,
                    kind: r.s_kind,
                    live_seq: r.s_live_seq,
                    latest_seq: r.s_latest_seq,
                    created_at: r.s_created_at,
                    updated_at: r.s_updated_at,
                };
                (script, r.version)
            }))
        })
    }

    fn version<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<ScriptVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&VERSION_BY_NAME)
                .bind(tenant_id)
                .bind(script_id)
                .bind(version)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn versions<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
    ) -> StoreFuture<'a, Vec<ScriptVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&VERSIONS_OF_SCRIPT)
                .bind(tenant_id)
                .bind(script_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn transition_version<'a>(&'a self, t: &'a VersionTransition) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if t.from.is_empty() {
                return Ok(false);
            }
            let sql = format!(
                "UPDATE script_versions SET state = $1, reviewed_by = $2, review_reason = $3, \
                 reviewed_at = $4 WHERE tenant_id = $5 AND script_id = $6 AND seq = $7 \
                 AND state IN ({})",
                params(8, t.from.len())
            );
            let mut update = D::query(&sql)
                .bind(t.to.as_str())
                .bind(&t.reviewed_by)
                .bind(&t.review_reason)
                .bind(t.at)
                .bind(&t.tenant_id)
                .bind(&t.script_id)
                .bind(t.seq);
            for from in &t.from {
                update = update.bind(from.as_str());
            }
            let mut tx = self.write_tx().await?;
            if update.execute(&mut tx).await? != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            if t.make_live {
                D::query(
                    "UPDATE scripts SET live_seq = $1, updated_at = $2 \
                     WHERE tenant_id = $3 AND id = $4",
                )
                .bind(t.seq)
                .bind(t.at)
                .bind(&t.tenant_id)
                .bind(&t.script_id)
                .execute(&mut tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    fn set_live<'a>(
        &'a self,
        tenant_id: &'a str,
        script_id: &'a str,
        seq: i64,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "UPDATE scripts SET live_seq = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                 AND EXISTS (SELECT 1 FROM script_versions v \
                 WHERE v.tenant_id = $1 AND v.script_id = $2 AND v.seq = $3)",
            )
            .bind(tenant_id)
            .bind(script_id)
            .bind(seq)
            .bind(at)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn put_runs<'a>(&'a self, runs: &'a [Run]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if runs.is_empty() {
                return Ok(());
            }
            // Many rows per statement: each statement is a round trip to
            // the database (for SQLite, to its connection's thread), and a
            // batch of finished runs is written on every busy node's hot
            // path. A batch that fits one statement is written by that
            // statement alone, which is atomic by itself (no BEGIN and
            // COMMIT round trips). A chunk that names one run twice is
            // written row by row (PostgreSQL refuses to update one row
            // twice in a statement).
            if runs.len() <= RUNS_PER_UPSERT && distinct_ids(runs) {
                let mut conn = self.write_conn().await?;
                bind_runs(D::query(upsert_runs(runs.len())), runs)
                    .execute(&mut conn)
                    .await?;
                return Ok(());
            }
            let mut tx = self.write_tx().await?;
            for chunk in runs.chunks(RUNS_PER_UPSERT) {
                let rows: Vec<&[Run]> = if distinct_ids(chunk) {
                    vec![chunk]
                } else {
                    chunk.chunks(1).collect()
                };
                for rows in rows {
                    bind_runs(D::query(upsert_runs(rows.len())), rows)
                        .execute(&mut tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn run<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Run>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&RUN_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_runs<'a>(&'a self, q: &'a RunQuery) -> StoreFuture<'a, Vec<Run>> {
        Box::pin(async move {
            use std::fmt::Write as _;
            // Only the filters given appear in the statement, so each
            // combination can use its index.
            let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1");
            let mut n = 1;
            if q.script_name.is_some() {
                n += 1;
                let _ = write!(sql, " AND script_name = ${n}");
            }
            if q.status.is_some() {
                n += 1;
                let _ = write!(sql, " AND status = ${n}");
            }
            if q.trigger.is_some() {
                n += 1;
                let _ = write!(sql, " AND trigger_kind = ${n}");
            }
            if q.before.is_some() {
                // Strictly older in (created_at, id) order; an unknown run
                // compares as NULL, which selects nothing.
                n += 1;
                let _ = write!(
                    sql,
                    " AND (created_at, id) < (SELECT b.created_at, b.id FROM runs b \
                     WHERE b.tenant_id = $1 AND b.id = ${n})"
                );
            }
            if q.since.is_some() {
                n += 1;
                let _ = write!(sql, " AND created_at >= ${n}");
            }
            if q.until.is_some() {
                n += 1;
                let _ = write!(sql, " AND created_at < ${n}");
            }
            n += 1;
            let _ = write!(sql, " ORDER BY created_at DESC, id DESC LIMIT ${n}");
            let mut query = D::query(&sql).bind(&q.tenant_id);
            let status = q.status.map(|s| s.as_str());
            let trigger = q.trigger.map(|t| t.as_str());
            for value in [
                q.script_name.as_deref(),
                status,
                trigger,
                q.before.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                query = query.bind(value);
            }
            for time in [q.since, q.until].into_iter().flatten() {
                query = query.bind(time);
            }
            let mut conn = self.conn().await?;
            Ok(query
                .bind(q.limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn run_stats<'a>(&'a self, q: &'a RunStatsQuery) -> StoreFuture<'a, RunStats> {
        Box::pin(async move {
            let bucket = q.bucket_ms.max(1);
            let mut conn = self.conn().await?;
            let counts: Vec<(i64, i64, i64)> = D::query(
                "SELECT (created_at / $3) * $3 AS start, COUNT(*), \
                 COUNT(CASE WHEN status <> $4 THEN 1 END) \
                 FROM runs WHERE tenant_id = $1 AND created_at >= $2 AND finished_at IS NOT NULL \
                 GROUP BY start ORDER BY start",
            )
            .bind(&q.tenant_id)
            .bind(q.since)
            .bind(bucket)
            .bind(RunStatus::Succeeded.as_str())
            .fetch_all(&mut conn)
            .await?;
            let rows: Vec<(String, String, Option<i64>, Option<i64>)> = D::query(
                "SELECT script_name, status, duration_ms, cpu_ms FROM runs \
                 WHERE tenant_id = $1 AND created_at >= $2 AND finished_at IS NOT NULL \
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(&q.tenant_id)
            .bind(q.since)
            .bind(q.sample_limit.max(0))
            .fetch_all(&mut conn)
            .await?;
            let samples = rows
                .into_iter()
                .map(|(script_name, status, duration_ms, cpu_ms)| {
                    Ok(RunSample {
                        script_name,
                        status: status
                            .parse()
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                        duration_ms,
                        cpu_ms,
                    })
                })
                .collect::<sqlx::Result<_>>()?;
            Ok(RunStats {
                buckets: counts
                    .into_iter()
                    .map(|(start, finished, failed)| RunBucket {
                        start,
                        finished,
                        failed,
                    })
                    .collect(),
                samples,
            })
        })
    }

    fn engage_kill_switch<'a>(&'a self, k: &'a KillSwitch) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "INSERT INTO kill_switches (scope, tenant_id, target, reason, engaged_by, \
                 engaged_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (scope, tenant_id, target) DO NOTHING",
            )
            .bind(k.scope.as_str())
            .bind(&k.tenant_id)
            .bind(&k.target)
            .bind(&k.reason)
            .bind(&k.engaged_by)
            .bind(k.engaged_at)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn release_kill_switch<'a>(
        &'a self,
        scope: &'a str,
        tenant_id: &'a str,
        target: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "DELETE FROM kill_switches WHERE scope = $1 AND tenant_id = $2 AND target = $3",
            )
            .bind(scope)
            .bind(tenant_id)
            .bind(target)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn kill_switches(&self) -> StoreFuture<'_, Vec<KillSwitch>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT scope, tenant_id, target, reason, engaged_by, engaged_at \
                 FROM kill_switches ORDER BY engaged_at, scope, tenant_id, target",
            )
            .fetch_all(&mut conn)
            .await?)
        })
    }
}
