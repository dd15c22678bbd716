//! A synchronous run whose caller goes away while it runs in a jailed
//! sandbox host gives the host back: the pool frees a run's place in a host
//! only from inside its own run future, so the engine must not drop that
//! future with the caller's.

use std::sync::Arc;
use std::time::Duration;

use citadel_domain::RunStatus;
use citadel_engine::{Engine, Executor, LiveScript, RunSpec};
use citadel_pool::{Pool, PoolConfig};
use citadel_testkit::{NAP, Scripted, run_spec};

fn spec(tenant: &str, live: &Arc<LiveScript>, input: &str, id: &str) -> RunSpec {
    RunSpec {
        timeout_ms: Some(30_000),
        run_id: Some(id.into()),
        ..run_spec(tenant, live, input)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_gives_its_place_in_the_host_back() {
    let Scripted { db, tenant, live } = Scripted::new(&NAP).await;
    let store = &db.store;
    // One host that takes one run at a time: a place never given back
    // blocks every later run.
    let pool = Pool::start(PoolConfig {
        size: 1,
        max_hosts: 1,
        max_hosts_per_tenant: 1,
        runs_per_host_at_once: 1,
        isolate_threads_per_host: 1,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        ..PoolConfig::new().unwrap()
    })
    .unwrap();
    let engine = Engine::start(
        Arc::clone(store),
        Executor::Pool(pool.clone()),
        citadel_testkit::without_worker(),
    );

    let first = engine.run_sync(spec(&tenant, &live, r#"{"sleep":60000}"#, "run_dropped"));
    let in_flight = async {
        while engine.in_flight_run(&tenant, "run_dropped").is_none()
            || pool.status().runs_in_flight == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        done = first => panic!("the sleeping run ended first: {done:?}"),
        () = in_flight => {}
    }

    // The next run gets the host (the dropped one was cancelled in it)
    // well before its own timeout.
    let second = engine
        .run_sync(spec(&tenant, &live, r#"{"n":2}"#, "run_next"))
        .await
        .expect("admitted");
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    assert_eq!(second.result.as_deref(), Some(r#"{"n":2}"#));
    let dropped = store.run(&tenant, "run_dropped").await.unwrap().unwrap();
    assert_eq!(dropped.status, RunStatus::Cancelled);
    pool.shutdown();
}
