//! The SQLite and PostgreSQL implementations. They share their SQL (written
//! with `$N` parameters, which both drivers accept) through one macro; what
//! differs — connecting, migrations, serialising audit appends across nodes —
//! is written per backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};

use crate::{
    AuditEntry, AuditQuery, AuditVerdict, Backend, CustomRole, GENESIS_HASH, NewAuditEntry,
    NewToken, NewUser, RoleBinding, Store, StoreError, StoreFuture, StoreResult, Tenant, Token,
    TokenOrigin, User, audit_hash, new_id, now_ms,
};

pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// SQLite has one writer; appends take this lock so reading the chain's
    /// head and inserting after it happen together.
    audit_lock: tokio::sync::Mutex<()>,
    migrations: i64,
}

pub(crate) struct PgStore {
    pub(crate) pool: PgPool,
    audit_lock: tokio::sync::Mutex<()>,
    migrations: i64,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long opening a PostgreSQL database waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn latest(m: &sqlx::migrate::Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

impl SqliteStore {
    pub(crate) async fn open(path: &str) -> StoreResult<SqliteStore> {
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Every write makes the other connections drop their page
            // caches; with the file mapped they re-read pages without a
            // system call each (measured: read syscalls were a tenth of the
            // run path's database time).
            .pragma("mmap_size", "268435456");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(SqliteStore {
            pool,
            audit_lock: tokio::sync::Mutex::new(()),
            migrations: latest(&SQLITE_MIGRATIONS),
        })
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> StoreResult<PgStore> {
        // One direct connection first: a refused connection, an unknown host
        // or a bad password is reported at once, and a host that never
        // answers within a few seconds, instead of the pool retrying until
        // its acquire timeout.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                ))
            })??;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        PG_MIGRATIONS.run(&pool).await?;
        Ok(PgStore {
            pool,
            audit_lock: tokio::sync::Mutex::new(()),
            migrations: latest(&PG_MIGRATIONS),
        })
    }
}

pub(crate) fn conflict(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what.into()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(what.into())
        }
        _ => StoreError::Database(e),
    }
}

macro_rules! row_to {
    (tenant, $r:expr) => {
        Tenant {
            id: $r.try_get("id")?,
            name: $r.try_get("name")?,
            created_at: $r.try_get("created_at")?,
        }
    };
    (user, $r:expr) => {
        User {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            username: $r.try_get("username")?,
            password_hash: $r.try_get("password_hash")?,
            created_at: $r.try_get("created_at")?,
            disabled_at: $r.try_get("disabled_at")?,
        }
    };
    (token, $r:expr) => {
        Token {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            user_id: $r.try_get("user_id")?,
            name: $r.try_get("name")?,
            hash: $r.try_get("hash")?,
            created_at: $r.try_get("created_at")?,
            expires_at: $r.try_get("expires_at")?,
            revoked_at: $r.try_get("revoked_at")?,
            created_by: $r.try_get("created_by")?,
            person: $r.try_get("person")?,
        }
    };
    (binding, $r:expr) => {
        RoleBinding {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            token_id: $r.try_get("token_id")?,
            role: $r.try_get("role")?,
            path_prefix: $r.try_get("path_prefix")?,
            created_at: $r.try_get("created_at")?,
        }
    };
    (role, $r:expr) => {{
        let permissions: String = $r.try_get("permissions")?;
        CustomRole {
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            permissions: serde_json::from_str(&permissions).unwrap_or_default(),
            created_at: $r.try_get("created_at")?,
        }
    }};
    (audit, $r:expr) => {
        AuditEntry {
            seq: $r.try_get("seq")?,
            entry: NewAuditEntry {
                at: $r.try_get("at")?,
                tenant_id: $r.try_get("tenant_id")?,
                principal: $r.try_get("principal")?,
                action: $r.try_get("action")?,
                target: $r.try_get("target")?,
                outcome: $r.try_get("outcome")?,
                request_id: $r.try_get("request_id")?,
                details: $r.try_get("details")?,
            },
            prev_hash: $r.try_get("prev_hash")?,
            hash: $r.try_get("hash")?,
        }
    };
}

const TOKEN_COLUMNS: &str =
    "id, tenant_id, user_id, name, hash, created_at, expires_at, revoked_at, created_by, person";
