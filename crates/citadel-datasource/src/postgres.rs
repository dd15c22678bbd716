//! PostgreSQL: read-only three ways.
//!
//! The connection starts with `default_transaction_read_only=on`,
//! `statement_timeout` (so the server stops working even when the client
//! has given up), `lock_timeout` and `idle_in_transaction_session_timeout`;
//! each query then runs inside `BEGIN READ ONLY` with its own
//! `SET LOCAL statement_timeout`, and is rolled back — which also undoes any
//! session setting the query changed, so a pooled connection goes back as
//! it came. A read-only role is the administrator's part (see the crate
//! documentation).
//!
//! A connection is either the query's own ([`run`]) or borrowed from a
//! bounded pool per source ([`PgPools`]); a borrowed one returns to its pool
//! only after a clean rollback, and is closed otherwise.
//!
//! Values are decoded from PostgreSQL's binary format by type name, for the
//! types [`crate::QueryResult`] lists; anything else is an error naming the
//! column, so a script author can cast it.

use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgRow, PgValueFormat, PgValueRef};
use sqlx::{Column, Connection, Executor, PgConnection, Row, TypeInfo, ValueRef};

use crate::{Collector, Param, QueryError, QueryLimits, QueryResult};

/// SQLSTATE `query_canceled`, which `statement_timeout` raises.
const QUERY_CANCELED: &str = "57014";

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", parts.join("&"));
    }
    out
}

/// The URL's password as written and percent-decoded, to scrub from
/// messages.
fn passwords_of(url: &str) -> Vec<String> {
    let from_userinfo = || {
        let rest = &url[url.find("://")? + 3..];
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        let userinfo = &authority[..authority.rfind('@')?];
        Some(userinfo.split_once(':')?.1.to_owned())
    };
    let from_query = || {
        let query = &url[url.find('?')? + 1..];
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case("password").then(|| v.to_owned())
        })
    };
    let mut out = Vec::new();
    for raw in [from_userinfo(), from_query()].into_iter().flatten() {
        if raw.is_empty() {
            continue;
        }
        let decoded = percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned();
        if decoded != raw {
            out.push(decoded);
        }
        out.push(raw);
    }
    out
}

/// `message` with the URL and its password taken out.
fn scrub(message: String, url: &str) -> String {
    let mut message = message.replace(url, &redact_url(url));
    for password in passwords_of(url) {
        message = message.replace(&password, "***");
    }
    message
}

/// The connection options: read-only by default, and a server-side
/// deadline of `timeout` for any statement (each transaction sets its own
/// query's deadline as well).
fn connect_options(url: &str, timeout: Duration) -> Result<PgConnectOptions, QueryError> {
    let timeout_ms = timeout.as_millis().max(1);
    Ok(PgConnectOptions::from_str(url)
        .map_err(|e| QueryError::unavailable(scrub(format!("invalid URL: {e}"), url)))?
        .application_name("citadel-datasource")
        .statement_cache_capacity(STATEMENT_CACHE)
        .options([
            ("default_transaction_read_only", "on".to_owned()),
            ("statement_timeout", timeout_ms.to_string()),
            ("lock_timeout", timeout_ms.to_string()),
            (
                "idle_in_transaction_session_timeout",
                (timeout_ms + IDLE_IN_TRANSACTION_GRACE.as_millis()).to_string(),
            ),
        ]))
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 32;

/// How much longer than a statement a transaction may sit idle.
const IDLE_IN_TRANSACTION_GRACE: Duration = Duration::from_secs(1);

/// One query on a connection of its own, closed after it.
pub(crate) async fn run(
    url: &str,
    sql: &str,
    params: &[Param],
    limits: &QueryLimits,
) -> Result<QueryResult, QueryError> {
    let options = connect_options(url, limits.timeout)?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| QueryError::unavailable(scrub(format!("cannot connect: {e}"), url)))?;
    let result = transaction(&mut conn, sql, params, limits).await;
    if result.is_ok() {
        let _ = conn.close().await;
    } else {
        // Stopped early (a cap) or failed: the server may still be sending
        // rows, which a clean close would first read to the end. Dropping
        // the connection closes the socket; the server ends the
        // transaction, and stops when it next writes to the closed socket
        // or at `statement_timeout`.
        drop(conn);
    }
    result.map_err(|e| e.into_error(url, limits))
}

