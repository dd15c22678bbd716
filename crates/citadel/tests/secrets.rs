//! Secrets through real `citadel serve` processes: the master key generated
//! on first start (once, mode 0600, said in the log), refused when missing,
//! wrong or readable by others (the data untouched), rotated online with
//! `citadel secrets rotate-master-key`; and a secret's value nowhere in the
//! database file or the server's log after a run did its best to leak it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::{Proc, request};
use serde_json::{Value, json};

const VALUE: &str = "sk_live_Zq81nM2pW7xRt4Kv";

/// `citadel serve` in `dir` on `port`, with only `extra` of the
/// environment that could point it elsewhere.
fn serve_command(dir: &Path, port: u16, extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env_remove("CITADEL_DATABASE_URL")
        .env_remove("CITADEL_DATA_DIR")
        .env_remove("CITADEL_MASTER_KEY_FILE")
        .env("CITADEL_LOG", "debug")
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// `citadel serve` running, its stdout and stderr appended to
/// `dir/server.log`.
fn serve(dir: &Path, port: u16, extra: &[(&str, &str)]) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut cmd = serve_command(dir, port, extra);
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
    let server = Proc(cmd.spawn().unwrap());
    common::wait_for("the server", 60, || {
        request(port, "GET", "/health", None, None).0 == 200
    });
    server
}

/// `citadel serve` that must refuse to start: its exit code and stderr.
fn refused(dir: &Path, extra: &[(&str, &str)]) -> (i32, String) {
    let out = serve_command(dir, citadel_testkit::free_port(), extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every byte of the SQLite database: the file and its write-ahead log.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["citadel.db", "citadel.db-wal", "citadel.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join("citadel-data").join(name)) {
            all.extend(b);
        }
    }
    all
}

