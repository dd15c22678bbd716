//! Recycling sandbox hosts thousands of times leaks nothing in the
//! supervisor: its open descriptors, child processes and cgroup directories
//! come back to where they were. (Alone in its test binary, so no other test
//! opens descriptors or starts processes meanwhile.)

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{ErrorKind, Grants, Limits, RunStatus};
use serde_json::json;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Children of every thread of this process (the jails' outer processes),
/// zombies included.
fn child_processes() -> Vec<u32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            children.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children
}

/// This process's jail cgroups (named `jail-PID-N`), in every hierarchy.
fn cgroup_dirs() -> usize {
    let prefix = format!("jail-{}-", std::process::id());
    let mut count = 0;
    for parent in [
        "/sys/fs/cgroup/citadel",
        "/sys/fs/cgroup/memory/citadel",
        "/sys/fs/cgroup/pids/citadel",
        "/sys/fs/cgroup/cpu/citadel",
    ] {
        if let Ok(entries) = std::fs::read_dir(Path::new(parent)) {
            count += entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count();
        }
    }
    count
}

fn job(source: &str) -> PoolRun {
    PoolRun {
        tenant: "t".into(),
        source: source.into(),
        language: Language::Js,
        input_json: r#"{"n": 21}"#.into(),
        limits: Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        grants: Grants::NONE,
        cancel: None,
        version_key: None,
        fault: None,
    }
}

/// Waits (bounded) for the supervisor's resources to come back to `baseline`.
async fn settle(baseline: (usize, usize, usize)) -> (usize, usize, usize) {
    let mut now = (0, 0, 0);
    for _ in 0..200 {
        now = (open_descriptors(), child_processes().len(), cgroup_dirs());
        if now == baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    now
}

const RECYCLES: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_recycled_hosts_leak_nothing() {
    let pool = Pool::start(PoolConfig {
        program: env!("CARGO_BIN_EXE_citadel").into(),
        size: 3,
        runs_per_host: 1,
        isolate_threads_per_host: 1,
        allow_faults: true,
        // Hosts started on demand above `size` go as soon as they idle.
        idle_timeout: Duration::ZERO,
        ..PoolConfig::new().unwrap()
    })
    .unwrap();
    let hello = |tenant: &'static str| {
        let pool = pool.clone();
        async move {
            let mut run = job("return input.n * 2");
            run.tenant = tenant.into();
            let out = pool.run(run, Arc::new(EchoGateway)).await;
            assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
            assert_eq!(out.result_value(), json!(42));
        }
    };
    // A run whose host aborts under it: the failure path of a recycle.
    let crash = |tenant: &'static str| {
        let pool = pool.clone();
        async move {
            let mut run = job("return 1");
            run.tenant = tenant.into();
            run.fault = Some(citadel_pool::Fault::Abort);
            let out = pool.run(run, Arc::new(EchoGateway)).await;
            assert_eq!(
                out.error_kind(),
                Some(ErrorKind::SandboxCrashed),
                "{:?}",
                out.error
            );
        }
    };
    // Warm up: the first hosts are started and the runtime's own descriptors
    // (its signal pipe for child exits) exist before the baseline is taken.
    hello("a").await;
    let baseline = settle((usize::MAX, 0, 0)).await;
    let (fds, children, cgroups) = baseline;
    println!("baseline: {fds} descriptors, {children} children, {cgroups} cgroups");
    // Several runs of two tenants at a time, so runs arrive at hosts being
    // recycled and replacements overlap.
    while pool.status().hosts_recycled < RECYCLES as u64 {
        tokio::join!(
            hello("a"),
            hello("a"),
            hello("a"),
            hello("b"),
            hello("b"),
            hello("b"),
            crash("c"),
        );
    }
    let status = pool.status();
    assert_eq!(status.hosts, 3, "{status:?}");
    let after = settle(baseline).await;
    assert_eq!(
        after,
        baseline,
        "descriptors, child processes and cgroup directories after {RECYCLES} recycles (children: {:?})",
        child_processes()
    );
}
