//! [`SecretStore`]: tenants' secrets as sealed bytes, the data keys that
//! seal them (wrapped by the master key), and who read which secret when.
//! The store never sees a key or a value in the clear: sealing and opening
//! are `citadel-secrets`' business.

use std::sync::LazyLock;

use serde::Serialize;

use crate::sql::{Dialect, SqlStore, conflict};
use crate::{Backend, StoreFuture};

/// A tenant's data key, wrapped by the master key `master_key_id`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DataKeyRow {
    pub tenant_id: String,
    pub id: String,
    pub master_key_id: String,
    pub nonce: Vec<u8>,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// What a secret is, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SecretMeta {
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    /// The version served.
    pub version: i64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// One sealed version of a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SealedVersion {
    pub version: i64,
    /// The data key that sealed it.
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: i64,
}

/// One read of a secret by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SecretUse {
    pub name: String,
    /// The secret's version that was read.
    pub version: i64,
    pub script_name: String,
    pub script_version: String,
    pub run_id: String,
    pub at: i64,
}

/// A secret's metadata changes made with a rotation (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretChange {
    pub description: Option<String>,
    /// `Some(None)` clears the expiry.
    pub expires_at: Option<Option<i64>>,
}

/// Secrets and their keys. Every method but the master key's (which spans
/// every tenant) is scoped by tenant.
pub trait SecretStore: Send + Sync {
    /// The tenant's newest data key.
    fn data_key<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Option<DataKeyRow>>;
    fn data_key_by_id<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<DataKeyRow>>;
    /// Stores a new data key; `Conflict` if the tenant has one with that id.
    fn put_data_key<'a>(&'a self, key: &'a DataKeyRow) -> StoreFuture<'a, ()>;
    /// Every data key of every tenant (to re-wrap them, or to check the
    /// master key at start-up).
    fn all_data_keys(&self) -> StoreFuture<'_, Vec<DataKeyRow>>;
    /// The master keys data keys are wrapped with, each with a count.
    fn master_key_ids(&self) -> StoreFuture<'_, Vec<(String, i64)>>;
    /// Replaces the wrapping of these data keys (by tenant and id), all in
    /// one transaction: a master-key rotation is all or nothing.
    fn rewrap_data_keys<'a>(&'a self, keys: &'a [DataKeyRow]) -> StoreFuture<'a, ()>;

    /// Creates a secret with its first version; `Conflict` if it exists.
    fn create_secret<'a>(
        &'a self,
        meta: &'a SecretMeta,
        first: &'a SealedVersion,
    ) -> StoreFuture<'a, ()>;
    /// Adds version `next.version` and serves it, applying `change`, and
    /// forgets versions older than the newest `keep`. False when the
    /// tenant has no such secret; `Conflict` when another rotation took
    /// that version number first.
    fn rotate_secret<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        next: &'a SealedVersion,
        change: &'a SecretChange,
        keep: i64,
    ) -> StoreFuture<'a, bool>;
    /// Serves an older version still kept; false when it is not kept.
    fn serve_secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        version: i64,
        at: i64,
    ) -> StoreFuture<'a, bool>;
    fn secret<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<SecretMeta>>;
    /// A tenant's secrets, by name.
    fn secrets<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<SecretMeta>>;
    /// The newest version number of a secret (kept or served).
    fn latest_secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<i64>>;
    fn secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        version: i64,
    ) -> StoreFuture<'a, Option<SealedVersion>>;
    /// The kept versions of a secret (number, created), oldest first.
    fn secret_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<(i64, i64)>>;
    /// Deletes a secret and every version of it; false when there is none.
    fn delete_secret<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
    /// Records reads of secrets and sets their `last_used_at`.
    fn record_secret_uses<'a>(
        &'a self,
        tenant_id: &'a str,
        uses: &'a [SecretUse],
    ) -> StoreFuture<'a, ()>;
    /// A secret's reads, newest first, at most `limit` (1..=1000).
    fn secret_uses<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        limit: i64,
    ) -> StoreFuture<'a, Vec<SecretUse>>;
    /// Secrets of every tenant that expire in `now..before`.
    fn secrets_expiring(&self, now: i64, before: i64) -> StoreFuture<'_, i64>;
}

