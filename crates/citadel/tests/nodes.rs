//! Two real nodes on one database: `citadel serve` and `citadel worker`
//! share the queue; the worker is killed with SIGKILL while it runs jobs;
//! the caller retries every enqueue with its idempotency key; every run
//! completes exactly once from the caller's view, none is lost.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use citadel_testkit::{free_port, pg, temp_dir};
use common::{Proc, citadel_with, owner_token, wait_for};

/// Starts `citadel ARGS` in `dir`; its log (stderr) goes to `dir/LOG`, or
/// nowhere.
fn spawn_logged(dir: &Path, args: &[&str], env: &[(&str, &str)], log: Option<&str>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
    cmd.args(args)
        .current_dir(dir)
        .env("CITADEL_SANDBOX_HOSTS", "1")
        .env("CITADEL_NODE_TIMEOUT_MS", "2000")
        .stdout(Stdio::null())
        .stderr(match log {
            Some(log) => Stdio::from(std::fs::File::create(dir.join(log)).unwrap()),
            None => Stdio::null(),
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().unwrap())
}

fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
    spawn_logged(dir, args, env, None)
}

/// The warnings and errors in a node's JSON log.
fn warnings(dir: &Path, log: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(log))
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
        .map(str::to_owned)
        .collect()
}

fn request(port: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    common::request(port, method, path, Some(token), body)
}

/// Saves `work`: sleeps `ms`, then returns its input.
fn save_work(port: u16, token: &str, ms: u64) {
    let source = format!("await api.sleep({ms});\nreturn input;");
    let (status, v) = request(
        port,
        "POST",
        "/v1/scripts",
        token,
        Some(&json!({"name": "work", "source": source, "capabilities": {"sleep": true}})),
    );
    assert_eq!(status, 201, "{v}");
}

/// Waits for every job of `ids` (run `i` got input `i`) to succeed, then
/// checks each run's result and that there is exactly one run per job.
fn every_job_ran_once(port: u16, token: &str, ids: &[String]) {
    wait_for("every job to finish", 120, || {
        let (_, jobs) = request(
            port,
            "GET",
            "/v1/jobs?state=succeeded&limit=1000",
            token,
            None,
        );
        jobs.as_array().is_some_and(|j| j.len() == ids.len())
    });
    for (i, id) in ids.iter().enumerate() {
        let (status, run) = request(port, "GET", &format!("/v1/runs/{id}"), token, None);
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["result"], json!(i), "{run}");
    }
    let (_, runs) = request(port, "GET", "/v1/runs?limit=1000", token, None);
    assert_eq!(runs.as_array().unwrap().len(), ids.len(), "one run per job");
}

const JOBS: usize = 1000;

#[test]
fn a_killed_node_loses_no_job() {
    killed_node_loses_no_job(&[], "sqlite");
}

/// The same on PostgreSQL, where nodes also contend for row locks.
#[test]
fn a_killed_node_loses_no_job_on_postgres() {
    let Some(cluster) = pg::Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.url("postgres");
    killed_node_loses_no_job(&[("CITADEL_DATABASE_URL", url.as_str())], "pg");
}

