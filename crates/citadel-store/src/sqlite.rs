//! SQLite: the embedded default (one file, WAL mode, one writer at a time).

use std::str::FromStr;
use std::time::Duration;

use futures_util::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Pool, Sqlite, Transaction};

use crate::sql::{Arg, Dialect, Query, Record, SqlStore};
use crate::{Backend, Job, StoreError, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqlStore<Sqlite> {
    /// Opens (creating it and its directory if needed) and migrates the
    /// database file at `path`.
    pub(crate) async fn open(path: &str) -> StoreResult<SqlStore<Sqlite>> {
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
        MIGRATIONS.run(&pool).await?;
        Ok(SqlStore::new(pool, &MIGRATIONS))
    }
}

impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;

    fn bind<'q, T: Arg<'q>>(query: Query<'q, Self>, value: T) -> Query<'q, Self> {
        query.bind(value)
    }

    async fn execute<'c, 'q>(
        conn: &'c mut SqliteConnection,
        query: Query<'q, Self>,
    ) -> sqlx::Result<u64> {
        Ok(query.execute(conn).await?.rows_affected())
    }

    async fn fetch_optional<'c, 'q, R: Record>(
        conn: &'c mut SqliteConnection,
        query: Query<'q, Self>,
    ) -> sqlx::Result<Option<R>> {
        query
            .try_map(|row: SqliteRow| R::from_row(&row))
            .fetch_optional(conn)
            .await
    }

    fn fetch<'c, 'q: 'c, R: Record>(
        conn: &'c mut SqliteConnection,
        query: Query<'q, Self>,
    ) -> BoxStream<'c, sqlx::Result<R>> {
        query
            .try_map(|row: SqliteRow| R::from_row(&row))
            .fetch(conn)
    }

    /// `BEGIN IMMEDIATE` takes the write lock at once. A deferred
    /// transaction that reads and then writes fails with
    /// SQLITE_BUSY_SNAPSHOT when another connection wrote in between.
    async fn begin_write(pool: &Pool<Sqlite>) -> sqlx::Result<Transaction<'static, Sqlite>> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Nothing more: the append's write transaction began with
    /// `BEGIN IMMEDIATE`, so it already holds the database's one write lock.
    async fn lock_audit_chain(_conn: &mut SqliteConnection) -> sqlx::Result<()> {
        Ok(())
    }

    fn claim_due<'a>(
        store: &'a SqlStore<Sqlite>,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> impl Future<Output = StoreResult<Vec<Job>>> + Send + 'a {
        crate::jobs::claim_sqlite(store, node, now, lease_ms, limit, tenant_cap)
    }
}
