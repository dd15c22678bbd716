//! The one implementation of every store trait, [`SqlStore`], written once
//! for both databases and generic over the [`Dialect`] it talks.
//!
//! Both drivers take the same SQL with `$N` parameters, so the shared code
//! holds almost every statement. It never names sqlx's executor traits (and
//! their higher-ranked bounds): it builds a [`Stmt`], binds values that are
//! an [`Arg`] (anything both drivers encode), and runs it on a
//! `&mut D::Connection` (a pool connection or a transaction derefs to one),
//! decoding rows into a [`Record`] (anything both drivers' rows decode
//! into, i.e. a `#[derive(sqlx::FromRow)]` type or a tuple). The few
//! [`Dialect`] methods do the rest per database, and they are also where
//! the databases really differ: how a writing transaction begins, how
//! audit appends are serialised across processes, and how jobs are claimed.
//! Opening a store (connection options, pool, migrations) is
//! `SqlStore::open` in the same per-database modules. The remaining
//! differences are one clause of SQL each (`FOR UPDATE` where PostgreSQL
//! needs a row lock that SQLite's single writer makes moot), written as
//! `match D::BACKEND` at the statement, with the reason beside it.
//!
//! (The alternative, one module per backend behind the traits, would hold
//! every statement twice; the statements are the part that must not drift.)

use futures_util::TryStreamExt;
use futures_util::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, Encode, FromRow, Pool, Postgres, Sqlite, Transaction, Type};

use std::sync::Arc;

use crate::{Backend, Job, StoreError, StoreResult};

/// A statement of database `D` with its arguments so far.
pub(crate) type Query<'q, D> = sqlx::query::Query<'q, D, <D as Database>::Arguments<'q>>;

/// A value the shared SQL binds: one both drivers encode.
pub(crate) trait Arg<'q>:
    Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres> + Send + 'q
{
}

impl<'q, T> Arg<'q> for T where
    T: Encode<'q, Sqlite> + Type<Sqlite> + Encode<'q, Postgres> + Type<Postgres> + Send + 'q
{
}

/// What one row decodes into on both drivers: a `#[derive(sqlx::FromRow)]`
/// type (columns by name) or a tuple (columns by position).
pub(crate) trait Record:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// What differs between SQLite and PostgreSQL, implemented for
/// [`sqlx::Sqlite`] (`sqlite.rs`) and [`sqlx::Postgres`] (`postgres.rs`).
///
/// The first methods only run a statement on a connection; they exist so
/// the shared code needs no bounds beyond `D: Dialect`.
pub(crate) trait Dialect: Database {
    const BACKEND: Backend;

    /// A statement to bind and run.
    fn query(sql: &str) -> Stmt<'_, Self> {
        Stmt(sqlx::query(sql))
    }

    fn bind<'q, T: Arg<'q>>(query: Query<'q, Self>, value: T) -> Query<'q, Self>;

    /// Runs a statement; the rows it changed.
    fn execute<'c, 'q>(
        conn: &'c mut Self::Connection,
        query: Query<'q, Self>,
    ) -> impl Future<Output = sqlx::Result<u64>> + Send;

    fn fetch_optional<'c, 'q, R: Record>(
        conn: &'c mut Self::Connection,
        query: Query<'q, Self>,
    ) -> impl Future<Output = sqlx::Result<Option<R>>> + Send;

    fn fetch<'c, 'q: 'c, R: Record>(
        conn: &'c mut Self::Connection,
        query: Query<'q, Self>,
    ) -> BoxStream<'c, sqlx::Result<R>>;

    /// Begins a transaction that reads and then writes, holding whatever
    /// lock makes that safe from the start.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self>>> + Send;

    /// Run first in an audit append's write transaction: makes appends from
    /// every process take turns, so reading the chain's head and inserting
    /// after it happen together and the chain never forks.
    fn lock_audit_chain(
        conn: &mut Self::Connection,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;

    /// Claims due jobs (see [`crate::JobStore::claim_capped`]); `limit` is
    /// already within 1..=`MAX_CLAIM`.
    fn claim_due<'a>(
        store: &'a SqlStore<Self>,
        node: &'a str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        tenant_cap: Option<i64>,
    ) -> impl Future<Output = StoreResult<Vec<Job>>> + Send + 'a;
}

/// A statement being bound (see [`Dialect::query`]).
#[must_use = "a statement does nothing until it is run"]
pub(crate) struct Stmt<'q, D: Dialect>(Query<'q, D>);

impl<'q, D: Dialect> Stmt<'q, D> {
    /// Binds the next `$N`.
    pub(crate) fn bind<T: Arg<'q>>(self, value: T) -> Self {
        Stmt(D::bind(self.0, value))
    }

    /// Runs it; the rows it changed.
    pub(crate) async fn execute(self, conn: &mut D::Connection) -> sqlx::Result<u64> {
        D::execute(conn, self.0).await
    }

    pub(crate) async fn fetch_optional<R: Record>(
        self,
        conn: &mut D::Connection,
    ) -> sqlx::Result<Option<R>> {
        D::fetch_optional(conn, self.0).await
    }

    /// The one row; [`sqlx::Error::RowNotFound`] without one.
    pub(crate) async fn fetch_one<R: Record>(self, conn: &mut D::Connection) -> sqlx::Result<R> {
        self.fetch_optional(conn)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub(crate) async fn fetch_all<R: Record>(
        self,
        conn: &mut D::Connection,
    ) -> sqlx::Result<Vec<R>> {
        D::fetch(conn, self.0).try_collect().await
    }

    /// The rows one at a time, for results of no fixed size.
    pub(crate) fn fetch<'c, R: Record>(
        self,
        conn: &'c mut D::Connection,
    ) -> BoxStream<'c, sqlx::Result<R>>
    where
        'q: 'c,
    {
        D::fetch(conn, self.0)
    }
}

