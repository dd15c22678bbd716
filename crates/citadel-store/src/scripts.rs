//! [`ScriptStore`] for SQLite and PostgreSQL. Like the rest of the store the
//! SQL is shared (written with `$N` parameters) through one macro; what
//! differs is how a writing transaction starts and how the script row is
//! locked while a version is saved.

use std::fmt::Write as _;

use sqlx::Row;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;

use crate::backend::{PgStore, SqliteStore, conflict};
use crate::{
    KillSwitch, NewVersion, NextVersion, Run, RunQuery, SaveOutcome, Script, ScriptStore,
    ScriptVersion, StoreFuture, VersionTransition, new_id, now_ms,
};

// Column lists as macros (not consts) so `concat!` builds every fixed
// statement at compile time.
macro_rules! script_columns {
    () => {
        "id, tenant_id, name, live_seq, latest_seq, created_at, updated_at"
    };
}

macro_rules! version_columns {
    () => {
        "script_id, tenant_id, seq, version, hash, source, language, capabilities, limits, \
         diagnostics, change_note, author, state, reviewed_by, review_reason, reviewed_at, created_at"
    };
}

macro_rules! run_columns {
    () => {
        "id, tenant_id, script_id, script_name, version, status, trigger_kind, principal, input, \
         result, logs, logs_truncated, error, duration_ms, cpu_ms, peak_memory_bytes, created_at, \
         started_at, finished_at"
    };
}

/// A script's columns read with a name prefix (`s_` in joins).
macro_rules! script_from {
    ($r:expr, $p:literal) => {
        Script {
            id: $r.try_get(concat!($p, "id"))?,
            tenant_id: $r.try_get(concat!($p, "tenant_id"))?,
            name: $r.try_get(concat!($p, "name"))?,
            live_seq: $r.try_get(concat!($p, "live_seq"))?,
            latest_seq: $r.try_get(concat!($p, "latest_seq"))?,
            created_at: $r.try_get(concat!($p, "created_at"))?,
            updated_at: $r.try_get(concat!($p, "updated_at"))?,
        }
    };
}

