//! What one run can see of another on the same isolate thread: nothing, with
//! a fresh context per run (the default); the globals of its own version's
//! earlier runs, with a warm version context — and exact memory accounting
//! in a runtime that many runs reuse.

use std::rc::Rc;
use std::time::Duration;

use citadel_sandbox::{
    CancelToken, Capability, ErrorKind, Globals, Grants, Isolation, Language, Limits, NoHost,
    RunOutcome, RunRequest, RunStatus, Sandbox,
};
use serde_json::{Value, json};

fn request<'a>(input: &'a str, limits: Limits, grants: Grants) -> RunRequest<'a> {
    RunRequest {
        input_json: input,
        limits,
        grants,
        host: Rc::new(NoHost),
        cancel: None,
    }
}

async fn fresh(sandbox: &Sandbox, source: &str, input: &str, limits: Limits) -> RunOutcome {
    let script = sandbox.load(source, Language::Js);
    sandbox
        .run(&script, request(input, limits, Grants::NONE))
        .await
}

fn warm_limits() -> Limits {
    Limits {
        isolation: Isolation::Version,
        ..Limits::default()
    }
}

async fn as_version(
    sandbox: &Sandbox,
    key: &str,
    source: &str,
    input: &str,
    limits: Limits,
    grants: Grants,
) -> RunOutcome {
    let script = sandbox.load(source, Language::Js);
    sandbox
        .run_as_version(&script, request(input, limits, grants), key)
        .await
}

/// Counts its runs in a global; throws, loops or touches an ungranted
/// capability when its input says so.
const COUNTER: &str = r#"
globalThis.n = (globalThis.n ?? 0) + 1;
if (input === "throw") throw new Error("asked to");
if (input === "loop") for (;;) {}
if (input === "deny") { try { api.kv.get("x"); } catch (e) {} }
if (input === "sleep") await api.sleep(10000);
return globalThis.n;
"#;

fn value(out: &RunOutcome) -> Value {
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    out.result_value()
}

