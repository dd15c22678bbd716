//! What Citadel's test suites share, so each suite holds only what it
//! tests: temporary directories, a fresh SQLite store, tenants, bearer
//! tokens, an in-process engine, live scripts saved straight into the store,
//! audit lookups, polling, the HTTP harness around the router ([`http`]) and
//! a throwaway PostgreSQL cluster ([`pg`]).
//!
//! A dev-dependency only: nothing here is built into the product. Without
//! its default `api` feature it is only directories, skips and PostgreSQL,
//! for the store's own suite (which the rest would make depend on the whole
//! product).

#[cfg(feature = "api")]
pub mod http;
pub mod pg;
#[cfg(feature = "api")]
mod world;

#[cfg(feature = "api")]
pub use http::Api;
pub use tempfile::TempDir;
#[cfg(feature = "api")]
pub use world::*;

/// A fresh temporary directory named `citadel-{what}-…`, removed on drop.
///
/// Its mode is 0755, as a directory made with `create_dir_all` under the
/// usual umask: processes the tests start under other users (PostgreSQL
/// as `postgres`, jailed sandbox hosts as `nobody`) may still look inside.
pub fn temp_dir(what: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!("citadel-{what}-"))
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .expect("a temporary directory")
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether this is the CI run (`CI=true`), where a suite whose environment
/// is missing must fail rather than skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says why a test does not run here (`SKIPPED: why`); under `CI=true`
/// fails instead, since CI installs what the tests need and a skip there
/// would hide a broken set-up.
pub fn skip(why: &str) {
    assert!(!in_ci(), "{why}");
    println!("SKIPPED: {why}");
}
