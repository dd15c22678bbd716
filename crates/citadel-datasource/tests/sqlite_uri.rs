//! A SQLite path is a file name, never a `file:` URI with parameters of its
//! own. Alone in its binary: it changes the working directory.

use std::str::FromStr;

use citadel_datasource::{QueryLimits, Source, query, query_unchecked};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, SqliteConnection};

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_path_that_looks_like_a_uri_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", real.display()))
        .unwrap()
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute("CREATE TABLE users (id INTEGER); INSERT INTO users VALUES (1), (2);")
        .await
        .unwrap();
    conn.close().await.unwrap();
    // A file whose name, relative, reads as a URI asking for write access
    // to another file.
    let odd = "file:real.db?mode=rwc";
    std::fs::copy(&real, dir.path().join(odd)).unwrap();
    std::env::set_current_dir(dir.path()).unwrap();

    let source = Source::Sqlite { path: odd.into() };
    let limits = QueryLimits::default();
    let r = query(&source, "SELECT count(*) AS n FROM users", &[], &limits)
        .await
        .unwrap();
    assert_eq!(r.rows[0]["n"], json!(2));
    let e = query_unchecked(&source, "DELETE FROM users", &[], &limits)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "query_failed", "{e}");
}
