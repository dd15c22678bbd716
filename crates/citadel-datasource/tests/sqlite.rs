//! SQLite end to end: a real file in a temporary directory, written through
//! a separate connection, then queried through the crate.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use citadel_datasource::{
    QueryError, QueryLimits, Source, query, query_unchecked, resolve_sqlite_path,
};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, SqliteConnection};

/// A database with `users` (three rows) and `kinds` (one row of each
/// storage class), in its own temporary directory.
async fn database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
         INSERT INTO users (id, name, email) VALUES
           (1, 'ada', 'ada@example.com'), (2, 'bob', NULL), (3, 'cy', 'cy@example.com');
         CREATE TABLE kinds (i INTEGER, r REAL, t TEXT, b BLOB, n TEXT, big INTEGER);
         INSERT INTO kinds VALUES (42, 2.5, 'héllo', x'00ff10', NULL, 9223372036854775807);",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    (dir, path)
}

fn source(path: &Path) -> Source {
    Source::Sqlite {
        path: path.to_owned(),
    }
}

async fn run(
    path: &Path,
    sql: &str,
    params: &[Value],
) -> Result<citadel_datasource::QueryResult, QueryError> {
    query(&source(path), sql, params, &QueryLimits::default()).await
}

async fn user_count(path: &Path) -> i64 {
    let r = run(path, "SELECT count(*) AS n FROM users", &[])
        .await
        .unwrap();
    r.rows[0]["n"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_come_back_as_typed_objects() {
    let (_dir, path) = database().await;
    let r = run(&path, "SELECT * FROM kinds", &[]).await.unwrap();
    assert_eq!(r.columns, ["i", "r", "t", "b", "n", "big"]);
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(row["i"], json!(42));
    assert_eq!(row["r"], json!(2.5));
    assert_eq!(row["t"], json!("héllo"));
    assert_eq!(row["b"], json!("AP8Q"), "blobs are base64");
    assert_eq!(row["n"], Value::Null);
    assert_eq!(row["big"], json!(i64::MAX));
}

#[tokio::test(flavor = "multi_thread")]
async fn params_are_bound_with_their_types() {
    let (_dir, path) = database().await;
    let r = run(
        &path,
        "SELECT name FROM users WHERE id = ? OR email = ? ORDER BY id",
        &[json!(2), json!("cy@example.com")],
    )
    .await
    .unwrap();
    let names: Vec<&Value> = r.rows.iter().map(|row| &row["name"]).collect();
    assert_eq!(names, [&json!("bob"), &json!("cy")]);

    let r = run(
        &path,
        "SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e, json_extract(?6, '$.k') AS f",
        &[
            Value::Null,
            json!(true),
            json!(1.25),
            json!("x"),
            json!([1, 2]),
            json!({"k": "v"}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        Value::Object(r.rows[0].clone()),
        json!({"a": null, "b": 1, "c": 1.25, "d": "x", "e": "[1,2]", "f": "v"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injection_in_a_param_is_only_a_value() {
    let (_dir, path) = database().await;
    for evil in [
        "x' OR '1'='1",
        "x'; DROP TABLE users; --",
        "1 OR 1=1",
        "'); DELETE FROM users; --",
    ] {
        let r = run(&path, "SELECT * FROM users WHERE name = ?", &[json!(evil)])
            .await
            .unwrap();
        assert!(r.rows.is_empty(), "{evil}: {:?}", r.rows);
        assert_eq!(
            r.columns,
            ["id", "name", "email"],
            "columns even without rows"
        );
    }
    assert_eq!(user_count(&path).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn params_must_match_the_placeholders() {
    let (_dir, path) = database().await;
    let e = run(&path, "SELECT * FROM users WHERE id = ?", &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_params", "{e}");
    let e = run(&path, "SELECT 1", &[json!(1)]).await.unwrap_err();
    assert_eq!(e.code(), "invalid_params", "{e}");
    let e = run(&path, "SELECT * FROM users WHERE id = ?2", &[json!(1)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_params", "{e}");
    let e = run(&path, "SELECT ?", &[json!(u64::MAX)]).await;
    // u64::MAX does not fit i64 and binds as a float.
    assert!(e.is_ok(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_statements_never_reach_the_file() {
    let (_dir, path) = database().await;
    for sql in [
        "DELETE FROM users",
        "SELECT 1; DELETE FROM users",
        "DROP TABLE users",
        "PRAGMA query_only = OFF",
        "ATTACH DATABASE 'other.db' AS other",
        "SELECT load_extension('/tmp/evil.so')",
    ] {
        let e = run(&path, sql, &[]).await.unwrap_err();
        assert_eq!(e.code(), "statement_refused", "{sql}: {e}");
    }
    assert_eq!(user_count(&path).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_refuses_writes_past_the_parser() {
    let (dir, path) = database().await;
    let limits = QueryLimits::default();
    for sql in [
        "DELETE FROM users",
        "INSERT INTO users (name) VALUES ('eve')",
        "UPDATE users SET name = 'eve'",
        "DROP TABLE users",
        "CREATE TABLE t (x)",
        "SELECT 1; DELETE FROM users",
        "PRAGMA query_only = OFF; DELETE FROM users",
    ] {
        let e = query_unchecked(&source(&path), sql, &[], &limits)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "query_failed", "{sql}: {e}");
    }
    // ATTACH is limited to zero databases, so no other file can be read.
    let other = dir.path().join("other.db");
    std::fs::copy(&path, &other).unwrap();
    let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
    let e = query_unchecked(&source(&path), &attach, &[], &limits)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "query_failed", "{e}");
    assert_eq!(user_count(&path).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn pools_open_sqlite_per_query() {
    let (_dir, path) = database().await;
    let pools = citadel_datasource::Pools::new();
    for _ in 0..3 {
        let r = pools
            .query(
                &source(&path),
                "SELECT count(*) AS n FROM users",
                &[],
                &QueryLimits::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.rows[0]["n"], json!(3));
    }
    let e = pools
        .query_unchecked(
            &source(&path),
            "DELETE FROM users",
            &[],
            &QueryLimits::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "query_failed", "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file_is_unavailable_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let e = run(&path, "SELECT 1", &[]).await.unwrap_err();
    assert_eq!(e.code(), "source_unavailable", "{e}");
    assert!(!path.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_row_cap_stops_the_query() {
    let (_dir, path) = database().await;
    let limits = QueryLimits {
        max_rows: 2,
        ..QueryLimits::default()
    };
    let e = query(&source(&path), "SELECT * FROM users", &[], &limits)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "row_limit_exceeded");
    assert!(e.to_string().contains("more than 2 rows"), "{e}");
    // A result of exactly the cap is fine.
    let r = query(&source(&path), "SELECT * FROM users LIMIT 2", &[], &limits)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 2);
    // An endless query stops at the cap too, well before any timeout.
    let started = Instant::now();
    let e = query(
        &source(&path),
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
        &[],
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "row_limit_exceeded");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_result_size_is_capped() {
    let (_dir, path) = database().await;
    let limits = QueryLimits {
        max_bytes: 100,
        ..QueryLimits::default()
    };
    let e = query(&source(&path), "SELECT * FROM users", &[], &limits)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "result_too_large", "{e}");
    let e = query(
        &source(&path),
        "SELECT hex(zeroblob(1000)) AS big",
        &[],
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "result_too_large", "{e}");
    let r = query(&source(&path), "SELECT id FROM users", &[], &limits)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_query_times_out_inside_sqlite() {
    let (_dir, path) = database().await;
    let limits = QueryLimits {
        timeout: Duration::from_millis(200),
        ..QueryLimits::default()
    };
    let started = Instant::now();
    let e = query(
        &source(&path),
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
        &[],
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The same, reading a table: it holds the file's shared lock while it runs.
    let started = Instant::now();
    let e = query(
        &source(&path),
        "WITH RECURSIVE c(x) AS (SELECT id FROM users UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
        &[],
        &limits,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The interrupted statement let go of the file: a writer that waits
    // for no lock at all gets it at once.
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .busy_timeout(Duration::ZERO);
    let mut writer = SqliteConnection::connect_with(&options).await.unwrap();
    writer
        .execute("INSERT INTO users (name) VALUES ('dee')")
        .await
        .expect("no reader still holds the file");
    writer.close().await.unwrap();
    assert_eq!(user_count(&path).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_column_names_are_an_error() {
    let (_dir, path) = database().await;
    let e = run(&path, "SELECT 1 AS a, 2 AS a", &[]).await.unwrap_err();
    assert_eq!(e.code(), "query_failed", "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_message_passes_through() {
    let (_dir, path) = database().await;
    let e = run(&path, "SELECT nope FROM users", &[]).await.unwrap_err();
    assert_eq!(e.code(), "query_failed");
    assert!(e.to_string().contains("no such column: nope"), "{e}");
}

#[test]
fn paths_stay_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("t1")).unwrap();
    std::fs::write(root.path().join("t1/data.db"), b"").unwrap();
    std::fs::write(outside.path().join("secret.db"), b"").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.db"),
        root.path().join("t1/link.db"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("t1/dir")).unwrap();

    let ok = resolve_sqlite_path(root.path(), "t1/data.db").unwrap();
    assert_eq!(ok, root.path().canonicalize().unwrap().join("t1/data.db"));
    assert!(resolve_sqlite_path(root.path(), "./t1/data.db").is_ok());

    let secret = outside.path().join("secret.db");
    for relative in [
        "../secret.db",
        "t1/../../secret.db",
        secret.to_str().unwrap(),
        "/etc/passwd",
        "t1/link.db",
        "t1/dir/secret.db",
        "t1/missing.db",
        "t1",
        "",
    ] {
        let e = resolve_sqlite_path(root.path(), relative).unwrap_err();
        assert_eq!(e.code(), "source_unavailable", "{relative}: {e}");
    }
}

#[test]
fn debug_hides_the_postgres_password() {
    let source = Source::Postgres {
        url: "postgres://app:hunter2@db.internal:5432/sales".into(),
    };
    let shown = format!("{source:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("app:***@db.internal:5432/sales"), "{shown}");
}
