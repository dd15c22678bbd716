//! Who may do what, walked as the data-driven scenario in
//! `tests/api/authority.json`: folder scopes through grants, events and
//! subscriptions; four-eyes review by persons, not tokens; token listings;
//! and the JSON shape of every refusal. Each step names the caller, the
//! request, and the exact status, error code, message, fields and audit
//! entry it must produce; `keep` names a token the step creates, for later
//! steps; `item` picks the element of a listed array the fields are read
//! from; `@name` in an expected value is that token's id.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use citadel_app::authn::{generate_token, hash_token};
use citadel_engine::{Engine, EngineConfig, Executor, InProcess};
use citadel_server::{AppState, HttpSettings};
use citadel_store::{AuditQuery, NewToken, RoleBinding, Store, new_id, now_ms};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct World {
    app: Router,
    store: Arc<dyn Store>,
    /// Name → (secret, token id).
    tokens: HashMap<String, (String, String)>,
    _dir: TempDir,
}

/// (role, folder) pairs.
type Roles<'a> = &'a [(&'a str, &'a str)];

/// A root token (made as `citadel admin create-token` makes them) holding
/// `roles` (role, folder).
async fn root_token(
    store: &dyn Store,
    tenant: &str,
    name: &str,
    roles: Roles<'_>,
) -> (String, String) {
    let secret = generate_token();
    let t = store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: Some(tenant.to_owned()),
            name: name.to_owned(),
            hash: hash_token(&secret),
            expires_at: None,
            role: Some((roles[0].0.to_owned(), roles[0].1.to_owned())),
        })
        .await
        .unwrap();
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
    (secret, t.id)
}

async fn world() -> World {
    let dir = std::env::temp_dir().join(format!("citadel-authority-{}", new_id("t")));
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap();
    let acme = store.create_tenant("acme").await.unwrap().id;
    let mut tokens = HashMap::new();
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
    for (alias, name, roles) in roots {
        tokens.insert(
            (*alias).to_owned(),
            root_token(store.as_ref(), &acme, name, roles).await,
        );
    }
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::InProcess(InProcess::start(1).unwrap()),
        EngineConfig::default(),
    );
    let (app, _) = citadel_server::router(
        AppState::new(Arc::clone(&store), Some(engine)),
        &HttpSettings::default(),
    );
    World {
        app,
        store,
        tokens,
        _dir: TempDir(dir),
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
        let secret = &self
            .tokens
            .get(as_)
            .unwrap_or_else(|| panic!("no token `{as_}`"))
            .0;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {secret}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn audit(&self, action: &str) -> Vec<citadel_store::AuditEntry> {
        self.store
            .audit_page(&AuditQuery {
                action: Some(action.into()),
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
    }

    /// `@name` means that token's id, anywhere in an expected value.
    fn expand(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with('@') => Value::String(
                self.tokens
                    .get(&s[1..])
                    .unwrap_or_else(|| panic!("no token `{s}`"))
                    .1
                    .clone(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.expand(v)).collect()),
            other => other.clone(),
        }
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
        let name = step["step"].as_str().unwrap();
        let method: Method = step["method"].as_str().unwrap().parse().unwrap();
        let body = match (step.get("body"), step.get("raw_body")) {
            (Some(b), _) => Some(b.to_string()),
            (None, Some(raw)) => Some(raw.as_str().unwrap().to_owned()),
            (None, None) => None,
        };
        let audit = step.get("audit").map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        });
        let before = match &audit {
            Some((action, _)) => w.audit(action).await.len(),
            None => 0,
        };
        let (status, got) = w
            .call(
                step["as"].as_str().unwrap(),
                method,
                step["path"].as_str().unwrap(),
                body,
            )
            .await;
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
                            .all(|(p, v)| item.pointer(p) == Some(&w.expand(v)))
                    })
                })
                .cloned()
                .unwrap_or(Value::Null),
            None => got.clone(),
        };
        if let Some(fields) = step.get("fields").and_then(Value::as_object) {
            for (pointer, want) in fields {
                let actual = subject.pointer(pointer).cloned().unwrap_or(Value::Null);
                let want = w.expand(want);
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
            w.tokens.insert(alias.to_owned(), (secret, id));
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
