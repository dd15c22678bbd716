//! `"isolation": "version"` end to end: a version's runs share a warm
//! context; a tenant can forbid it, and its runs then get fresh contexts.

use std::sync::Arc;

use citadel_domain::{Language, RunStatus, Trigger, VersionState};
use citadel_engine::{Engine, EngineConfig, Executor, InProcess, LiveScript, RunSpec};
use citadel_scripts::TenantSettings;
use citadel_store::{NewVersion, SaveOutcome, Store};

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn live(
    store: &dyn Store,
    tenant: &str,
    name: &str,
    source: &str,
    limits: &str,
) -> Arc<LiveScript> {
    let new = NewVersion {
        tenant_id: tenant.to_owned(),
        name: name.into(),
        hash: name.into(),
        source: source.into(),
        language: Language::Js,
        kind: citadel_domain::ScriptKind::Script,
        capabilities: "{}".into(),
        limits: limits.into(),
        diagnostics: "[]".into(),
        change_note: String::new(),
        author: "a".into(),
        state: VersionState::Approved,
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
        trigger: Trigger::Api,
        principal: None,
        timeout_ms: None,
        run_id: None,
        created_at: None,
    }
}

const COUNTER: &str = "globalThis.n = (globalThis.n ?? 0) + 1; return globalThis.n;";

async fn counts(engine: &Engine, tenant: &str, script: &Arc<LiveScript>) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let run = engine.run_sync(spec(tenant, script)).await.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
        seen.push(run.result.unwrap_or_default());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_may_opt_into_a_warm_context_unless_its_tenant_forbids_it() {
    let dir = std::env::temp_dir().join(format!("citadel-iso-{}", citadel_store::new_id("t")));
    let _dir = TempDir(dir.clone());
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap();
    let open = store.create_tenant("open").await.unwrap().id;
    let closed = store.create_tenant("closed").await.unwrap().id;
    // One isolate thread: every run below meets the same warm context.
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::InProcess(InProcess::start(1).unwrap()),
        EngineConfig::default(),
    );
    let forbid = TenantSettings {
        forbid_version_isolation: true,
        ..TenantSettings::default()
    };
    engine.put_settings(&closed, &forbid).await.unwrap();

    let warm = r#"{"isolation": "version"}"#;
    let script = live(store.as_ref(), &open, "warm", COUNTER, warm).await;
    assert_eq!(counts(&engine, &open, &script).await, ["1", "2", "3"]);
    // The default is a fresh context per run.
    let fresh = live(store.as_ref(), &open, "fresh", COUNTER, "{}").await;
    assert_eq!(counts(&engine, &open, &fresh).await, ["1", "1", "1"]);
    // The same opt-in under a tenant that forbids it runs fresh.
    let denied = live(store.as_ref(), &closed, "warm", COUNTER, warm).await;
    assert_eq!(counts(&engine, &closed, &denied).await, ["1", "1", "1"]);
}
