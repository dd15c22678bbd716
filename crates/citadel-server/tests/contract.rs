//! The API contract as a client sees it: the served OpenAPI document is
//! valid (checked by an independent validator) and free of the defects a
//! generated client trips on; a client generated from it by a third-party
//! generator drives the README's walkthrough; run event streams resume
//! after `Last-Event-ID`; `/metrics` lists every job state.
//!
//! The Python steps need `python3` with `openapi-spec-validator` and
//! `openapi-python-client` (`.ci/run` installs them). Without them the
//! steps print SKIPPED, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use citadel_engine::{EngineConfig, RUN_STATUSES};
use citadel_server::HttpSettings;
use citadel_store::Store;
use citadel_testkit::{Api, TestDb};
use serde_json::{Value, json};

struct World {
    /// Callers by role: `owner`, `viewer`.
    api: Api,
    store: Arc<dyn Store>,
    acme: String,
    db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let tokens = citadel_testkit::tokens(store.as_ref(), &acme, &["owner", "viewer"]).await;
    let engine = citadel_testkit::engine(&store, 2, EngineConfig::default());
    let api =
        Api::new(Arc::clone(&store), Some(engine), &HttpSettings::default()).with_callers(tokens);
    World {
        api,
        store,
        acme,
        db,
    }
}

impl World {
    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let res = self.api.send(req).await;
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, citadel_testkit::http::text(res).await)
    }

    async fn document(&self) -> Value {
        let req = Request::get("/v1/openapi.json")
            .body(Body::empty())
            .unwrap();
        let (status, _, text) = self.send(req).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_str(&text).unwrap()
    }
}

/// The operations of a document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// A `$ref` resolved within the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("`{r}` does not resolve"))
        }
        None => v,
    }
}

