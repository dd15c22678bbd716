//! Error codes as they come out of a jailed sandbox host: unserved
//! capabilities, and every limit with its own code (and `citadel run` exit 3).

use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{Capability, ErrorKind, Grants, Limits, RunStatus};
use serde_json::json;

fn config() -> PoolConfig {
    PoolConfig {
        size: 1,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        ..PoolConfig::new().unwrap()
    }
}

fn job(source: &str, grants: Grants) -> PoolRun {
    PoolRun {
        tenant: "t".into(),
        source: source.into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        grants,
        cancel: None,
        fault: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_capabilities_fail_as_unavailable_in_a_jailed_host() {
    let pool = Pool::start(config()).unwrap();
    let grants = Grants::NONE.with(Capability::Kv).with(Capability::Http);
    let caught = "try { await api.kv.get('k'); } catch (e) { return [e.name, e.code]; }";
    let out = pool.run(job(caught, grants), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.result_value(), json!(["Unavailable", "unavailable"]));

    let uncaught = "return await api.http.fetch('https://example.com/')";
    let out = pool.run(job(uncaught, grants), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(
        out.error_kind(),
        Some(ErrorKind::Unavailable),
        "{:?}",
        out.error
    );
    pool.shutdown();
}
