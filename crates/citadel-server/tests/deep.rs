//! Deeply nested input through a real in-process server: script sources
//! (the `tests/deep/` corpus and generated ones), request bodies, run
//! inputs, results and capability arguments. Every request is handled on a
//! runtime worker thread, with the worker's ordinary stack, as in `serve`;
//! each must get its typed answer and the server must keep answering.
//! Before the analyzer's nesting limits, the first deep save aborted the
//! whole test process with a stack overflow.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use citadel_analyzer::{MAX_DEPTH, NESTING_RULE};
use citadel_engine::EngineConfig;
use citadel_server::HttpSettings;
use citadel_testkit::{Api, TestDb};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};
use tower::ServiceExt;

struct World {
    /// The caller `owner`.
    api: Api,
    _db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let tenant = db.tenant("acme").await;
    let owner = citadel_testkit::token(db.store.as_ref(), &tenant, "owner").await;
    let engine = citadel_testkit::engine(&db.store, 1, EngineConfig::default());
    let config = HttpSettings {
        body_limit_bytes: 2 << 20,
        ..HttpSettings::default()
    };
    let mut api = Api::new(Arc::clone(&db.store), Some(engine), &config);
    api.add_caller("owner", owner);
    World { api, _db: db }
}

impl World {
    /// One request as the owner, handled on a runtime worker thread.
    async fn on_worker(&self, method: Method, path: &str, body: Option<String>) -> Response<Body> {
        let req = self.api.request(Some("owner"), method, path, body);
        tokio::spawn(self.api.router().clone().oneshot(req))
            .await
            .expect("the request's task ended without an answer")
            .unwrap()
    }

    /// One request, handled on a runtime worker thread.
    async fn call(&self, method: Method, path: &str, body: Option<String>) -> (StatusCode, Value) {
        citadel_testkit::http::json(self.on_worker(method, path, body).await).await
    }

    async fn save(&self, name: &str, source: &str, language: &str) -> (StatusCode, Value) {
        let body = json!({
            "name": name,
            "source": source,
            "language": language,
            "capabilities": {"kv": true},
        });
        self.call(Method::POST, "/v1/scripts", Some(body.to_string()))
            .await
    }

    async fn run(&self, name: &str, input: &str) -> (StatusCode, Value) {
        let body = format!(r#"{{"input": {input}}}"#);
        self.call(Method::POST, &format!("/v1/scripts/{name}/run"), Some(body))
            .await
    }

    /// The server still saves and runs scripts.
    async fn still_serves(&self) {
        let (status, body) = self.save("alive", "return input.n + 1;", "js").await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status} {body}"
        );
        let (status, run) = self.run("alive", r#"{"n": 41}"#).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["result"], json!(42), "{run}");
    }
}