fn killed_node_loses_no_job(env: &[(&str, &str)], name: &str) {
    let dir = temp_dir(&format!("nodes-{name}"));
    let d = dir.path();
    let token = owner_token(d, env);
    let platform = citadel_with(d, &["admin", "create-token", "--platform"], env);
    let platform = platform.lines().last().unwrap().trim().to_owned();

    let port = free_port();
    // The serving node takes few jobs at once, so the worker takes most.
    let serve_env: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("CITADEL_WORKER_CONCURRENCY", "8")])
        .collect();
    let _serve = spawn_logged(
        d,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &serve_env,
        Some("serve.log"),
    );
    let mut worker = spawn(d, &["worker"], env);
    wait_for("two nodes up", 30, || {
        let (status, nodes) = request(port, "GET", "/v1/nodes", &platform, None);
        status == 200
            && nodes
                .as_array()
                .is_some_and(|n| n.iter().filter(|n| n["state"] == "up").count() == 2)
    });
    let (_, nodes) = request(port, "GET", "/v1/nodes", &platform, None);
    let worker_id = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "worker")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    save_work(port, &token, 300);
    let enqueue = |i: usize| {
        let (status, v) = request(
            port,
            "POST",
            "/v1/scripts/work/run",
            &token,
            Some(&json!({
                "input": i, "wait": false, "idempotency_key": format!("job-{i}"),
            })),
        );
        assert_eq!(status, 202, "{v}");
        (
            v["run_id"].as_str().unwrap().to_owned(),
            v["duplicate"].as_bool().unwrap(),
        )
    };
    let ids: Vec<String> = (0..JOBS)
        .map(|i| {
            let (id, duplicate) = enqueue(i);
            assert!(!duplicate);
            id
        })
        .collect();

    // Kill the worker while it runs jobs.
    wait_for("the worker to run jobs", 30, || {
        let (_, jobs) = request(
            port,
            "GET",
            "/v1/jobs?state=running&limit=1000",
            &token,
            None,
        );
        jobs.as_array()
            .is_some_and(|j| j.iter().any(|j| j["lease_owner"] == worker_id.as_str()))
    });
    worker.0.kill().unwrap();
    worker.0.wait().unwrap();

    // The caller does not know what happened and retries every enqueue.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(enqueue(i), (id.clone(), true), "job {i}");
    }

    every_job_ran_once(port, &token, &ids);
    // The worker was marked down; some of its jobs ran a second time.
    let (_, nodes) = request(port, "GET", "/v1/nodes", &platform, None);
    let w = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == worker_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(w["state"], "down", "{w}");
    assert_eq!(w["running"], 0, "a node that is down runs nothing: {w}");
    let (_, jobs) = request(port, "GET", "/v1/jobs?limit=1000", &token, None);
    let retried = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["attempts"] == 2)
        .count();
    assert!(retried >= 1, "some jobs were re-run after the node died");
    // A normal failover is quiet on the surviving node: the one warning is
    // that the worker stopped heart-beating.
    let warned = warnings(d, "serve.log");
    let unexpected: Vec<_> = warned
        .iter()
        .filter(|l| !l.contains("nodes stopped heart-beating; reclaiming their jobs"))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}

