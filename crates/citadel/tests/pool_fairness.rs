//! Host allocation between tenants, with real jailed hosts: hosts are
//! tenant-exclusive and started on demand, no tenant holds more than its
//! cap, waiting tenants are served in turn, and the watchdog ends only the
//! run that overran its limits. Every check is structural (who holds what,
//! who finished), never a measured duration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{
    EchoGateway, Fault, Gateway, GatewayFuture, Pool, PoolConfig, PoolRun, PoolStatus,
};
use citadel_sandbox::{CancelToken, Capability, ErrorKind, Grants, HostCall, Limits, RunStatus};
use serde_json::json;

fn config() -> PoolConfig {
    PoolConfig {
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
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        grants: Grants::NONE.with(Capability::Sleep).with(Capability::Echo),
        cancel: None,
        version_key: None,
        fault: None,
    }
}

/// A run that sleeps until cancelled, started in the background.
fn sleeper(
    pool: &Pool,
    tenant: &str,
    cancel: &CancelToken,
) -> tokio::task::JoinHandle<citadel_sandbox::RunOutcome> {
    let mut j = job(tenant, "await api.sleep(50000); return 'slept'");
    j.cancel = Some(cancel.clone());
    let pool = pool.clone();
    tokio::spawn(async move { pool.run(j, Arc::new(EchoGateway)).await })
}

