//! Start-up errors name what failed and what to do about it, and nothing is
//! started (no database file, no sandbox host) when the node cannot run.

use std::process::{Command, Output};

use citadel_testkit::TempDir;

fn temp_dir(name: &str) -> TempDir {
    citadel_testkit::temp_dir(&format!("startup-{name}"))
}

fn citadel(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("CITADEL_DATABASE_URL")
        .env_remove("CITADEL_DATA_DIR")
        .env_remove("CITADEL_LISTEN")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_address_in_use_is_named_with_the_flag_to_change_it() {
    let dir = temp_dir("listen");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = citadel(&dir, &["serve", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on {addr}: the address is in use")),
        "{err}"
    );
    assert!(err.contains("--listen HOST:PORT"), "{err}");
    // Refused before the database was opened.
    assert!(!dir.path().join("citadel-data").exists());
}

#[test]
fn an_unreachable_database_is_named_masked_with_the_flag_to_change_it() {
    let dir = temp_dir("db");
    // A port nothing listens on: the connection is refused at once.
    let port = citadel_testkit::free_port();
    let url = format!("postgres://citadel:hunter2@127.0.0.1:{port}/citadel");
    let out = citadel(
        &dir,
        &["admin", "create-tenant", "acme", "--database", &url],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot open the database postgres://citadel:****@127.0.0.1:{port}/citadel"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert!(err.contains("is the database running"), "{err}");
    assert!(err.contains("--database URL"), "{err}");
}

#[test]
fn a_data_directory_that_cannot_be_created_is_named() {
    let dir = temp_dir("datadir");
    // Below a regular file: no user, root included, can create it.
    std::fs::write(dir.path().join("file"), "").unwrap();
    let out = citadel(
        &dir,
        &["admin", "create-tenant", "acme", "--data-dir", "file/data"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot create the data directory `file/data`"),
        "{err}"
    );
    assert!(err.contains("--data-dir DIR"), "{err}");
}