/// The data keys and sealed secret versions as the store has them.
fn sealed_state(dir: &Path) -> String {
    let url = format!(
        "sqlite://{}",
        dir.join("citadel-data").join("citadel.db").display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = citadel_store::connect(&url).await.unwrap();
        let keys = store.all_data_keys().await.unwrap();
        let mut state = format!("{keys:?}");
        for k in &keys {
            for s in store.secrets(&k.tenant_id).await.unwrap() {
                let v = store
                    .secret_version(&k.tenant_id, &s.name, s.version)
                    .await
                    .unwrap();
                state.push_str(&format!("{s:?}{v:?}"));
            }
        }
        state
    })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn run(port: u16, token: &str, script: &str) -> Value {
    let (status, run) = request(
        port,
        "POST",
        &format!("/v1/scripts/{script}/run"),
        Some(token),
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{run}");
    run
}

#[test]
fn the_master_key_guards_start_up_and_no_value_leaks() {
    let dir = citadel_testkit::temp_dir("secrets-cli");
    let dir = dir.path();
    let token = common::owner_token(dir, &[]);
    let port = citadel_testkit::free_port();
    let server = serve(dir, port, &[]);
    let key = dir.join("citadel-data").join("master.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let (status, got) = request(
        port,
        "POST",
        "/v1/secrets",
        Some(&token),
        Some(&json!({"name": "STRIPE_KEY", "value": VALUE})),
    );
    assert_eq!(status, 201, "{got}");
    // A script that tries every way out: its result, a log line, a thrown
    // error, a KV value, an event, and encodings of the value.
    let source = "const k = await api.secrets.get('STRIPE_KEY');\n\
                  console.log('key', k, encodeURIComponent(k));\n\
                  await api.kv.set('stash', {k});\n\
                  await api.events.emit('leak.tried', {k});\n\
                  if (input && input.throw) throw new Error('no: ' + k);\n\
                  return {k, parts: [k]};";
    for (name, src) in [
        ("leak", source.to_owned()),
        ("throw", source.replace("input && input.throw", "true")),
    ] {
        let (status, got) = request(
            port,
            "POST",
            "/v1/scripts",
            Some(&token),
            Some(&json!({"name": name, "source": src, "capabilities": {
                "secrets": ["STRIPE_KEY"], "kv": true, "events": {"emit": ["leak.*"]}}})),
        );
        assert_eq!(status, 201, "{got}");
    }
    let leak = run(port, &token, "leak");
    assert_eq!(leak["status"], "succeeded", "{leak}");
    assert_eq!(leak["result"]["k"], "[REDACTED:STRIPE_KEY]");
    assert_eq!(
        leak["logs"][0]["message"],
        "key [REDACTED:STRIPE_KEY] [REDACTED:STRIPE_KEY]"
    );
    let thrown = run(port, &token, "throw");
    assert_eq!(thrown["status"], "failed", "{thrown}");
    assert_eq!(thrown["error"]["message"], "no: [REDACTED:STRIPE_KEY]");
    // And queued, through a worker.
    let (status, queued) = request(
        port,
        "POST",
        "/v1/scripts/leak/run",
        Some(&token),
        Some(&json!({"wait": false})),
    );
    assert_eq!(status, 202, "{queued}");
    let id = queued["run_id"].as_str().unwrap().to_owned();
    common::wait_for("the queued run", 30, || {
        request(port, "GET", &format!("/v1/runs/{id}"), Some(&token), None).1["status"]
            == "succeeded"
    });
    drop(server);

    let forms = [
        VALUE.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(VALUE),
        hex::encode(VALUE),
    ];
    let db = database_bytes(dir);
    let log = std::fs::read(dir.join("server.log")).unwrap();
    for form in &forms {
        assert!(!contains(&db, form), "`{form}` is in the database");
        assert!(!contains(&log, form), "`{form}` is in the server log");
    }
    let log_text = String::from_utf8_lossy(&log);
    assert_eq!(log_text.matches("generated a master key").count(), 1);

    // A second start uses the key it generated, and says nothing of it.
    let server = serve(dir, port, &[]);
    assert_eq!(run(port, &token, "leak")["status"], "succeeded");
    drop(server);
    let log_text = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert_eq!(log_text.matches("generated a master key").count(), 1);

    // Refusals: each names the problem, and leaves the data as it was.
    let before = sealed_state(dir);
    let moved = dir.join("master.key.saved");
    std::fs::rename(&key, &moved).unwrap();
    let (code, err) = refused(dir, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("this database holds sealed secrets but there is no master key at"),
        "{err}"
    );
    assert!(!key.exists(), "a new key was generated over sealed secrets");
    let (code, err) = refused(
        dir,
        &[(
            "CITADEL_MASTER_KEY_FILE",
            dir.join("nowhere.key").to_str().unwrap(),
        )],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nowhere.key` does not exist"), "{err}");
    let wrong = dir.join("wrong.key");
    std::fs::write(&wrong, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err) = refused(dir, &[("CITADEL_MASTER_KEY_FILE", wrong.to_str().unwrap())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is not the one the secrets are sealed with"),
        "{err}"
    );
    std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = refused(dir, &[("CITADEL_MASTER_KEY_FILE", moved.to_str().unwrap())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("may be read by other users (mode 644)"),
        "{err}"
    );
    assert!(
        sealed_state(dir) == before,
        "a refused start changed the data"
    );
    std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&moved, &key).unwrap();

    // Rotation re-wraps the data keys; the new key serves the old secrets.
    let old = std::fs::read_to_string(&key).unwrap();
    let out = common::citadel_with(dir, &["secrets", "rotate-master-key"], &[]);
    assert!(
        out.starts_with("re-wrapped 1 data key(s) under master key mk_"),
        "{out}"
    );
    assert_ne!(std::fs::read_to_string(&key).unwrap(), old);
    assert_eq!(
        std::fs::read_to_string(dir.join("citadel-data").join("master.key.old")).unwrap(),
        old
    );
    let server = serve(dir, port, &[]);
    let after = run(port, &token, "leak");
    assert_eq!(after["status"], "succeeded", "{after}");
    assert_eq!(after["result"]["k"], "[REDACTED:STRIPE_KEY]");
    drop(server);
    // The old key no longer opens anything.
    let (code, err) = refused(
        dir,
        &[(
            "CITADEL_MASTER_KEY_FILE",
            dir.join("citadel-data")
                .join("master.key.old")
                .to_str()
                .unwrap(),
        )],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is not the one the secrets are sealed with"),
        "{err}"
    );
}