/// The query inside `BEGIN READ ONLY` with its own deadline, rolled back;
/// the connection is clean again (no transaction, and the rollback undid
/// any session setting the query changed) only when this returns `Ok`.
async fn transaction(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Param],
    limits: &QueryLimits,
) -> Result<QueryResult, Failure> {
    let timeout_ms = limits.timeout.as_millis().max(1);
    // One round trip (the simple protocol takes several statements).
    conn.execute(
        format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {timeout_ms}; \
             SET LOCAL lock_timeout = {timeout_ms}"
        )
        .as_str(),
    )
    .await?;
    let result = fetch(conn, sql, params, limits).await?;
    // Nothing was written; the rollback only ends the transaction.
    conn.execute("ROLLBACK").await?;
    Ok(result)
}

/// PostgreSQL connection pools, one per source URL, for
/// [`crate::Pools`].
pub(crate) struct PgPools {
    pools: std::sync::Mutex<lru::LruCache<String, sqlx::PgPool>>,
    max_connections: u32,
}

impl PgPools {
    pub(crate) fn new(max_sources: usize, max_connections: u32) -> PgPools {
        let max_sources =
            std::num::NonZeroUsize::new(max_sources).unwrap_or(std::num::NonZeroUsize::MIN);
        PgPools {
            pools: std::sync::Mutex::new(lru::LruCache::new(max_sources)),
            max_connections: max_connections.max(1),
        }
    }

    /// The pool for `url`, made (lazily connecting) if new; the least
    /// recently used pool is closed when there are too many.
    fn pool(&self, url: &str) -> Result<sqlx::PgPool, QueryError> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(url) {
            return Ok(pool.clone());
        }
        let options = connect_options(url, crate::QueryLimits::default().timeout)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .idle_timeout(Some(POOL_IDLE))
            .max_lifetime(Some(POOL_LIFETIME))
            .test_before_acquire(true)
            .connect_lazy_with(options);
        if let Some((_, evicted)) = pools.push(url.to_owned(), pool.clone()) {
            tokio::spawn(async move { evicted.close().await });
        }
        Ok(pool)
    }

    pub(crate) async fn run(
        &self,
        url: &str,
        sql: &str,
        params: &[Param],
        limits: &QueryLimits,
    ) -> Result<QueryResult, QueryError> {
        let pool = self.pool(url)?;
        let conn = pool
            .acquire()
            .await
            .map_err(|e| QueryError::unavailable(scrub(format!("cannot connect: {e}"), url)))?;
        let mut checkout = Checkout(Some(conn));
        let result = match checkout.0.as_mut() {
            Some(conn) => transaction(conn, sql, params, limits).await,
            None => unreachable!("the connection is taken only below"),
        };
        if result.is_ok() {
            // Clean: back to the pool.
            drop(checkout.0.take());
        }
        // Otherwise `checkout` drops it out of the pool (see `Checkout`).
        result.map_err(|e| e.into_error(url, limits))
    }
}

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);