/// The single nesting diagnostic of a rejected save: (line, column).
fn refused_at(status: StatusCode, body: &Value) -> Option<(u64, u64)> {
    if status != StatusCode::UNPROCESSABLE_ENTITY || body["error"]["code"] != "rejected" {
        return None;
    }
    let diagnostics = body["error"]["details"]["diagnostics"].as_array()?;
    match diagnostics.as_slice() {
        [d] if d["rule"] == NESTING_RULE && d["severity"] == "error" => {
            Some((d["line"].as_u64()?, d["column"].as_u64()?))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deep_corpus_is_refused_through_the_api_and_the_server_stays_up() {
    let w = world().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/deep");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus is missing");
    let mut failures = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let expect = source
            .lines()
            .find_map(|l| l.strip_prefix("// expect: "))
            .unwrap()
            .to_owned();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let (stem, ext) = file.rsplit_once('.').unwrap();
        let name = format!("deep/{}-{ext}", stem.replace('_', "-"));
        let (status, body) = w.save(&name, &source, ext).await;
        let ok = if expect == "none" {
            status == StatusCode::CREATED
        } else {
            let (line, column) = expect
                .strip_prefix(&format!("{NESTING_RULE}@"))
                .and_then(|at| at.split_once(':'))
                .unwrap_or_else(|| panic!("{file}: unexpected expectation {expect}"));
            refused_at(status, &body) == Some((line.parse().unwrap(), column.parse().unwrap()))
        };
        if !ok {
            failures.push(format!("{file}: {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    w.still_serves().await;
}

/// Layers that each add one level to the syntax tree.
const JS_LAYERS: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a:", "}"),
    ("(x=>", ")"),
    ("!", ""),
    ("typeof ", ""),
    ("f(", ")"),
    ("`${", "}`"),
    ("a?b:", ""),
    ("(()=>{return ", "})"),
];
const TS_LAYERS: &[(&str, &str)] = &[
    ("A<", ">"),
    ("{a:", "}"),
    ("(()=>", ")"),
    ("keyof ", ""),
    ("(", ")"),
    ("[", "]"),
];

/// A script of `width` statements, each nested `picks.len()` levels deep.
fn source(ts: bool, picks: &[usize], width: usize) -> String {
    let layers = if ts { TS_LAYERS } else { JS_LAYERS };
    let (mut open, mut close) = (String::new(), String::new());
    for &i in picks {
        let (o, c) = layers[i % layers.len()];
        open.push_str(o);
        close.insert_str(0, c);
    }
    let statement = if ts {
        format!("type T{{}} = {open}number{close};\n")
    } else {
        format!("let v{{}} = {open}1{close};\n")
    };
    let mut src = String::new();
    for i in 0..width {
        src.push_str(&statement.replace("{}", &i.to_string()));
    }
    src.push_str("return 1;");
    src
}

#[test]
fn generated_deep_and_wide_saves_answer_and_the_server_stays_up() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let w = rt.block_on(world());
    let mut runner = TestRunner::new(ProptestConfig::with_cases(48));
    let strategy = (
        prop_oneof![
            proptest::collection::vec(0usize..64, 0..60),
            proptest::collection::vec(0usize..64, 0..4000),
        ],
        any::<bool>(),
        1usize..40,
    );
    let case = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(picks, ts, width)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let src = source(ts, &picks, width);
            let name = format!("generated/case-{n}");
            let (status, body) = rt.block_on(w.save(&name, &src, if ts { "ts" } else { "js" }));
            let levels = picks.len() as u32;
            if levels > MAX_DEPTH {
                prop_assert!(
                    refused_at(status, &body).is_some(),
                    "{levels} levels: {status} {body}"
                );
            } else if levels < 40 {
                prop_assert_eq!(status, StatusCode::CREATED, "{}", body);
            } else {
                prop_assert!(
                    status == StatusCode::CREATED || refused_at(status, &body).is_some(),
                    "{levels} levels: {status} {body}"
                );
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(w.still_serves());
}

/// `n` arrays nested around `1`.
fn nested(n: usize) -> String {
    format!("{}1{}", "[".repeat(n), "]".repeat(n))
}

impl World {
    /// A run's answer as raw text: deep results are valid JSON that serde_json
    /// (and so `call`) refuses to parse past 128 levels.
    async fn run_raw(&self, name: &str, input: &str) -> (StatusCode, String) {
        let res = self
            .on_worker(
                Method::POST,
                &format!("/v1/scripts/{name}/run"),
                Some(format!(r#"{{"input": {input}}}"#)),
            )
            .await;
        (res.status(), citadel_testkit::http::text(res).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_in_bodies_inputs_results_and_arguments_gets_typed_answers() {
    let w = world().await;
    // Request bodies: serde_json stops at 128 levels, a 400 `invalid`.
    for field in ["capabilities", "limits"] {
        let body = format!(
            r#"{{"name": "x", "source": "return 1;", "{field}": {}}}"#,
            nested(100_000)
        );
        let (status, got) = w.call(Method::POST, "/v1/scripts", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
        assert_eq!(got["error"]["code"], "invalid", "{got}");
    }
    // Run inputs and event data pass through as text (serde_json skips over
    // a raw value without recursing); the isolate parses them under its own
    // stack limit, so a deep one fails that run with a typed error.
    let (status, got) = w
        .call(
            Method::POST,
            "/v1/events",
            Some(format!(r#"{{"type": "a.b", "data": {}}}"#, nested(100_000))),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    assert_eq!(
        w.save("echo", "return input;", "js").await.0,
        StatusCode::CREATED
    );
    let (status, run) = w.run_raw("echo", &nested(1000)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(run.contains(r#""status":"succeeded""#), "{run:.300}");
    assert!(
        run.contains(&format!(r#""result":{}"#, nested(1000))),
        "{run:.300}"
    );
    let (status, run) = w.run_raw("echo", &nested(1_000_000)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(run.contains(r#""status":"failed""#), "{run:.300}");
    assert!(run.contains(r#""code":"stack_overflow""#), "{run:.300}");

    // Results and capability arguments built by the script.
    let build = "let v = 1; for (let i = 0; i < input.n; i++) v = [v];";
    let src = format!("{build} return v;");
    assert_eq!(w.save("result", &src, "js").await.0, StatusCode::CREATED);
    let (_, run) = w.run("result", r#"{"n": 100000}"#).await;
    assert_eq!(run["status"], "failed", "{run}");
    // Serialising it runs out of the isolate's stack: that limit's own code.
    assert_eq!(run["error"]["code"], "stack_overflow", "{run}");
    let src =
        format!("{build} try {{ await api.kv.set('k', v); }} catch (e) {{ return e.message; }}");
    assert_eq!(w.save("argument", &src, "js").await.0, StatusCode::CREATED);
    let (_, run) = w.run("argument", r#"{"n": 1000}"#).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["result"], "the arguments of `kv.set` nest deeper than 128 levels",
        "{run}"
    );
    w.still_serves().await;
}