/// Each defect a generated client tripped on, as a class: checked for every
/// operation, response, parameter and schema of the served document.
#[tokio::test]
async fn the_served_document_has_none_of_the_defects_clients_trip_on() {
    let w = world().await;
    let doc = w.document().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let mut problems = Vec::new();
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    if (&scheme["type"], &scheme["scheme"]) != (&json!("http"), &json!("bearer")) {
        problems.push(format!("no bearer security scheme: {scheme}"));
    }
    for name in ["TooManyRequests", "Unavailable"] {
        let header = &doc["components"]["responses"][name]["headers"]["Retry-After"];
        if header["schema"]["type"] != "integer" {
            problems.push(format!("{name} has no `Retry-After` header"));
        }
    }
    for (path, method, op) in operations(&doc) {
        let at = format!("{} {path}", method.to_uppercase());
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = resolve(&doc, response);
            if response["description"].as_str().unwrap_or("").is_empty() {
                problems.push(format!("{at}: response {status} has no description"));
            }
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                if schema != "#/components/schemas/ErrorBody" {
                    problems.push(format!("{at}: error {status} is not an ErrorBody"));
                }
            }
        }
        let declares = |status: &str| responses.contains_key(status);
        let mut must = Vec::new();
        for p in op["parameters"].as_array().into_iter().flatten() {
            let p = resolve(&doc, p);
            let name = p["name"].as_str().unwrap();
            match p["in"].as_str().unwrap() {
                "path" => {
                    if !path.contains(&format!("{{{name}}}")) {
                        problems.push(format!("{at}: `{name}` is not in the path but `in: path`"));
                    }
                    must.extend(["400", "404"]);
                }
                "query" => must.push("400"),
                _ => {}
            }
        }
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = &segment[1..segment.len() - 1];
            let declared = op["parameters"].as_array().into_iter().flatten().any(|p| {
                let p = resolve(&doc, p);
                p["in"] == "path" && p["name"] == name
            });
            if !declared {
                problems.push(format!("{at}: path parameter `{name}` is not declared"));
            }
        }
        if op.get("requestBody").is_some() {
            must.extend(["400", "413", "415"]);
        }
        let needs_token =
            path.starts_with("/v1/") && path != "/v1/login" && path != "/v1/embed/exchange";
        if needs_token {
            if op["security"] != json!([{ "bearer": [] }]) {
                problems.push(format!("{at}: no bearer security requirement"));
            }
            must.extend(["401", "429", "503"]);
            // Any valid token may call these: no permission is checked.
            if !matches!(path.as_str(), "/v1/templates" | "/v1/me" | "/v1/logout") {
                must.push("403");
            }
        } else if op.get("security").is_some() {
            problems.push(format!("{at}: a public route asks for a token"));
        }
        for status in must {
            if !declares(status) {
                problems.push(format!("{at}: can answer {status} but does not say so"));
            }
        }
    }
    // Fields a client reads as any JSON value, `null` included.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("RunView", "input"),
        ("RunView", "result"),
        ("RunView", "error"),
        ("EventView", "data"),
        ("RunBody", "input"),
        ("NewEvent", "data"),
    ] {
        let s = &schemas[schema]["properties"][field];
        if s.is_null() || s.get("type").is_some() || s.get("$ref").is_some() {
            problems.push(format!("{schema}.{field} is not any JSON: {s}"));
        }
    }
    // No field is a bare `object` placeholder: an object with nothing said
    // of its members is what a JSON field typed as `Object` rendered as.
    for (name, schema) in schemas.as_object().unwrap() {
        for (field, s) in schema["properties"].as_object().into_iter().flatten() {
            let bare = |s: &Value| {
                s["type"] == "object"
                    && s.get("properties").is_none()
                    && s.get("additionalProperties").is_none()
            };
            if bare(s) || bare(&s["items"]) {
                problems.push(format!("{name}.{field} is a bare object: {s}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Statuses and states are enums.
    let run_status = resolve(&doc, &schemas["RunView"]["properties"]["status"]);
    let statuses: Vec<&str> = run_status["enum"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(statuses, RUN_STATUSES, "RunView.status");
    for (schema, field, enum_name) in [
        ("JobView", "state", "JobState"),
        ("JobView", "priority", "Priority"),
        ("VersionView", "state", "ReviewState"),
        ("VersionView", "language", "Language"),
        ("NodeView", "state", "NodeState"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["$ref"],
            json!(format!("#/components/schemas/{enum_name}")),
            "{schema}.{field}"
        );
    }
    let list_runs = &doc["paths"]["/v1/runs"]["get"]["parameters"];
    let status_param = list_runs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap();
    assert_eq!(
        (&status_param["in"], &status_param["schema"]["$ref"]),
        (&json!("query"), &json!("#/components/schemas/RunStatus"))
    );
    // Listings say how to page: the cursor header.
    for path in ["/v1/runs", "/v1/jobs"] {
        let ok = &doc["paths"][path]["get"]["responses"]["200"];
        assert_eq!(
            ok["headers"]["X-Next-Cursor"]["schema"]["type"], "string",
            "{path}"
        );
    }
    // Answers that declare what the server sends besides the shared errors.
    let run = &doc["paths"]["/v1/scripts/{name}/run"]["post"]["responses"];
    for status in ["200", "202", "409", "423", "429"] {
        assert!(run.get(status).is_some(), "run answers {status}");
    }
}

/// Whether the CI run is on: a missing tool then fails the test.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks a tool the test needs: present, or SKIPPED (a failure in CI).
fn have(what: &str, mut probe: Command) -> bool {
    let ok = probe.output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        assert!(
            !in_ci(),
            "{what} is missing; under CI=true this test does not skip \
             (pip install openapi-spec-validator openapi-python-client)"
        );
        eprintln!(
            "SKIPPED: {what} is missing (pip install openapi-spec-validator openapi-python-client)"
        );
    }
    ok
}

fn python_module(module: &str) -> Command {
    let mut c = Command::new("python3");
    c.args(["-c", &format!("import {module}")]);
    c
}

fn run(mut command: Command) -> String {
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn write_document(doc: &Value, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("openapi.json");
    let text = serde_json::to_string_pretty(doc).unwrap();
    std::fs::write(&file, &text).unwrap();
    file
}

/// The served document passes an independent OpenAPI 3.1 validator.
#[tokio::test]
async fn the_served_document_validates() {
    let w = world().await;
    let doc = w.document().await;
    let file = write_document(&doc, w.db.dir());
    // `.ci/run` also validates the served document with the validator's
    // own command line.
    if let Ok(out) = std::env::var("CITADEL_OPENAPI_OUT") {
        std::fs::write(out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
    if !have(
        "python3 with openapi-spec-validator",
        python_module("openapi_spec_validator"),
    ) {
        return;
    }
    let mut validate = Command::new("python3");
    validate.args(["-m", "openapi_spec_validator"]).arg(&file);
    let out = run(validate);
    assert!(out.contains(": OK"), "{out}");
}

/// A client generated from the served document by openapi-python-client
/// runs the README's walkthrough (`tests/client/walkthrough.py`) against
/// a served node: save, run sync and async, read, list by status, publish
/// an event, read the audit, typed errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_drives_the_walkthrough() {
    let w = world().await;
    let file = write_document(&w.document().await, w.db.dir());
    let mut generator = Command::new("openapi-python-client");
    generator.arg("--version");
    if !have("python3 with httpx", python_module("httpx"))
        || !have("openapi-python-client", generator)
    {
        return;
    }
    let package = w.db.dir().join("generated").join("citadel_client");
    let mut generate = Command::new("openapi-python-client");
    generate
        .args(["generate", "--meta", "none", "--overwrite", "--path"])
        .arg(&file)
        .arg("--output-path")
        .arg(&package);
    let out = run(generate);
    assert!(!out.contains("Warning"), "the generator warned:\n{out}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let state = w.api.state().clone();
        async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            citadel_server::serve_with(listener, state, &HttpSettings::default(), shutdown).await
        }
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/client/walkthrough.py");
    let mut walk = tokio::process::Command::new("python3");
    walk.arg(&script)
        .env("PYTHONPATH", package.parent().unwrap())
        .env("CITADEL_URL", &url)
        .env("CITADEL_TOKEN", &w.api.token("owner").secret);
    let out = walk.output().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "walkthrough ok");
    // What the client did is on the record, as the walkthrough said.
    let runs = w
        .store
        .list_runs(&citadel_store::RunQuery {
            tenant_id: w.acme.clone(),
            script_name: Some("billing/on-paid".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let triggers: Vec<&str> = runs.iter().map(|r| r.trigger.as_str()).collect();
    assert_eq!(triggers, ["api_async", "api"]);
}

/// Saves `source` as `name` (live at once) and runs it to the end.
async fn finished_run(w: &World, name: &str, source: &str) -> Value {
    let (status, got) = w
        .api
        .call_json(
            "owner",
            Method::POST,
            "/v1/scripts",
            Some(json!({ "name": name, "source": source })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    let (status, run) = w
        .api
        .call_json(
            "owner",
            Method::POST,
            &format!("/v1/scripts/{name}/run"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    run
}

/// A run's event stream, read to its end: (status, events as
/// (id, event, data)).
async fn stream(
    w: &World,
    id: &str,
    last_event_id: Option<&str>,
) -> (StatusCode, Vec<(String, String, Value)>) {
    let mut req = w.api.builder(
        Some("viewer"),
        Method::GET,
        &format!("/v1/runs/{id}/events"),
    );
    if let Some(last) = last_event_id {
        req = req.header("last-event-id", last);
    }
    let (status, _, text) = tokio::time::timeout(
        Duration::from_secs(30),
        w.send(req.body(Body::empty()).unwrap()),
    )
    .await
    .expect("the stream of a finished run ends");
    let events = text
        .split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::to_owned)
            };
            let event = field("event")?;
            let data = field("data").unwrap_or_default();
            let data = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("{event} data is not JSON ({e}): {data}"));
            Some((field("id").unwrap_or_default(), event, data))
        })
        .collect();
    (status, events)
}

fn kinds(events: &[(String, String, Value)]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|(id, event, _)| (id.as_str(), event.as_str()))
        .collect()
}

/// Every event has an id and JSON data (`status` events too); a stream
/// opened with `Last-Event-ID` sends only what came after that event, and
/// nothing (204) after the final one; an id the stream never sends is a
/// typed error. The cases are `tests/api/last-event-id.json`, each with the
/// exact answer, on a finished run that logged three lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_resume_after_the_last_event_id() {
    let w = world().await;
    let run = finished_run(
        &w,
        "steps",
        "console.log('one'); console.log('two'); console.log('three'); return 3;",
    )
    .await;
    let id = run["id"].as_str().unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/api/last-event-id.json");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(corpus).unwrap()).unwrap();
    assert!(cases.len() >= 10);
    for case in &cases {
        let name = case["case"].as_str().unwrap();
        let last = case["last_event_id"].as_str();
        let want = StatusCode::from_u16(case["status"].as_u64().unwrap() as u16).unwrap();
        if let Some(code) = case.get("code") {
            let mut req = w.api.builder(
                Some("viewer"),
                Method::GET,
                &format!("/v1/runs/{id}/events"),
            );
            if let Some(last) = last {
                req = req.header("last-event-id", last);
            }
            let (status, _, text) = w.send(req.body(Body::empty()).unwrap()).await;
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert_eq!(
                (status, &body["error"]["code"]),
                (want, code),
                "{name}: {body}"
            );
            continue;
        }
        let (status, events) = stream(&w, id, last).await;
        assert_eq!(status, want, "{name}");
        let expected: Vec<(&str, &str)> = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap(), e[1].as_str().unwrap()))
            .collect();
        assert_eq!(kinds(&events), expected, "{name}");
        for (event_id, event, data) in &events {
            match event.as_str() {
                "status" => assert_eq!(data, &json!({ "status": "succeeded" }), "{name}"),
                "log" => {
                    let n: usize = event_id.rsplit_once('.').unwrap().1.parse().unwrap();
                    assert_eq!(data["message"], ["one", "two", "three"][n - 1], "{name}");
                }
                _ => assert_eq!(
                    (&data["id"], &data["result"]),
                    (&json!(id), &json!(3)),
                    "{name}"
                ),
            }
        }
    }
}

/// `citadel_jobs{state}` has a line for every job state, 0 included, so a
/// dashboard's series do not vanish when a state empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_metrics_list_every_state() {
    let w = world().await;
    let metrics = |w: &World| {
        let api = w.api.clone();
        async move {
            let text = api.metrics().await;
            text.lines()
                .filter_map(|l| l.strip_prefix("citadel_jobs{state=\""))
                .map(|l| {
                    let (state, n) = l.split_once("\"} ").unwrap();
                    (state.to_owned(), n.parse::<i64>().unwrap())
                })
                .collect::<Vec<_>>()
        }
    };
    let zero: Vec<(String, i64)> = [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "dead",
    ]
    .iter()
    .map(|s| ((*s).to_owned(), 0))
    .collect();
    assert_eq!(metrics(&w).await, zero);
    // One finished asynchronous run: its job counts as succeeded, the
    // other states stay, at 0.
    let (status, got) = w
        .api
        .call_json(
            "owner",
            Method::POST,
            "/v1/scripts",
            Some(json!({ "name": "one", "source": "return 1;" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    let (status, got) = w
        .api
        .call_json(
            "owner",
            Method::POST,
            "/v1/scripts/one/run",
            Some(json!({"wait": false})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    let id = got["run_id"].as_str().unwrap().to_owned();
    for _ in 0..1000 {
        let (_, run) = w
            .api
            .call_json("owner", Method::GET, &format!("/v1/runs/{id}"), None)
            .await;
        if run["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut want = zero.clone();
    want[2].1 = 1;
    for _ in 0..1000 {
        if metrics(&w).await == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics(&w).await, want);
}
