//! Capabilities a version is granted but the node does not serve yet fail as
//! `unavailable`: catchable in the script by `e.code`, and the run's error
//! code when uncaught.

use std::sync::Arc;

use citadel_engine::{EngineConfig, LiveScript};
use citadel_store::Store;
use citadel_testkit::{TestDb, Version, run_spec};
use serde_json::{Value, json};

async fn live(store: &dyn Store, tenant: &str, name: &str, source: &str) -> Arc<LiveScript> {
    let version = Version {
        name,
        source,
        hash: name,
        capabilities: r#"{"kv": true, "http": {"allow": ["api.example.com"]}, "secrets": ["K"], "db": ["r"]}"#,
        ..Version::default()
    };
    citadel_testkit::live_script(store, tenant, &version).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_capabilities_fail_as_unavailable() {
    let db = TestDb::new().await;
    let store = &db.store;
    let tenant = db.tenant("acme").await;
    let engine = citadel_testkit::engine(store, 1, EngineConfig::default());

    let calls = [
        ("kv", "api.kv.get('k')"),
        ("kv-set", "api.kv.set('k', 1)"),
        ("http", "api.http.fetch('https://api.example.com/')"),
        ("secrets", "api.secrets.get('K')"),
        ("db", "api.db.query('select 1')"),
    ];
    for (name, call) in calls {
        // Caught: the error says what it is.
        let caught = format!("try {{ await {call}; }} catch (e) {{ return [e.name, e.code]; }}");
        let script = live(store.as_ref(), &tenant, &format!("{name}-caught"), &caught).await;
        let run = engine
            .run_sync(run_spec(&tenant, &script, "null"))
            .await
            .unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {:?}", run.error);
        let result: Value = serde_json::from_str(run.result.as_deref().unwrap()).unwrap();
        assert_eq!(result, json!(["Unavailable", "unavailable"]), "{name}");

        // Uncaught: the run's error code.
        let uncaught = format!("return await {call};");
        let script = live(
            store.as_ref(),
            &tenant,
            &format!("{name}-uncaught"),
            &uncaught,
        )
        .await;
        let run = engine
            .run_sync(run_spec(&tenant, &script, "null"))
            .await
            .unwrap();
        assert_eq!(run.status, "failed", "{name}");
        let error: Value = serde_json::from_str(run.error.as_deref().unwrap()).unwrap();
        assert_eq!(error["code"], "unavailable", "{name}: {error}");
        assert_eq!(error["name"], "Unavailable", "{name}: {error}");
        assert_eq!(error["line"], 1, "{name}: {error}");
    }
}
