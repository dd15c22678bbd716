//! The sandbox's public API at its boundary: runs, the compile cache, hosts,
//! cancellation, logs and limits, each asserting the exact outcome.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use citadel_sandbox::{
    CancelToken, Capability, ErrorKind, Grants, Host, HostCall, HostError, HostFuture, Language,
    Limits, LogLevel, NoHost, RunOutcome, RunRequest, RunStatus, Sandbox,
};
use serde_json::{Value, json};

async fn run_with(
    sandbox: &Sandbox,
    source: &str,
    input: &str,
    limits: Limits,
    grants: Grants,
    host: Rc<dyn Host>,
) -> RunOutcome {
    let script = sandbox.load(source, Language::Js);
    sandbox
        .run(
            &script,
            RunRequest {
                input_json: input,
                limits,
                grants,
                host,
                cancel: None,
            },
        )
        .await
}

async fn run(source: &str, input: &str) -> RunOutcome {
    run_with(
        &Sandbox::default(),
        source,
        input,
        Limits::default(),
        Grants::NONE,
        Rc::new(NoHost),
    )
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn hello_run_returns_its_result_and_measurements() {
    let out = run(
        "return {processed: [1,2,3].map(x => x * input.k).length, k: input.k}",
        r#"{"k": 2}"#,
    )
    .await;
    assert_eq!(out.status, RunStatus::Succeeded);
    assert_eq!(out.result_value(), json!({"processed": 3, "k": 2}));
    assert_eq!(out.error, None);
    assert!(out.peak_memory_bytes > 0);
    assert!(out.cpu <= out.duration + Duration::from_millis(5));
}

#[tokio::test(flavor = "current_thread")]
async fn unchanged_source_is_compiled_once() {
    let sandbox = Sandbox::default();
    for _ in 0..3 {
        let out = run_with(
            &sandbox,
            "return 1",
            "null",
            Limits::default(),
            Grants::NONE,
            Rc::new(NoHost),
        )
        .await;
        assert_eq!(out.result_value(), json!(1));
    }
    assert_eq!(sandbox.compilations(), 1);
    // Same text as TypeScript is another entry.
    sandbox.load("return 1", Language::Ts);
    assert_eq!(sandbox.compilations(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn console_levels_go_to_the_log() {
    let out = run("console.log('a', 1, {b: 2}); console.warn('w'); console.error(new Error('e')); return null", "null").await;
    let lines: Vec<_> = out
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(lines[0], (LogLevel::Log, "a 1 {\"b\":2}"));
    assert_eq!(lines[1], (LogLevel::Warn, "w"));
    assert_eq!(lines[2].0, LogLevel::Error);
    assert!(lines[2].1.starts_with("Error: e"), "{}", lines[2].1);
    assert!(!out.logs_truncated);
}

#[tokio::test(flavor = "current_thread")]
async fn log_cap_truncates_at_the_byte_limit() {
    let limits = Limits {
        log_bytes: 10,
        ..Limits::default()
    };
    let out = run_with(
        &Sandbox::default(),
        "console.log('12345678'); console.log('abcdef'); console.log('x'); return 1",
        "null",
        limits,
        Grants::NONE,
        Rc::new(NoHost),
    )
    .await;
    let text: Vec<_> = out.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(text, vec!["12345678", "ab"]);
    assert!(out.logs_truncated);
    assert_eq!(out.result_value(), json!(1));
}

/// A host with a real key-value map, as an embedder would write one.
#[derive(Default, Clone)]
struct MapHost(Rc<MapState>);

#[derive(Default)]
struct MapState {
    kv: RefCell<HashMap<String, Value>>,
    calls: RefCell<Vec<HostCall>>,
}

impl Host for MapHost {
    fn call(&self, call: HostCall) -> HostFuture {
        self.0.calls.borrow_mut().push(call.clone());
        let this = Rc::clone(&self.0);
        Box::pin(async move {
            match call {
                // An entry, as the engine's gateway answers: `{value, version}`.
                HostCall::KvGet { key } => Ok(this
                    .kv
                    .borrow()
                    .get(&key)
                    .map_or(Value::Null, |v| json!({"value": v, "version": 1}))),
                HostCall::KvSet { key, value, .. } => {
                    this.kv.borrow_mut().insert(key, value);
                    Ok(Value::Null)
                }
                HostCall::KvDelete { key, .. } => {
                    Ok(Value::Bool(this.kv.borrow_mut().remove(&key).is_some()))
                }
                HostCall::SecretGet { name } => Err(HostError::denied(&format!("secrets:{name}"))),
                other => Err(HostError::new("unavailable", format!("{other:?}"))),
            }
        })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn granted_capabilities_reach_the_host() {
    let host = MapHost::default();
    let source = "await api.kv.set('a', {n: 1}); const got = await api.kv.get('a'); const gone = await api.kv.delete('a'); return [got, gone, await api.kv.get('a')]";
    let out = run_with(
        &Sandbox::default(),
        source,
        "null",
        Limits::default(),
        Grants::NONE.with(Capability::Kv),
        Rc::new(host.clone()),
    )
    .await;
    assert_eq!(
        out.result_value(),
        json!([{"n": 1}, true, null]),
        "{:?}",
        out.error
    );
    assert_eq!(host.0.calls.borrow().len(), 4);
    assert_eq!(
        host.0.calls.borrow()[0],
        HostCall::KvSet {
            key: "a".into(),
            value: json!({"n": 1}),
            options: Value::Null,
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn ungranted_capability_never_reaches_the_host() {
    let host = MapHost::default();
    let out = run_with(
        &Sandbox::default(),
        "return await api.kv.get('a')",
        "null",
        Limits::default(),
        Grants::NONE,
        Rc::new(host.clone()),
    )
    .await;
    assert_eq!(out.error_kind(), Some(ErrorKind::CapabilityDenied));
    assert_eq!(out.error.as_ref().unwrap().line, Some(1));
    assert!(host.0.calls.borrow().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn host_errors_are_catchable_with_name_and_code() {
    let host = MapHost::default();
    let source =
        "try { await api.secrets.get('X') } catch (e) { return [e.name, e.code, e.message] }";
    let out = run_with(
        &Sandbox::default(),
        source,
        "null",
        Limits::default(),
        Grants::NONE.with(Capability::Secrets),
        Rc::new(host),
    )
    .await;
    assert_eq!(
        out.result_value(),
        json!([
            "CapabilityDenied",
            "capability_denied",
            "capability `secrets:X` is not granted to this script"
        ])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_sleeps_overlap() {
    let source = "const t = Date.now(); await Promise.all([api.sleep(100), api.sleep(100), api.sleep(100)]); return Date.now() - t < 250";
    let out = run_with(
        &Sandbox::default(),
        source,
        "null",
        Limits::default(),
        Grants::NONE.with(Capability::Sleep),
        Rc::new(NoHost),
    )
    .await;
    assert_eq!(out.result_value(), json!(true), "{:?}", out.error);
    assert!(
        out.cpu < Duration::from_millis(50),
        "awaiting is not CPU time: {:?}",
        out.cpu
    );
}

#[tokio::test(flavor = "current_thread")]
async fn cancelling_stops_an_awaiting_run() {
    let sandbox = Sandbox::default();
    let script = sandbox.load("await api.sleep(10000); return 1", Language::Js);
    let cancel = CancelToken::new();
    let req = RunRequest {
        input_json: "null",
        limits: Limits::default(),
        grants: Grants::NONE.with(Capability::Sleep),
        host: Rc::new(NoHost),
        cancel: Some(cancel.clone()),
    };
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    };
    let (out, ()) = tokio::join!(sandbox.run(&script, req), canceller);
    assert_eq!(out.status, RunStatus::Cancelled);
    assert_eq!(out.error_kind(), Some(ErrorKind::Cancelled));
    assert!(out.duration < Duration::from_secs(2));
}

#[test]
fn cancelling_stops_a_computing_run_from_another_thread() {
    let cancel = CancelToken::new();
    let remote = cancel.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        remote.cancel();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let sandbox = Sandbox::default();
    let script = sandbox.load("let i = 0; for (;;) { i++ }", Language::Js);
    let req = RunRequest {
        input_json: "null",
        limits: Limits::default(),
        grants: Grants::NONE,
        host: Rc::new(NoHost),
        cancel: Some(cancel),
    };
    let out = rt.block_on(sandbox.run(&script, req));
    stopper.join().unwrap();
    assert_eq!(out.status, RunStatus::Cancelled);
    assert!(out.duration < Duration::from_secs(2));
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_input_json_is_a_script_error_not_a_crash() {
    let out = run("return input", "{not json").await;
    assert_eq!(out.status, RunStatus::Failed);
    assert_eq!(out.error_kind(), Some(ErrorKind::ScriptError));
    assert_eq!(out.error.unwrap().name, "SyntaxError");
}

#[tokio::test(flavor = "current_thread")]
async fn syntax_errors_are_rejected_with_a_location() {
    let out = run("const a = 1;\nconst = 2;", "null").await;
    assert_eq!(out.error_kind(), Some(ErrorKind::Rejected));
    assert_eq!(out.error.as_ref().unwrap().line, Some(2));
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_a_run_midway_is_safe() {
    let sandbox = Sandbox::default();
    let script = sandbox.load("await api.sleep(10000); return 1", Language::Js);
    let req = RunRequest {
        input_json: "null",
        limits: Limits::default(),
        grants: Grants::NONE.with(Capability::Sleep),
        host: Rc::new(NoHost),
        cancel: None,
    };
    let dropped = tokio::time::timeout(Duration::from_millis(20), sandbox.run(&script, req)).await;
    assert!(dropped.is_err());
    let out = run_with(
        &sandbox,
        "return 2",
        "null",
        Limits::default(),
        Grants::NONE,
        Rc::new(NoHost),
    )
    .await;
    assert_eq!(out.result_value(), json!(2));
}

#[tokio::test(flavor = "current_thread")]
async fn serialised_outcome_has_the_cli_shape() {
    let out = run("return 5", "null").await;
    let v = serde_json::to_value(&out).unwrap();
    for key in [
        "status",
        "result",
        "logs",
        "error",
        "duration_ms",
        "cpu_ms",
        "peak_memory_bytes",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["result"], 5);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random source never panics `load` or `run`, whatever it does.
        #[test]
        fn random_source_never_panics(src in "[a-z0-9(){};=+*/<>!&|?:.,'\"`\\[\\] \nawitrun]{0,80}", ts in any::<bool>()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let sandbox = Sandbox::default();
            let script = sandbox.load(&src, if ts { Language::Ts } else { Language::Js });
            let limits = Limits { timeout: Duration::from_millis(200), cpu: Duration::from_millis(100), memory_bytes: 8 << 20, ..Limits::default() };
            let req = RunRequest { input_json: "null", limits, grants: Grants::NONE.with(Capability::Sleep), host: Rc::new(NoHost), cancel: None };
            let out = rt.block_on(sandbox.run(&script, req));
            prop_assert!(out.status == RunStatus::Succeeded || out.error.is_some());
        }

        #[test]
        fn arbitrary_unicode_never_panics(src in "\\PC{0,60}") {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let sandbox = Sandbox::default();
            let script = sandbox.load(&src, Language::Js);
            let limits = Limits { timeout: Duration::from_millis(200), cpu: Duration::from_millis(100), ..Limits::default() };
            let req = RunRequest { input_json: "null", limits, grants: Grants::NONE, host: Rc::new(NoHost), cancel: None };
            let out = rt.block_on(sandbox.run(&script, req));
            prop_assert!(out.status == RunStatus::Succeeded || out.error.is_some());
        }
    }
}