#[tokio::test(flavor = "current_thread")]
async fn a_fresh_context_per_run_sees_nothing_of_the_run_before() {
    let sandbox = Sandbox::default();
    let dirty = r#"
        globalThis.leak = 42;
        Object.prototype.polluted = 1;
        Array.prototype.map = () => "replaced";
        JSON.stringify = () => "\"replaced\"";
        Error.prepareStackTrace = () => "hooked";
        return 1;
    "#;
    assert_eq!(
        value(&fresh(&sandbox, dirty, "null", Limits::default()).await),
        json!(1)
    );
    let probe = r#"
        return [typeof globalThis.leak, ({}).polluted === undefined, [1, 2].map((x) => x * 2),
            typeof Error.prepareStackTrace];
    "#;
    for _ in 0..3 {
        assert_eq!(
            value(&fresh(&sandbox, probe, "null", Limits::default()).await),
            json!(["undefined", true, [2, 4], "undefined"])
        );
    }
    // The counter starts again every time, also through `run_as_version`
    // when the limits ask for a fresh context.
    for _ in 0..3 {
        assert_eq!(
            value(&fresh(&sandbox, COUNTER, "null", Limits::default()).await),
            json!(1)
        );
        let out = as_version(
            &sandbox,
            "t1/v1",
            COUNTER,
            "null",
            Limits::default(),
            Grants::NONE,
        )
        .await;
        assert_eq!(value(&out), json!(1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn jobs_a_stopped_run_left_queued_never_run_in_the_next() {
    let sandbox = Sandbox::default();
    let limits = Limits {
        cpu: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    // The reaction is queued, then the body never returns: the run stops
    // at its CPU limit with the job still queued. Were it run later, it
    // would spin on the next run's clock.
    let stopped = fresh(
        &sandbox,
        "Promise.resolve().then(() => { for (;;) {} }); for (;;) {}",
        "null",
        limits,
    )
    .await;
    assert_eq!(stopped.error_kind(), Some(ErrorKind::CpuLimit));
    let next = fresh(&sandbox, "await null; return 'next';", "null", limits).await;
    assert_eq!(value(&next), json!("next"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_warm_version_context_keeps_its_globals_for_that_version_only() {
    let sandbox = Sandbox::default();
    let warm = warm_limits();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(value(
            &as_version(&sandbox, "t1/v1", COUNTER, "null", warm, Grants::NONE).await,
        ));
    }
    assert_eq!(seen, [json!(1), json!(2), json!(3)]);
    // Another version, with the very same source, has a context of its own.
    assert_eq!(
        value(&as_version(&sandbox, "t1/v2", COUNTER, "null", warm, Grants::NONE).await),
        json!(1)
    );
    // So does another tenant's key for a version of the same name.
    assert_eq!(
        value(&as_version(&sandbox, "t2/v1", COUNTER, "null", warm, Grants::NONE).await),
        json!(1)
    );
    // A fresh run of the same script sees nothing of the warm context.
    assert_eq!(
        value(&fresh(&sandbox, COUNTER, "null", Limits::default()).await),
        json!(1)
    );
    assert_eq!(
        value(&as_version(&sandbox, "t1/v1", COUNTER, "null", warm, Grants::NONE).await),
        json!(4)
    );
    // Other grants or other source under the same key: not that context.
    let echo = Grants::NONE.with(Capability::Echo);
    assert_eq!(
        value(&as_version(&sandbox, "t1/v1", COUNTER, "null", warm, echo).await),
        json!(1)
    );
    let other = "globalThis.n = (globalThis.n ?? 100) + 1; return globalThis.n;";
    assert_eq!(
        value(&as_version(&sandbox, "t1/v1", other, "null", warm, Grants::NONE).await),
        json!(101)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_warm_context_is_dropped_after_a_run_that_does_not_end_cleanly() {
    let sandbox = Sandbox::default();
    let warm = Limits {
        cpu: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        ..warm_limits()
    };
    let grants = Grants::NONE.with(Capability::Sleep);
    let run = |input: &'static str| as_version(&sandbox, "t/v", COUNTER, input, warm, grants);
    assert_eq!(value(&run("null").await), json!(1));
    assert_eq!(value(&run("null").await), json!(2));
    let threw = run("\"throw\"").await;
    assert_eq!(threw.error.map(|e| e.message), Some("asked to".to_owned()));
    assert_eq!(value(&run("null").await), json!(1));
    let looped = run("\"loop\"").await;
    assert_eq!(
        looped.error_kind(),
        Some(ErrorKind::CpuLimit),
        "{:?}",
        looped.error
    );
    assert_eq!(value(&run("null").await), json!(1));
    // A denied capability, even caught, ends the context's reuse.
    assert_eq!(value(&run("\"deny\"").await), json!(2));
    assert_eq!(value(&run("null").await), json!(1));
    // So does a cancellation.
    let cancel = CancelToken::new();
    let script = sandbox.load(COUNTER, Language::Js);
    let cancelled = sandbox.run_as_version(
        &script,
        RunRequest {
            cancel: Some(cancel.clone()),
            ..request("\"sleep\"", warm, grants)
        },
        "t/v",
    );
    let (out, ()) = tokio::join!(cancelled, async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancel.cancel();
    });
    assert_eq!(out.error_kind(), Some(ErrorKind::Cancelled));
    assert_eq!(value(&run("null").await), json!(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_warm_context_serves_its_runs_and_time_at_most() {
    let sandbox = Sandbox::default();
    let two_runs = Limits {
        warm_runs: 2,
        ..warm_limits()
    };
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(value(
            &as_version(&sandbox, "t/v", COUNTER, "null", two_runs, Grants::NONE).await,
        ));
    }
    assert_eq!(seen, [json!(1), json!(2), json!(1), json!(2), json!(1)]);
    let no_time = Limits {
        warm_ttl: Duration::ZERO,
        ..warm_limits()
    };
    for _ in 0..2 {
        let out = as_version(&sandbox, "t/w", COUNTER, "null", no_time, Grants::NONE).await;
        assert_eq!(value(&out), json!(1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_earlier_runs_api_does_not_act_for_a_later_run() {
    let sandbox = Sandbox::default();
    let grants = Grants::NONE.with(Capability::Echo);
    let source = r#"
        if (input === "keep") { globalThis.kept = { api, console }; return "kept"; }
        const out = [];
        try { await globalThis.kept.api.echo(1); out.push("acted"); } catch (e) { out.push(e.message); }
        try { globalThis.kept.console.log("x"); out.push("logged"); } catch (e) { out.push(e.message); }
        out.push(await api.echo("own"));
        return out;
    "#;
    let keep = as_version(&sandbox, "t/v", source, "\"keep\"", warm_limits(), grants).await;
    assert_eq!(value(&keep), json!("kept"));
    let later = as_version(&sandbox, "t/v", source, "null", warm_limits(), grants).await;
    let ended = "this object belongs to an earlier run, which has ended";
    assert_eq!(value(&later), json!([ended, ended, "own"]));
    assert!(later.logs.is_empty());
}

/// Allocates about `input` MiB in strings of 1 KiB, kept until it returns.
const ALLOCATE: &str = r#"
const kept = [];
const kib = "x".repeat(1024);
for (let i = 0; i < input * 1024; i++) kept.push(kib + i);
return kept.length;
"#;

#[tokio::test(flavor = "current_thread")]
async fn the_memory_limit_is_exact_in_a_reused_runtime() {
    let sandbox = Sandbox::default();
    let limits = Limits {
        memory_bytes: 48 << 20,
        ..Limits::default()
    };
    // The same run reports the same peak every time, whatever ran before.
    let _first = fresh(&sandbox, ALLOCATE, "8", limits).await;
    let before = fresh(&sandbox, ALLOCATE, "8", limits).await;
    assert_eq!(value(&before), json!(8 * 1024));
    // A run leaves 40 MiB behind in cycles for the collector.
    let litter = r#"
        const keep = [];
        for (let i = 0; i < 40 * 1024; i++) { const o = { s: "y".repeat(1000) + i }; o.self = o; keep.push(o); }
        globalThis.keep = keep;
        return keep.length;
    "#;
    assert_eq!(
        value(&fresh(&sandbox, litter, "null", limits).await),
        json!(40 * 1024)
    );
    let after = fresh(&sandbox, ALLOCATE, "8", limits).await;
    assert_eq!(value(&after), json!(8 * 1024));
    assert_eq!(after.peak_memory_bytes, before.peak_memory_bytes);
    // What the litter left is not charged to the next run: 40 MiB fit in
    // its 48 MiB…
    assert_eq!(
        value(&fresh(&sandbox, litter, "null", limits).await),
        json!(40 * 1024)
    );
    let big = fresh(&sandbox, ALLOCATE, "40", limits).await;
    assert_eq!(value(&big), json!(40 * 1024));
    assert!(big.peak_memory_bytes > 40 << 20 && big.peak_memory_bytes <= 48 << 20);
    // …and freeing it gives the next run no room beyond its own limit.
    assert_eq!(
        value(&fresh(&sandbox, litter, "null", limits).await),
        json!(40 * 1024)
    );
    let over = fresh(&sandbox, ALLOCATE, "60", limits).await;
    assert_eq!(over.error_kind(), Some(ErrorKind::MemoryLimit));
    assert!(over.peak_memory_bytes <= 48 << 20);
    // Between runs the idle thread collects; the peak stays the same.
    sandbox.prewarm(1).unwrap();
    let idle = fresh(&sandbox, ALLOCATE, "8", limits).await;
    assert_eq!(idle.peak_memory_bytes, before.peak_memory_bytes);
}

#[tokio::test(flavor = "current_thread")]
async fn runs_awaiting_at_once_on_one_thread_are_charged_apart() {
    let sandbox = Sandbox::default();
    let limits = Limits {
        memory_bytes: 24 << 20,
        ..Limits::default()
    };
    let grants = Grants::NONE.with(Capability::Sleep);
    let holding = r#"
        const kept = [];
        const kib = "x".repeat(1024);
        for (let i = 0; i < 16 * 1024; i++) kept.push(kib + i);
        await api.sleep(50);
        return kept.length;
    "#;
    let script = sandbox.load(holding, Language::Js);
    let runs = (0..3).map(|_| sandbox.run(&script, request("null", limits, grants)));
    let outs = futures_util::future::join_all(runs).await;
    for out in &outs {
        assert_eq!(value(out), json!(16 * 1024));
        assert!(out.peak_memory_bytes > 16 << 20 && out.peak_memory_bytes <= 24 << 20);
    }
}

#[test]
fn contexts_get_only_the_groups_their_script_reaches() {
    let sandbox = Sandbox::default();
    let hello = sandbox.load("return [1, 2, 3].map((x) => x * 2);", Language::Js);
    assert_eq!(hello.globals(), Globals::NONE);
    let dated = sandbox.load("return new Date(0).toISOString();", Language::Js);
    assert_eq!(dated.globals(), Globals::DATE);
    let dynamic = sandbox.load("return globalThis[input];", Language::Js);
    assert_eq!(dynamic.globals(), Globals::ALL);
}

#[tokio::test(flavor = "current_thread")]
async fn scripts_with_fewer_groups_still_run_as_before() {
    let sandbox = Sandbox::default();
    let cases = [
        ("return 'abc'.match('b')[0];", json!("b")),
        ("return 'a-b'.replace('-', '+');", json!("a+b")),
        ("return /b+/.exec('abbc')[0];", json!("bb")),
        (
            "return new Date(0).toISOString();",
            json!("1970-01-01T00:00:00.000Z"),
        ),
        ("return [...new Set([1, 1, 2])];", json!([1, 2])),
        ("return Array.from(new Uint8Array([1, 2]));", json!([1, 2])),
        (
            "return typeof Map === 'function' && typeof Date === 'function';",
            json!(true),
        ),
        ("return 10n ** 20n === 100000000000000000000n;", json!(true)),
        (
            "return await new Promise((ok) => queueMicrotask(() => ok(7)));",
            json!(7),
        ),
        // `input` is "search": the method is found by a computed name.
        ("const k = input; return 'xyz'[k]('y');", json!(1)),
    ];
    for (source, want) in cases {
        let out = fresh(&sandbox, source, "\"search\"", Limits::default()).await;
        assert_eq!(
            out.status,
            RunStatus::Succeeded,
            "{source}: {:?}",
            out.error
        );
        assert_eq!(out.result_value(), want, "{source}");
    }
}
