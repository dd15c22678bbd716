//! [`KvStore`]: each tenant's key-value store, in the main database. Every
//! write is one transaction that checks the entry's version (compare and
//! set), drops the tenant's expired entries and keeps the tenant's byte
//! count against its quota; so reads see every write before them, on any
//! node.

use std::sync::LazyLock;

use serde::Serialize;

use crate::sql::{Dialect, SqlStore};
use crate::{Backend, StoreFuture};

/// One entry. `value` is JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
    /// 1 when created, one more per write.
    pub version: i64,
    pub expires_at: Option<i64>,
    pub updated_at: i64,
}

/// A write to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite<'a> {
    pub tenant_id: &'a str,
    pub key: &'a str,
    /// JSON text.
    pub value: &'a str,
    pub expires_at: Option<i64>,
    /// Write only if the entry is at this version (0: only if absent).
    pub if_version: Option<i64>,
    /// The tenant's byte quota (keys and values).
    pub quota_bytes: i64,
    pub now: i64,
}

/// What a write or delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvOutcome {
    /// Done; the entry's version now (0 after a delete).
    Done { version: i64 },
    /// The entry was not at the version asked for (its version now, 0 for
    /// none); nothing changed.
    VersionMismatch { current: i64 },
    /// The tenant's quota would be exceeded; nothing changed.
    QuotaExceeded { used: i64, quota: i64 },
    /// A delete of an entry that does not exist.
    Missing,
}

/// The key-value stores. Every method is scoped by tenant; entries whose
/// `expires_at` has passed are absent.
pub trait KvStore: Send + Sync {
    fn kv_get<'a>(
        &'a self,
        tenant_id: &'a str,
        key: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<KvEntry>>;
    fn kv_set<'a>(&'a self, write: &'a KvWrite<'a>) -> StoreFuture<'a, KvOutcome>;
    /// Deletes an entry (only at `if_version`, when given).
    fn kv_delete<'a>(
        &'a self,
        tenant_id: &'a str,
        key: &'a str,
        if_version: Option<i64>,
        now: i64,
    ) -> StoreFuture<'a, KvOutcome>;
    /// Entries whose key starts with `prefix`, by key (bytewise), after
    /// `after`; at most `limit` (1..=1000).
    fn kv_list<'a>(
        &'a self,
        tenant_id: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: i64,
        now: i64,
    ) -> StoreFuture<'a, Vec<KvEntry>>;
    /// Bytes the tenant's entries hold (expired ones until they are
    /// dropped).
    fn kv_usage<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, i64>;
}

const ENTRY_COLUMNS: &str = "key, value, version, expires_at, updated_at";

static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ENTRY_COLUMNS} FROM kv WHERE tenant_id = $1 AND key = $2 \
         AND (expires_at IS NULL OR expires_at > $3)"
    )
});
/// Keys compare bytewise on both databases (`COLLATE "C"` on PostgreSQL's
/// column), so a page's order and its cursor agree everywhere.
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ENTRY_COLUMNS} FROM kv WHERE tenant_id = $1 \
         AND substr(key, 1, CAST($2 AS INTEGER)) = $3 AND key > $4 \
         AND (expires_at IS NULL OR expires_at > $5) ORDER BY key LIMIT $6"
    )
});
const USAGE: &str = "SELECT bytes FROM kv_usage WHERE tenant_id = $1";
/// [`USAGE`], locking the tenant's count so its writes take turns.
static USAGE_FOR_UPDATE: LazyLock<String> = LazyLock::new(|| format!("{USAGE} FOR UPDATE"));

/// The bytes an entry counts for.
fn entry_bytes(key: &str, value: &str) -> i64 {
    (key.len() + value.len()) as i64
}

