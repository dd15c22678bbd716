//! SQLite: a read-only connection per query.
//!
//! The file is opened with `mode=ro` (never created), `PRAGMA query_only =
//! ON` refuses writes even to a temporary database, `trusted_schema = OFF`
//! keeps a file's views and triggers from calling functions with side
//! effects, and the `ATTACH` limit is zero so no other file can be
//! reached. The deadline is enforced inside SQLite too: a progress handler
//! interrupts the statement once it passes, so the thread running it is
//! freed even after the caller stopped waiting.

use std::path::Path;
use std::time::Instant;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow, SqliteValueRef};
use sqlx::{Column, Connection, Decode, Executor, Row, SqliteConnection, TypeInfo, ValueRef};

use crate::{Collector, Param, QueryError, QueryLimits, QueryResult};

/// VM instructions between two looks at the deadline.
const PROGRESS_OPS: i32 = 1000;

/// SQLite's result code for an interrupted statement.
const SQLITE_INTERRUPT: &str = "9";

pub(crate) async fn run(
    path: &Path,
    sql: &str,
    params: &[Param],
    limits: &QueryLimits,
) -> Result<QueryResult, QueryError> {
    let deadline = Instant::now() + limits.timeout;
    if !path.is_file() {
        return Err(QueryError::unavailable(format!(
            "no SQLite file at {}",
            path.display()
        )));
    }
    // Absolute, so SQLite never reads it as a `file:` URI (which could
    // carry its own parameters).
    let path = path
        .canonicalize()
        .map_err(|e| QueryError::unavailable(format!("cannot open the SQLite file: {e}")))?;
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .read_only(true)
        .create_if_missing(false)
        // Waiting for a writer's lock is bounded by the deadline too (the
        // progress handler does not run while SQLite waits).
        .busy_timeout(limits.timeout)
        .pragma("query_only", "ON")
        .pragma("trusted_schema", "OFF");
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| QueryError::unavailable(format!("cannot open the SQLite file: {e}")))?;
    {
        let mut handle = conn
            .lock_handle()
            .await
            .map_err(|e| QueryError::unavailable(format!("cannot open the SQLite file: {e}")))?;
        let raw = handle.as_raw_handle().as_ptr();
        // SAFETY: `raw` is the live connection handle, held locked by
        // `handle` for this call; `sqlite3_limit` only sets a number on it.
        unsafe {
            libsqlite3_sys::sqlite3_limit(raw, libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
        }
        handle.set_progress_handler(PROGRESS_OPS, move || Instant::now() < deadline);
    }
    let result = fetch(&mut conn, sql, params, limits).await;
    let _ = conn.close().await;
    result.map_err(|e| match e {
        Failure::Limit(e) => e,
        Failure::Sql(e) => map_error(e, limits),
    })
}

enum Failure {
    Limit(QueryError),
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Self {
        Failure::Limit(e)
    }
}

async fn fetch(
    conn: &mut SqliteConnection,
    sql: &str,
    params: &[Param],
    limits: &QueryLimits,
) -> Result<QueryResult, Failure> {
    let mut query = sqlx::query(sql);
    for p in params {
        query = match p {
            Param::Null => query.bind(None::<String>),
            Param::Bool(b) => query.bind(i64::from(*b)),
            Param::Int(i) => query.bind(*i),
            Param::Float(f) => query.bind(*f),
            Param::Text(s) => query.bind(s.clone()),
        };
    }
    let mut collector = Collector::new(limits);
    let mut seen_columns = false;
    {
        let mut rows = query.fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            collector.admit()?;
            if !seen_columns {
                collector
                    .set_columns(row.columns().iter().map(|c| c.name().to_owned()).collect())?;
                seen_columns = true;
            }
            collector.push(decode_row(&row)?)?;
        }
    }
    if !seen_columns {
        let described = conn.describe(sql).await?;
        collector.set_columns(
            described
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
        )?;
    }
    Ok(collector.finish())
}

fn decode_row(row: &SqliteRow) -> Result<Vec<Value>, QueryError> {
    (0..row.len())
        .map(|i| {
            let value = row
                .try_get_raw(i)
                .map_err(|e| QueryError::failed(e.to_string()))?;
            decode_value(value).map_err(|e| {
                QueryError::failed(format!(
                    "column `{}` cannot be read: {e}",
                    row.columns()[i].name()
                ))
            })
        })
        .collect()
}

fn decode_value(value: SqliteValueRef<'_>) -> Result<Value, sqlx::error::BoxDynError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    // The value's own storage class, not the column's declared type.
    let class = value.type_info().name().to_owned();
    Ok(match class.as_str() {
        "INTEGER" => Value::from(<i64 as Decode<sqlx::Sqlite>>::decode(value)?),
        "REAL" => crate::float(<f64 as Decode<sqlx::Sqlite>>::decode(value)?),
        "BLOB" => crate::base64(&<Vec<u8> as Decode<sqlx::Sqlite>>::decode(value)?),
        _ => Value::String(<String as Decode<sqlx::Sqlite>>::decode(value)?),
    })
}

fn map_error(e: sqlx::Error, limits: &QueryLimits) -> QueryError {
    match e {
        sqlx::Error::Database(db) => {
            if db.code().as_deref() == Some(SQLITE_INTERRUPT) {
                QueryError::Timeout {
                    timeout: limits.timeout,
                }
            } else {
                QueryError::failed(db.message().to_owned())
            }
        }
        sqlx::Error::Io(e) => QueryError::unavailable(e.to_string()),
        other => QueryError::failed(other.to_string()),
    }
}
