//! A synchronous run whose caller goes away while it runs in a jailed
//! sandbox host gives the host back: the pool frees a run's place in a host
//! only from inside its own run future, so the engine must not drop that
//! future with the caller's.

use std::sync::Arc;
use std::time::Duration;

use citadel_engine::{Engine, EngineConfig, Executor, LiveScript, RunSpec};
use citadel_pool::{Pool, PoolConfig};
use citadel_store::{NewVersion, SaveOutcome, Store};

mod common;

async fn setup(dir: &std::path::Path) -> (Arc<dyn Store>, String, Arc<LiveScript>) {
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap();
    let tenant = store.create_tenant("acme").await.unwrap().id;
    let new = NewVersion {
        tenant_id: tenant.clone(),
        name: "nap".into(),
        hash: "h".into(),
        source: "if (input.sleep) await api.sleep(input.sleep);\nreturn input;".into(),
        language: "js".into(),
        capabilities: r#"{"sleep":true}"#.into(),
        limits: "{}".into(),
        diagnostics: "[]".into(),
        change_note: String::new(),
        author: "a".into(),
        state: "approved".into(),
        make_live: true,
    };
    let next = |_: Option<&str>| "1.0.0".to_owned();
    assert!(matches!(
        store.save_version(&new, &next).await.unwrap(),
        SaveOutcome::Created(_)
    ));
    let (script, version) = store.live_version(&tenant, "nap").await.unwrap().unwrap();
    (
        store,
        tenant,
        Arc::new(LiveScript::decode(script, version).unwrap()),
    )
}

fn spec(tenant: &str, live: &Arc<LiveScript>, input: &str, id: &str) -> RunSpec {
    RunSpec {
        tenant_id: tenant.into(),
        live: Arc::clone(live),
        input_json: input.into(),
        trigger: "api".into(),
        principal: None,
        timeout_ms: Some(30_000),
        run_id: Some(id.into()),
        created_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_gives_its_place_in_the_host_back() {
    let dir =
        common::Dir(std::env::temp_dir().join(format!("citadel-pool-drop-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (store, tenant, live) = setup(&dir.0).await;
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
        Arc::clone(&store),
        Executor::Pool(pool.clone()),
        EngineConfig {
            worker: None,
            ..EngineConfig::default()
        },
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
    assert_eq!(second.status, "succeeded", "{:?}", second.error);
    assert_eq!(second.result.as_deref(), Some(r#"{"n":2}"#));
    let dropped = store.run(&tenant, "run_dropped").await.unwrap().unwrap();
    assert_eq!(dropped.status, "cancelled");
    pool.shutdown();
}