impl<D: Dialect> SqlStore<D> {
    /// In a write transaction: the tenant's used bytes (its count locked
    /// until the transaction ends) after dropping its expired entries.
    pub(crate) async fn kv_lock_usage(
        conn: &mut D::Connection,
        tenant_id: &str,
        now: i64,
    ) -> sqlx::Result<i64> {
        D::query("INSERT INTO kv_usage (tenant_id, bytes) VALUES ($1, 0) ON CONFLICT DO NOTHING")
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
        // PostgreSQL: writes of one tenant queue on its count's row lock.
        // SQLite: the write transaction already holds the only write lock.
        let select = match D::BACKEND {
            Backend::Postgres => &*USAGE_FOR_UPDATE,
            Backend::Sqlite => USAGE,
        };
        let (used,): (i64,) = D::query(select)
            .bind(tenant_id)
            .fetch_one(&mut *conn)
            .await?;
        let (expired,): (Option<i64>,) = D::query(
            "SELECT CAST(SUM(bytes) AS BIGINT) FROM kv WHERE tenant_id = $1 AND expires_at <= $2",
        )
        .bind(tenant_id)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let Some(expired) = expired else {
            return Ok(used);
        };
        D::query("DELETE FROM kv WHERE tenant_id = $1 AND expires_at <= $2")
            .bind(tenant_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Self::kv_add_usage(conn, tenant_id, -expired).await?;
        Ok(used - expired)
    }

    pub(crate) async fn kv_add_usage(
        conn: &mut D::Connection,
        tenant_id: &str,
        delta: i64,
    ) -> sqlx::Result<()> {
        D::query("UPDATE kv_usage SET bytes = bytes + $2 WHERE tenant_id = $1")
            .bind(tenant_id)
            .bind(delta)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn kv_current(
        conn: &mut D::Connection,
        tenant_id: &str,
        key: &str,
    ) -> sqlx::Result<Option<(i64, i64)>> {
        D::query("SELECT version, bytes FROM kv WHERE tenant_id = $1 AND key = $2")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
    }
}

impl<D: Dialect> KvStore for SqlStore<D> {
    fn kv_get<'a>(
        &'a self,
        tenant_id: &'a str,
        key: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<KvEntry>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&GET)
                .bind(tenant_id)
                .bind(key)
                .bind(now)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn kv_set<'a>(&'a self, w: &'a KvWrite<'a>) -> StoreFuture<'a, KvOutcome> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let used = Self::kv_lock_usage(&mut tx, w.tenant_id, w.now).await?;
            let current = Self::kv_current(&mut tx, w.tenant_id, w.key).await?;
            let (version, old_bytes) = current.unwrap_or((0, 0));
            if let Some(expected) = w.if_version
                && expected != version
            {
                tx.commit().await?;
                return Ok(KvOutcome::VersionMismatch { current: version });
            }
            let bytes = entry_bytes(w.key, w.value);
            let delta = bytes - old_bytes;
            if delta > 0 && used + delta > w.quota_bytes {
                tx.commit().await?;
                return Ok(KvOutcome::QuotaExceeded {
                    used,
                    quota: w.quota_bytes,
                });
            }
            let next = version + 1;
            D::query(
                "INSERT INTO kv (tenant_id, key, value, version, bytes, expires_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, \
                 version = excluded.version, bytes = excluded.bytes, \
                 expires_at = excluded.expires_at, updated_at = excluded.updated_at",
            )
            .bind(w.tenant_id)
            .bind(w.key)
            .bind(w.value)
            .bind(next)
            .bind(bytes)
            .bind(w.expires_at)
            .bind(w.now)
            .execute(&mut tx)
            .await?;
            Self::kv_add_usage(&mut tx, w.tenant_id, delta).await?;
            tx.commit().await?;
            Ok(KvOutcome::Done { version: next })
        })
    }

    fn kv_delete<'a>(
        &'a self,
        tenant_id: &'a str,
        key: &'a str,
        if_version: Option<i64>,
        now: i64,
    ) -> StoreFuture<'a, KvOutcome> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            Self::kv_lock_usage(&mut tx, tenant_id, now).await?;
            let Some((version, bytes)) = Self::kv_current(&mut tx, tenant_id, key).await? else {
                tx.commit().await?;
                return Ok(match if_version {
                    Some(v) if v != 0 => KvOutcome::VersionMismatch { current: 0 },
                    _ => KvOutcome::Missing,
                });
            };
            if let Some(expected) = if_version
                && expected != version
            {
                tx.commit().await?;
                return Ok(KvOutcome::VersionMismatch { current: version });
            }
            D::query("DELETE FROM kv WHERE tenant_id = $1 AND key = $2")
                .bind(tenant_id)
                .bind(key)
                .execute(&mut tx)
                .await?;
            Self::kv_add_usage(&mut tx, tenant_id, -bytes).await?;
            tx.commit().await?;
            Ok(KvOutcome::Done { version: 0 })
        })
    }

    fn kv_list<'a>(
        &'a self,
        tenant_id: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: i64,
        now: i64,
    ) -> StoreFuture<'a, Vec<KvEntry>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&LIST)
                .bind(tenant_id)
                .bind(prefix.chars().count() as i64)
                .bind(prefix)
                .bind(after.unwrap_or(""))
                .bind(now)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn kv_usage<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let used: Option<(i64,)> = D::query(USAGE)
                .bind(tenant_id)
                .fetch_optional(&mut conn)
                .await?;
            Ok(used.map_or(0, |(b,)| b))
        })
    }
}
