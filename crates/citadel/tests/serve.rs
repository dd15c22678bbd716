//! `citadel serve` as a newcomer meets it: a real process with jailed
//! sandbox hosts and its SQLite file, driven over HTTP. Saves a script,
//! runs it synchronously and asynchronously, kills a run in flight with a
//! kill switch, and finds all of it in the audit log and /metrics.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use citadel_testkit::{TempDir, free_port, temp_dir};
use common::{Proc, citadel_in as citadel, owner_token, request, wait_for};
use serde_json::{Value, json};

mod common;

/// A `citadel serve` in its own directory: killed, then the directory
/// removed, on drop.
struct Server {
    _process: Proc,
    port: u16,
    dir: TempDir,
}

fn start() -> (Server, String) {
    let dir = temp_dir("serve");
    let port = free_port();
    let process = Proc(
        Command::new(env!("CARGO_BIN_EXE_citadel"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env("CITADEL_SANDBOX_HOSTS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let server = Server {
        _process: process,
        port,
        dir,
    };
    wait_for("the server to come up", 20, || {
        request(port, "GET", "/health", None, None).0 == 200
    });
    let token = owner_token(server.dir.path(), &[]);
    (server, token)
}

#[test]
fn a_newcomer_saves_runs_and_kills_scripts() {
    let (server, token) = start();
    let t = Some(token.as_str());
    let p = server.port;

    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts",
        t,
        Some(&json!({
            "name": "billing/greet", "language": "ts",
            "source": "const name: string = input.name;\nconsole.log('greeting', name);\nreturn { hello: name };",
        })),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["version"], "1.0.0");

    // A blocked save, with the location of the finding.
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts",
        t,
        Some(&json!({
            "name": "evil", "source": "return eval(input.code);",
        })),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["details"]["diagnostics"][0]["rule"], "no-eval");
    assert_eq!(v["error"]["details"]["diagnostics"][0]["column"], 8);

    // Synchronously, through a jailed sandbox host.
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts/billing%2Fgreet/run",
        t,
        Some(&json!({"input": {"name": "ann"}})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["result"], json!({"hello": "ann"}));
    assert_eq!(v["logs"][0]["message"], "greeting ann");

    // Asynchronously.
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts/billing%2Fgreet/run",
        t,
        Some(&json!({"input": {"name": "bo"}, "wait": false})),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_owned();
    let run = wait_finished(p, t, &id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"], json!({"hello": "bo"}));

    // A run in flight in a sandbox host is aborted by a kill switch.
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts",
        t,
        Some(&json!({
            "name": "billing/wait", "source": "await api.sleep(30000);\nreturn 1;", "capabilities": {"sleep": true},
        })),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts/billing%2Fwait/run",
        t,
        Some(&json!({"wait": false, "timeout_ms": 40000})),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_owned();
    // Once it runs (not while it is still queued):
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(p, "GET", &format!("/v1/runs/{id}"), t, None).1["status"] != "running" {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, v) = request(
        p,
        "POST",
        "/v1/kill-switch",
        t,
        Some(&json!({"scope": "script", "target": "billing/wait", "reason": "stuck"})),
    );
    assert_eq!(status, 201, "{v}");
    let run = wait_finished(p, t, &id);
    assert_eq!(run["status"], "killed", "{run}");
    assert!(run["duration_ms"].as_i64().unwrap() < 5_000, "{run}");
    let (status, v) = request(
        p,
        "POST",
        "/v1/scripts/billing%2Fwait/run",
        t,
        Some(&json!({})),
    );
    assert_eq!(status, 423, "{v}");
    assert_eq!(v["error"]["code"], "killed");

    // All of it is on the record.
    let (_, audit) = request(p, "GET", "/v1/audit?limit=100", t, None);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["script.save", "killswitch.engage"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    let (_, metrics) = request(p, "GET", "/metrics", None, None);
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "citadel_runs_total{status=\"succeeded\"} 2\n",
        "citadel_runs_total{status=\"killed\"} 1\n",
        "citadel_runs_refused_by_kill_switch_total 1\n",
        "citadel_watchdog_kills_total 0\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

fn wait_finished(port: u16, token: Option<&str>, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, run) = request(port, "GET", &format!("/v1/runs/{id}"), token, None);
        assert_eq!(status, 200, "{run}");
        if run["status"] != "queued" && run["status"] != "running" {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn templates_scaffold_scripts() {
    let dir = temp_dir("template");
    let dir = dir.path();
    let (code, out, _) = citadel(dir, &["template", "list"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.starts_with("event-handler "), "{out}");
    let (code, out, err) = citadel(dir, &["template", "new", "event-handler", "on-paid.ts"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "wrote on-paid.ts\ncapabilities to grant when saving it: {\"events\": {\"emit\": [\"order.*\"]}}\n"
    );
    let (code, out, err) = citadel(dir, &["check", "on-paid.ts"]);
    assert_eq!(code, 0, "{out}{err}");
    // Never overwrites; unknown templates are usage errors.
    let (code, _, err) = citadel(dir, &["template", "new", "event-handler", "on-paid.ts"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = citadel(dir, &["template", "new", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no template `nope`"), "{err}");
}

/// A node that cannot write to its database does not start: `serve` exits
/// at once, naming the node, the database and what to check, instead of
/// answering runs it cannot record. The database is opened read-only
/// (`mode=ro`): tests run as root, which file modes do not stop.
#[test]
fn a_database_that_takes_no_writes_stops_the_start() {
    let dir = temp_dir("serve-ro");
    let (code, _, err) = citadel(dir.path(), &["admin", "create-tenant", "acme"]);
    assert_eq!(code, 0, "{err}");
    let db = dir.path().join("citadel-data").join("citadel.db");
    assert!(db.exists(), "{}", db.display());
    let url = format!("sqlite://{}?mode=ro", db.display());
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &url,
        ])
        .current_dir(dir.path())
        .env("CITADEL_SANDBOX_HOSTS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let health = request(port, "GET", "/health", None, None).0;
            let _ = child.kill();
            let _ = child.wait();
            panic!("`serve` kept running on a read-only database (/health: {health})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot register node `node_")
            && err.contains("readonly database")
            && err.contains("must be writable by this process"),
        "{err}"
    );
}