/// Waits (bounded) until the pool's status satisfies `what`.
async fn until(pool: &Pool, what: impl Fn(&PoolStatus) -> bool) -> PoolStatus {
    for _ in 0..600 {
        let status = pool.status();
        if what(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the pool never got there: {:?}", pool.status());
}

async fn trivial(pool: &Pool, tenant: &str) -> citadel_sandbox::RunOutcome {
    let mut j = job(tenant, "return 'quick'");
    // Much shorter than the sleepers: it must not wait for them.
    j.limits.timeout = Duration::from_secs(10);
    pool.run(j, Arc::new(EchoGateway)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_is_capped_and_a_quiet_tenant_runs_meanwhile() {
    let pool = Pool::start(PoolConfig {
        size: 2,
        max_hosts: 4,
        max_hosts_per_tenant: 2,
        runs_per_host_at_once: 2,
        ..config()
    })
    .unwrap();
    let cancel = CancelToken::new();
    let flood: Vec<_> = (0..10).map(|_| sleeper(&pool, "a", &cancel)).collect();
    // Tenant a holds its two hosts, two runs each; the rest of its runs wait.
    let status = until(&pool, |s| s.runs_in_flight == 4 && s.runs_waiting == 6).await;
    assert_eq!(status.busy_hosts, 2, "{status:?}");
    // Tenant b's trivial run gets a host of its own while a's still sleep.
    let out = trivial(&pool, "b").await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.result_value(), json!("quick"));
    let status = pool.status();
    assert_eq!(
        (status.runs_in_flight, status.runs_waiting),
        (4, 6),
        "a's runs were still sleeping and waiting: {status:?}"
    );
    assert!(status.hosts <= 4, "{status:?}");
    cancel.cancel();
    for run in flood {
        assert_eq!(run.await.unwrap().status, RunStatus::Cancelled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_one_sleeping_run_each_do_not_block_a_third() {
    let pool = Pool::start(PoolConfig {
        size: 2,
        ..config()
    })
    .unwrap();
    let cancel = CancelToken::new();
    let a = sleeper(&pool, "a", &cancel);
    let b = sleeper(&pool, "b", &cancel);
    until(&pool, |s| s.busy_hosts == 2 && s.runs_in_flight == 2).await;
    let out = trivial(&pool, "c").await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    let status = pool.status();
    assert_eq!(status.runs_in_flight, 2, "{status:?}");
    assert_eq!(
        status.hosts_started, 3,
        "a third host was started: {status:?}"
    );
    cancel.cancel();
    assert_eq!(a.await.unwrap().status, RunStatus::Cancelled);
    assert_eq!(b.await.unwrap().status, RunStatus::Cancelled);
}

/// Records the order in which runs reach the gateway.
#[derive(Default)]
struct Order(Mutex<Vec<String>>);

impl Gateway for Order {
    fn call(&self, call: HostCall) -> GatewayFuture {
        if let HostCall::Echo { value } = &call {
            self.0
                .lock()
                .unwrap()
                .push(value.as_str().unwrap_or("?").to_owned());
        }
        EchoGateway.call(call)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_waiting_for_a_host_are_served_in_turn() {
    // One host for everybody, one run at a time: the order in which waiting
    // runs get it is the admission order.
    let pool = Pool::start(PoolConfig {
        size: 1,
        max_hosts: 1,
        max_hosts_per_tenant: 1,
        runs_per_host_at_once: 1,
        ..config()
    })
    .unwrap();
    let cancel = CancelToken::new();
    let holder = sleeper(&pool, "x", &cancel);
    until(&pool, |s| s.runs_in_flight == 1).await;
    let order = Arc::new(Order::default());
    let mut waiting = Vec::new();
    for (tenant, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)] {
        let tag = format!("{tenant}{n}");
        let j = job(tenant, &format!("return await api.echo('{tag}')"));
        let gateway = Arc::clone(&order) as Arc<dyn Gateway>;
        waiting.push(tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(j, gateway).await }
        }));
        // Queued in this order.
        let queued = waiting.len();
        until(&pool, |s| s.runs_waiting == queued).await;
    }
    cancel.cancel();
    assert_eq!(holder.await.unwrap().status, RunStatus::Cancelled);
    for run in waiting {
        let out = run.await.unwrap();
        assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    }
    // Round-robin between tenants, first come first served within each.
    assert_eq!(*order.0.lock().unwrap(), ["a1", "b1", "a2", "b2", "a3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_ends_only_the_run_that_overran_its_limits() {
    let pool = Pool::start(PoolConfig {
        size: 1,
        isolate_threads_per_host: 2,
        ..config()
    })
    .unwrap();
    // A well-behaved run of the tenant, awaiting on one isolate thread.
    let mut calm = job("t", "await api.sleep(1500); return 'calm'");
    calm.limits.timeout = Duration::from_secs(30);
    let calm = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(calm, Arc::new(EchoGateway)).await }
    });
    until(&pool, |s| s.runs_in_flight == 1).await;
    // Its noisy neighbour blocks the other thread in an operation the
    // interrupt handler cannot stop.
    let mut noisy = job("t", "return 1");
    noisy.fault = Some(Fault::Block);
    noisy.limits.timeout = Duration::from_millis(300);
    let out = pool.run(noisy, Arc::new(EchoGateway)).await;
    // It reports the limit it broke (`citadel run` exits 3 for it).
    assert_eq!(out.status, RunStatus::TimedOut, "{:?}", out.error);
    assert_eq!(out.error_kind(), Some(ErrorKind::Timeout));
    let calm = calm.await.unwrap();
    assert_eq!(calm.status, RunStatus::Succeeded, "{:?}", calm.error);
    assert_eq!(calm.result_value(), json!("calm"));
    let status = pool.status();
    assert_eq!(status.watchdog_kills, 1, "{status:?}");
    assert_eq!(status.hosts_failed, 0, "{status:?}");
    // The stuck host is gone once its other runs are done; runs go on.
    let out = trivial(&pool, "t").await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    until(&pool, |s| s.hosts == 1).await;
}

/// `echo`, counting the calls it served.
#[derive(Default)]
struct CountingEcho(std::sync::atomic::AtomicUsize);

impl Gateway for CountingEcho {
    fn call(&self, call: HostCall) -> GatewayFuture {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        EchoGateway.call(call)
    }
}

/// A calm run and a run blocking the same (only) isolate thread, sent once
/// the calm run has made `calls` capability calls (so whether it had an
/// effect outside its host is decided by the test, not by timing); returns
/// the blocking run's outcome and the calm one's.
async fn stuck_thread(
    calm_source: &str,
    calls: usize,
) -> (citadel_sandbox::RunOutcome, citadel_sandbox::RunOutcome) {
    let pool = Pool::start(PoolConfig {
        size: 1,
        isolate_threads_per_host: 1,
        ..config()
    })
    .unwrap();
    let mut calm = job("t", calm_source);
    calm.limits.timeout = Duration::from_secs(30);
    let gateway = Arc::new(CountingEcho::default());
    let calm = tokio::spawn({
        let (pool, gateway) = (pool.clone(), Arc::clone(&gateway));
        async move { pool.run(calm, gateway).await }
    });
    until(&pool, |s| s.runs_in_flight == 1).await;
    for _ in 0..600 {
        if gateway.0.load(std::sync::atomic::Ordering::SeqCst) >= calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gateway.0.load(std::sync::atomic::Ordering::SeqCst), calls);
    let mut noisy = job("t", "return 1");
    noisy.fault = Some(Fault::Block);
    noisy.limits.timeout = Duration::from_millis(300);
    let noisy = pool.run(noisy, Arc::new(EchoGateway)).await;
    let calm = calm.await.unwrap();
    let out = trivial(&pool, "t").await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    (noisy, calm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sharing_a_stuck_thread_without_effects_yet_is_run_again_elsewhere() {
    let (noisy, calm) = stuck_thread("await api.sleep(1500); return 'calm'", 0).await;
    assert_eq!(
        noisy.error_kind(),
        Some(ErrorKind::Timeout),
        "{:?}",
        noisy.error
    );
    assert_eq!(calm.status, RunStatus::Succeeded, "{:?}", calm.error);
    assert_eq!(calm.result_value(), json!("calm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sharing_a_stuck_thread_after_a_capability_call_fails_and_says_why() {
    // It already made a call: running it again could repeat the call.
    let (noisy, calm) =
        stuck_thread("await api.echo(1); await api.sleep(1500); return 'calm'", 1).await;
    assert_eq!(
        noisy.error_kind(),
        Some(ErrorKind::Timeout),
        "{:?}",
        noisy.error
    );
    assert_eq!(calm.error_kind(), Some(ErrorKind::SandboxCrashed));
    assert!(
        calm.error.unwrap().message.contains("same isolate thread"),
        "the message says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_waited_for_a_host_gets_the_rest_of_its_timeout_and_reports_it() {
    let pool = Pool::start(PoolConfig {
        size: 1,
        max_hosts: 1,
        max_hosts_per_tenant: 1,
        runs_per_host_at_once: 1,
        ..config()
    })
    .unwrap();
    let cancel = CancelToken::new();
    let holder = sleeper(&pool, "x", &cancel);
    until(&pool, |s| s.runs_in_flight == 1).await;
    let mut late = job("t", "await api.sleep(20000); return 1");
    late.limits.timeout = Duration::from_millis(1500);
    let late = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(late, Arc::new(EchoGateway)).await }
    });
    until(&pool, |s| s.runs_waiting == 1).await;
    // Most of its time goes by waiting.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cancel.cancel();
    assert_eq!(holder.await.unwrap().status, RunStatus::Cancelled);
    // The host ends it at its own deadline: a timeout, not a watchdog kill.
    let out = late.await.unwrap();
    assert_eq!(
        out.error_kind(),
        Some(ErrorKind::Timeout),
        "{:?}",
        out.error
    );
    assert_eq!(pool.status().watchdog_kills, 0);
    assert_eq!(pool.status().hosts_failed, 0);
}
