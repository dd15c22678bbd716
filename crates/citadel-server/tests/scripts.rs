//! Scripts, versions, approvals, runs and kill switches through the API, on
//! a fresh SQLite file with isolates run in process. The main test walks
//! the scenario in `tests/api/scripts.json` step by step: each step names
//! the caller, the request, and the exact status, error code, fields and
//! audit entry it must produce.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use citadel_engine::EngineConfig;
use citadel_server::HttpSettings;
use citadel_store::Store;
use citadel_testkit::http::Step;
use citadel_testkit::{Api, TestDb, TokenSpec, mint};
use http_body_util::BodyExt;
use serde_json::{Value, json};

struct World {
    /// Callers by role: `owner`, `developer`, `approver`, `viewer`,
    /// `operator` of `acme`, `other_owner` of another tenant, `platform`.
    api: Api,
    store: Arc<dyn Store>,
    db: TestDb,
}

async fn world() -> World {
    world_with(citadel_engine::Quotas::default()).await
}

async fn world_with(quotas: citadel_engine::Quotas) -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let other = db.tenant("other").await;
    let roles = ["owner", "developer", "approver", "viewer", "operator"];
    let mut tokens = citadel_testkit::tokens(store.as_ref(), &acme, &roles).await;
    tokens.push((
        "other_owner",
        citadel_testkit::token(store.as_ref(), &other, "owner").await,
    ));
    let platform = TokenSpec {
        name: "platform",
        ..TokenSpec::default()
    };
    tokens.push(("platform", mint(store.as_ref(), platform).await));
    let billing_dev = TokenSpec {
        tenant: Some(&acme),
        name: "billing_dev",
        role: Some("developer"),
        path_prefix: "billing/",
        ..TokenSpec::default()
    };
    tokens.push(("billing_dev", mint(store.as_ref(), billing_dev).await));
    let vault = citadel_secrets::Vault::open(
        Arc::clone(&store),
        citadel_secrets::MasterKey::generate().unwrap(),
    )
    .await
    .unwrap();
    let engine = citadel_testkit::engine(
        &store,
        2,
        EngineConfig {
            quotas,
            vault: Some(Arc::new(vault)),
            ..EngineConfig::default()
        },
    );
    let config = HttpSettings {
        body_limit_bytes: 2 << 20,
        ..HttpSettings::default()
    };
    let api = Api::new(Arc::clone(&store), Some(engine), &config).with_callers(tokens);
    World { api, store, db }
}

impl World {
    async fn call(
        &self,
        as_: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        if as_ == "anonymous" {
            return self.api.call_anonymous(method, path, body).await;
        }
        self.api.call(as_, method, path, body).await
    }

    async fn audit(&self, action: &str) -> Vec<citadel_store::AuditEntry> {
        citadel_testkit::audit(self.store.as_ref(), action).await
    }
}

/// A body from the scenario: JSON as given, with `{"repeat": s, "times": n}`
/// standing for `s` repeated `n` times (for oversize inputs), and
/// `{"now_plus_ms": n}` for the Unix time in ms `n` from now.
fn expand_body(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("now_plus_ms") => {
            json!(citadel_store::now_ms() + m["now_plus_ms"].as_i64().unwrap())
        }
        Value::Object(m) if m.len() == 2 && m.contains_key("repeat") && m.contains_key("times") => {
            Value::String(
                m["repeat"]
                    .as_str()
                    .unwrap()
                    .repeat(m["times"].as_u64().unwrap() as usize),
            )
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), expand_body(v))).collect())
        }
        other => other.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripts_scenario() {
    walk(&world().await, "scripts.json").await;
}

/// What the web console uses beyond the rest of the API: analysis without
/// saving, who-am-I, logout, stats, run filters and embed sessions
/// (`tests/api/console.json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_scenario() {
    walk(&world().await, "console.json").await;
}

/// Secrets, the key-value store and data sources over the API, and scripts
/// using them (`tests/api/capabilities.json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capabilities_scenario() {
    let w = world_with(citadel_engine::Quotas {
        kv_value_bytes: 1024,
        kv_bytes: 4096,
        ..citadel_engine::Quotas::default()
    })
    .await;
    walk(&w, "capabilities.json").await;
    // Every capability call is counted by capability and outcome, and the
    // secret expiring within 7 days shows.
    let metrics = w.api.metrics().await;
    for line in [
        "citadel_capability_calls_total{capability=\"secrets\",outcome=\"ok\"} 1",
        "citadel_capability_calls_total{capability=\"secrets\",outcome=\"capability_denied\"} 1",
        "citadel_capability_calls_total{capability=\"kv\",outcome=\"ok\"} 3",
        "citadel_secrets_expiring 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "`{line}` not in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("citadel_capability_call_duration_seconds_bucket{"),
        "{metrics}"
    );
    // No value of a secret is anywhere in the database.
    let dump = w.db.file_bytes();
    for value in [
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_rotated_9f8e7d6c5b4a",
    ] {
        assert!(
            !dump.windows(value.len()).any(|w| w == value.as_bytes()),
            "`{value}` is in the database file"
        );
    }
}

