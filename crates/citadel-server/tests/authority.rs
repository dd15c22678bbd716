//! Who may do what, walked as the data-driven scenario in
//! `tests/api/authority.json`: folder scopes through grants, events and
//! subscriptions; four-eyes review by persons, not tokens; token listings;
//! and the JSON shape of every refusal. Each step names the caller, the
//! request, and the exact status, error code, message, fields and audit
//! entry it must produce; `keep` names a token the step creates, for later
//! steps; `item` picks the element of a listed array the fields are read
//! from; `@name` in an expected value is that token's id.

use std::sync::Arc;

use axum::http::Method;
use citadel_engine::EngineConfig;
use citadel_server::HttpSettings;
use citadel_store::{RoleBinding, Store, new_id, now_ms};
use citadel_testkit::http::Step;
use citadel_testkit::{Api, TestDb, Token, TokenSpec, mint};
use serde_json::Value;

struct World {
    /// The callers by name.
    api: Api,
    store: Arc<dyn Store>,
    _db: TestDb,
}

/// (role, folder) pairs.
type Roles<'a> = &'a [(&'a str, &'a str)];

/// A root token (made as `citadel admin create-token` makes them) holding
/// `roles` (role, folder).
async fn root_token(store: &dyn Store, tenant: &str, name: &str, roles: Roles<'_>) -> Token {
    let t = mint(
        store,
        TokenSpec {
            tenant: Some(tenant),
            name,
            role: Some(roles[0].0),
            path_prefix: roles[0].1,
            ..TokenSpec::default()
        },
    )
    .await;
    for (role, prefix) in &roles[1..] {
        store
            .create_binding(&RoleBinding {
                id: new_id("rb"),
                tenant_id: tenant.to_owned(),
                token_id: t.id.clone(),
                role: (*role).to_owned(),
                path_prefix: (*prefix).to_owned(),
                created_at: now_ms(),
            })
            .await
            .unwrap();
    }
    t
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let roots: &[(&str, &str, Roles)] = &[
        ("owner", "owner", &[("owner", "")]),
        ("developer", "developer", &[("developer", "")]),
        ("approver", "approver", &[("approver", "")]),
        ("operator", "operator", &[("operator", "")]),
        ("billing_dev", "billing-dev", &[("developer", "billing/")]),
        (
            "billing_reader",
            "billing-reader",
            &[("developer", "billing/"), ("viewer", "")],
        ),
        ("emitter", "emitter", &[("emitting", "")]),
        ("writer", "writer", &[("writing", "")]),
    ];
    let mut tokens = Vec::new();
    for (alias, name, roles) in roots {
        tokens.push((*alias, root_token(store.as_ref(), &acme, name, roles).await));
    }
    let engine = citadel_testkit::engine(&store, 1, EngineConfig::default());
    let mut api = Api::new(Arc::clone(&store), Some(engine), &HttpSettings::default());
    for (alias, token) in tokens {
        api.add_caller(alias, token);
    }
    World {
        api,
        store,
        _db: db,
    }
}

impl World {
    async fn call(
        &self,
        as_: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let (status, got) = self.api.call(as_, method, path, body).await;
        (status.as_u16(), got)
    }

    async fn audit(&self, action: &str) -> Vec<citadel_store::AuditEntry> {
        citadel_testkit::audit(self.store.as_ref(), action).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_scenario() {
    let mut w = world().await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/api/authority.json"
    ))
    .unwrap();
    let steps: Vec<Value> = serde_json::from_str(&text).unwrap();
    // Every mismatch, so one run shows every step that does not hold.
    let mut failures = Vec::new();
    for step in &steps {
        let Step {
            name,
            caller,
            method,
            path,
            body,
            audit,
        } = Step::parse(step, Value::clone);
        let before = match &audit {
            Some((action, _)) => w.audit(action).await.len(),
            None => 0,
        };
        let (status, got) = w.call(caller, method, path, body).await;
        let mut check = |what: String, ok: bool| {
            if !ok {
                failures.push(format!("{name}: {what}"));
            }
        };
        let want_status = step["status"].as_u64().unwrap();
        check(
            format!("status {status}, want {want_status}: {got}"),
            u64::from(status) == want_status,
        );
        if let Some(code) = step.get("code") {
            check(
                format!("code {}, want {code}", got["error"]["code"]),
                &got["error"]["code"] == code,
            );
        }
        if let Some(message) = step.get("message") {
            check(
                format!("message {}, want {message}", got["error"]["message"]),
                &got["error"]["message"] == message,
            );
        }
        let subject = match step.get("item").and_then(Value::as_object) {
            Some(wanted) => got
                .as_array()
                .and_then(|items| {
                    items.iter().find(|item| {
                        wanted
                            .iter()
                            .all(|(p, v)| item.pointer(p) == Some(&w.api.expand_ids(v)))
                    })
                })
                .cloned()
                .unwrap_or(Value::Null),
            None => got.clone(),
        };
        if let Some(fields) = step.get("fields").and_then(Value::as_object) {
            for (pointer, want) in fields {
                let actual = subject.pointer(pointer).cloned().unwrap_or(Value::Null);
                let want = w.api.expand_ids(want);
                check(
                    format!("field `{pointer}` = {actual}, want {want}: {subject}"),
                    actual == want,
                );
            }
        }
        if let Some((action, outcome)) = audit {
            let entries = w.audit(&action).await;
            check(
                format!("{} new `{action}` entries, want 1", entries.len() - before),
                entries.len() == before + 1,
            );
            check(
                format!(
                    "audit outcome {:?}, want {outcome}",
                    entries.first().map(|e| &e.entry.outcome)
                ),
                entries.first().is_some_and(|e| e.entry.outcome == outcome),
            );
        }
        if let Some(alias) = step.get("keep").and_then(Value::as_str) {
            let secret = got["secret"].as_str().unwrap_or_default().to_owned();
            let id = got["id"].as_str().unwrap_or_default().to_owned();
            w.api.add_caller(alias, Token { secret, id });
        }
    }
    assert!(
        failures.is_empty(),
        "{} step(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(matches!(
        w.store.verify_audit().await.unwrap(),
        citadel_store::AuditVerdict::Intact { .. }
    ));
}