/// Enqueues run `i` of `work` with its idempotency key, retrying while the
/// database is unavailable (503) or the node cannot be reached: what a
/// careful caller does. Returns (run id, duplicate).
fn enqueue_patiently(port: u16, token: &str, i: usize) -> (String, bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = request(
            port,
            "POST",
            "/v1/scripts/work/run",
            token,
            Some(&json!({"input": i, "wait": false, "idempotency_key": format!("job-{i}")})),
        );
        if status == 202 {
            return (
                v["run_id"].as_str().unwrap().to_owned(),
                v["duplicate"].as_bool().unwrap(),
            );
        }
        assert!(
            status == 503 || status == 0,
            "job {i}: unexpected {status} {v}"
        );
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert!(
            Instant::now() < deadline,
            "job {i}: the database never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const RESTART_JOBS: usize = 300;

/// PostgreSQL crashes and restarts while two nodes run jobs and a caller
/// enqueues more: the nodes reconnect, enqueues during the outage get 503
/// `unavailable` and are retried, and every job runs to one recorded run.
#[test]
fn a_database_restart_under_load_loses_no_job() {
    let Some(cluster) = pg::Cluster::start_or_skip() else {
        return;
    };
    let url = cluster.url("postgres");
    let env = [("CITADEL_DATABASE_URL", url.as_str())];
    let dir = temp_dir("pg-nodes");
    let d = dir.path();
    let token = owner_token(d, &env);
    let port = free_port();
    let _serve = spawn(
        d,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &env,
    );
    let _worker = spawn(d, &["worker"], &env);
    wait_for("the server", 30, || {
        request(port, "GET", "/v1/runs", &token, None).0 == 200
    });
    save_work(port, &token, 200);

    let half = RESTART_JOBS / 2;
    let mut ids: Vec<String> = (0..half)
        .map(|i| enqueue_patiently(port, &token, i).0)
        .collect();
    wait_for("jobs to run", 30, || {
        let (_, jobs) = request(port, "GET", "/v1/jobs?state=running&limit=10", &token, None);
        jobs.as_array().is_some_and(|j| !j.is_empty())
    });
    cluster.crash();
    let (status, v) = request(port, "GET", "/v1/runs", &token, None);
    assert_eq!(
        (status, &v["error"]["code"]),
        (503, &json!("unavailable")),
        "{v}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    cluster.start_server();
    ids.extend((half..RESTART_JOBS).map(|i| enqueue_patiently(port, &token, i).0));

    // The caller cannot tell which enqueues landed before the crash and
    // sends them all again.
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            enqueue_patiently(port, &token, i),
            (id.clone(), true),
            "job {i}"
        );
    }
    every_job_ran_once(port, &token, &ids);
}

/// A workflow run whose node dies mid-step is resumed by another node from
/// the last finished step: the steps that finished are not run again, the
/// one that was running starts over, and the run succeeds once.
#[test]
fn a_killed_node_s_workflow_resumes_elsewhere_from_its_last_finished_step() {
    let dir = temp_dir("nodes-workflow");
    let d = dir.path();
    let token = owner_token(d, &[]);
    let port = free_port();
    // The serving node only answers the API; workers run the workflow.
    let _serve = spawn(
        d,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &[("CITADEL_WORKER_CONCURRENCY", "0")],
    );
    let mut first = spawn(d, &["worker"], &[]);
    wait_for("the API", 30, || {
        common::request(port, "GET", "/health", None, None).0 == 200
    });
    for (name, ms) in [("quick", 10), ("slow", 3000)] {
        let source = format!("await api.sleep({ms});\nreturn input;");
        let body = json!({"name": name, "source": source, "capabilities": {"sleep": true}});
        let (status, v) = request(port, "POST", "/v1/scripts", &token, Some(&body));
        assert_eq!(status, 201, "{v}");
    }
    let yaml = "name: relay\nversion: 1\nsteps:\n\
        \x20 - { id: one, type: script, script: quick, input: 1 }\n\
        \x20 - { id: two, type: script, script: slow, input: 2, depends_on: [one] }\n\
        \x20 - { id: three, type: script, script: quick, input: 3, depends_on: [two] }\n\
        outputs:\n  sum: \"{{ steps.one.output + steps.two.output + steps.three.output }}\"\n";
    let body = json!({"name": "relay", "source": yaml});
    let (status, v) = request(port, "POST", "/v1/workflows", &token, Some(&body));
    assert_eq!(status, 201, "{v}");
    let (status, v) = request(
        port,
        "POST",
        "/v1/workflows/relay/run",
        &token,
        Some(&json!({})),
    );
    assert_eq!(status, 202, "{v}");
    let id = v["run_id"].as_str().unwrap().to_owned();
    let steps = || {
        let (status, steps) = request(port, "GET", &format!("/v1/runs/{id}/steps"), &token, None);
        assert_eq!(status, 200, "{steps}");
        steps
    };
    wait_for("step two to run", 60, || {
        let s = steps();
        s[0]["status"] == "succeeded" && s[1]["status"] == "running"
    });
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let _second = spawn(d, &["worker"], &[]);
    wait_for("the run to succeed elsewhere", 120, || {
        let (_, run) = request(port, "GET", &format!("/v1/runs/{id}"), &token, None);
        run["status"] == "succeeded"
    });
    let (_, run) = request(port, "GET", &format!("/v1/runs/{id}"), &token, None);
    assert_eq!(run["result"], json!({ "sum": 6 }), "{run}");
    let logs = run["logs"].to_string();
    assert!(logs.contains("workflow relay 1 resumed"), "{logs}");
    let attempts: Vec<(String, i64)> = steps()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("one".to_owned(), 1),
            ("two".to_owned(), 2),
            ("three".to_owned(), 1)
        ]
    );
    // Step one ran once: one run of `quick` for it, one for step three.
    let (_, quick) = request(port, "GET", "/v1/runs?script=quick", &token, None);
    assert_eq!(quick.as_array().unwrap().len(), 2, "{quick}");
}