/// The store, for either database (see the module's documentation).
pub(crate) struct SqlStore<D: Dialect> {
    pub(crate) pool: Pool<D>,
    /// Audit appends from this process take turns here first, so they wait
    /// without holding a connection; the database's own lock (the write
    /// transaction, [`Dialect::lock_audit_chain`]) orders them across
    /// processes.
    pub(crate) audit_lock: tokio::sync::Mutex<()>,
    /// SQLite only: this process's writers take turns here before they ask
    /// for the database's one write lock. Left to the database, a writer
    /// that finds the lock taken sleeps in SQLite's busy handler for 1 to
    /// 100 ms whatever the holder's pace (measured: publishes waiting up to
    /// 1.6 s, the CPU a third idle); in this queue each takes the lock as
    /// the one before lets go. Other processes on the same file still meet
    /// the busy timeout.
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The latest migration this build knows.
    pub(crate) migrations: i64,
}

/// How long a writer waits for its turn at the write gate, as long as
/// SQLite's busy timeout; past it the write fails as the database being
/// unavailable, which callers retry.
const WRITE_TURN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection or transaction holding this process's turn to write (see
/// `SqlStore::write_gate`); the turn passes on once it is dropped or
/// committed. Fields drop in order: the connection goes back to the pool
/// before the next writer is let in.
pub(crate) struct Writer<T> {
    inner: T,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<T> std::ops::Deref for Writer<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Writer<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<D: Database> Writer<Transaction<'static, D>> {
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        self.inner.commit().await
    }

    pub(crate) async fn rollback(self) -> sqlx::Result<()> {
        self.inner.rollback().await
    }
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) fn new(pool: Pool<D>, migrator: &sqlx::migrate::Migrator) -> SqlStore<D> {
        SqlStore {
            pool,
            audit_lock: tokio::sync::Mutex::new(()),
            write_gate: (D::BACKEND == Backend::Sqlite)
                .then(|| Arc::new(tokio::sync::Mutex::new(()))),
            migrations: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        }
    }

    /// A connection of the pool, for statements outside a transaction.
    pub(crate) async fn conn(&self) -> sqlx::Result<PoolConnection<D>> {
        self.pool.acquire().await
    }

    /// This process's turn to write, where the database has one writer.
    async fn turn(&self) -> sqlx::Result<Option<tokio::sync::OwnedMutexGuard<()>>> {
        let Some(gate) = &self.write_gate else {
            return Ok(None);
        };
        tokio::time::timeout(WRITE_TURN_PATIENCE, Arc::clone(gate).lock_owned())
            .await
            .map(Some)
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }

    /// A connection for statements that write outside a transaction.
    pub(crate) async fn write_conn(&self) -> sqlx::Result<Writer<PoolConnection<D>>> {
        let turn = self.turn().await?;
        Ok(Writer {
            inner: self.pool.acquire().await?,
            _turn: turn,
        })
    }

    /// A plain transaction, for one that writes first.
    pub(crate) async fn tx(&self) -> sqlx::Result<Writer<Transaction<'static, D>>> {
        let turn = self.turn().await?;
        Ok(Writer {
            inner: self.pool.begin().await?,
            _turn: turn,
        })
    }

    /// A transaction that reads and then writes ([`Dialect::begin_write`]).
    pub(crate) async fn write_tx(&self) -> sqlx::Result<Writer<Transaction<'static, D>>> {
        let turn = self.turn().await?;
        Ok(Writer {
            inner: D::begin_write(&self.pool).await?,
            _turn: turn,
        })
    }
}

/// A unique violation as [`StoreError::Conflict`] and a foreign-key
/// violation (a missing tenant, token, …) as [`StoreError::NotFound`], both
/// naming `what`.
pub(crate) fn conflict(e: sqlx::Error, what: impl Into<String>) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what.into()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound(what.into())
        }
        _ => StoreError::Database(e),
    }
}

/// A stored value that does not decode, as the error every undecodable
/// column is (a [`sqlx::Error::ColumnDecode`]), naming where it is stored:
/// `column` of `table`, in the row `row` describes.
pub(crate) fn undecodable(
    table: &str,
    column: &str,
    row: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Database(sqlx::Error::ColumnDecode {
        index: format!("{table}.{column} of {row}"),
        source: Box::new(source),
    })
}

/// `$first, $first+1, …` for `n` parameters (statements with a list of ids).
pub(crate) fn params(first: usize, n: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(s, "{sep}${}", first + i);
    }
    s
}
