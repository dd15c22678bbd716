//! [`ScheduleStore`]: cron schedules on scripts. Firing is made
//! exactly-once by the caller with two guards this store provides:
//! `advance_schedule` is a compare-and-set on `next_fire_at`, so one node
//! advances an occurrence, and the run it enqueues carries an idempotency
//! key naming the occurrence, so a second enqueue of it is a no-op.

use std::sync::LazyLock;

use crate::sql::{Dialect, SqlStore, conflict};
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

const SCHEDULE_COLUMNS: &str = "id, tenant_id, name, script_name, cron, timezone, input, missed, \
     enabled, next_fire_at, last_fired_at, created_at, updated_at";

static PUT_SCHEDULE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET script_name = excluded.script_name, \
         cron = excluded.cron, timezone = excluded.timezone, input = excluded.input, \
         missed = excluded.missed, enabled = excluded.enabled, \
         next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at \
         RETURNING {SCHEDULE_COLUMNS}"
    )
});
static SCHEDULE_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant_id = $1 AND name = $2")
});
static SCHEDULES_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant_id = $1 ORDER BY name")
});
/// One range scan of `schedules_due`.
static DUE_SCHEDULES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE enabled = $1 AND next_fire_at <= $2 \
         ORDER BY next_fire_at, id LIMIT $3"
    )
});

impl<D: Dialect> ScheduleStore for SqlStore<D> {
    fn put_schedule<'a>(&'a self, s: &'a Schedule) -> StoreFuture<'a, Schedule> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            D::query(&PUT_SCHEDULE)
                .bind(&s.id)
                .bind(&s.tenant_id)
                .bind(&s.name)
                .bind(&s.script_name)
                .bind(&s.cron)
                .bind(&s.timezone)
                .bind(&s.input)
                .bind(s.missed.as_str())
                .bind(s.enabled)
                .bind(s.next_fire_at)
                .bind(s.last_fired_at)
                .bind(s.created_at)
                .bind(s.updated_at)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        conflict(e, format!("tenant `{}`", s.tenant_id))
                    }
                    _ => conflict(e, format!("schedule `{}`", s.id)),
                })
        })
    }

    fn schedule<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<Schedule>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SCHEDULE_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_schedules<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Schedule>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SCHEDULES_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn delete_schedule<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query("DELETE FROM schedules WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut conn)
                .await?;
            Ok(done == 1)
        })
    }

    fn due_schedules(&self, now: i64, limit: i64) -> StoreFuture<'_, Vec<Schedule>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&DUE_SCHEDULES)
                .bind(true)
                .bind(now)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
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
            let mut conn = self.write_conn().await?;
            // One conditional statement: atomic on both backends (PostgreSQL
            // re-checks the condition on a row it waited for, so the second
            // of two racing advances matches none).
            let done = D::query(
                "UPDATE schedules SET next_fire_at = $1, \
                 last_fired_at = COALESCE($2, last_fired_at) WHERE id = $3 AND next_fire_at = $4",
            )
            .bind(next)
            .bind(fired_at)
            .bind(id)
            .bind(expected)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }
}
