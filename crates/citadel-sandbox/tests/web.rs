//! The web-standard globals: their behaviour, conformance against data from
//! outside this project (`tests/data/`, see its README), and their bounds.

use std::rc::Rc;

use citadel_sandbox::{
    Grants, Language, Limits, NoHost, RunOutcome, RunRequest, RunStatus, Sandbox,
};
use serde_json::{Value, json};

async fn run_limits(source: &str, input: &str, limits: Limits) -> RunOutcome {
    let sandbox = Sandbox::default();
    let script = sandbox.load(source, Language::Js);
    sandbox
        .run(
            &script,
            RunRequest {
                input_json: input,
                limits,
                grants: Grants::NONE,
                host: Rc::new(NoHost),
                cancel: None,
            },
        )
        .await
}

async fn run(source: &str, input: &str) -> RunOutcome {
    run_limits(source, input, Limits::default()).await
}

/// The result of a run that must succeed.
async fn value(source: &str) -> Value {
    let out = run(source, "null").await;
    assert_eq!(
        out.status,
        RunStatus::Succeeded,
        "{source}: {:?}",
        out.error
    );
    out.result_value()
}

#[tokio::test(flavor = "current_thread")]
async fn smoke() {
    assert_eq!(
        value("const u = new URL('/a?b=1#c', 'https://example.com'); return [u.href, u.searchParams.get('b')];").await,
        json!(["https://example.com/a?b=1#c", "1"])
    );
    assert_eq!(
        value("return [btoa('hello'), atob('aGVsbG8=')];").await,
        json!(["aGVsbG8=", "hello"])
    );
    assert_eq!(
        value("return Array.from(new TextEncoder().encode('é'));").await,
        json!([195, 169])
    );
    assert_eq!(value("return crypto.randomUUID().length;").await, json!(36));
    assert_eq!(
        value("const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc')); return Array.from(new Uint8Array(d)).map(b => b.toString(16).padStart(2, '0')).join('');").await,
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        value("const h = new Headers({'Content-Type': 'x'}); h.append('a', '1'); return [...h];")
            .await,
        json!([["a", "1"], ["content-type", "x"]])
    );
    assert_eq!(
        value("const c = structuredClone({a: [1, {b: 2}]}); return c;").await,
        json!({"a": [1, {"b": 2}]})
    );
    assert_eq!(
        value("let n = 0; await new Promise(r => setTimeout(() => { n = 1; r(); }, 5)); return n;")
            .await,
        json!(1)
    );
    assert_eq!(
        value("const r = new Response('{\"a\":1}', {status: 201}); return [r.status, r.ok, await r.json()];").await,
        json!([201, true, {"a": 1}])
    );
    assert_eq!(
        value("const c = new AbortController(); let seen = 0; c.signal.addEventListener('abort', () => seen++); c.abort(); return [c.signal.aborted, c.signal.reason.name, seen];").await,
        json!([true, "AbortError", 1])
    );
}