const DATA_KEY_COLUMNS: &str = "tenant_id, id, master_key_id, nonce, wrapped, created_at";
const SECRET_COLUMNS: &str =
    "tenant_id, name, description, version, created_at, rotated_at, expires_at, last_used_at";
const VERSION_COLUMNS: &str = "version, key_id, nonce, ciphertext, created_at";
const USE_COLUMNS: &str = "name, version, script_name, script_version, run_id, at";

static NEWEST_DATA_KEY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    )
});
static DATA_KEY_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE tenant_id = $1 AND id = $2")
});
static ALL_DATA_KEYS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY tenant_id, id"));
static SECRET_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE tenant_id = $1 AND name = $2")
});
/// [`SECRET_BY_NAME`], locking the row until the transaction ends.
static SECRET_BY_NAME_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *SECRET_BY_NAME));
static SECRETS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SECRET_COLUMNS} FROM secrets WHERE tenant_id = $1 ORDER BY name")
});
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VERSION_COLUMNS} FROM secret_versions \
         WHERE tenant_id = $1 AND name = $2 AND version = $3"
    )
});
static USES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {USE_COLUMNS} FROM secret_usage WHERE tenant_id = $1 AND name = $2 \
         ORDER BY at DESC LIMIT $3"
    )
});
const INSERT_VERSION: &str = "INSERT INTO secret_versions \
     (tenant_id, name, version, key_id, nonce, ciphertext, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

