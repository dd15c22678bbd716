//! Admission is cancel-safe: a synchronous run whose caller goes away
//! part-way (a client that disconnects, a request timeout) gives back its
//! tenant's slot and its place among the runs in flight, and it is
//! recorded `cancelled` rather than lost.

use std::sync::Arc;
use std::time::Duration;

use citadel_domain::{JobState, RunStatus};
use citadel_engine::{Engine, EngineConfig, LiveScript, Quotas, RunSpec};
use citadel_store::{Store, Subscription, now_ms};
use citadel_testkit::{NAP, Scripted, TestDb, run_spec};
use serde_json::Value;

/// A store with one tenant whose live script `nap` sleeps when asked to.
async fn setup() -> (Arc<dyn Store>, String, Arc<LiveScript>, TestDb) {
    let Scripted { db, tenant, live } = Scripted::new(&NAP).await;
    (Arc::clone(&db.store), tenant, live, db)
}

fn spec(tenant: &str, live: &Arc<LiveScript>, input: &str, id: &str) -> RunSpec {
    RunSpec {
        timeout_ms: Some(60_000),
        run_id: Some(id.into()),
        ..run_spec(tenant, live, input)
    }
}

/// An engine that runs one run of the tenant's at a time, and no queue
/// worker.
fn one_slot(store: &Arc<dyn Store>) -> Engine {
    let config = EngineConfig {
        quotas: Quotas {
            concurrent_runs: 1,
            ..Quotas::default()
        },
        ..citadel_testkit::without_worker()
    };
    citadel_testkit::engine(store, 1, config)
}

/// Resolves once `id` is among the engine's runs in flight.
async fn until_in_flight(engine: &Engine, tenant: &str, id: &str) {
    while engine.in_flight_run(tenant, id).is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_sync_run_frees_its_slot_and_is_recorded_cancelled() {
    let (store, tenant, live, _dir) = setup().await;
    let engine = one_slot(&store);

    // The caller goes away while its run is in flight: its future is
    // dropped, as axum drops a handler's.
    let first = engine.run_sync(spec(&tenant, &live, r#"{"sleep":60000}"#, "run_dropped"));
    tokio::select! {
        done = first => panic!("the sleeping run ended first: {done:?}"),
        () = until_in_flight(&engine, &tenant, "run_dropped") => {}
    }

    let second = engine
        .run_sync(spec(&tenant, &live, r#"{"n":2}"#, "run_next"))
        .await
        .expect("the tenant's only slot was given back");
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(second.result.as_deref(), Some(r#"{"n":2}"#));

    // The dropped run was handed to the recorder before the second one, so
    // it is committed (and unregistered) by now.
    assert_eq!(engine.in_flight_count(), 0);
    let dropped = store
        .run(&tenant, "run_dropped")
        .await
        .unwrap()
        .expect("the dropped run is recorded");
    assert_eq!(dropped.status, RunStatus::Cancelled);
    assert!(dropped.finished_at.is_some());
    let error: Value = serde_json::from_str(dropped.error.as_deref().unwrap()).unwrap();
    assert_eq!(error["code"], "caller_gone");
    assert_eq!(error["name"], "Cancelled");
    assert_eq!(
        error["message"],
        "the caller went away before the run finished"
    );
    let counted: Vec<_> = engine.counters.runs().collect();
    assert!(counted.contains(&("cancelled", 1)), "{counted:?}");
    assert!(counted.contains(&("succeeded", 1)), "{counted:?}");
}

/// A caller that goes away while its run waits for the tenant's settings
/// (the first await of admission) gives its slot back as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_before_it_starts_frees_its_slot() {
    let (store, tenant, live, _dir) = setup().await;
    let engine = one_slot(&store);
    // Polled once, then dropped: it stops at its first await.
    let mut first = Box::pin(engine.run_sync(spec(&tenant, &live, "{}", "run_early")));
    tokio::select! {
        biased;
        done = &mut first => panic!("the run ended at once: {done:?}"),
        () = std::future::ready(()) => {}
    }
    drop(first);

    let second = engine
        .run_sync(spec(&tenant, &live, r#"{"n":2}"#, "run_next"))
        .await
        .expect("the tenant's only slot was given back");
    assert_eq!(second.status, RunStatus::Succeeded);
    assert_eq!(engine.in_flight_count(), 0);
}

/// Publishing whose caller goes away part-way (an HTTP client that
/// disconnects, a run stopped while it emits) still records the event and
/// every delivery of it: once its fan-out has begun it finishes, so no run
/// is enqueued for it without the event and its delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_publish_still_records_every_delivery() {
    const SUBSCRIPTIONS: usize = 20;
    let (store, tenant, _live, _dir) = setup().await;
    for i in 0..SUBSCRIPTIONS {
        store
            .put_subscription(&Subscription {
                tenant_id: tenant.clone(),
                name: format!("s{i:02}"),
                pattern: "order.*".into(),
                script_name: "nap".into(),
                created_at: now_ms(),
            })
            .await
            .unwrap();
    }
    // Enqueue only: the deliveries' runs stay queued.
    let engine = citadel_testkit::engine(&store, 1, citadel_testkit::without_worker());

    // The publisher goes away once the first delivery's run is queued,
    // while the others are being enqueued.
    let publish = engine.publish(&tenant, "order.paid", "{}".into(), 0, "test");
    tokio::select! {
        done = publish => panic!("the fan-out ended first: {done:?}"),
        () = async {
            while store.list_jobs(&tenant, None, None, 1).await.unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } => {}
    };
    let mut event = None;
    for _ in 0..1000 {
        event = store.list_events(&tenant, 1).await.unwrap().pop();
        if event.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let event = event.expect("the event is stored");

    let mut deliveries = Vec::new();
    for _ in 0..1000 {
        deliveries = store.deliveries(&tenant, &event.id).await.unwrap();
        if deliveries.len() == SUBSCRIPTIONS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(deliveries.len(), SUBSCRIPTIONS, "{deliveries:?}");
    for d in &deliveries {
        assert_eq!(d.error, None, "{d:?}");
        let id = d.run_id.as_deref().expect("every delivery became a run");
        let job = store.job(&tenant, id).await.unwrap().expect("its job");
        assert_eq!(job.state, JobState::Queued);
    }
}
