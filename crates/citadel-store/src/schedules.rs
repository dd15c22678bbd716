//! [`ScheduleStore`] for SQLite and PostgreSQL, shared SQL through one
//! macro like the rest of the store. Firing is made exactly-once by the
//! caller with two guards this store provides: `advance_schedule` is a
//! compare-and-set on `next_fire_at`, so one node advances an occurrence,
//! and the run it enqueues carries an idempotency key naming the
//! occurrence, so a second enqueue of it is a no-op.

use sqlx::Row;

use crate::backend::{PgStore, SqliteStore, conflict};
use crate::{Schedule, StoreFuture};

/// Cron schedules on scripts. Every method but the two the scheduler uses
/// across tenants (`due_schedules`, `advance_schedule`) takes the tenant.
pub trait ScheduleStore: Send + Sync {
    /// Creates the schedule, or replaces the one of the same tenant and
    /// name (keeping its id, `created_at` and `last_fired_at`). Returns the
    /// schedule as stored: its id differs from `schedule.id` when it
    /// replaced one.
    fn put_schedule<'a>(&'a self, schedule: &'a Schedule) -> StoreFuture<'a, Schedule>;
    fn schedule<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<Schedule>>;
    /// A tenant's schedules, by name.
    fn list_schedules<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Schedule>>;
    /// False when the tenant has no such schedule.
    fn delete_schedule<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
    /// Enabled schedules of every tenant with `next_fire_at <= now`, the
    /// most overdue first; `limit` is clamped to 1..=1000.
    fn due_schedules(&self, now: i64, limit: i64) -> StoreFuture<'_, Vec<Schedule>>;
    /// Moves a schedule's `next_fire_at` from `expected` to `next` (and,
    /// with `fired_at`, sets `last_fired_at`) if it still is `expected`;
    /// false (nothing changed) when another node advanced it first or the
    /// schedule was replaced or deleted meanwhile.
    fn advance_schedule<'a>(
        &'a self,
        id: &'a str,
        expected: i64,
        next: i64,
        fired_at: Option<i64>,
    ) -> StoreFuture<'a, bool>;
}

macro_rules! schedule_columns {
    () => {
        "id, tenant_id, name, script_name, cron, timezone, input, missed, enabled, next_fire_at, \
         last_fired_at, created_at, updated_at"
    };
}

macro_rules! schedule_from {
    ($r:expr) => {
        Schedule {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            script_name: $r.try_get("script_name")?,
            cron: $r.try_get("cron")?,
            timezone: $r.try_get("timezone")?,
            input: $r.try_get("input")?,
            missed: $r.try_get("missed")?,
            enabled: $r.try_get("enabled")?,
            next_fire_at: $r.try_get("next_fire_at")?,
            last_fired_at: $r.try_get("last_fired_at")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

macro_rules! impl_schedule_store {
    ($ty:ty) => {
        impl ScheduleStore for $ty {
            fn put_schedule<'a>(&'a self, s: &'a Schedule) -> StoreFuture<'a, Schedule> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "INSERT INTO schedules (",
                        schedule_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                         ON CONFLICT (tenant_id, name) DO UPDATE SET script_name = excluded.script_name, \
                         cron = excluded.cron, timezone = excluded.timezone, input = excluded.input, \
                         missed = excluded.missed, enabled = excluded.enabled, \
                         next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at \
                         RETURNING ",
                        schedule_columns!()
                    ))
                    .bind(&s.id)
                    .bind(&s.tenant_id)
                    .bind(&s.name)
                    .bind(&s.script_name)
                    .bind(&s.cron)
                    .bind(&s.timezone)
                    .bind(&s.input)
                    .bind(&s.missed)
                    .bind(s.enabled)
                    .bind(s.next_fire_at)
                    .bind(s.last_fired_at)
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                            conflict(e, format!("tenant `{}`", s.tenant_id))
                        }
                        _ => conflict(e, format!("schedule `{}`", s.id)),
                    })?;
                    Ok(schedule_from!(row))
                })
            }

            fn schedule<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, Option<Schedule>> {
                Box::pin(async move {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        schedule_columns!(),
                        " FROM schedules WHERE tenant_id = $1 AND name = $2"
                    ))
                    .bind(tenant_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match row {
                        Some(r) => Some(schedule_from!(r)),
                        None => None,
                    })
                })
            }

            fn list_schedules<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Schedule>> {
                Box::pin(async move {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        schedule_columns!(),
                        " FROM schedules WHERE tenant_id = $1 ORDER BY name"
                    ))
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(schedule_from!(r));
                    }
                    Ok(out)
                })
            }

            fn delete_schedule<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM schedules WHERE tenant_id = $1 AND name = $2")
                        .bind(tenant_id)
                        .bind(name)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn due_schedules(&self, now: i64, limit: i64) -> StoreFuture<'_, Vec<Schedule>> {
                Box::pin(async move {
                    // One range scan of `schedules_due`.
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        schedule_columns!(),
                        " FROM schedules WHERE enabled = $1 AND next_fire_at <= $2 \
                         ORDER BY next_fire_at, id LIMIT $3"
                    ))
                    .bind(true)
                    .bind(now)
                    .bind(limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(schedule_from!(r));
                    }
                    Ok(out)
                })
            }

            fn advance_schedule<'a>(
                &'a self,
                id: &'a str,
                expected: i64,
                next: i64,
                fired_at: Option<i64>,
            ) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    // One conditional statement: atomic on both backends
                    // (PostgreSQL re-checks the condition on a row it waited
                    // for, so the second of two racing advances matches none).
                    let done = sqlx::query(
                        "UPDATE schedules SET next_fire_at = $1, last_fired_at = COALESCE($2, last_fired_at) \
                         WHERE id = $3 AND next_fire_at = $4",
                    )
                    .bind(next)
                    .bind(fired_at)
                    .bind(id)
                    .bind(expected)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }
        }
    };
}

impl_schedule_store!(SqliteStore);
impl_schedule_store!(PgStore);