/// How long a pooled connection lives at most.
const POOL_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A pooled connection that goes back to its pool only when taken out
/// explicitly; dropped with it inside (a failure, a cap, the deadline
/// dropping the future mid-query) it is detached and closed, so no
/// half-read result or open transaction is ever handed to the next query.
struct Checkout(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
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

impl Failure {
    fn into_error(self, url: &str, limits: &QueryLimits) -> QueryError {
        match self {
            Failure::Limit(e) => e,
            Failure::Sql(e) => map_error(e, url, limits),
        }
    }
}

async fn fetch(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Param],
    limits: &QueryLimits,
) -> Result<QueryResult, Failure> {
    let mut query = sqlx::query(sql);
    for p in params {
        query = match p {
            Param::Null => query.bind(None::<String>),
            Param::Bool(b) => query.bind(*b),
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

fn map_error(e: sqlx::Error, url: &str, limits: &QueryLimits) -> QueryError {
    match e {
        sqlx::Error::Database(db) => {
            if db.code().as_deref() == Some(QUERY_CANCELED) {
                QueryError::Timeout {
                    timeout: limits.timeout,
                }
            } else {
                QueryError::failed(scrub(db.message().to_owned(), url))
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            QueryError::unavailable(scrub(e.to_string(), url))
        }
        other => QueryError::failed(scrub(other.to_string(), url)),
    }
}

fn decode_row(row: &PgRow) -> Result<Vec<Value>, QueryError> {
    (0..row.len())
        .map(|i| {
            let column = &row.columns()[i];
            let value = row
                .try_get_raw(i)
                .map_err(|e| QueryError::failed(e.to_string()))?;
            decode_value(value)
                .map_err(|e| QueryError::failed(format!("column `{}`: {e}", column.name())))
        })
        .collect()
}

fn decode_value(value: PgValueRef<'_>) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let type_name = value.type_info().name().to_owned();
    let bytes = value.as_bytes().map_err(|e| e.to_string())?;
    if value.format() == PgValueFormat::Text {
        return Ok(Value::String(
            std::str::from_utf8(bytes)
                .map_err(|e| e.to_string())?
                .to_owned(),
        ));
    }
    match type_name.strip_suffix("[]") {
        Some(element) => decode_array(element, bytes),
        None => decode_scalar(&type_name, bytes),
    }
    .map_err(|e| match e {
        Unsupported::Type => format!(
            "type {type_name} is not supported; cast it in the query (for example `::text`)"
        ),
        Unsupported::Malformed(why) => format!("malformed {type_name} value: {why}"),
    })
}

enum Unsupported {
    Type,
    Malformed(String),
}

fn malformed(why: impl Into<String>) -> Unsupported {
    Unsupported::Malformed(why.into())
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Unsupported> {
    bytes
        .try_into()
        .map_err(|_| malformed(format!("{} bytes, {N} expected", bytes.len())))
}

fn text(bytes: &[u8]) -> Result<&str, Unsupported> {
    std::str::from_utf8(bytes).map_err(|e| malformed(e.to_string()))
}

fn decode_scalar(type_name: &str, bytes: &[u8]) -> Result<Value, Unsupported> {
    Ok(match type_name {
        "BOOL" => Value::Bool(fixed::<1>(bytes)?[0] != 0),
        "INT2" => Value::from(i16::from_be_bytes(fixed(bytes)?)),
        "INT4" => Value::from(i32::from_be_bytes(fixed(bytes)?)),
        "INT8" => Value::from(i64::from_be_bytes(fixed(bytes)?)),
        "OID" => Value::from(u32::from_be_bytes(fixed(bytes)?)),
        "FLOAT4" => crate::float(f64::from(f32::from_be_bytes(fixed(bytes)?))),
        "FLOAT8" => crate::float(f64::from_be_bytes(fixed(bytes)?)),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "\"CHAR\"" | "CHAR" | "CITEXT" | "citext" => {
            Value::String(text(bytes)?.to_owned())
        }
        "BYTEA" => crate::base64(bytes),
        "JSON" => serde_json::from_str(text(bytes)?).map_err(|e| malformed(e.to_string()))?,
        "JSONB" => match bytes.split_first() {
            Some((1, rest)) => {
                serde_json::from_str(text(rest)?).map_err(|e| malformed(e.to_string()))?
            }
            _ => return Err(malformed("unknown jsonb version")),
        },
        "NUMERIC" => Value::String(numeric(bytes)?),
        "UUID" => {
            let b = fixed::<16>(bytes)?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ))
        }
        "TIMESTAMPTZ" | "TIMESTAMP" => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            match micros {
                i64::MAX => Value::String("infinity".into()),
                i64::MIN => Value::String("-infinity".into()),
                _ => {
                    let ts = micros
                        .checked_add(PG_EPOCH_MICROS)
                        .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())
                        .ok_or_else(|| malformed("out of range"))?;
                    if type_name == "TIMESTAMPTZ" {
                        Value::String(ts.to_string())
                    } else {
                        Value::String(ts.to_zoned(jiff::tz::TimeZone::UTC).datetime().to_string())
                    }
                }
            }
        }
        "DATE" => {
            let days = i32::from_be_bytes(fixed(bytes)?);
            match days {
                i32::MAX => Value::String("infinity".into()),
                i32::MIN => Value::String("-infinity".into()),
                _ => {
                    let date = jiff::civil::date(2000, 1, 1)
                        .checked_add(jiff::Span::new().days(i64::from(days)))
                        .map_err(|_| malformed("out of range"))?;
                    Value::String(date.to_string())
                }
            }
        }
        "TIME" => {
            let micros = i64::from_be_bytes(fixed(bytes)?);
            let time = jiff::civil::Time::midnight()
                .checked_add(jiff::SignedDuration::from_micros(micros))
                .map_err(|_| malformed("out of range"))?;
            Value::String(time.to_string())
        }
        _ => return Err(Unsupported::Type),
    })
}

fn be_i32(bytes: &[u8], at: usize) -> Result<i32, Unsupported> {
    bytes
        .get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed("truncated"))
}

