//! The pool of jailed sandbox hosts, with real processes: crashes, hangs and
//! protocol garbage fail only the runs inside the failed host, and the next
//! runs succeed.

use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Fault, Gateway, GatewayFuture, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{
    CancelToken, Capability, ErrorKind, Grants, HostCall, Limits, LogLine, RunStatus,
};
use serde_json::json;

fn config(size: usize) -> PoolConfig {
    PoolConfig {
        size,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        allow_faults: true,
        hang_grace: Duration::from_millis(500),
        ..PoolConfig::new().unwrap()
    }
}

fn job(tenant: &str, source: &str) -> PoolRun {
    PoolRun {
        tenant: tenant.into(),
        source: source.into(),
        language: Language::Js,
        input_json: r#"{"n": 21}"#.into(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        grants: Grants::NONE.with(Capability::Sleep).with(Capability::Echo),
        cancel: None,
        version_key: None,
        fault: None,
    }
}

async fn hello(pool: &Pool) {
    let out = pool
        .run(job("t", "return input.n * 2"), Arc::new(EchoGateway))
        .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.result_value(), json!(42));
}

/// The pid of the real host: the child of the jail's outer process.
fn inner_pid(outer: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_capability_calls_go_through_the_supervisor() {
    let pool = Pool::start(config(1)).unwrap();
    hello(&pool).await;
    let src = "await api.sleep(5); return await api.echo({back: input.n})";
    let out = pool.run(job("t", src), Arc::new(EchoGateway)).await;
    assert_eq!(out.result_value(), json!({"back": 21}), "{:?}", out.error);
    // A capability the run was not granted never reaches the gateway.
    let mut no_echo = job("t", "return await api.echo(1)");
    no_echo.grants = Grants::NONE;
    let out = pool.run(no_echo, Arc::new(EchoGateway)).await;
    assert_eq!(out.error_kind(), Some(ErrorKind::CapabilityDenied));
    // Limits hold in the host as in process.
    let out = pool
        .run(job("t", "for (;;) {}"), Arc::new(EchoGateway))
        .await;
    assert_eq!(out.status, RunStatus::TimedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_run_jailed_under_their_own_seccomp_filter() {
    let pool = Pool::start(config(1)).unwrap();
    hello(&pool).await;
    let iso = pool.isolation().clone();
    let outer = pool.host_pids()[0];
    let host = if iso.pid_ns {
        inner_pid(outer).expect("the host runs below its jail")
    } else {
        outer
    };
    let status = std::fs::read_to_string(format!("/proc/{host}/status")).unwrap();
    println!("isolation: {}", iso.summary());
    if iso.seccomp {
        // The jail's filter plus the host's own, tighter one.
        assert!(status.contains("Seccomp:\t2"), "{status}");
        let filters: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp_filters:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(filters >= 2, "{status}");
    }
    if iso.root {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.contains("65534")),
            "{status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_run_fails_only_its_runs() {
    let pool = Pool::start(config(1)).unwrap();
    hello(&pool).await;
    let outer = pool.host_pids()[0];
    let victim = inner_pid(outer).unwrap_or(outer);
    let running = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.run(
                job("t", "await api.sleep(3000); return 1"),
                Arc::new(EchoGateway),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SAFETY: plain system call on a process this test started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let out = running.await.unwrap();
    assert_eq!(
        out.error_kind(),
        Some(ErrorKind::SandboxCrashed),
        "{:?}",
        out.error
    );
    assert!(out.duration < Duration::from_secs(2));
    hello(&pool).await;
    let status = pool.status();
    assert_eq!(status.hosts, 1);
    assert_eq!(status.hosts_failed, 1);
    assert_eq!(status.hosts_started, 2);
}

async fn fault(pool: &Pool, fault: Fault) -> citadel_sandbox::RunOutcome {
    let mut j = job("t", "return 1");
    j.fault = Some(fault);
    j.limits.timeout = Duration::from_millis(300);
    pool.run(j, Arc::new(EchoGateway)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_host_is_killed_and_replaced() {
    let pool = Pool::start(config(1)).unwrap();
    let out = fault(&pool, Fault::Hang).await;
    assert_eq!(out.error_kind(), Some(ErrorKind::SandboxCrashed));
    assert!(out.error.unwrap().message.contains("stopped responding"));
    hello(&pool).await;
    assert_eq!(pool.status().hosts_failed, 1);
    // The watchdog did it, and /metrics shows it (citadel_watchdog_kills_total).
    assert_eq!(pool.status().watchdog_kills, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_writing_garbage_is_killed_and_replaced() {
    let pool = Pool::start(config(1)).unwrap();
    let out = fault(&pool, Fault::Garbage).await;
    assert_eq!(out.error_kind(), Some(ErrorKind::SandboxCrashed));
    assert!(out.error.unwrap().message.contains("broke the protocol"));
    hello(&pool).await;
    assert_eq!(pool.status().hosts_failed, 1);
    assert_eq!(pool.status().watchdog_kills, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborting_host_is_replaced() {
    let pool = Pool::start(config(1)).unwrap();
    let out = fault(&pool, Fault::Abort).await;
    assert_eq!(out.error_kind(), Some(ErrorKind::SandboxCrashed));
    hello(&pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_share_a_host_at_once() {
    let pool = Pool::start(config(2)).unwrap();
    let sleeper = |tenant: &str| {
        let pool = pool.clone();
        let j = job(tenant, "await api.sleep(600); return 1");
        tokio::spawn(async move { pool.run(j, Arc::new(EchoGateway)).await })
    };
    let a1 = sleeper("a");
    let a2 = sleeper("a");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        pool.status().busy_hosts,
        1,
        "one tenant's runs share its host"
    );
    let b = sleeper("b");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        pool.status().busy_hosts,
        2,
        "another tenant gets another host"
    );
    // A third tenant gets a host of its own, started on demand.
    let c = sleeper("c");
    for h in [a1, a2, b, c] {
        let out = h.await.unwrap();
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_cpu_bound_runs_overlap_on_a_hosts_threads() {
    let pool = Pool::start(PoolConfig {
        isolate_threads_per_host: 2,
        ..config(2)
    })
    .unwrap();
    // Each run spins for 400 ms without awaiting anything, so runs sharing
    // one isolate thread could only run one after the other. Each reports
    // when it spun, by the host's clock.
    let src = "const start = Date.now(); \
               while (Date.now() - start < 400) {} \
               return {start, end: Date.now()};";
    let spinner = || {
        let pool = pool.clone();
        let j = job("t", src);
        tokio::spawn(async move { pool.run(j, Arc::new(EchoGateway)).await })
    };
    let (a, b) = (spinner(), spinner());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let status = pool.status();
    assert_eq!(status.busy_hosts, 1, "one tenant's runs share its host");
    assert_eq!(status.runs_in_flight, 2);
    let span = |out: citadel_sandbox::RunOutcome| {
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
        let v = out.result_value();
        (v["start"].as_i64().unwrap(), v["end"].as_i64().unwrap())
    };
    let (a, b) = (span(a.await.unwrap()), span(b.await.unwrap()));
    // Both spans lie on one host's clock; they intersect only if the two
    // runs were on the CPU, on different threads, during the same interval.
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "the runs did not overlap: {a:?} and {b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_recycled_after_their_share_of_runs() {
    let pool = Pool::start(PoolConfig {
        runs_per_host: 3,
        ..config(1)
    })
    .unwrap();
    for _ in 0..7 {
        hello(&pool).await;
    }
    let status = pool.status();
    assert_eq!(status.hosts_recycled, 2);
    assert_eq!(status.hosts_failed, 0);
    assert_eq!(status.hosts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_reaches_the_host() {
    let pool = Pool::start(config(1)).unwrap();
    let cancel = CancelToken::new();
    let mut j = job("t", "await api.sleep(10000); return 1");
    j.cancel = Some(cancel.clone());
    let run = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(j, Arc::new(EchoGateway)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let out = run.await.unwrap();
    assert_eq!(out.status, RunStatus::Cancelled);
    hello(&pool).await;
}

/// Echoes, and keeps the log lines delivered while the run is in flight.
#[derive(Default)]
struct LogGateway(std::sync::Mutex<Vec<Vec<String>>>);

impl Gateway for LogGateway {
    fn call(&self, call: HostCall) -> GatewayFuture {
        EchoGateway.call(call)
    }

    fn logs(&self, lines: Vec<LogLine>) {
        let batch = lines.into_iter().map(|l| l.message).collect();
        self.0.lock().unwrap().push(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_reach_the_gateway_while_the_run_awaits() {
    let pool = Pool::start(config(1)).unwrap();
    let gateway = Arc::new(LogGateway::default());
    let src = "console.log('a'); console.log('b'); await api.sleep(5);\n\
               console.log('c'); await api.echo(1);\n\
               console.log('d'); return 1;";
    let out = pool
        .run(job("t", src), Arc::clone(&gateway) as Arc<dyn Gateway>)
        .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    // Lines logged before each await, in batches; the last one only with
    // the outcome.
    assert_eq!(
        *gateway.0.lock().unwrap(),
        vec![vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
    );
    let all: Vec<&str> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(all, ["a", "b", "c", "d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recycled_host_that_dies_while_draining_is_not_replaced_twice() {
    let pool = Pool::start(PoolConfig {
        runs_per_host: 2,
        ..config(1)
    })
    .unwrap();
    let old = pool.host_pids()[0];
    hello(&pool).await;
    // A sleeping run, then a quick one: the host has served its share and
    // drains (its replacement starts) while the sleeper is still in it.
    let sleeping = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.run(
                job("t", "await api.sleep(3000); return 1"),
                Arc::new(EchoGateway),
            )
            .await
        }
    });
    while pool.status().runs_in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hello(&pool).await;
    assert_eq!(pool.status().hosts_recycled, 1);
    // The draining host dies.
    // SAFETY: plain system call on a process this test started.
    unsafe { libc::kill(inner_pid(old).unwrap_or(old) as i32, libc::SIGKILL) };
    let out = sleeping.await.unwrap();
    assert_eq!(out.error_kind(), Some(ErrorKind::SandboxCrashed));
    hello(&pool).await;
    let status = pool.status();
    // One replacement for one host: the pool did not grow.
    assert_eq!((status.hosts, status.hosts_started), (1, 2), "{status:?}");
}
