//! A real `citadel serve` whose wall clock jumps (libfaketime, changed while
//! the process runs): a clock going back an hour fires nothing until it is
//! past the next occurrence again, and a clock going forward two hours does
//! not back-fill the thousands of occurrences it skipped. The sandbox hosts
//! start with a clean environment, so only the server's clock is faked.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use citadel_testkit::{free_port, temp_dir};
use common::{Proc, owner_token, wait_for};

const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The occurrences (ms) the schedule has enqueued, oldest first.
fn occurrences(port: u16, token: &str) -> Vec<i64> {
    let (status, jobs) = common::request(port, "GET", "/v1/jobs?limit=1000", Some(token), None);
    assert_eq!(status, 200, "{jobs}");
    let mut at: Vec<i64> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| {
            j["idempotency_key"]
                .as_str()?
                .strip_prefix("schedule:")?
                .rsplit_once(':')
        })
        .map(|(_, ms)| ms.parse().unwrap())
        .collect();
    at.sort_unstable();
    at
}

#[test]
fn schedules_survive_clock_jumps() {
    if !Path::new(FAKETIME).exists() {
        citadel_testkit::skip("libfaketime is not installed (apt-get install faketime)");
        return;
    }
    let dir = temp_dir("clock");
    let d = dir.path();
    let token = owner_token(d, &[]);
    let clock = d.join("clock");
    std::fs::write(&clock, "+0\n").unwrap();
    let port = free_port();
    let _serve = Proc(
        Command::new(env!("CARGO_BIN_EXE_citadel"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(d)
            .env("CITADEL_SANDBOX_HOSTS", "1")
            .env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", &clock)
            .env("FAKETIME_NO_CACHE", "1")
            // Timers and caches keep real (monotonic) time; only the wall
            // clock jumps.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let call = |method: &str, path: &str, body: Option<&Value>| {
        common::request(port, method, path, Some(&token), body)
    };
    wait_for("the server", 30, || call("GET", "/v1/runs", None).0 == 200);
    let (status, v) = call(
        "POST",
        "/v1/scripts",
        Some(&json!({"name": "tick", "source": "return 1;"})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = call(
        "PUT",
        "/v1/schedules/every-second",
        Some(&json!({"script": "tick", "cron": "* * * * * *"})),
    );
    assert_eq!(status, 201, "{v}");
    wait_for("three occurrences", 30, || {
        occurrences(port, &token).len() >= 3
    });

    // Back an hour: the next occurrence is an hour away now.
    std::fs::write(&clock, "-3600\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let before = occurrences(port, &token);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        occurrences(port, &token),
        before,
        "fired while the clock was back"
    );

    // Forward two hours (from real time): firing resumes at the new time,
    // with nothing back-filled for the 7,200 seconds in between.
    std::fs::write(&clock, "+7200\n").unwrap();
    let jumped = Instant::now();
    wait_for("firing to resume", 30, || {
        occurrences(port, &token).len() > before.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    let after = occurrences(port, &token);
    let new = &after[before.len()..];
    let last_before = *before.last().unwrap();
    assert!(
        new.iter().all(|&at| at >= last_before + 7_000_000),
        "back-filled occurrences: {new:?} after {last_before}"
    );
    let elapsed = jumped.elapsed().as_secs() as usize;
    assert!(
        !new.is_empty() && new.len() <= elapsed + 2,
        "{} occurrences in {elapsed} s after the jump: {new:?}",
        new.len()
    );
    assert!(new.windows(2).all(|w| w[1] - w[0] >= 1_000), "{new:?}");
}