/// A one-dimensional array of a supported element type, as a JSON array.
fn decode_array(element: &str, bytes: &[u8]) -> Result<Value, Unsupported> {
    // Refuse element types we cannot decode before reading anything (an
    // empty value is malformed for every type we know, unknown for others).
    if matches!(decode_scalar(element, &[]), Err(Unsupported::Type)) {
        return Err(Unsupported::Type);
    }
    let ndim = be_i32(bytes, 0)?;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if ndim != 1 {
        return Err(malformed(format!(
            "{ndim} dimensions (only one-dimensional arrays are supported)"
        )));
    }
    let len = usize::try_from(be_i32(bytes, 12)?).map_err(|_| malformed("negative length"))?;
    let mut at = 20;
    let mut items = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        let item_len = be_i32(bytes, at)?;
        at += 4;
        if item_len < 0 {
            items.push(Value::Null);
            continue;
        }
        let n = usize::try_from(item_len).map_err(|_| malformed("negative length"))?;
        let item = bytes
            .get(at..at + n)
            .ok_or_else(|| malformed("truncated"))?;
        at += n;
        items.push(decode_scalar(element, item)?);
    }
    Ok(Value::Array(items))
}

/// PostgreSQL's binary `numeric` as its exact decimal text.
fn numeric(bytes: &[u8]) -> Result<String, Unsupported> {
    let word = |i: usize| -> Result<u16, Unsupported> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| malformed("truncated"))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)?.cast_signed());
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err(malformed("unknown sign")),
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let digit = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    if out == "-0" || (out.starts_with("-0.") && out[3..].bytes().all(|b| b == b'0')) {
        out.remove(0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@db/x?password=s3cret&a=b"),
            "postgres://app@db/x?password=***&a=b"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            scrub(
                "error at postgres://app:s3cret@db/x: s3cret".into(),
                "postgres://app:s3cret@db/x"
            ),
            "error at postgres://app:***@db/x: ***"
        );
    }

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((digits.len() as u16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(dscale.to_be_bytes());
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_keep_every_digit() {
        let n = |w, s, d, digits: &[u16]| numeric(&numeric_bytes(w, s, d, digits)).ok().unwrap();
        assert_eq!(n(0, 0, 2, &[12, 5000]), "12.50");
        assert_eq!(n(1, 0, 0, &[1, 2345]), "12345");
        assert_eq!(n(-1, 0x4000, 4, &[123]), "-0.0123");
        assert_eq!(n(0, 0, 0, &[]), "0");
        assert_eq!(n(2, 0, 0, &[1]), "100000000");
        assert_eq!(n(0, 0xC000, 0, &[]), "NaN");
    }
}
