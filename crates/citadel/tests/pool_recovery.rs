//! A sandbox host that cannot be started is retried with backoff and shows
//! in the pool's status (which `/ready` and `/metrics` report), and the pool
//! recovers by itself once starts work again: never a silent halt.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun, PoolStatus};
use citadel_sandbox::{Grants, Limits, RunStatus};
use serde_json::json;

fn job() -> PoolRun {
    PoolRun {
        tenant: "t".into(),
        source: "return 42".into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        grants: Grants::NONE,
        cancel: None,
        version_key: None,
        fault: None,
    }
}

async fn until(pool: &Pool, what: impl Fn(&PoolStatus) -> bool) -> PoolStatus {
    for _ in 0..800 {
        let status = pool.status();
        if what(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the pool never got there: {:?}", pool.status());
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_host_starts_are_retried_reported_and_recovered_from() {
    // A copy of the executable whose execute permission the test takes away.
    let dir = citadel_testkit::temp_dir("recovery");
    let program = dir.path().join("citadel");
    std::fs::copy(env!("CARGO_BIN_EXE_citadel"), &program).unwrap();
    set_mode(dir.path(), 0o755);
    set_mode(&program, 0o755);
    let pool = Pool::start(PoolConfig {
        program: program.clone(),
        size: 1,
        runs_per_host: 1,
        ..PoolConfig::new().unwrap()
    })
    .unwrap();
    set_mode(&program, 0o644);
    // The host that exists serves the run, then is recycled; its
    // replacement cannot start.
    let out = pool.run(job(), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    let status = until(&pool, |s| s.live_hosts == 0 && s.host_start_failures >= 1).await;
    let why = status
        .unavailable()
        .expect("the pool says it cannot take runs");
    assert!(
        why.contains("none can be started") && why.contains("Permission denied"),
        "{why}"
    );
    assert!(status.start_error.is_some(), "{status:?}");
    // A run now waits for a host, and the pool keeps trying.
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(job(), Arc::new(EchoGateway)).await }
    });
    let failures = status.host_start_failures;
    until(&pool, |s| {
        s.runs_waiting == 1 && s.host_start_failures > failures
    })
    .await;
    // Starts work again: the waiting run is served and the pool is healthy.
    set_mode(&program, 0o755);
    let out = waiting.await.unwrap();
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.result_value(), json!(42));
    let status = until(&pool, |s| s.live_hosts == 1).await;
    assert_eq!(status.start_error, None, "{status:?}");
    assert_eq!(status.unavailable(), None);
    pool.shutdown();
}
