//! Fail closed: a version row or tenant settings the engine cannot decode
//! refuse the run with an error naming the tenant, script, version and
//! field, instead of running with no grant, the default limits or approval
//! off. The cases are the files of `tests/undecodable/`.

use std::path::Path;
use std::sync::Arc;

use citadel_engine::RunSpec;
use citadel_store::Store;
use citadel_testkit::{TestDb, Version, run_spec};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// `capabilities`, `limits`, `language`, `state` (the version's review
    /// state), `settings`, or `run_status` (a recorded run's status).
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
    assert!(cases.len() >= 11, "the corpus is missing");
    cases
}

/// A store with one tenant whose live script `s` has `field` set to
/// `value` (every other field valid), or whose settings are `value`.
async fn setup(case: &Case) -> (Arc<dyn Store>, String, TestDb) {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let tenant = db.tenant("acme").await;
    let field = |name: &str, valid: &'static str| {
        if case.field == name {
            case.value.as_str()
        } else {
            valid
        }
    };
    let version = Version {
        name: "s",
        source: "return input;",
        capabilities: field("capabilities", "{}"),
        limits: field("limits", "{}"),
        ..Version::default()
    };
    citadel_testkit::save_live(store.as_ref(), &tenant, &version).await;
    // Text columns the store decodes into the domain's enums can only be
    // corrupted behind its back.
    let column = match case.field.as_str() {
        "language" => Some("UPDATE script_versions SET language = $1"),
        "state" => Some("UPDATE script_versions SET state = $1"),
        "run_status" => Some("UPDATE runs SET status = $1"),
        _ => None,
    };
    if case.field == "run_status" {
        let engine = citadel_testkit::engine(&store, 1, citadel_testkit::without_worker());
        let live = engine.live(&tenant, "s").await.unwrap().unwrap();
        let run = engine
            .run_sync(RunSpec {
                run_id: Some("run_corrupt".into()),
                ..run_spec(&tenant, &live, "1")
            })
            .await
            .unwrap();
        assert_eq!(run.status, citadel_domain::RunStatus::Succeeded);
    }
    if let Some(sql) = column {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db.file())
            .connect()
            .await
            .unwrap();
        sqlx::query(sql)
            .bind(&case.value)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    if case.field == "settings" {
        store
            .put_tenant_settings(&tenant, &case.value, 1)
            .await
            .unwrap();
    }
    (store, tenant, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_that_do_not_decode_refuse_the_run() {
    for (name, case) in cases() {
        let (store, tenant, _dir) = setup(&case).await;
        let engine = citadel_testkit::engine(&store, 1, citadel_testkit::without_worker());
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
                    run_id: Some("run_undecodable".into()),
                    ..run_spec(&tenant, &live, "1")
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
        } else if case.field == "run_status" {
            let refused = engine
                .find_run(&tenant, "run_corrupt")
                .await
                .map(|r| r.is_some());
            assert_eq!(refused.map_err(|e| e.to_string()), Err(expected), "{name}");
        } else {
            let refused = engine.live(&tenant, "s").await.map(|live| live.is_some());
            assert_eq!(refused.map_err(|e| e.to_string()), Err(expected), "{name}");
        }
    }
}
