//! Capabilities a version is granted but the node does not serve yet fail as
//! `unavailable`: catchable in the script by `e.code`, and the run's error
//! code when uncaught.

use std::sync::Arc;

use citadel_engine::{Engine, EngineConfig, Executor, InProcess, LiveScript, RunSpec};
use citadel_store::{NewVersion, SaveOutcome, Store};
use serde_json::{Value, json};

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn live(store: &dyn Store, tenant: &str, name: &str, source: &str) -> Arc<LiveScript> {
    let new = NewVersion {
        tenant_id: tenant.to_owned(),
        name: name.into(),
        hash: name.into(),
        source: source.into(),
        language: "js".into(),
        capabilities:
            r#"{"kv": true, "http": {"allow": ["api.example.com"]}, "secrets": ["K"], "db": ["r"]}"#
                .into(),
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
    let (script, version) = store.live_version(tenant, name).await.unwrap().unwrap();
    Arc::new(LiveScript::decode(script, version).unwrap())
}

fn spec(tenant: &str, live: &Arc<LiveScript>) -> RunSpec {
    RunSpec {
        tenant_id: tenant.into(),
        live: Arc::clone(live),
        input_json: "null".into(),
        trigger: "api".into(),
        principal: None,
        timeout_ms: None,
        run_id: None,
        created_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_capabilities_fail_as_unavailable() {
    let dir = std::env::temp_dir().join(format!("citadel-caps-{}", citadel_store::new_id("t")));
    let _dir = TempDir(dir.clone());
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap();
    let tenant = store.create_tenant("acme").await.unwrap().id;
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::InProcess(InProcess::start(1).unwrap()),
        EngineConfig::default(),
    );

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
        let run = engine.run_sync(spec(&tenant, &script)).await.unwrap();
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
        let run = engine.run_sync(spec(&tenant, &script)).await.unwrap();
        assert_eq!(run.status, "failed", "{name}");
        let error: Value = serde_json::from_str(run.error.as_deref().unwrap()).unwrap();
        assert_eq!(error["code"], "unavailable", "{name}: {error}");
        assert_eq!(error["name"], "Unavailable", "{name}: {error}");
        assert_eq!(error["line"], 1, "{name}: {error}");
    }
}
