//! Warm version contexts in real jailed hosts: a version's runs on a host
//! thread share one, other versions and tenants never do, and a host
//! handed to another tenant keeps none of the one before.

use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{Grants, Isolation, Limits, RunStatus};
use serde_json::{Value, json};

/// One host, so every run below lands on it (and, run one at a time, on
/// its first isolate thread).
fn config() -> PoolConfig {
    PoolConfig {
        size: 1,
        max_hosts: 1,
        max_hosts_per_tenant: 1,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        ..PoolConfig::new().unwrap()
    }
}

const COUNTER: &str = "globalThis.n = (globalThis.n ?? 0) + 1; return globalThis.n;";

async fn count(pool: &Pool, tenant: &str, version: Option<&str>, isolation: Isolation) -> Value {
    let run = PoolRun {
        tenant: tenant.into(),
        source: COUNTER.into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            isolation,
            ..Limits::default()
        },
        grants: Grants::NONE,
        cancel: None,
        version_key: version.map(str::to_owned),
        fault: None,
    };
    let out = pool.run(run, Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    out.result_value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_contexts_are_per_version_and_per_tenant() {
    let pool = Pool::start(config()).unwrap();
    let warm = Isolation::Version;
    for want in 1..=3 {
        assert_eq!(count(&pool, "t", Some("s@1"), warm).await, json!(want));
    }
    assert_eq!(count(&pool, "t", Some("s@2"), warm).await, json!(1));
    // Without the opt-in, or without a version, every run is fresh.
    assert_eq!(
        count(&pool, "t", Some("s@1"), Isolation::Run).await,
        json!(1)
    );
    assert_eq!(count(&pool, "t", None, warm).await, json!(1));
    assert_eq!(count(&pool, "t", Some("s@1"), warm).await, json!(4));
    // The host goes to another tenant: the same version key is not theirs,
    // and the first tenant's contexts are gone when it comes back.
    assert_eq!(count(&pool, "u", Some("s@1"), warm).await, json!(1));
    assert_eq!(count(&pool, "u", Some("s@1"), warm).await, json!(2));
    assert_eq!(count(&pool, "t", Some("s@1"), warm).await, json!(1));
    pool.shutdown();
}