impl<D: Dialect> SecretStore for SqlStore<D> {
    fn data_key<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Option<DataKeyRow>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&NEWEST_DATA_KEY)
                .bind(tenant_id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn data_key_by_id<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<DataKeyRow>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&DATA_KEY_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn put_data_key<'a>(&'a self, k: &'a DataKeyRow) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(
                "INSERT INTO data_keys (tenant_id, id, master_key_id, nonce, wrapped, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&k.tenant_id)
            .bind(&k.id)
            .bind(&k.master_key_id)
            .bind(&k.nonce)
            .bind(&k.wrapped)
            .bind(k.created_at)
            .execute(&mut conn)
            .await
            .map_err(|e| conflict(e, format!("data key `{}`", k.id)))?;
            Ok(())
        })
    }

    fn all_data_keys(&self) -> StoreFuture<'_, Vec<DataKeyRow>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&ALL_DATA_KEYS).fetch_all(&mut conn).await?)
        })
    }

    fn master_key_ids(&self) -> StoreFuture<'_, Vec<(String, i64)>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT master_key_id, COUNT(*) FROM data_keys \
                 GROUP BY master_key_id ORDER BY master_key_id",
            )
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn rewrap_data_keys<'a>(&'a self, keys: &'a [DataKeyRow]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.tx().await?;
            for k in keys {
                D::query(
                    "UPDATE data_keys SET master_key_id = $3, nonce = $4, wrapped = $5 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&k.tenant_id)
                .bind(&k.id)
                .bind(&k.master_key_id)
                .bind(&k.nonce)
                .bind(&k.wrapped)
                .execute(&mut tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_secret<'a>(
        &'a self,
        m: &'a SecretMeta,
        first: &'a SealedVersion,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.tx().await?;
            D::query(
                "INSERT INTO secrets (tenant_id, name, description, version, created_at, \
                 rotated_at, expires_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&m.tenant_id)
            .bind(&m.name)
            .bind(&m.description)
            .bind(m.version)
            .bind(m.created_at)
            .bind(m.rotated_at)
            .bind(m.expires_at)
            .bind(m.last_used_at)
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, format!("secret `{}`", m.name)))?;
            D::query(INSERT_VERSION)
                .bind(&m.tenant_id)
                .bind(&m.name)
                .bind(first.version)
                .bind(&first.key_id)
                .bind(&first.nonce)
                .bind(&first.ciphertext)
                .bind(first.created_at)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn rotate_secret<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        next: &'a SealedVersion,
        change: &'a SecretChange,
        keep: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            // Two rotations of one secret queue up on the row (PostgreSQL);
            // SQLite's write transaction already holds the only write lock.
            let select = match D::BACKEND {
                Backend::Postgres => &*SECRET_BY_NAME_FOR_UPDATE,
                Backend::Sqlite => &*SECRET_BY_NAME,
            };
            let current: Option<SecretMeta> = D::query(select)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut tx)
                .await?;
            let Some(current) = current else {
                return Ok(false);
            };
            D::query(INSERT_VERSION)
                .bind(tenant_id)
                .bind(name)
                .bind(next.version)
                .bind(&next.key_id)
                .bind(&next.nonce)
                .bind(&next.ciphertext)
                .bind(next.created_at)
                .execute(&mut tx)
                .await
                .map_err(|e| conflict(e, format!("version {} of secret `{name}`", next.version)))?;
            let description = change.description.as_ref().unwrap_or(&current.description);
            let expires_at = change.expires_at.unwrap_or(current.expires_at);
            D::query(
                "UPDATE secrets SET version = $3, rotated_at = $4, description = $5, \
                 expires_at = $6 WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(next.version)
            .bind(next.created_at)
            .bind(description)
            .bind(expires_at)
            .execute(&mut tx)
            .await?;
            D::query(
                "DELETE FROM secret_versions WHERE tenant_id = $1 AND name = $2 AND version <= $3",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(next.version - keep.max(1))
            .execute(&mut tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn serve_secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        version: i64,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let changed = D::query(
                "UPDATE secrets SET version = $3, rotated_at = $4 \
                 WHERE tenant_id = $1 AND name = $2 AND EXISTS (SELECT 1 FROM secret_versions v \
                 WHERE v.tenant_id = $1 AND v.name = $2 AND v.version = $3)",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(version)
            .bind(at)
            .execute(&mut conn)
            .await?;
            Ok(changed == 1)
        })
    }

    fn secret<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<SecretMeta>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SECRET_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn secrets<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<SecretMeta>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&SECRETS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn latest_secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (latest,): (Option<i64>,) = D::query(
                "SELECT MAX(version) FROM secret_versions WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
            Ok(latest)
        })
    }

    fn secret_version<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        version: i64,
    ) -> StoreFuture<'a, Option<SealedVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&VERSION)
                .bind(tenant_id)
                .bind(name)
                .bind(version)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn secret_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<(i64, i64)>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT version, created_at FROM secret_versions \
                 WHERE tenant_id = $1 AND name = $2 ORDER BY version",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn delete_secret<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.tx().await?;
            D::query("DELETE FROM secret_versions WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut tx)
                .await?;
            let gone = D::query("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            Ok(gone == 1)
        })
    }

    fn record_secret_uses<'a>(
        &'a self,
        tenant_id: &'a str,
        uses: &'a [SecretUse],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if uses.is_empty() {
                return Ok(());
            }
            let mut tx = self.tx().await?;
            for u in uses {
                D::query(
                    "INSERT INTO secret_usage (tenant_id, name, version, script_name, \
                     script_version, run_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(tenant_id)
                .bind(&u.name)
                .bind(u.version)
                .bind(&u.script_name)
                .bind(&u.script_version)
                .bind(&u.run_id)
                .bind(u.at)
                .execute(&mut tx)
                .await?;
                D::query(
                    "UPDATE secrets SET last_used_at = $3 WHERE tenant_id = $1 AND name = $2 \
                     AND (last_used_at IS NULL OR last_used_at < $3)",
                )
                .bind(tenant_id)
                .bind(&u.name)
                .bind(u.at)
                .execute(&mut tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn secret_uses<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        limit: i64,
    ) -> StoreFuture<'a, Vec<SecretUse>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&USES)
                .bind(tenant_id)
                .bind(name)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn secrets_expiring(&self, now: i64, before: i64) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (n,): (i64,) =
                D::query("SELECT COUNT(*) FROM secrets WHERE expires_at > $1 AND expires_at <= $2")
                    .bind(now)
                    .bind(before)
                    .fetch_one(&mut conn)
                    .await?;
            Ok(n)
        })
    }
}