const USER_COLUMNS: &str = "id, tenant_id, username, password_hash, created_at, disabled_at";
const AUDIT_COLUMNS: &str =
    "seq, at, tenant_id, principal, action, target, outcome, request_id, details, prev_hash, hash";

/// The shared implementation. `$begin` starts an audit append's
/// transaction and `$serialize` (or `None`) is SQL run first in it, so that
/// appends are serialised across processes: SQLite takes its write lock at
/// `BEGIN IMMEDIATE` (a deferred transaction that reads the head and then
/// writes would fail with SQLITE_BUSY_SNAPSHOT when another connection wrote
/// in between); PostgreSQL takes an advisory lock.
macro_rules! impl_store {
    ($ty:ty, $backend:expr, $begin:expr, $serialize:expr) => {
        impl Store for $ty {
            fn backend(&self) -> Backend {
                $backend
            }

            fn ready(&self) -> StoreFuture<'_, ()> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.pool)
                        .await?;
                    let applied: Option<i64> = row.try_get("v")?;
                    if applied.unwrap_or(0) < self.migrations {
                        return Err(StoreError::NotFound(format!(
                            "migration {} (applied: {})",
                            self.migrations,
                            applied.unwrap_or(0)
                        )));
                    }
                    Ok(())
                })
            }

            fn create_tenant<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Tenant> {
                Box::pin(async move {
                    let tenant = Tenant { id: new_id("tnt"), name: name.to_owned(), created_at: now_ms() };
                    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                        .bind(&tenant.id)
                        .bind(&tenant.name)
                        .bind(tenant.created_at)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| conflict(e, format!("tenant `{name}`")))?;
                    Ok(tenant)
                })
            }

            fn tenant<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Tenant>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(tenant, r)),
                        None => None,
                    })
                })
            }

            fn tenant_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tenant>> {
                Box::pin(async move {
                    let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(tenant, r)),
                        None => None,
                    })
                })
            }

            fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY name")
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(tenant, r));
                    }
                    Ok(out)
                })
            }

            fn create_token_by<'a>(&'a self, new: &'a NewToken, origin: &'a TokenOrigin) -> StoreFuture<'a, Token> {
                Box::pin(async move {
                    let id = new_id("tok");
                    let person = origin
                        .person
                        .clone()
                        .or_else(|| new.user_id.clone())
                        .unwrap_or_else(|| id.clone());
                    let token = Token {
                        id,
                        created_by: origin.created_by.clone(),
                        person,
                        tenant_id: new.tenant_id.clone(),
                        user_id: new.user_id.clone(),
                        name: new.name.clone(),
                        hash: new.hash.clone(),
                        created_at: now_ms(),
                        expires_at: new.expires_at,
                        revoked_at: None,
                    };
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO tokens (id, tenant_id, name, hash, created_at, expires_at, user_id, created_by, person) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&token.id)
                    .bind(&token.tenant_id)
                    .bind(&token.name)
                    .bind(&token.hash)
                    .bind(token.created_at)
                    .bind(token.expires_at)
                    .bind(&token.user_id)
                    .bind(&token.created_by)
                    .bind(&token.person)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, "token"))?;
                    if let (Some(tenant), Some((role, prefix))) = (&new.tenant_id, &new.role) {
                        sqlx::query(
                            "INSERT INTO role_bindings (id, tenant_id, token_id, role, path_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(new_id("rb"))
                        .bind(tenant)
                        .bind(&token.id)
                        .bind(role)
                        .bind(prefix)
                        .bind(token.created_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(token)
                })
            }

            fn token_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Token>> {
                Box::pin(async move {
                    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1");
                    let row = sqlx::query(&sql).bind(hash).fetch_optional(&self.pool).await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(token, r)),
                        None => None,
                    })
                })
            }

            fn token<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Token>> {
                Box::pin(async move {
                    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 AND id = $2");
                    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(&self.pool).await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(token, r)),
                        None => None,
                    })
                })
            }

            fn list_tokens<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Token>> {
                Box::pin(async move {
                    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created_at, id");
                    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(token, r));
                    }
                    Ok(out)
                })
            }

            fn revoke_token<'a>(&'a self, tenant_id: &'a str, id: &'a str, at: i64) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant_id)
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn create_user<'a>(&'a self, new: &'a NewUser) -> StoreFuture<'a, User> {
                Box::pin(async move {
                    let user = User {
                        id: new_id("usr"),
                        tenant_id: new.tenant_id.clone(),
                        username: new.username.clone(),
                        password_hash: new.password_hash.clone(),
                        created_at: now_ms(),
                        disabled_at: None,
                    };
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(
                        "INSERT INTO users (id, tenant_id, username, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&user.id)
                    .bind(&user.tenant_id)
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind(user.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| conflict(e, format!("user `{}`", new.username)))?;
                    for (role, prefix) in &new.roles {
                        sqlx::query("INSERT INTO user_roles (user_id, tenant_id, role, path_prefix) VALUES ($1, $2, $3, $4)")
                            .bind(&user.id)
                            .bind(&user.tenant_id)
                            .bind(role)
                            .bind(prefix)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| conflict(e, format!("role `{role}` of the user")))?;
                    }
                    tx.commit().await?;
                    Ok(user)
                })
            }

            fn user_by_name<'a>(&'a self, tenant_id: &'a str, username: &'a str) -> StoreFuture<'a, Option<User>> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND username = $2");
                    let row = sqlx::query(&sql).bind(tenant_id).bind(username).fetch_optional(&self.pool).await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(user, r)),
                        None => None,
                    })
                })
            }

            fn user<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<User>> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2");
                    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(&self.pool).await?;
                    Ok(match row {
                        Some(r) => Some(row_to!(user, r)),
                        None => None,
                    })
                })
            }

            fn list_users<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<User>> {
                Box::pin(async move {
                    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY username");
                    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(user, r));
                    }
                    Ok(out)
                })
            }

            fn user_roles<'a>(&'a self, tenant_id: &'a str, user_id: &'a str) -> StoreFuture<'a, Vec<(String, String)>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT role, path_prefix FROM user_roles WHERE tenant_id = $1 AND user_id = $2 ORDER BY role, path_prefix",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push((r.try_get("role")?, r.try_get("path_prefix")?));
                    }
                    Ok(out)
                })
            }

            fn disable_user<'a>(&'a self, tenant_id: &'a str, user_id: &'a str, at: i64) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE users SET disabled_at = COALESCE(disabled_at, $3) WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                    sqlx::query(
                        "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND user_id = $2",
                    )
                    .bind(tenant_id)
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn bindings<'a>(&'a self, tenant_id: &'a str, token_id: &'a str) -> StoreFuture<'a, Vec<RoleBinding>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, tenant_id, token_id, role, path_prefix, created_at FROM role_bindings WHERE tenant_id = $1 AND token_id = $2 ORDER BY created_at, id",
                    )
                    .bind(tenant_id)
                    .bind(token_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(binding, r));
                    }
                    Ok(out)
                })
            }

            fn tenant_bindings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<RoleBinding>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, tenant_id, token_id, role, path_prefix, created_at FROM role_bindings WHERE tenant_id = $1 ORDER BY created_at, id",
                    )
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(binding, r));
                    }
                    Ok(out)
                })
            }

            fn create_binding<'a>(&'a self, b: &'a RoleBinding) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    // The token must belong to the binding's tenant.
                    let owned = sqlx::query("SELECT 1 AS one FROM tokens WHERE id = $1 AND tenant_id = $2")
                        .bind(&b.token_id)
                        .bind(&b.tenant_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    if owned.is_none() {
                        return Err(StoreError::NotFound(format!("token `{}`", b.token_id)));
                    }
                    sqlx::query(
                        "INSERT INTO role_bindings (id, tenant_id, token_id, role, path_prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&b.id)
                    .bind(&b.tenant_id)
                    .bind(&b.token_id)
                    .bind(&b.role)
                    .bind(&b.path_prefix)
                    .bind(b.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict(e, "role binding"))?;
                    Ok(())
                })
            }

            fn put_role<'a>(&'a self, role: &'a CustomRole) -> StoreFuture<'a, ()> {
                Box::pin(async move {
                    let permissions = serde_json::to_string(&role.permissions).unwrap_or_else(|_| "[]".into());
                    sqlx::query(
                        "INSERT INTO roles (tenant_id, name, permissions, created_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = excluded.permissions",
                    )
                    .bind(&role.tenant_id)
                    .bind(&role.name)
                    .bind(permissions)
                    .bind(role.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| conflict(e, format!("tenant `{}`", role.tenant_id)))?;
                    Ok(())
                })
            }

            fn roles<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<CustomRole>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT tenant_id, name, permissions, created_at FROM roles WHERE tenant_id = $1 ORDER BY name",
                    )
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(role, r));
                    }
                    Ok(out)
                })
            }

            fn delete_role<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND name = $2")
                        .bind(tenant_id)
                        .bind(name)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() == 1)
                })
            }

            fn append_audit<'a>(&'a self, e: &'a NewAuditEntry) -> StoreFuture<'a, AuditEntry> {
                Box::pin(async move {
                    let _one_writer_here = self.audit_lock.lock().await;
                    let begin: Option<&'static str> = $begin;
                    let mut tx = match begin {
                        Some(sql) => self.pool.begin_with(sql).await?,
                        None => self.pool.begin().await?,
                    };
                    let serialize: Option<&str> = $serialize;
                    if let Some(sql) = serialize {
                        sqlx::query(sql).execute(&mut *tx).await?;
                    }
                    let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                        .fetch_optional(&mut *tx)
                        .await?;
                    let (seq, prev_hash) = match head {
                        Some(r) => (r.try_get::<i64, _>("seq")? + 1, r.try_get::<String, _>("hash")?),
                        None => (1, GENESIS_HASH.to_owned()),
                    };
                    let hash = audit_hash(&prev_hash, seq, e);
                    sqlx::query(
                        "INSERT INTO audit (seq, at, tenant_id, principal, action, target, outcome, request_id, details, prev_hash, hash) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(seq)
                    .bind(e.at)
                    .bind(&e.tenant_id)
                    .bind(&e.principal)
                    .bind(&e.action)
                    .bind(&e.target)
                    .bind(&e.outcome)
                    .bind(&e.request_id)
                    .bind(&e.details)
                    .bind(&prev_hash)
                    .bind(&hash)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(AuditEntry { seq, entry: e.clone(), prev_hash, hash })
                })
            }

            fn audit_page<'a>(&'a self, q: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditEntry>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {AUDIT_COLUMNS} FROM audit WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR action = $2) \
                         AND ($3 IS NULL OR principal = $3) AND ($4 IS NULL OR outcome = $4) AND ($5 IS NULL OR seq < $5) \
                         ORDER BY seq DESC LIMIT $6"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(&q.tenant_id)
                        .bind(&q.action)
                        .bind(&q.principal)
                        .bind(&q.outcome)
                        .bind(q.before)
                        .bind(q.limit.clamp(1, 1000))
                        .fetch_all(&self.pool)
                        .await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in rows {
                        out.push(row_to!(audit, r));
                    }
                    Ok(out)
                })
            }

            fn verify_audit(&self) -> StoreFuture<'_, AuditVerdict> {
                Box::pin(async move {
                    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq");
                    let mut prev = GENESIS_HASH.to_owned();
                    let mut expected_seq = 1i64;
                    let mut rows = sqlx::query(&sql).fetch(&self.pool);
                    use futures_util::TryStreamExt;
                    while let Some(r) = rows.try_next().await? {
                        let e = row_to!(audit, r);
                        if e.seq != expected_seq {
                            return Ok(AuditVerdict::Broken {
                                seq: expected_seq,
                                reason: format!("entry {expected_seq} is missing (next is {})", e.seq),
                            });
                        }
                        if e.prev_hash != prev {
                            return Ok(AuditVerdict::Broken {
                                seq: e.seq,
                                reason: "its previous-hash does not match the entry before it".into(),
                            });
                        }
                        if audit_hash(&prev, e.seq, &e.entry) != e.hash {
                            return Ok(AuditVerdict::Broken {
                                seq: e.seq,
                                reason: "its contents do not match its hash (edited)".into(),
                            });
                        }
                        prev = e.hash;
                        expected_seq += 1;
                    }
                    Ok(AuditVerdict::Intact { entries: expected_seq - 1 })
                })
            }
        }
    };
}

impl_store!(SqliteStore, Backend::Sqlite, Some("BEGIN IMMEDIATE"), None);
// One writer across every node sharing the database.
impl_store!(
    PgStore,
    Backend::Postgres,
    None,
    Some("SELECT pg_advisory_xact_lock(7391001)")
);
