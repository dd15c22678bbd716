//! Storage for Citadel: SQLite (the embedded default: one file, WAL mode)
//! or PostgreSQL (many nodes), chosen once from the database URL
//! ([`connect`]); each has its own migrations, applied at start.
//!
//! Callers see traits, one per part of what is kept — [`TenantStore`],
//! [`AccessStore`] (tokens, users, roles and bindings), [`AuditStore`],
//! [`ScriptStore`], [`JobStore`], [`EventStore`], [`ScheduleStore`] — and
//! [`Store`], all of them at once, which [`connect`] returns as an
//! `Arc<dyn Store>`. Their methods return boxed futures so the traits are
//! object safe.
//!
//! One generic type implements them for both databases (`sql.rs`): the SQL
//! is shared, and what differs is a small `Dialect` trait implemented for
//! each (`sqlite.rs`, `postgres.rs`). Each trait's implementation is in its
//! own module (`access.rs`, `audit.rs`, `scripts.rs`, `jobs.rs`,
//! `events.rs`, `schedules.rs`); rows decode into the model types
//! (`model.rs`, `events.rs`), and one that does not decode is an error.
//!
//! Only this crate knows SQL. Every tenant-owned query takes the tenant id as
//! an argument, so callers cannot forget it.

mod access;
mod audit;
mod datasources;
mod events;
mod jobs;
mod kv;
mod model;
mod plugins;
mod postgres;
mod schedules;
mod scripts;
mod secrets;
mod sql;
mod sqlite;
mod text;
mod webhooks;
mod workflows;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use access::{AccessStore, TenantStore};
pub use audit::AuditStore;
pub use datasources::{DataSource, DataSourceStore};
pub use events::{Delivery, Event, EventStore, Published, Subscription};
pub use jobs::JobStore;
pub use kv::{KvEntry, KvOutcome, KvStore, KvWrite};
pub use model::*;
pub use plugins::{Plugin, PluginStore, PluginSwitch, PluginVersion, plugin_schedule_prefix};
pub use schedules::ScheduleStore;
pub use scripts::{NextVersion, ScriptStore};
pub use secrets::{DataKeyRow, SealedVersion, SecretChange, SecretMeta, SecretStore, SecretUse};
pub use webhooks::{
    EndpointSave, FinishedDelivery, InboundWebhook, WebhookAttempt, WebhookDelivery,
    WebhookEndpoint, WebhookEndpointVersion, WebhookStore,
};
pub use workflows::{StepDecision, WorkflowStep, WorkflowStore};

use sql::SqlStore;

/// Errors of the store. `Conflict` and `NotFound` are for the caller to map;
/// everything else is the database's problem. A stored value that does not
/// decode is a `Database(sqlx::Error::ColumnDecode { .. })` whose index
/// names the table, column and row.
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

/// The future every store method returns (boxed so the store traits are
/// object safe).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything Citadel keeps: every store trait at once, as [`connect`]
/// returns it. Implemented for SQLite and PostgreSQL.
pub trait Store:
    TenantStore
    + AccessStore
    + AuditStore
    + ScriptStore
    + JobStore
    + EventStore
    + ScheduleStore
    + SecretStore
    + KvStore
    + DataSourceStore
    + WorkflowStore
    + PluginStore
    + WebhookStore
    + Send
    + Sync
{
    fn backend(&self) -> Backend;
    /// Reachable, and every migration this build knows is applied.
    fn ready(&self) -> StoreFuture<'_, ()>;
}

impl<D: sql::Dialect> Store for SqlStore<D> {
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (applied,): (Option<i64>,) =
                D::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
                    .fetch_one(&mut conn)
                    .await?;
            let applied = applied.unwrap_or(0);
            if applied < self.migrations {
                return Err(StoreError::NotFound(format!(
                    "migration {} (applied: {applied})",
                    self.migrations
                )));
            }
            Ok(())
        })
    }
}

/// Opens (creating if needed) and migrates the database at `url`:
/// `sqlite://PATH` or `postgres://…`.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(SqlStore::<sqlx::Sqlite>::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(SqlStore::<sqlx::Postgres>::open(url).await?))
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
    prefixed_hex(prefix, &bytes)
}

/// A new id for rows written at a high rate (runs, events, messages):
/// 48 bits of the current Unix millisecond, then 80 random bits, as hex
/// (`run_0193…`, the same shape as [`new_id`]). Ids made one after another
/// sort together, so a batch of inserts lands on the rightmost pages of the
/// primary-key index instead of one random page per row (fewer pages read,
/// written to the WAL and checkpointed); 80 random bits keep them
/// unguessable.
pub fn new_time_ordered_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    let ms = u64::try_from(now_ms()).unwrap_or(0);
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    getrandom::fill(&mut bytes[6..]).expect("the operating system provides randomness");
    prefixed_hex(prefix, &bytes)
}

fn prefixed_hex(prefix: &str, bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

#[cfg(test)]
mod id_tests {
    use super::*;

    fn is_id(id: &str, prefix: &str) -> bool {
        id.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|hex| {
                hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
    }

    #[test]
    fn ids_are_a_prefix_and_32_lowercase_hex_digits() {
        assert!(is_id(&new_id("tnt"), "tnt"));
        assert!(is_id(&new_time_ordered_id("run"), "run"));
        assert_ne!(new_id("tnt"), new_id("tnt"));
        assert_ne!(new_time_ordered_id("run"), new_time_ordered_id("run"));
    }

    #[test]
    fn time_ordered_ids_start_with_their_millisecond_and_sort_by_it() {
        let before = now_ms();
        let first = new_time_ordered_id("run");
        let stamp = i64::from_str_radix(&first["run_".len().."run_".len() + 12], 16).unwrap();
        assert!(
            stamp >= before && stamp <= now_ms(),
            "{stamp} outside [{before}, now]"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_time_ordered_id("run");
        assert!(later > first, "{later} sorts before {first}");
    }
}
