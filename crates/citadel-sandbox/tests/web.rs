//! The web-standard globals: their behaviour, conformance against data from
//! outside this project (`tests/data/`, see its README), and their bounds.

use std::cell::RefCell;
use std::rc::Rc;

use citadel_sandbox::{
    Capability, Grants, Host, HostCall, HostFuture, Language, Limits, NoHost, RunOutcome,
    RunRequest, RunStatus, Sandbox,
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

// ---- conformance against outside data ----

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Limits roomy enough for a whole data file in one run.
fn roomy() -> Limits {
    Limits {
        timeout: std::time::Duration::from_secs(120),
        cpu: std::time::Duration::from_secs(120),
        memory_bytes: 512 << 20,
        result_bytes: 8 << 20,
        ..Limits::default()
    }
}

/// Runs `source` over the data file `name` (its `input`); the result.
async fn over(source: &str, name: &str) -> Value {
    let input = data(name);
    let out = run_limits(source, &input, roomy()).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{name}: {:?}", out.error);
    out.result_value()
}

/// Hex helpers for the scripts below.
const HEX: &str = r#"
const bytes = (h) => { const b = new Uint8Array(h.length / 2); for (let i = 0; i < b.length; i++) b[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16); return b; };
const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, "0")).join("");
"#;

#[tokio::test(flavor = "current_thread")]
async fn url_parsing_follows_the_web_platform_tests() {
    let source = r#"
        const failed = [];
        const keys = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"];
        for (let i = 0; i < input.length; i++) {
          const t = input[i];
          if (typeof t === "string") continue;
          let u = null;
          try { u = t.base === null ? new URL(t.input) : new URL(t.input, t.base); } catch (e) { if (!(e instanceof TypeError)) throw e; }
          const can = t.base === null ? URL.canParse(t.input) : URL.canParse(t.input, t.base);
          if (t.failure) { if (u !== null || can) failed.push(i); continue; }
          if (u === null || !can || keys.some((k) => u[k] !== t[k]) || (t.origin !== undefined && u.origin !== t.origin)
              || u.searchParams.toString() !== new URLSearchParams(t.search).toString()) failed.push(i);
        }
        return failed;
    "#;
    let cases: Vec<Value> = serde_json::from_str(&data("urltestdata.json")).unwrap();
    let failed = over(source, "urltestdata.json").await;
    let expected = data("url_expected_failures.txt");
    let expected: Vec<&str> = expected.lines().collect();
    let mut unexpected = Vec::new();
    let failed = failed.as_array().unwrap();
    for i in failed {
        let t = &cases[i.as_u64().unwrap() as usize];
        let mut name = format!("<{}>", t["input"].as_str().unwrap().escape_default());
        if let Some(base) = t["base"].as_str() {
            name += &format!(" against <{}>", base.escape_default());
        }
        if !expected.contains(&name.as_str()) {
            unexpected.push(name);
        }
    }
    let total = cases.iter().filter(|c| c.is_object()).count();
    assert!(total > 800, "{total} cases");
    assert!(
        unexpected.is_empty(),
        "{} of {total} failed beyond the url crate's known list: {unexpected:#?}",
        unexpected.len()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn url_setters_follow_the_web_platform_tests() {
    let source = r#"
        const failed = [];
        for (const attr of Object.keys(input)) {
          if (attr === "comment") continue;
          input[attr].forEach((t, i) => {
            const u = new URL(t.href);
            u[attr] = t.new_value;
            if (Object.keys(t.expected).some((k) => u[k] !== t.expected[k])) failed.push([attr, t.href, t.new_value]);
          });
        }
        return failed;
    "#;
    let failed = over(source, "setters_tests.json").await;
    let expected = data("url_expected_failures.txt");
    let expected: Vec<&str> = expected.lines().collect();
    let mut unexpected = Vec::new();
    for f in failed.as_array().unwrap() {
        let name = format!(
            "<{}> set {} to <{}>",
            f[1].as_str().unwrap().escape_default(),
            f[0].as_str().unwrap(),
            f[2].as_str().unwrap().escape_default()
        );
        if !expected.contains(&name.as_str()) {
            unexpected.push(name);
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}

#[tokio::test(flavor = "current_thread")]
async fn atob_follows_the_web_platform_tests() {
    let source = r#"
        const failed = [];
        for (const [text, expected] of input) {
          let got;
          try { got = Array.from(atob(text), (c) => c.charCodeAt(0)); }
          catch (e) { got = e instanceof DOMException && e.name === "InvalidCharacterError" && e.code === 5 ? null : "threw " + e; }
          if (JSON.stringify(got) !== JSON.stringify(expected)) failed.push([text, got, expected]);
          if (expected !== null && atob(btoa(String.fromCharCode(...expected))) !== String.fromCharCode(...expected)) failed.push(["round trip", text]);
        }
        return [input.length, failed];
    "#;
    let out = over(source, "base64.json").await;
    assert!(out[0].as_u64().unwrap() > 50);
    assert_eq!(out[1], json!([]));
}

#[tokio::test(flavor = "current_thread")]
async fn digests_match_fips_180() {
    let source = r#"
        const failed = [];
        for (const t of input.tests) {
          const msg = t.msg !== undefined ? t.msg : t.repeat.repeat(t.count);
          const got = hex(await crypto.subtle.digest(t.alg, new TextEncoder().encode(msg)));
          const named = hex(await crypto.subtle.digest({ name: t.alg.toLowerCase() }, new TextEncoder().encode(msg).buffer));
          if (got !== t.digest || named !== t.digest) failed.push([t.alg, got]);
        }
        return [input.tests.length, failed];
    "#;
    let out = over(&format!("{HEX}{source}"), "nist_sha.json").await;
    assert_eq!(out, json!([10, []]));
}

#[tokio::test(flavor = "current_thread")]
async fn hmac_matches_rfc_4231() {
    let source = r#"
        const failed = [];
        for (const t of input.tests) {
          const key = await crypto.subtle.importKey("raw", bytes(t.key), { name: "HMAC", hash: t.hash }, false, ["sign", "verify"]);
          const mac = await crypto.subtle.sign("HMAC", key, bytes(t.data));
          if (hex(mac) !== t.mac || !(await crypto.subtle.verify("HMAC", key, mac, bytes(t.data)))) failed.push([t.case, t.hash]);
        }
        return [input.tests.length, failed];
    "#;
    assert_eq!(
        over(&format!("{HEX}{source}"), "rfc4231_hmac.json").await,
        json!([15, []])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn hmac_matches_wycheproof() {
    let source = r#"
        const hash = { HMACSHA1: "SHA-1", HMACSHA256: "SHA-256", HMACSHA384: "SHA-384", HMACSHA512: "SHA-512" }[input.algorithm];
        const full = { "SHA-1": 160, "SHA-256": 256, "SHA-384": 384, "SHA-512": 512 }[hash];
        const failed = [];
        let n = 0;
        for (const g of input.testGroups) for (const t of g.tests) {
          n++;
          let key;
          try {
            key = await crypto.subtle.importKey("raw", bytes(t.key), { name: "HMAC", hash }, false, ["sign", "verify"]);
          } catch (e) {
            // An empty key is refused, as WebCrypto does.
            if (t.key === "" && e.name === "DataError") continue;
            throw e;
          }
          const mac = hex(await crypto.subtle.sign("HMAC", key, bytes(t.msg)));
          const matches = mac.slice(0, t.tag.length) === t.tag;
          if (matches !== (t.result === "valid")) failed.push(t.tcId);
          if (g.tagSize === full) {
            const ok = await crypto.subtle.verify({ name: "HMAC" }, key, bytes(t.tag), bytes(t.msg));
            if (ok !== (t.result === "valid")) failed.push(["verify", t.tcId]);
          }
        }
        return [n, failed];
    "#;
    for file in ["sha1", "sha256", "sha384", "sha512"] {
        let out = over(
            &format!("{HEX}{source}"),
            &format!("wycheproof_hmac_{file}_test.json"),
        )
        .await;
        assert!(out[0].as_u64().unwrap() > 50, "{file}: {out}");
        assert_eq!(out[1], json!([]), "{file}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn aes_gcm_matches_wycheproof() {
    let source = r#"
        const failed = [];
        let checked = 0, refused = 0;
        for (const g of input.testGroups) for (const t of g.tests) {
          const supported = g.ivSize === 96 && g.tagSize === 128 && (g.keySize === 128 || g.keySize === 256);
          let key;
          try {
            key = await crypto.subtle.importKey("raw", bytes(t.key), "AES-GCM", false, ["encrypt", "decrypt"]);
          } catch (e) {
            if (g.keySize === 192 && e.name === "NotSupportedError") { refused++; continue; }
            throw e;
          }
          const alg = { name: "AES-GCM", iv: bytes(t.iv), additionalData: bytes(t.aad) };
          if (!supported) {
            try { await crypto.subtle.decrypt(alg, key, bytes(t.ct + t.tag)); failed.push(["accepted", t.tcId]); }
            catch (e) { if (e.name !== "NotSupportedError") failed.push(["refused as " + e.name, t.tcId]); else refused++; }
            continue;
          }
          checked++;
          let plain = null;
          try { plain = hex(await crypto.subtle.decrypt(alg, key, bytes(t.ct + t.tag))); }
          catch (e) { if (e.name !== "OperationError") failed.push([e.name, t.tcId]); }
          if (t.result === "valid") {
            if (plain !== t.msg) failed.push(["decrypt", t.tcId]);
            if (hex(await crypto.subtle.encrypt(alg, key, bytes(t.msg))) !== t.ct + t.tag) failed.push(["encrypt", t.tcId]);
          } else if (plain !== null) failed.push(["forged", t.tcId]);
        }
        return [checked, refused, failed];
    "#;
    let out = over(&format!("{HEX}{source}"), "wycheproof_aes_gcm_test.json").await;
    assert!(out[0].as_u64().unwrap() > 50, "{out}");
    assert!(out[1].as_u64().unwrap() > 50, "{out}");
    assert_eq!(out[2], json!([]));
}

#[tokio::test(flavor = "current_thread")]
async fn ed25519_verify_matches_wycheproof() {
    let source = r#"
        const failed = [];
        let n = 0;
        for (const g of input.testGroups) {
          const keys = [
            await crypto.subtle.importKey("raw", bytes(g.publicKey.pk), "Ed25519", false, ["verify"]),
            await crypto.subtle.importKey("spki", bytes(g.publicKeyDer), { name: "Ed25519" }, false, ["verify"]),
            await crypto.subtle.importKey("jwk", g.publicKeyJwk, "Ed25519", false, ["verify"]),
          ];
          for (const t of g.tests) for (const key of keys) {
            n++;
            const ok = await crypto.subtle.verify("Ed25519", key, bytes(t.sig), bytes(t.msg));
            if (ok !== (t.result === "valid")) failed.push(t.tcId);
          }
        }
        return [n, failed];
    "#;
    let out = over(&format!("{HEX}{source}"), "wycheproof_ed25519_test.json").await;
    assert!(out[0].as_u64().unwrap() > 100, "{out}");
    assert_eq!(out[1], json!([]));
}

#[tokio::test(flavor = "current_thread")]
async fn ecdsa_p256_verify_matches_wycheproof() {
    let source = r#"
        const failed = [];
        let n = 0;
        const alg = { name: "ECDSA", namedCurve: "P-256" };
        for (const g of input.testGroups) {
          const keys = [
            await crypto.subtle.importKey("raw", bytes(g.publicKey.uncompressed), alg, false, ["verify"]),
            await crypto.subtle.importKey("spki", bytes(g.publicKeyDer), alg, false, ["verify"]),
          ];
          if (g.publicKeyJwk) keys.push(await crypto.subtle.importKey("jwk", g.publicKeyJwk, alg, false, ["verify"]));
          for (const t of g.tests) for (const key of keys) {
            n++;
            const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, bytes(t.sig), bytes(t.msg));
            if (ok !== (t.result === "valid")) failed.push(t.tcId);
          }
        }
        return [n, failed];
    "#;
    let out = over(
        &format!("{HEX}{source}"),
        "wycheproof_ecdsa_secp256r1_sha256_p1363_test.json",
    )
    .await;
    assert!(out[0].as_u64().unwrap() > 100, "{out}");
    assert_eq!(out[1], json!([]));
}

// ---- fetch in the standard shape ----

/// Answers `http.fetch` as the engine's gateway does (`{status, url,
/// headers: [[name, value]], body, body_encoding}`), recording each call; a
/// URL ending in `/hang` is never answered.
#[derive(Default, Clone)]
struct FetchHost(Rc<RefCell<Vec<HostCall>>>);

impl Host for FetchHost {
    fn call(&self, call: HostCall) -> HostFuture {
        self.0.borrow_mut().push(call.clone());
        Box::pin(async move {
            let HostCall::HttpFetch { url, .. } = call else {
                return Err(citadel_sandbox::HostError::unavailable("only fetch"));
            };
            if url.ends_with("/hang") {
                std::future::pending::<()>().await;
            }
            if url.ends_with("/binary") {
                return Ok(
                    json!({"status": 200, "url": url, "headers": [["content-type", "application/octet-stream"]],
                    "body": "AAEC/w==", "body_encoding": "base64"}),
                );
            }
            Ok(json!({"status": 201, "url": url,
                "headers": [["content-type", "application/json"], ["x-seen", "a"], ["X-Seen", "b"], ["get", "not a method"]],
                "body": "{\"n\":1}", "body_encoding": "utf8"}))
        })
    }
}

async fn fetch_run(source: &str, grants: Grants) -> (RunOutcome, Vec<HostCall>) {
    let host = FetchHost::default();
    let sandbox = Sandbox::default();
    let script = sandbox.load(source, Language::Js);
    let out = sandbox
        .run(
            &script,
            RunRequest {
                input_json: "null",
                limits: Limits {
                    timeout: std::time::Duration::from_secs(3),
                    ..Limits::default()
                },
                grants,
                host: Rc::new(host.clone()),
                cancel: None,
            },
        )
        .await;
    let calls = host.0.borrow().clone();
    (out, calls)
}

fn http() -> Grants {
    Grants::NONE.with(Capability::Http)
}

#[tokio::test(flavor = "current_thread")]
async fn api_http_fetch_keeps_its_wire_shape_and_old_fields() {
    let (out, calls) = fetch_run(
        "const r = await api.http.fetch('https://example.com/a', {method: 'POST', headers: {authorization: 'Bearer t'}, body: {processed: 3}, timeout_ms: 300});
         return [r.status, r.ok, r.url, r.headers['content-type'], r.headers['x-seen'], r.headers.get('X-SEEN'), typeof r.headers.get,
                 r.body, r.bodyEncoding, await r.json(), r.bodyUsed, r instanceof Response, r.headers instanceof Headers];",
        http(),
    )
    .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(
        out.result_value(),
        json!([201, true, "https://example.com/a", "application/json", "a, b", "a, b", "function",
            "{\"n\":1}", "utf8", {"n": 1}, true, true, true])
    );
    assert_eq!(
        calls,
        [HostCall::HttpFetch {
            url: "https://example.com/a".into(),
            options: json!({"method": "POST", "headers": {"authorization": "Bearer t"}, "body": {"processed": 3}, "timeout_ms": 300}),
        }]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn global_fetch_takes_requests_and_headers() {
    let (out, calls) = fetch_run(
        "const req = new Request('https://example.com/b', {method: 'put', headers: new Headers([['X-A', '1']]), body: 'text'});
         const r = await fetch(req);
         const b = await fetch('https://example.com/binary', {headers: new Headers({accept: '*/*'})});
         return [fetch === api.http.fetch, r.status, await r.text(), Array.from(new Uint8Array(await b.arrayBuffer())), b.bodyEncoding];",
        http(),
    )
    .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(
        out.result_value(),
        json!([true, 201, "{\"n\":1}", [0, 1, 2, 255], "base64"])
    );
    assert_eq!(
        calls,
        [
            HostCall::HttpFetch {
                url: "https://example.com/b".into(),
                options: json!({"method": "PUT", "headers": [["x-a", "1"], ["content-type", "text/plain;charset=UTF-8"]], "body": "text"}),
            },
            HostCall::HttpFetch {
                url: "https://example.com/binary".into(),
                options: json!({"method": "GET", "headers": [["accept", "*/*"]], "body": null}),
            },
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_honours_abort_signals() {
    let (out, calls) = fetch_run(
        "const out = [];
         try { await fetch('https://example.com/x', {signal: AbortSignal.abort()}); } catch (e) { out.push(e.name); }
         const c = new AbortController();
         const pending = fetch('https://example.com/hang', {signal: c.signal});
         setTimeout(() => c.abort(), 20);
         try { await pending; } catch (e) { out.push(e.name); }
         const r = await fetch('https://example.com/t', {signal: AbortSignal.timeout(250.7)});
         out.push(r.status);
         try { await fetch('https://example.com/hang', {signal: AbortSignal.timeout(30)}); } catch (e) { out.push(e.name); }
         return out;",
        http(),
    )
    .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(
        out.result_value(),
        json!(["AbortError", "AbortError", 201, "TimeoutError"])
    );
    // The aborted-before call never reached the host; a timeout signal's
    // delay went down as the call's own `timeout_ms`.
    assert_eq!(calls.len(), 3);
    let HostCall::HttpFetch { options, .. } = &calls[1] else {
        panic!()
    };
    assert_eq!(options["timeout_ms"], json!(250));
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_is_absent_without_the_http_grant() {
    let (out, calls) = fetch_run(
        "return [typeof fetch, typeof Response, typeof Headers];",
        Grants::NONE,
    )
    .await;
    assert_eq!(
        out.result_value(),
        json!(["undefined", "function", "function"])
    );
    assert!(calls.is_empty());
    let (out, _) = fetch_run("return typeof fetch;", http()).await;
    assert_eq!(out.result_value(), json!("function"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_warm_context_serves_timers_and_fetch_to_each_run() {
    let sandbox = Sandbox::default();
    let source = "await new Promise((r) => setTimeout(r, 2)); globalThis.runs = (globalThis.runs ?? 0) + 1;
                  const r = await fetch('https://example.com/w'); return [runs, r.status, performance.now() < 1000];";
    let script = sandbox.load(source, Language::Js);
    let host = FetchHost::default();
    for n in 1..=3 {
        let out = sandbox
            .run_as_version(
                &script,
                RunRequest {
                    input_json: "null",
                    limits: Limits {
                        isolation: citadel_sandbox::Isolation::Version,
                        ..Limits::default()
                    },
                    grants: http(),
                    host: Rc::new(host.clone()),
                    cancel: None,
                },
                "tenant/webhook@1",
            )
            .await;
        assert_eq!(out.result_value(), json!([n, 201, true]), "{:?}", out.error);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_listeners_exception_ends_the_run_as_uncaught() {
    let out = run(
        "const t = new EventTarget(); t.addEventListener('x', () => { throw new RangeError('from a listener'); });
         const delivered = t.dispatchEvent(new Event('x')); await null; return delivered;",
        "null",
    )
    .await;
    let e = out.error.expect("the run fails");
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("RangeError", "from a listener")
    );
    assert_eq!(e.line, Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_timers_exception_ends_the_run_as_uncaught() {
    let out = run(
        "setTimeout(() => { throw new TypeError('from a timer'); }, 1);
         await new Promise((r) => setTimeout(r, 50)); return 'finished';",
        "null",
    )
    .await;
    let e = out.error.expect("the run fails");
    assert_eq!(
        (e.name.as_str(), e.message.as_str()),
        ("TypeError", "from a timer")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn ed25519_verify_matches_rfc_8032() {
    let source = r#"
        const out = [];
        for (const t of input.tests) {
          const key = await crypto.subtle.importKey("raw", bytes(t.public_key), "Ed25519", true, ["verify"]);
          const good = await crypto.subtle.verify("Ed25519", key, bytes(t.signature), bytes(t.message));
          const flipped = bytes(t.signature);
          flipped[0] ^= 1;
          const bad = await crypto.subtle.verify("Ed25519", key, flipped, bytes(t.message));
          const jwk = await crypto.subtle.exportKey("jwk", key);
          const again = await crypto.subtle.importKey("jwk", jwk, "Ed25519", false, ["verify"]);
          out.push([t.test, good, bad, await crypto.subtle.verify("Ed25519", again, bytes(t.signature), bytes(t.message))]);
        }
        return out;
    "#;
    assert_eq!(
        over(&format!("{HEX}{source}"), "rfc8032_ed25519.json").await,
        json!([
            ["1", true, false, true],
            ["2", true, false, true],
            ["3", true, false, true]
        ])
    );
}