macro_rules! version_from {
    ($r:expr) => {
        ScriptVersion {
            script_id: $r.try_get("script_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            seq: $r.try_get("seq")?,
            version: $r.try_get("version")?,
            hash: $r.try_get("hash")?,
            source: $r.try_get("source")?,
            language: $r.try_get("language")?,
            capabilities: $r.try_get("capabilities")?,
            limits: $r.try_get("limits")?,
            diagnostics: $r.try_get("diagnostics")?,
            change_note: $r.try_get("change_note")?,
            author: $r.try_get("author")?,
            state: $r.try_get("state")?,
            reviewed_by: $r.try_get("reviewed_by")?,
            review_reason: $r.try_get("review_reason")?,
            reviewed_at: $r.try_get("reviewed_at")?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

macro_rules! run_from {
    ($r:expr) => {
        Run {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            script_id: $r.try_get("script_id")?,
            script_name: $r.try_get("script_name")?,
            version: $r.try_get("version")?,
            status: $r.try_get("status")?,
            trigger: $r.try_get("trigger_kind")?,
            principal: $r.try_get("principal")?,
            input: $r.try_get("input")?,
            result: $r.try_get("result")?,
            logs: $r.try_get("logs")?,
            logs_truncated: $r.try_get("logs_truncated")?,
            error: $r.try_get("error")?,
            duration_ms: $r.try_get("duration_ms")?,
            cpu_ms: $r.try_get("cpu_ms")?,
            peak_memory_bytes: $r.try_get("peak_memory_bytes")?,
            created_at: $r.try_get("created_at")?,
            started_at: $r.try_get("started_at")?,
            finished_at: $r.try_get("finished_at")?,
        }
    };
}

/// Inserts a run, or updates what changes while it runs (an existing run of
/// another tenant is left alone).
const UPSERT_RUN: &str = concat!(
    "INSERT INTO runs (",
    run_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
     logs = excluded.logs, logs_truncated = excluded.logs_truncated, error = excluded.error, \
     duration_ms = excluded.duration_ms, cpu_ms = excluded.cpu_ms, \
     peak_memory_bytes = excluded.peak_memory_bytes, started_at = excluded.started_at, \
     finished_at = excluded.finished_at \
     WHERE runs.tenant_id = excluded.tenant_id"
);

/// The shared implementation. `$begin` (or `None`) is the statement that
/// starts a writing transaction: SQLite takes its write lock at
/// `BEGIN IMMEDIATE`, because a deferred transaction that reads and then
/// writes fails with SQLITE_BUSY_SNAPSHOT when another connection wrote in
/// between. `$lock` is appended to the read of the script row in
/// `save_version` (`FOR UPDATE` on PostgreSQL, so concurrent saves of one
/// script queue up instead of computing the same `seq`).
macro_rules! impl_script_store {
    ($ty:ty, $db:ty, $begin:expr, $lock:literal) => {
        impl $ty {
            pub(crate) async fn write_tx(&self) -> sqlx::Result<sqlx::Transaction<'static, $db>> {
                let begin: Option<&'static str> = $begin;
                match begin {
                    Some(sql) => self.pool.begin_with(sql).await,
                    None => self.pool.begin().await,
                }
            }
        }

        impl ScriptStore for $ty {
            fn tenant_settings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT settings FROM tenant_settings WHERE tenant_id = $1")
                        .bind(tenant_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(r.try_get("settings")?),
                        None => None,
                    })
                })
            }

            fn put_tenant_settings<'a>(&'a self, tenant_id: &'a str, settings: &'a str, at: i64) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
                    )
                    .bind(tenant_id)
                    .bind(settings)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict(e, format!("tenant `{tenant_id}`")))?;
                    Ok(())
                })
            }

            fn save_version<'a>(&'a self, new: &'a NewVersion, next_version: NextVersion<'a>) -> StoreFuture<'a, SaveOutcome> {
                Box::pin(async move {
                    let now = now_ms();
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "INSERT INTO scripts (id, tenant_id, name, live_seq, latest_seq, created_at, updated_at) \
                         VALUES ($1, $2, $3, NULL, 0, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
                    )
                    .bind(new_id("scr"))
                    .bind(&new.tenant_id)
                    .bind(&new.name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, format!("tenant `{}`", new.tenant_id)))?;
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        script_columns!(),
                        " FROM scripts WHERE tenant_id = $1 AND name = $2",
                        $lock
                    ))
                    .bind(&new.tenant_id)
                    .bind(&new.name)
                    .fetch_one(&mut *tx)
                    .await?;
                    let script = script_from!(row, "");
                    let latest = if script.latest_seq > 0 {
                        let r = sqlx::query(concat!(
                            "SELECT ",
                            version_columns!(),
                            " FROM script_versions WHERE script_id = $1 AND seq = $2"
                        ))
                        .bind(&script.id)
                        .bind(script.latest_seq)
                        .fetch_one(&mut *tx)
                        .await?;
                        Some(version_from!(r))
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
                        language: new.language.clone(),
                        capabilities: new.capabilities.clone(),
                        limits: new.limits.clone(),
                        diagnostics: new.diagnostics.clone(),
                        change_note: new.change_note.clone(),
                        author: new.author.clone(),
                        state: new.state.clone(),
                        reviewed_by: None,
                        review_reason: None,
                        reviewed_at: None,
                        created_at: now,
                    };
                    sqlx::query(concat!(
                        "INSERT INTO script_versions (",
                        version_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
                    ))
                    .bind(&created.script_id)
                    .bind(&created.tenant_id)
                    .bind(created.seq)
                    .bind(&created.version)
                    .bind(&created.hash)
                    .bind(&created.source)
                    .bind(&created.language)
                    .bind(&created.capabilities)
                    .bind(&created.limits)
                    .bind(&created.diagnostics)
                    .bind(&created.change_note)
                    .bind(&created.author)
                    .bind(&created.state)
                    .bind(&created.reviewed_by)
                    .bind(&created.review_reason)
                    .bind(created.reviewed_at)
                    .bind(created.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, format!("version {} of script `{}`", created.version, new.name)))?;
                    sqlx::query(
                        "UPDATE scripts SET latest_seq = $1, updated_at = $2, live_seq = COALESCE($3, live_seq) WHERE id = $4",
                    )
                    .bind(created.seq)
                    .bind(now)
                    .bind(new.make_live.then_some(created.seq))
                    .bind(&script.id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(SaveOutcome::Created(created))
                })
            }

            fn script<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, Option<Script>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        script_columns!(),
                        " FROM scripts WHERE tenant_id = $1 AND name = $2"
                    ))
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match row {
                        Some(r) => Some(script_from!(r, "")),
                        None => None,
                    })
                })
            }

            fn list_scripts<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Script>> {
                Box::pin(async move {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        script_columns!(),
                        " FROM scripts WHERE tenant_id = $1 ORDER BY name"
                    ))
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(script_from!(r, ""));
                    }
                    Ok(out)
                })
            }

            fn live_version<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, Option<(Script, ScriptVersion)>> {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT s.id AS s_id, s.tenant_id AS s_tenant_id, s.name AS s_name, s.live_seq AS s_live_seq, \
                         s.latest_seq AS s_latest_seq, s.created_at AS s_created_at, s.updated_at AS s_updated_at, \
                         v.script_id, v.tenant_id, v.seq, v.version, v.hash, v.source, v.language, v.capabilities, \
                         v.limits, v.diagnostics, v.change_note, v.author, v.state, v.reviewed_by, v.review_reason, \
                         v.reviewed_at, v.created_at \
                         FROM scripts s JOIN script_versions v ON v.script_id = s.id AND v.seq = s.live_seq \
                         WHERE s.tenant_id = $1 AND s.name = $2",
                    )
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match row {
                        Some(r) => Some((script_from!(r, "s_"), version_from!(r))),
                        None => None,
                    })
                })
            }

            fn version<'a>(&'a self, tenant_id: &'a str, script_id: &'a str, version: &'a str) -> StoreFuture<'a, Option<ScriptVersion>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        version_columns!(),
                        " FROM script_versions WHERE tenant_id = $1 AND script_id = $2 AND version = $3"
                    ))
                    .bind(tenant_id)
                    .bind(script_id)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match row {
                        Some(r) => Some(version_from!(r)),
                        None => None,
                    })
                })
            }

            fn versions<'a>(&'a self, tenant_id: &'a str, script_id: &'a str) -> StoreFuture<'a, Vec<ScriptVersion>> {
                Box::pin(async move {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        version_columns!(),
                        " FROM script_versions WHERE tenant_id = $1 AND script_id = $2 ORDER BY seq"
                    ))
                    .bind(tenant_id)
                    .bind(script_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(version_from!(r));
                    }
                    Ok(out)
                })
            }

            fn transition_version<'a>(&'a self, t: &'a VersionTransition) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    if t.from.is_empty() {
                        return Ok(false);
                    }
                    let mut sql = String::from(
                        "UPDATE script_versions SET state = $1, reviewed_by = $2, review_reason = $3, reviewed_at = $4 \
                         WHERE tenant_id = $5 AND script_id = $6 AND seq = $7 AND state IN (",
                    );
                    for i in 0..t.from.len() {
                        let sep = if i == 0 { "" } else { ", " };
                        let _ = write!(sql, "{sep}${}", i + 8);
                    }
                    sql.push(')');
                    let mut update = sqlx::query(&sql)
                        .bind(&t.to)
                        .bind(&t.reviewed_by)
                        .bind(&t.review_reason)
                        .bind(t.at)
                        .bind(&t.tenant_id)
                        .bind(&t.script_id)
                        .bind(t.seq);
                    for from in &t.from {
                        update = update.bind(from);
                    }
                    let mut tx = self.write_tx().await?;
                    if update.execute(&mut *tx).await?.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    if t.make_live {
                        sqlx::query("UPDATE scripts SET live_seq = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4")
                            .bind(t.seq)
                            .bind(t.at)
                            .bind(&t.tenant_id)
                            .bind(&t.script_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn set_live<'a>(&'a self, tenant_id: &'a str, script_id: &'a str, seq: i64, at: i64) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE scripts SET live_seq = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                         AND EXISTS (SELECT 1 FROM script_versions v WHERE v.tenant_id = $1 AND v.script_id = $2 AND v.seq = $3)",
                    )
                    .bind(tenant_id)
                    .bind(script_id)
                    .bind(seq)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn put_runs<'a>(&'a self, runs: &'a [Run]) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    if runs.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.write_tx().await?;
                    // One statement text, so the connection's cached prepared
                    // statement serves every row.
                    for r in runs {
                        sqlx::query(UPSERT_RUN)
                            .bind(&r.id)
                            .bind(&r.tenant_id)
                            .bind(&r.script_id)
                            .bind(&r.script_name)
                            .bind(&r.version)
                            .bind(&r.status)
                            .bind(&r.trigger)
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
                            .bind(r.finished_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn run<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Run>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!("SELECT ", run_columns!(), " FROM runs WHERE tenant_id = $1 AND id = $2"))
                        .bind(tenant_id)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(run_from!(r)),
                        None => None,
                    })
                })
            }

            fn list_runs<'a>(&'a self, q: &'a RunQuery) -> StoreFuture<'a, Vec<Run>> {
                Box::pin(async move {
                    // Only the filters given appear in the statement, so each
                    // combination can use its index.
                    let mut sql = String::from(concat!("SELECT ", run_columns!(), " FROM runs WHERE tenant_id = $1"));
                    let mut n = 1;
                    if q.script_name.is_some() {
                        n += 1;
                        let _ = write!(sql, " AND script_name = ${n}");
                    }
                    if q.status.is_some() {
                        n += 1;
                        let _ = write!(sql, " AND status = ${n}");
                    }
                    if q.before.is_some() {
                        // Strictly older in (created_at, id) order; an unknown
                        // run compares as NULL, which selects nothing.
                        n += 1;
                        let _ = write!(
                            sql,
                            " AND (created_at, id) < (SELECT b.created_at, b.id FROM runs b WHERE b.tenant_id = $1 AND b.id = ${n})"
                        );
                    }
                    n += 1;
                    let _ = write!(sql, " ORDER BY created_at DESC, id DESC LIMIT ${n}");
                    let mut query = sqlx::query(&sql).bind(&q.tenant_id);
                    for value in [&q.script_name, &q.status, &q.before].into_iter().flatten() {
                        query = query.bind(value);
                    }
                    let rows = query.bind(q.limit.clamp(1, 1000)).fetch_all(&self.pool).await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(run_from!(r));
                    }
                    Ok(out)
                })
            }

            fn engage_kill_switch<'a>(&'a self, k: &'a KillSwitch) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO kill_switches (scope, tenant_id, target, reason, engaged_by, engaged_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, tenant_id, target) DO NOTHING",
                    )
                    .bind(&k.scope)
                    .bind(&k.tenant_id)
                    .bind(&k.target)
                    .bind(&k.reason)
                    .bind(&k.engaged_by)
                    .bind(k.engaged_at)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn release_kill_switch<'a>(&'a self, scope: &'a str, tenant_id: &'a str, target: &'a str) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM kill_switches WHERE scope = $1 AND tenant_id = $2 AND target = $3")
                        .bind(scope)
                        .bind(tenant_id)
                        .bind(target)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn kill_switches(&self) -> StoreFuture<'_, Vec<KillSwitch>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT scope, tenant_id, target, reason, engaged_by, engaged_at FROM kill_switches \
                         ORDER BY engaged_at, scope, tenant_id, target",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(KillSwitch {
                            scope: r.try_get("scope")?,
                            tenant_id: r.try_get("tenant_id")?,
                            target: r.try_get("target")?,
                            reason: r.try_get("reason")?,
                            engaged_by: r.try_get("engaged_by")?,
                            engaged_at: r.try_get("engaged_at")?,
                        });
                    }
                    Ok(out)
                })
            }
        }
    };
}

impl_script_store!(SqliteStore, Sqlite, Some("BEGIN IMMEDIATE"), "");
impl_script_store!(PgStore, Postgres, None, " FOR UPDATE");