/// Walks the scenario `tests/api/FILE` step by step.
async fn walk(w: &World, file: &str) {
    let path = format!("{}/../../tests/api/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let steps: Vec<Value> = serde_json::from_str(&text).unwrap();
    for step in &steps {
        let Step {
            name,
            caller,
            method,
            path,
            body,
            audit,
        } = Step::parse(step, expand_body);
        let before = match &audit {
            Some((action, _)) => w.audit(action).await.len(),
            None => 0,
        };
        let (status, got) = w.call(caller, method, path, body).await;
        assert_eq!(
            status.as_u16() as u64,
            step["status"].as_u64().unwrap(),
            "{name}: {got}"
        );
        if let Some(code) = step.get("code") {
            assert_eq!(&got["error"]["code"], code, "{name}: {got}");
        }
        if let Some(message) = step.get("message") {
            assert_eq!(&got["error"]["message"], message, "{name}: {got}");
        }
        if let Some(fields) = step.get("fields").and_then(Value::as_object) {
            for (pointer, want) in fields {
                let actual = got.pointer(pointer).cloned().unwrap_or(Value::Null);
                assert_eq!(
                    actual,
                    w.api.expand_ids(want),
                    "{name}: field `{pointer}` of {got}"
                );
            }
        }
        if let Some(one_of) = step.get("one_of").and_then(Value::as_object) {
            for (pointer, allowed) in one_of {
                let actual = got.pointer(pointer).cloned().unwrap_or(Value::Null);
                assert!(
                    allowed.as_array().unwrap().contains(&actual),
                    "{name}: `{pointer}` = {actual}"
                );
            }
        }
        if let Some((action, outcome)) = audit {
            let entries = w.audit(&action).await;
            assert_eq!(
                entries.len(),
                before + 1,
                "{name}: one new `{action}` audit entry"
            );
            assert_eq!(entries[0].entry.outcome, outcome, "{name}: audit outcome");
        }
        if let Some(absent) = step.get("absent").and_then(Value::as_str) {
            assert!(
                !got.to_string().contains(absent),
                "{name}: `{absent}` in {got}"
            );
        }
    }
    // Everything above is on the record, and the chain is intact.
    assert!(matches!(
        w.store.verify_audit().await.unwrap(),
        citadel_store::AuditVerdict::Intact { .. }
    ));
}

/// Saves a script as the developer (no approval required) and returns its
/// path-encoded name.
async fn save(w: &World, name: &str, source: &str, capabilities: Value) -> String {
    let (status, got) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts",
            Some(
                json!({ "name": name, "source": source, "capabilities": capabilities }).to_string(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    name.replace('/', "%2F")
}

/// Polls a run until it leaves `queued`/`running`.
async fn finished(w: &World, id: &str) -> Value {
    for _ in 0..500 {
        let (status, run) = w
            .call("viewer", Method::GET, &format!("/v1/runs/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["status"] != "queued" && run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {id} did not finish");
}

/// Polls a run until it has started on this node: `running` with a start
/// time (a job that is claimed but not started yet reads `running` without
/// one).
/// Starts `name` as the operator without waiting (`body` is the run
/// request); asserts 202 and returns the run's id.
async fn start(w: &World, name: &str, body: &str) -> String {
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/scripts/{name}/run"),
            Some(body.into()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    got["run_id"].as_str().unwrap().to_owned()
}

async fn in_flight(w: &World, id: &str) -> Value {
    for _ in 0..1000 {
        let (status, run) = w
            .call("viewer", Method::GET, &format!("/v1/runs/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if run["status"] == "running" && run["started_at"].is_i64() {
            return run;
        }
        assert!(
            run["status"] == "queued" || run["status"] == "running",
            "{run}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("run {id} did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_runs_are_accepted_recorded_and_listed() {
    let w = world().await;
    let name = save(
        &w,
        "later",
        "await api.sleep(20);\nreturn input.n * 2;",
        json!({"sleep": true}),
    )
    .await;
    let id = start(&w, &name, r#"{"input":{"n":21},"wait":false}"#).await;
    assert!(id.starts_with("run_"));
    let run = finished(&w, &id).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["result"], 42);
    assert_eq!(run["trigger"], "api_async");
    assert_eq!(run["principal"], w.api.token("operator").id);
    let (_, list) = w
        .call("viewer", Method::GET, "/v1/runs?script=later", None)
        .await;
    assert_eq!(list[0]["id"], id);
    // Cancelling a finished run is a conflict.
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(got["error"]["code"], "already_finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_can_be_cancelled() {
    let w = world().await;
    let name = save(
        &w,
        "slow",
        "await api.sleep(30000);\nreturn 1;",
        json!({"sleep": true}),
    )
    .await;
    let id = start(&w, &name, r#"{"wait":false,"timeout_ms":40000}"#).await;
    let before = w.audit("run.cancel").await.len();
    let (status, run) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["error"]["code"], "cancelled");
    assert_eq!(w.audit("run.cancel").await.len(), before + 1);
    // A viewer may not cancel; another tenant does not find the run.
    let (status, _) = w
        .call(
            "viewer",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .call("other_owner", Method::GET, &format!("/v1/runs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_aborts_runs_in_flight() {
    let w = world().await;
    let sleeper = save(
        &w,
        "jobs/sleeper",
        "await api.sleep(30000);\nreturn 1;",
        json!({"sleep": true}),
    )
    .await;
    let spinner = save(
        &w,
        "jobs/spinner",
        "let i = 0;\nwhile (i >= 0) { i++; }\nreturn i;",
        json!({}),
    )
    .await;
    let mut ids = Vec::new();
    for name in [&sleeper, &spinner] {
        ids.push(start(&w, name, r#"{"wait":false,"timeout_ms":40000}"#).await);
    }
    // Both are in flight before the switch engages: a run still queued (or
    // claimed but not started) would be refused, not killed in flight, and
    // the counts below would not hold.
    for id in &ids {
        in_flight(&w, id).await;
    }
    let (status, got) = w
        .call(
            "owner",
            Method::POST,
            "/v1/kill-switch",
            Some(r#"{"scope":"folder","target":"jobs/","reason":"runaway"}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    for id in &ids {
        let run = finished(&w, id).await;
        assert_eq!(run["status"], "killed", "{run}");
        assert_eq!(run["error"]["code"], "killed");
        assert_eq!(
            run["error"]["message"],
            "stopped by the folder kill switch: runaway"
        );
        // Well before its 40 s timeout.
        assert!(run["duration_ms"].as_i64().unwrap() < 5_000, "{run}");
    }
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/scripts/{sleeper}/run"),
            Some("{}".into()),
        )
        .await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(got["error"]["code"], "killed");
    // /metrics counts both.
    let (_, _) = (status, got);
    let text = w.api.metrics().await;
    assert!(
        text.contains("citadel_runs_total{status=\"killed\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("citadel_runs_killed_in_flight_total 2\n"),
        "{text}"
    );
    assert!(
        text.contains("citadel_runs_refused_by_kill_switch_total 1\n"),
        "{text}"
    );
    assert!(text.contains("citadel_kill_switches_engaged 1\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_is_cached_by_content_hash() {
    let w = world().await;
    let source = "return input;";
    save(&w, "one", source, json!({})).await;
    save(&w, "two", source, json!({})).await;
    let text = w.api.metrics().await;
    assert!(text.contains("citadel_analyses_total 1\n"), "{text}");
    assert!(
        text.contains("citadel_analysis_cache_hits_total 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_scoped_roles_see_only_their_folder() {
    let mut w = world().await;
    save(&w, "billing/a", "return 'a';", json!({})).await;
    save(&w, "hr/b", "return 'b';", json!({})).await;
    let acme = w.store.tenant_by_name("acme").await.unwrap().unwrap().id;
    let billing = TokenSpec {
        tenant: Some(&acme),
        name: "billing-dev",
        role: Some("developer"),
        path_prefix: "billing/",
        ..TokenSpec::default()
    };
    let token = mint(w.store.as_ref(), billing).await;
    w.api.add_caller("billing", token);
    let (_, list) = w.call("billing", Method::GET, "/v1/scripts", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "billing/a");
    let (status, _) = w
        .call(
            "billing",
            Method::POST,
            "/v1/scripts/billing%2Fa/run",
            Some("{}".into()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, got) = w
        .call(
            "billing",
            Method::POST,
            "/v1/scripts/hr%2Fb/run",
            Some("{}".into()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(got["error"]["details"]["permission"], "script.run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_rate_a_tenant_gets_429_with_retry_after() {
    let w = world_with(citadel_engine::Quotas {
        runs_per_minute: 2,
        ..citadel_engine::Quotas::default()
    })
    .await;
    save(&w, "r", "return 1;", json!({})).await;
    for wait in [true, false] {
        let (status, got) = w
            .call(
                "operator",
                Method::POST,
                "/v1/scripts/r/run",
                Some(json!({ "wait": wait }).to_string()),
            )
            .await;
        assert!(
            status == StatusCode::OK || status == StatusCode::ACCEPTED,
            "{got}"
        );
    }
    let res = w
        .api
        .response(
            Some("operator"),
            Method::POST,
            "/v1/scripts/r/run",
            Some("{}".into()),
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: Value = serde_json::from_str(&citadel_testkit::http::text(res).await).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another tenant is not affected.
    let (status, _) = w.call("other_owner", Method::GET, "/v1/runs", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_runs_at_most_its_concurrency_at_once() {
    let w = world().await;
    let (status, got) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts",
            Some(
                json!({
                    "name": "one-at-a-time",
                    "source": "await api.sleep(150);\nreturn input.n;",
                    "capabilities": {"sleep": true},
                    "limits": {"concurrency": 1},
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    assert_eq!(got["limits"]["concurrency"], 1, "{got}");

    // Synchronously: a second run while one is in flight is refused.
    let api = w.api.clone();
    let first = tokio::spawn(async move {
        api.response(
            Some("operator"),
            Method::POST,
            "/v1/scripts/one-at-a-time/run",
            Some(r#"{"input": {"n": 1}}"#.into()),
        )
        .await
        .status()
    });
    // A synchronous run is recorded when it ends; /metrics sees it in flight.
    let mut seen = false;
    for _ in 0..1_000 {
        let text = w.api.metrics().await;
        if text.contains("citadel_runs_in_flight 1\n") {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(seen, "the first run never showed in flight");
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            "/v1/scripts/one-at-a-time/run",
            Some(r#"{"input": {"n": 2}}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{got}");
    assert_eq!(got["error"]["code"], "concurrency_limit");
    assert_eq!(
        got["error"]["message"],
        "the script has 1 runs in flight, its limit"
    );
    assert_eq!(first.await.unwrap(), StatusCode::OK);

    // Queued: three jobs wait for each other, none overlaps another.
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, got) = w
            .call(
                "operator",
                Method::POST,
                "/v1/scripts/one-at-a-time/run",
                Some(json!({"input": {"n": n}, "wait": false}).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{got}");
        ids.push(got["run_id"].as_str().unwrap().to_owned());
    }
    let mut spans = Vec::new();
    for id in &ids {
        let run = finished(&w, id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        spans.push((
            run["started_at"].as_i64().unwrap(),
            run["finished_at"].as_i64().unwrap(),
        ));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped: {spans:?}");
    }
}

async fn events(w: &World) -> Vec<Value> {
    let (status, list) = w
        .call("viewer", Method::GET, "/v1/events?limit=100", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fan_out_to_subscribed_scripts() {
    let w = world().await;
    save(
        &w,
        "billing/on-paid",
        "const amount = input.data.amount;\nif (amount > 100) { await api.events.emit('order.large', { amount }); }\nreturn amount;",
        json!({"events": {"emit": ["order.*"]}}),
    )
    .await;
    save(
        &w,
        "audit/large",
        "return input.type + ':' + input.data.amount;",
        json!({}),
    )
    .await;
    let put = |name: &'static str, body: Value| {
        let w = &w;
        async move {
            w.call(
                "developer",
                Method::PUT,
                &format!("/v1/subscriptions/{name}"),
                Some(body.to_string()),
            )
            .await
        }
    };
    let (status, got) = put(
        "paid",
        json!({"event": "order.paid", "script": "billing/on-paid"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, _) = put(
        "large",
        json!({"event": "order.*", "script": "audit/large"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Bad input.
    let (status, got) = put(
        "bad",
        json!({"event": "Order.Paid", "script": "audit/large"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        got["error"]["message"],
        "invalid event pattern `Order.Paid`: only a-z, 0-9, `_`, `-`, `.` and `*` are allowed"
    );
    let (status, got) = put("nope", json!({"event": "x", "script": "no/such"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{got}");
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            "/v1/events",
            Some(r#"{"type": "order..paid", "data": 1}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        got["error"]["message"],
        "invalid event type `order..paid`: it has an empty segment"
    );

    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            "/v1/events",
            Some(r#"{"type": "order.paid", "data": {"amount": 500}}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    let deliveries = got["deliveries"].as_array().unwrap();
    // `order.paid` matches both subscriptions.
    assert_eq!(deliveries.len(), 2, "{got}");
    let paid_run = deliveries
        .iter()
        .find(|d| d["subscription"] == "paid")
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = finished(&w, &paid_run).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"], 500);
    assert_eq!(run["trigger"], "event");
    // The script emitted `order.large` (depth 1, from its run), which reached `audit/large`.
    let mut large = None;
    for _ in 0..500 {
        large = events(&w)
            .await
            .into_iter()
            .find(|e| e["type"] == "order.large");
        if large.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let large = large.expect("the emitted event");
    assert_eq!(large["depth"], 1);
    assert_eq!(large["source"], paid_run.as_str());
    let (_, detail) = w
        .call(
            "viewer",
            Method::GET,
            &format!("/v1/events/{}", large["id"].as_str().unwrap()),
            None,
        )
        .await;
    let d = &detail["deliveries"][0];
    assert_eq!(d["subscription"], "large");
    let run = finished(&w, d["run_id"].as_str().unwrap()).await;
    assert_eq!(run["result"], "order.large:500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_loop_stops_at_the_depth_limit() {
    let w = world().await;
    save(
        &w,
        "loop",
        "await api.events.emit('ping', {});\nreturn 1;",
        json!({"events": {"emit": ["ping"]}}),
    )
    .await;
    let (status, _) = w
        .call(
            "developer",
            Method::PUT,
            "/v1/subscriptions/loop",
            Some(r#"{"event": "ping", "script": "loop"}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .call(
            "operator",
            Method::POST,
            "/v1/events",
            Some(r#"{"type": "ping"}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Depths 0..=8, then the run at depth 8 fails to emit.
    let mut failed = None;
    for _ in 0..1000 {
        let (_, runs) = w
            .call(
                "viewer",
                Method::GET,
                "/v1/runs?script=loop&status=failed",
                None,
            )
            .await;
        if let Some(r) = runs.as_array().and_then(|r| r.first()) {
            failed = Some(r.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failed = failed.expect("the last run of the chain fails");
    assert_eq!(
        failed["error"]["message"], "events may chain at most 8 deep",
        "{failed}"
    );
    let pings = events(&w).await;
    assert_eq!(pings.len(), 9, "{pings:?}");
    let mut depths: Vec<i64> = pings.iter().map(|e| e["depth"].as_i64().unwrap()).collect();
    depths.sort();
    assert_eq!(depths, (0..=8).collect::<Vec<_>>());
}

/// Saves `source` (granted `sleep`) as `name`, starts it without waiting,
/// and opens its event stream as a viewer: (run id, the stream's response).
async fn follow(w: &World, name: &str, source: &str) -> (String, axum::response::Response) {
    save(w, name, source, json!({"sleep": true})).await;
    let id = start(w, name, r#"{"wait": false}"#).await;
    let stream = open_stream(w, &id).await;
    (id, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_progress_streams_as_server_sent_events() {
    let w = world().await;
    let (id, res) = follow(
        &w,
        "progress",
        "console.log('step one');\nawait api.sleep(200);\nconsole.log('step two');\nreturn 7;",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let events: Vec<(&str, &str)> = text
        .split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("");
            Some((event, data))
        })
        .collect();
    let statuses: Vec<Value> = events
        .iter()
        .filter(|(e, _)| *e == "status")
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["status"].clone())
        .collect();
    assert!(
        statuses.ends_with(&[json!("running"), json!("succeeded")]),
        "{statuses:?}"
    );
    let logs: Vec<Value> = events
        .iter()
        .filter(|(e, _)| *e == "log")
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(logs.len(), 2, "{text}");
    assert_eq!(logs[0]["message"], "step one");
    assert_eq!(logs[1]["message"], "step two");
    let (last, data) = events.last().unwrap();
    assert_eq!(*last, "run");
    let run: Value = serde_json::from_str(data).unwrap();
    assert_eq!(run["result"], 7);
    // Another tenant cannot follow it.
    let (status, _) = w
        .call(
            "other_owner",
            Method::GET,
            &format!("/v1/runs/{id}/events"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_stream_while_the_run_is_in_flight() {
    let w = world().await;
    let (id, res) = follow(
        &w,
        "waits",
        "console.log('waiting');\nawait api.sleep(30000);\nreturn 1;",
    )
    .await;
    let mut body = res.into_body();
    // The line arrives while the run sleeps for 30 s.
    let mut text = String::new();
    while !text.contains("event: log\ndata: {\"level\":\"log\",\"message\":\"waiting\"}") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(data) = frame.data_ref() {
            text.push_str(std::str::from_utf8(data).unwrap());
        }
    }
    let (status, run) = w
        .call("viewer", Method::GET, &format!("/v1/runs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["status"], "running", "{run}");
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let rest = body.collect().await.unwrap().to_bytes();
    text.push_str(std::str::from_utf8(&rest).unwrap());
    assert_eq!(text.matches("event: log\n").count(), 1, "{text}");
    assert!(
        text.contains("event: status\ndata: {\"status\":\"cancelled\"}"),
        "{text}"
    );
}

/// A second server on the same SQLite file, opened read-only (`mode=ro`):
/// reads work, every write fails, as with a read-only file, a full disk or
/// a lost permission (file modes cannot show it: tests run as root, which
/// ignores them).
async fn read_only_twin(w: &World) -> Api {
    let url = format!("sqlite://{}?mode=ro", w.db.file().display());
    let store = citadel_store::connect(&url).await.unwrap();
    let engine = citadel_testkit::engine(&store, 1, citadel_testkit::without_worker());
    let register = engine.register().await.unwrap_err().to_string();
    assert!(
        register.contains("readonly database"),
        "start-up registration reports the write failure: {register}"
    );
    Api::new(store, Some(engine), &HttpSettings::default())
}

async fn call_app(
    api: &Api,
    secret: &str,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let authorization = format!("Bearer {secret}");
    api.call_with_header(Some(&authorization), method, path, body.map(str::to_owned))
        .await
}

/// A database that takes no writes makes the server unready, and a
/// synchronous run is answered 503 `unavailable`, never as succeeded
/// without its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_takes_no_writes_is_unready_and_answers_no_run() {
    let w = world().await;
    let name = save(&w, "echo", "return input;", json!({})).await;
    let (status, got) = call_app(&w.api, "", Method::GET, "/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let twin = read_only_twin(&w).await;
    let (status, got) = call_app(&twin, "", Method::GET, "/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{got}");
    assert_eq!(got["error"]["code"], "unavailable");
    let message = got["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("database: not writable:") && message.contains("readonly database"),
        "{message}"
    );
    let operator = &w.api.token("operator").secret;
    let (status, got) = call_app(
        &twin,
        operator,
        Method::POST,
        &format!("/v1/scripts/{name}/run"),
        Some(r#"{"input":{"n":1}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{got}");
    assert_eq!(got["error"]["code"], "unavailable");
    let message = got["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("finished (succeeded) but its record could not be written"),
        "{message}"
    );
    // Nothing was recorded.
    let (status, got) = w.call("viewer", Method::GET, "/v1/runs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, json!([]));
}

/// `// key: value` lines at the top of a corpus file.
fn header(source: &str) -> HashMap<String, String> {
    source
        .lines()
        .map_while(|l| l.strip_prefix("// "))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// Every field of a run record is capped where the record is made: each
/// file of `tests/run-records` produces one oversize field and states the
/// run's status, its error code, the field and its cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_a_run_record_is_capped() {
    let w = world().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/run-records");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&file).unwrap();
        let h = header(&source);
        let name = save(&w, &format!("records/{stem}"), &source, json!({})).await;
        let input = h.get("input-bytes").map_or(Value::Null, |n| {
            Value::String("i".repeat(n.parse().unwrap()))
        });
        let (status, run) = w
            .call(
                "operator",
                Method::POST,
                &format!("/v1/scripts/{name}/run"),
                Some(json!({ "input": input }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stem}: {run}");
        assert_eq!(run["status"], h["status"].as_str(), "{stem}: {run}");
        if let Some(code) = h.get("code") {
            assert_eq!(run["error"]["code"], code.as_str(), "{stem}: {run}");
        }
        // A string's own bytes; anything else as JSON text.
        let field = match run.pointer(&h["field"]).unwrap() {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let max: usize = h["max-bytes"].parse().unwrap();
        assert!(
            field.len() <= max && field.contains("truncated"),
            "{stem}: `{}` is {} bytes: {}",
            h["field"],
            field.len(),
            &field[..field.len().min(200)]
        );
        if stem == "input-echo" {
            assert_eq!(run["result"], 1_000_000, "the run got all of its input");
        }
    }
    // The listing holds all of them, each within its caps.
    let (status, list) = w.call("viewer", Method::GET, "/v1/runs", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.to_string().len() < 200_000,
        "{}",
        list.to_string().len()
    );
}

/// GET with the headers of the answer.
async fn get_with_headers(w: &World, as_: &str, path: &str) -> (StatusCode, Option<String>, Value) {
    let res = w.api.response(Some(as_), Method::GET, path, None).await;
    let next = res
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = citadel_testkit::http::json(res).await;
    (status, next, body)
}

/// Listings are paged by size as well as by count: twelve runs of 700 KB
/// each do not come in one answer even when the count allows it, and
/// following `X-Next-Cursor` yields each run once. Jobs page the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_paged_by_size_as_well_as_count() {
    let w = world().await;
    let name = save(&w, "big", "return 'x'.repeat(700000);", json!({})).await;
    for _ in 0..12 {
        let (status, got) = w
            .call(
                "operator",
                Method::POST,
                &format!("/v1/scripts/{name}/run"),
                Some("{}".into()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
    }
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/v1/runs?limit=1000".to_owned();
    loop {
        let (status, next, page) = get_with_headers(&w, "viewer", &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page.as_array().unwrap().clone();
        assert!(
            page.len() <= 6,
            "a page holds about 4 MiB: {} runs",
            page.len()
        );
        pages.push(page.len());
        seen.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match next {
            Some(cursor) => path = format!("/v1/runs?limit=1000&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12, "{pages:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "each run once: {pages:?}");
    // A count limit alone also gives a cursor.
    let (_, next, page) = get_with_headers(&w, "viewer", "/v1/runs?limit=1").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(next.as_deref(), page[0]["id"].as_str());
    // Jobs: the same cursor, by count here (job rows are small).
    for _ in 0..3 {
        start(&w, &name, r#"{"wait":false}"#).await;
    }
    let (status, next, first) = get_with_headers(&w, "viewer", "/v1/jobs?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first.as_array().unwrap().len(), 2);
    let cursor = next.expect("a cursor after a full page");
    assert_eq!(first[1]["id"].as_str(), Some(cursor.as_str()));
    let (_, next, rest) =
        get_with_headers(&w, "viewer", &format!("/v1/jobs?limit=2&before={cursor}")).await;
    assert_eq!(rest.as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(next, None);
    assert_ne!(rest[0]["id"], first[0]["id"]);
    assert_ne!(rest[0]["id"], first[1]["id"]);
}

/// A run emits at most `events_per_run` events (`limit_exceeded` past it),
/// and a tenant's runs at most `events_per_minute` (`rate_limited`), so an
/// event fan-out is bounded in breadth as well as depth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitting_events_is_capped_per_run_and_rated_per_tenant() {
    let w = world_with(citadel_engine::Quotas {
        events_per_run: 3,
        events_per_minute: 4,
        ..citadel_engine::Quotas::default()
    })
    .await;
    let name = save(
        &w,
        "emitter",
        "const codes = [];\nfor (let i = 0; i < 5; i++) {\n  try { await api.events.emit('tick', { i }); codes.push('ok'); }\n  catch (e) { codes.push(e.code); }\n}\nreturn codes;",
        json!({"events": {"emit": ["tick"]}}),
    )
    .await;
    let path = format!("/v1/scripts/{name}/run");
    let run = || async {
        let (status, got) = w
            .call("operator", Method::POST, &path, Some("{}".into()))
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["status"], "succeeded", "{got}");
        got["result"].clone()
    };
    assert_eq!(
        run().await,
        json!(["ok", "ok", "ok", "limit_exceeded", "limit_exceeded"])
    );
    // One of the tenant's four a minute is left.
    assert_eq!(
        run().await,
        json!([
            "ok",
            "rate_limited",
            "rate_limited",
            "limit_exceeded",
            "limit_exceeded"
        ])
    );
    // Only the events let through were published.
    let published = events(&w).await;
    assert_eq!(published.len(), 4, "{published:?}");
}

/// Opens a run's event stream as the viewer.
async fn open_stream(w: &World, id: &str) -> axum::response::Response {
    w.api
        .response(
            Some("viewer"),
            Method::GET,
            &format!("/v1/runs/{id}/events"),
            None,
        )
        .await
}

async fn metric(w: &World, name: &str) -> String {
    let text = w.api.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no `{name}` in {text}"))
        .to_owned()
}

/// Event streams of runs in flight on this node are pushed by the engine
/// (each stream reads the database once, for the final record, however
/// long the run takes), and a tenant has at most `streams` open (429
/// `too_many_streams` past it; a closed stream frees its slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_are_pushed_and_capped_per_tenant() {
    let w = world_with(citadel_engine::Quotas {
        streams: 2,
        ..citadel_engine::Quotas::default()
    })
    .await;
    let name = save(
        &w,
        "sleeper",
        "console.log('waiting');\nawait api.sleep(30000);\nreturn 1;",
        json!({"sleep": true}),
    )
    .await;
    let id = start(&w, &name, r#"{"wait": false, "timeout_ms": 40000}"#).await;
    in_flight(&w, &id).await;
    let a = open_stream(&w, &id).await;
    assert_eq!(a.status(), StatusCode::OK);
    let b = open_stream(&w, &id).await;
    assert_eq!(b.status(), StatusCode::OK);
    let refused = open_stream(&w, &id).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got["error"]["code"], "too_many_streams", "{got}");
    drop(b);
    let c = open_stream(&w, &id).await;
    assert_eq!(c.status(), StatusCode::OK, "a closed stream frees its slot");
    let mut a = a.into_body();
    let mut text = String::new();
    while !text.contains("\"message\":\"waiting\"") {
        let frame = a.frame().await.unwrap().unwrap();
        if let Some(data) = frame.data_ref() {
            text.push_str(std::str::from_utf8(data).unwrap());
        }
    }
    let (status, got) = w
        .call(
            "operator",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    for body in [a, c.into_body()] {
        let rest = body.collect().await.unwrap().to_bytes();
        let rest = std::str::from_utf8(&rest).unwrap();
        assert!(
            rest.contains("event: status\ndata: {\"status\":\"cancelled\"}"),
            "{rest}"
        );
        assert!(rest.contains("event: run\n"), "{rest}");
    }
    assert_eq!(metric(&w, "citadel_run_stream_polls_total").await, "2");
}

/// A client that goes away while its synchronous run is in flight (the
/// handler's future is dropped, as hyper drops it on a closed connection
/// and the request timeout does when it fires) leaves no slot taken: with
/// one run allowed at once, the next run is admitted, and the dropped run
/// is recorded `cancelled` with `caller_gone` instead of being lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_frees_its_run_slot() {
    let w = world_with(citadel_engine::Quotas {
        concurrent_runs: 1,
        ..citadel_engine::Quotas::default()
    })
    .await;
    save(
        &w,
        "nap",
        "if (input.sleep) await api.sleep(input.sleep);\nreturn input;",
        json!({"sleep": true}),
    )
    .await;
    let first = w.api.response(
        Some("operator"),
        Method::POST,
        "/v1/scripts/nap/run",
        Some(json!({ "input": { "sleep": 60000 }, "timeout_ms": 60000 }).to_string()),
    );
    tokio::select! {
        res = first => panic!("the sleeping run answered first: {:?}", res.status()),
        () = async {
            while metric(&w, "citadel_runs_in_flight").await != "1" {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }

    let (status, second) = w
        .call(
            "operator",
            Method::POST,
            "/v1/scripts/nap/run",
            Some(json!({ "input": { "n": 2 } }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "succeeded");
    assert_eq!(second["result"], json!({ "n": 2 }));
    assert_eq!(metric(&w, "citadel_runs_in_flight").await, "0");

    let (status, cancelled) = w
        .call("viewer", Method::GET, "/v1/runs?status=cancelled", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "{cancelled}");
    let id = cancelled[0]["id"].as_str().unwrap();
    let (status, run) = w
        .call("viewer", Method::GET, &format!("/v1/runs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["error"]["code"], "caller_gone");
    assert_eq!(
        run["error"]["message"],
        "the caller went away before the run finished"
    );
}

/// `POST /v1/scripts/{name}/run:batch` as the operator; the status and body.
async fn batch(w: &World, name: &str, body: Value) -> (StatusCode, Value) {
    w.call(
        "operator",
        Method::POST,
        &format!("/v1/scripts/{name}/run:batch"),
        Some(body.to_string()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_queues_one_run_per_item_keys_per_item_and_refuses_whole() {
    let w = world().await;
    let name = save(&w, "batched", "return input.n * 2;", json!({})).await;
    let (status, got) = batch(
        &w,
        &name,
        json!({"items": [
            {"input": {"n": 1}, "idempotency_key": "k1"},
            {"input": {"n": 2}, "idempotency_key": "k2"},
            {"input": {"n": 3}},
            {"input": {"n": 4}, "idempotency_key": "k1"}
        ], "priority": "high"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    let runs = got["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{got}");
    let duplicates: Vec<&Value> = runs.iter().map(|r| &r["duplicate"]).collect();
    assert_eq!(duplicates, [false, false, false, true]);
    // A key used earlier in the batch answers that item's run.
    assert_eq!(runs[3]["run_id"], runs[0]["run_id"]);
    for (run, want) in runs[..3].iter().zip([2, 4, 6]) {
        let run = finished(&w, run["run_id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["result"], want, "{run}");
        assert_eq!(run["trigger"], "api_async");
    }

    // Keys used by an earlier batch answer its runs; new ones queue.
    let (status, again) = batch(
        &w,
        &name,
        json!({"items": [{"input": {"n": 9}, "idempotency_key": "k2"}, {"input": {"n": 5}, "idempotency_key": "k3"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["runs"][0]["run_id"], runs[1]["run_id"]);
    assert_eq!(again["runs"][0]["duplicate"], true);
    assert_eq!(again["runs"][1]["duplicate"], false);
    let fifth = finished(&w, again["runs"][1]["run_id"].as_str().unwrap()).await;
    assert_eq!(fifth["result"], 10);
    assert_eq!(runs_of(&w, "batched").await, 4);

    // Refusals queue nothing.
    let too_many: Vec<Value> = (0..1001).map(|n| json!({"input": n})).collect();
    for (body, status_want, code, message) in [
        (
            json!({"items": []}),
            400,
            "invalid",
            "a batch holds 1 to 1000 items (got 0)",
        ),
        (
            json!({"items": too_many}),
            400,
            "invalid",
            "a batch holds 1 to 1000 items (got 1001)",
        ),
        (
            json!({"items": [{"input": 1}, {"input": 2, "idempotency_key": ""}]}),
            400,
            "invalid",
            "items[1]: idempotency_key must be 1–200 bytes",
        ),
        (
            json!({"items": [{"input": 1}], "timeout_ms": 0}),
            400,
            "invalid",
            "timeout_ms must be between 1 and the platform maximum 60000 (got 0)",
        ),
    ] {
        let (status, got) = batch(&w, &name, body).await;
        assert_eq!(status.as_u16(), status_want, "{got}");
        assert_eq!(got["error"]["code"], code, "{got}");
        assert_eq!(got["error"]["message"], message, "{got}");
    }
    let (status, got) = batch(&w, &name, json!({"items": [{"inputs": 1}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["error"]["code"], "invalid", "{got}");
    let (status, got) = batch(&w, "nothing-here", json!({"items": [{"input": 1}]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{got}");
    let (status, got) = w
        .call(
            "viewer",
            Method::POST,
            &format!("/v1/scripts/{name}/run:batch"),
            Some(json!({"items": [{"input": 1}]}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{got}");
    assert_eq!(got["error"]["code"], "forbidden", "{got}");
    assert_eq!(runs_of(&w, "batched").await, 4);
}

/// How many runs of the script are listed.
async fn runs_of(w: &World, script: &str) -> usize {
    let (status, list) = w
        .call(
            "viewer",
            Method::GET,
            &format!("/v1/runs?script={script}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().len()
}
