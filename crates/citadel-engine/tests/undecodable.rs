//! Fail closed: a version row or tenant settings the engine cannot decode
//! refuse the run with an error naming the tenant, script, version and
//! field, instead of running with no grant, the default limits or approval
//! off. The cases are the files of `tests/undecodable/`.

use std::path::Path;
use std::sync::Arc;

use citadel_engine::{Engine, EngineConfig, Executor, InProcess, RunSpec};
use citadel_store::{NewVersion, SaveOutcome, Store};
use serde::Deserialize;

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// `capabilities`, `limits`, `language` or `settings`.
    field: String,
    /// What the store holds for that field.
    value: String,
    /// The engine's exact error; `{tenant}` stands for the tenant's id.
    error: String,
}

fn cases() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/undecodable");
    let mut cases: Vec<(String, Case)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let case = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(cases.len() >= 9, "the corpus is missing");
    cases
}

/// A store with one tenant whose live script `s` has `field` set to
/// `value` (every other field valid), or whose settings are `value`.
async fn setup(case: &Case) -> (Arc<dyn Store>, String, TempDir) {
    let dir = std::env::temp_dir().join(format!("citadel-undec-{}", citadel_store::new_id("t")));
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap();
    let tenant = store.create_tenant("acme").await.unwrap().id;
    let field = |name: &str, valid: &str| {
        if case.field == name {
            case.value.clone()
        } else {
            valid.to_owned()
        }
    };
    let new = NewVersion {
        tenant_id: tenant.clone(),
        name: "s".into(),
        hash: "h".into(),
        source: "return input;".into(),
        language: field("language", "js"),
        capabilities: field("capabilities", "{}"),
        limits: field("limits", "{}"),
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
    if case.field == "settings" {
        store
            .put_tenant_settings(&tenant, &case.value, 1)
            .await
            .unwrap();
    }
    (store, tenant, TempDir(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_do_not_decode_refuse_the_run() {
    for (name, case) in cases() {
        let (store, tenant, _dir) = setup(&case).await;
        let engine = Engine::start(
            Arc::clone(&store),
            Executor::InProcess(InProcess::start(1).unwrap()),
            EngineConfig {
                worker: None,
                ..EngineConfig::default()
            },
        );
        let expected = case.error.replace("{tenant}", &tenant);
        if case.field == "settings" {
            let refused = engine.settings(&tenant).await.map(|_| ());
            assert_eq!(
                refused.map_err(|e| e.to_string()),
                Err(expected.clone()),
                "{name}: settings"
            );
            // A run reads the settings for its limits and caps: refused
            // before it starts, nothing recorded.
            let live = engine.live(&tenant, "s").await.unwrap().unwrap();
            let run = engine
                .run_sync(RunSpec {
                    tenant_id: tenant.clone(),
                    live,
                    input_json: "1".into(),
                    trigger: "api".into(),
                    principal: None,
                    timeout_ms: None,
                    run_id: Some("run_undecodable".into()),
                    created_at: None,
                })
                .await
                .map(|run| run.status);
            assert_eq!(run.map_err(|e| e.to_string()), Err(expected), "{name}: run");
            assert!(
                engine
                    .find_run(&tenant, "run_undecodable")
                    .await
                    .unwrap()
                    .is_none(),
                "{name}: a refused run is not recorded"
            );
        } else {
            let refused = engine.live(&tenant, "s").await.map(|live| live.is_some());
            assert_eq!(refused.map_err(|e| e.to_string()), Err(expected), "{name}");
        }
    }
}
