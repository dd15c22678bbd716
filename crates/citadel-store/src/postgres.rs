//! PostgreSQL: many nodes sharing one database.

use std::time::Duration;

use futures_util::stream::BoxStream;
use sqlx::postgres::{PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection, Pool, Postgres, Transaction};

use crate::sql::{Arg, Dialect, Query, Record, SqlStore};
use crate::{Backend, Job, StoreResult};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long opening a PostgreSQL database waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes the transaction-scoped advisory lock audit appends take in turn:
/// one writer of the chain across every node sharing the database.
const LOCK_AUDIT: &str = "SELECT pg_advisory_xact_lock(7391001)";

impl SqlStore<Postgres> {
    /// Connects to and migrates the database at `url`.
    pub(crate) async fn open(url: &str) -> StoreResult<SqlStore<Postgres>> {
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
        MIGRATIONS.run(&pool).await?;
        Ok(SqlStore::new(pool, &MIGRATIONS))
    }
}

impl Dialect for Postgres {
    const BACKEND: Backend = Backend::Postgres;

    fn bind<'q, T: Arg<'q>>(query: Query<'q, Self>, value: T) -> Query<'q, Self> {
        query.bind(value)
    }

    async fn execute<'c, 'q>(
        conn: &'c mut PgConnection,
        query: Query<'q, Self>,
    ) -> sqlx::Result<u64> {
        Ok(query.execute(conn).await?.rows_affected())
    }

    async fn fetch_optional<'c, 'q, R: Record>(
        conn: &'c mut PgConnection,
        query: Query<'q, Self>,
    ) -> sqlx::Result<Option<R>> {
        query
            .try_map(|row: PgRow| R::from_row(&row))
            .fetch_optional(conn)
            .await
    }

    fn fetch<'c, 'q: 'c, R: Record>(
        conn: &'c mut PgConnection,
        query: Query<'q, Self>,
    ) -> BoxStream<'c, sqlx::Result<R>> {
        query.try_map(|row: PgRow| R::from_row(&row)).fetch(conn)
    }

    /// A plain `BEGIN`: what a transaction reads it locks explicitly
    /// (`FOR UPDATE`, advisory locks) where that matters.
    async fn begin_write(pool: &Pool<Postgres>) -> sqlx::Result<Transaction<'static, Postgres>> {
        pool.begin().await
    }

    /// Nodes do not share a process lock, so appends take an advisory lock,
    /// released when the transaction ends.
    async fn lock_audit_chain(conn: &mut PgConnection) -> sqlx::Result<()> {
        Postgres::query(LOCK_AUDIT).execute(conn).await?;
        Ok(())
    }

    fn claim_due<'a>(
        store: &'a SqlStore<Postgres>,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> impl Future<Output = StoreResult<Vec<Job>>> + Send + 'a {
        crate::jobs::claim_postgres(store, node, now, lease_ms, limit, tenant_cap)
    }
}
