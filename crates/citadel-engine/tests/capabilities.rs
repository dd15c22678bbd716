//! The capability gateway through real runs: `api.kv` (compare and set,
//! TTL, paging, caps, quota, tenants apart), `api.secrets` (grant, expiry,
//! another tenant's, usage, redaction of everything a run leaves), denied
//! calls audited once, every call counted by capability and outcome, and
//! capabilities this node does not serve failing as `unavailable`.

use std::sync::Arc;

use citadel_domain::Capability;
use citadel_domain::RunStatus;
use citadel_engine::{Engine, EngineConfig, LiveScript, Quotas};
use citadel_secrets::{MasterKey, Vault};
use citadel_store::{SecretMeta, Store, now_ms};
use citadel_testkit::{TestDb, Version, run_spec};
use serde_json::{Value, json};

async fn live(
    store: &dyn Store,
    tenant: &str,
    name: &str,
    capabilities: &str,
    source: &str,
) -> Arc<LiveScript> {
    let version = Version {
        name,
        source,
        hash: name,
        capabilities,
        ..Version::default()
    };
    citadel_testkit::live_script(store, tenant, &version).await
}

/// A run's result as JSON, asserting it succeeded.
async fn result(engine: &Engine, tenant: &str, script: &Arc<LiveScript>) -> Value {
    let run = engine
        .run_sync(run_spec(tenant, script, "null"))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    serde_json::from_str(run.result.as_deref().unwrap()).unwrap()
}

/// A run's error as JSON, asserting it failed.
async fn error(engine: &Engine, tenant: &str, script: &Arc<LiveScript>) -> Value {
    let run = engine
        .run_sync(run_spec(tenant, script, "null"))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed, "{:?}", run.result);
    serde_json::from_str(run.error.as_deref().unwrap()).unwrap()
}

const KV: &str = r#"{"kv": true}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_compare_and_set_ttl_paging_and_tenants_apart() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let globex = db.tenant("globex").await;
    let engine = citadel_testkit::engine(store, 1, EngineConfig::default());

    let script = live(
        store.as_ref(),
        &acme,
        "cas",
        KV,
        r#"
        const out = [];
        out.push(await api.kv.get('counter'));
        out.push(await api.kv.set('counter', {n: 1}, {if_version: 0}));
        out.push(await api.kv.set('counter', {n: 9}, {if_version: 0}));
        out.push(await api.kv.getWithVersion('counter'));
        out.push(await api.kv.set('counter', {n: 2}, {if_version: 1}));
        out.push(await api.kv.get('counter'));
        out.push(await api.kv.delete('counter', {if_version: 1}));
        out.push(await api.kv.delete('counter'));
        out.push(await api.kv.delete('counter'));
        return out;
        "#,
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &script).await,
        json!([
            null,
            {"ok": true, "version": 1},
            {"ok": false, "version": 1},
            {"key": "counter", "value": {"n": 1}, "version": 1, "expires_at": null},
            {"ok": true, "version": 2},
            {"n": 2},
            {"ok": false, "version": 2},
            {"ok": true, "version": 0},
            {"ok": false, "version": 0},
        ])
    );

    // Paging by prefix, with a cursor; another tenant sees none of it.
    let fill = live(
        store.as_ref(),
        &acme,
        "fill",
        KV,
        r#"
        for (const k of ['user:1', 'user:2', 'user:3', 'other']) await api.kv.set(k, k);
        const first = await api.kv.list({prefix: 'user:', limit: 2});
        const second = await api.kv.list({prefix: 'user:', limit: 2, cursor: first.cursor});
        return [first.entries.map(e => e.key), first.cursor, second.entries.map(e => e.value), second.cursor];
        "#,
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &fill).await,
        json!([["user:1", "user:2"], "user:2", ["user:3"], null])
    );
    let peek = live(
        store.as_ref(),
        &globex,
        "peek",
        KV,
        "return [await api.kv.get('user:1'), (await api.kv.list()).entries.length];",
    )
    .await;
    assert_eq!(result(&engine, &globex, &peek).await, json!([null, 0]));

    // A TTL in the past of the store's clock is absent.
    let ttl = live(
        store.as_ref(),
        &acme,
        "ttl",
        KV,
        "const r = await api.kv.set('short', 1, {ttl_s: 1}); \
         const e = await api.kv.getWithVersion('short'); \
         return [r.ok, e.expires_at > Date.now(), e.expires_at <= Date.now() + 1000];",
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &ttl).await,
        json!([true, true, true])
    );
    let entry = store
        .kv_get(&acme, "short", now_ms() + 1_001)
        .await
        .unwrap();
    assert_eq!(entry, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_caps_and_quota_answer_their_codes() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let config = EngineConfig {
        quotas: Quotas {
            kv_key_bytes: 16,
            kv_value_bytes: 64,
            kv_bytes: 100,
            ..Quotas::default()
        },
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);
    let cases = [
        (
            "key",
            "await api.kv.set('k'.repeat(17), 1)",
            "kv_key_too_large",
        ),
        (
            "get-key",
            "await api.kv.get('k'.repeat(17))",
            "kv_key_too_large",
        ),
        ("empty-key", "await api.kv.get('')", "invalid_argument"),
        (
            "value",
            "await api.kv.set('k', 'v'.repeat(63))",
            "kv_value_too_large",
        ),
        (
            "ttl",
            "await api.kv.set('k', 1, {ttl_s: -1})",
            "invalid_argument",
        ),
        (
            "ttl-zero",
            "await api.kv.set('k', 1, {ttl_s: 0})",
            "invalid_argument",
        ),
        (
            "if-version",
            "await api.kv.set('k', 1, {if_version: 'x'})",
            "invalid_argument",
        ),
        ("options", "await api.kv.set('k', 1, 5)", "invalid_argument"),
        ("limit", "await api.kv.list({limit: 0})", "invalid_argument"),
        (
            "limit-big",
            "await api.kv.list({limit: 1001})",
            "invalid_argument",
        ),
        (
            "prefix",
            "await api.kv.list({prefix: 7})",
            "invalid_argument",
        ),
        (
            "quota",
            "for (let i = 0; i < 10; i++) await api.kv.set('key' + i, 'v'.repeat(40))",
            "kv_quota_exceeded",
        ),
    ];
    for (name, call, code) in cases {
        let source = format!("try {{ {call}; return 'no error'; }} catch (e) {{ return e.code; }}");
        let script = live(store.as_ref(), &acme, name, KV, &source).await;
        assert_eq!(result(&engine, &acme, &script).await, json!(code), "{name}");
    }
    // The quota case stored what fitted (two entries of 4 + 42 bytes), no more.
    assert_eq!(store.kv_usage(&acme).await.unwrap(), 92);
    assert_eq!(
        engine
            .gateway_metrics
            .count(Capability::Kv, "kv_quota_exceeded"),
        1
    );
}

async fn vault(store: &Arc<dyn Store>) -> Arc<Vault> {
    Arc::new(
        Vault::open(Arc::clone(store), MasterKey::generate().unwrap())
            .await
            .unwrap(),
    )
}

fn meta(tenant: &str, name: &str, expires_at: Option<i64>) -> SecretMeta {
    SecretMeta {
        tenant_id: tenant.into(),
        name: name.into(),
        description: String::new(),
        version: 1,
        created_at: now_ms(),
        rotated_at: None,
        expires_at,
        last_used_at: None,
    }
}

const SECRET: &str = "sk_live_51HxQpT2eZvKYlo2C";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_served_within_the_grant_and_never_leave_a_run() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let globex = db.tenant("globex").await;
    let vault = vault(store).await;
    vault
        .create(&meta(&acme, "STRIPE_KEY", None), SECRET)
        .await
        .unwrap();
    vault
        .create(
            &meta(&acme, "OLD_KEY", Some(now_ms() - 1)),
            "expired-value-1",
        )
        .await
        .unwrap();
    vault
        .create(&meta(&globex, "GLOBEX_KEY", None), "globex-value-1")
        .await
        .unwrap();
    let config = EngineConfig {
        vault: Some(Arc::clone(&vault)),
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);

    // Everything a run can leave: its result, log lines, a KV value, an
    // event's data, a thrown error.
    let grant = r#"{"secrets": ["STRIPE_KEY", "OLD_KEY", "GLOBEX_KEY", "MISSING"], "kv": true,
                    "events": {"emit": ["leak.*"]}}"#;
    let leaky = live(
        store.as_ref(),
        &acme,
        "leaky",
        grant,
        r#"
        const k = await api.secrets.get('STRIPE_KEY');
        const again = await api.secrets.get('STRIPE_KEY');
        console.log('the key is ' + k);
        await api.kv.set('stash', {k});
        await api.events.emit('leak.tried', {k, quoted: JSON.stringify(k)});
        return {k, same: k === again, length: k.length, nested: [k + '!']};
        "#,
    )
    .await;
    let run = engine
        .run_sync(run_spec(&acme, &leaky, "null"))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let got: Value = serde_json::from_str(run.result.as_deref().unwrap()).unwrap();
    assert_eq!(
        got,
        json!({"k": "[REDACTED:STRIPE_KEY]", "same": true, "length": SECRET.len(),
               "nested": ["[REDACTED:STRIPE_KEY]!"]})
    );
    assert!(
        run.logs.contains("the key is [REDACTED:STRIPE_KEY]"),
        "{}",
        run.logs
    );
    assert!(!run.logs.contains(SECRET));
    let stash = store
        .kv_get(&acme, "stash", now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stash.value, r#"{"k":"[REDACTED:STRIPE_KEY]"}"#);
    let events = store.list_events(&acme, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(!events[0].data.contains(SECRET), "{}", events[0].data);
    assert!(
        events[0].data.contains("[REDACTED:STRIPE_KEY]"),
        "{}",
        events[0].data
    );

    // Thrown in an error message.
    let thrower = live(
        store.as_ref(),
        &acme,
        "thrower",
        grant,
        "const k = await api.secrets.get('STRIPE_KEY'); throw new Error('bad key ' + k);",
    )
    .await;
    let e = error(&engine, &acme, &thrower).await;
    assert_eq!(e["message"], "bad key [REDACTED:STRIPE_KEY]", "{e}");

    // The usage says which script, version and run read it, once per run.
    let uses = store.secret_uses(&acme, "STRIPE_KEY", 10).await.unwrap();
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert_eq!(uses[1].script_name, "leaky");
    assert_eq!(uses[1].script_version, "1.0.0");
    assert_eq!(uses[1].run_id, run.id);
    assert_eq!(uses[1].version, 1);
    assert!(
        store
            .secret(&acme, "STRIPE_KEY")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );

    // Expired, another tenant's, absent, not granted, not a name.
    let cases = [
        ("expired", "OLD_KEY", "secret_expired"),
        ("foreign", "GLOBEX_KEY", "secret_not_found"),
        ("missing", "MISSING", "secret_not_found"),
        ("ungranted", "OTHER_KEY", "capability_denied"),
        ("lowercase", "stripe_key", "invalid_argument"),
    ];
    for (name, secret, code) in cases {
        let source = format!(
            "try {{ await api.secrets.get('{secret}'); return 'served'; }} \
             catch (e) {{ return [e.code, e.message]; }}"
        );
        let script = live(store.as_ref(), &acme, name, grant, &source).await;
        let got = result(&engine, &acme, &script).await;
        assert_eq!(got[0], code, "{name}: {got}");
        assert!(!got[1].as_str().unwrap().contains("globex-value"), "{got}");
    }

    // The denial is audited, once per run however often the script tries.
    let persistent = live(
        store.as_ref(),
        &acme,
        "persistent",
        grant,
        "let n = 0; for (let i = 0; i < 5; i++) { try { await api.secrets.get('OTHER_KEY'); } \
         catch (e) { if (e.code === 'capability_denied') n++; } } return n;",
    )
    .await;
    assert_eq!(result(&engine, &acme, &persistent).await, json!(5));
    let audit = citadel_testkit::audit(store.as_ref(), "capability.denied").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0].entry.outcome, "denied");
    assert_eq!(audit[0].entry.target, "script:persistent");
    let details: Value = serde_json::from_str(&audit[0].entry.details).unwrap();
    assert_eq!(details["capability"], "secrets");
    assert_eq!(
        details["reason"],
        "secret `OTHER_KEY` is not in this version's grant"
    );
    assert_eq!(
        engine
            .gateway_metrics
            .count(Capability::Secrets, "capability_denied"),
        6
    );
    assert_eq!(
        engine
            .gateway_metrics
            .count(Capability::Secrets, "secret_expired"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_vault_or_a_service_answers_unavailable() {
    let db = TestDb::new().await;
    let store = &db.store;
    let tenant = db.tenant("acme").await;
    let engine = citadel_testkit::engine(store, 1, EngineConfig::default());
    let grant = r#"{"secrets": ["K"]}"#;
    let calls = [("secrets", "api.secrets.get('K')")];
    for (name, call) in calls {
        // Caught: the error says what it is.
        let caught = format!("try {{ await {call}; }} catch (e) {{ return [e.name, e.code]; }}");
        let script = live(
            store.as_ref(),
            &tenant,
            &format!("{name}-caught"),
            grant,
            &caught,
        )
        .await;
        assert_eq!(
            result(&engine, &tenant, &script).await,
            json!(["Unavailable", "unavailable"]),
            "{name}"
        );
        // Uncaught: the run's error code.
        let uncaught = format!("return await {call};");
        let script = live(
            store.as_ref(),
            &tenant,
            &format!("{name}-uncaught"),
            grant,
            &uncaught,
        )
        .await;
        let e = error(&engine, &tenant, &script).await;
        assert_eq!(e["code"], "unavailable", "{name}: {e}");
        assert_eq!(e["name"], "Unavailable", "{name}: {e}");
        assert_eq!(e["line"], 1, "{name}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_outside_the_grant_is_denied_and_audited() {
    let db = TestDb::new().await;
    let store = &db.store;
    let tenant = db.tenant("acme").await;
    let engine = citadel_testkit::engine(store, 1, EngineConfig::default());
    let script = live(
        store.as_ref(),
        &tenant,
        "emitter",
        r#"{"events": {"emit": ["order.*"]}}"#,
        "try { await api.events.emit('user.deleted', {}); } catch (e) { return e.code; }",
    )
    .await;
    assert_eq!(
        result(&engine, &tenant, &script).await,
        json!("capability_denied")
    );
    let audit = citadel_testkit::audit(store.as_ref(), "capability.denied").await;
    assert_eq!(audit.len(), 1);
    let details: Value = serde_json::from_str(&audit[0].entry.details).unwrap();
    assert_eq!(details["capability"], "events");
}

/// A one-route-per-path HTTP/1.1 server on 127.0.0.1 for fetch tests:
/// `/echo` answers the request's method, authorization header and body as
/// JSON; `/hang` never answers; anything else is 404.
async fn http_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                let length: usize = header("content-length").parse().unwrap_or(0);
                while buf.len() < head_end + length {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let mut first = head.split_whitespace();
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                let (status, reply) = match path {
                    "/echo" => (
                        "200 OK",
                        json!({"method": method, "authorization": header("authorization"), "body": body})
                            .to_string(),
                    ),
                    "/hang" => {
                        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                        return;
                    }
                    _ => ("404 Not Found", "{}".to_owned()),
                };
                let out = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-seen: a\r\nx-seen: b\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = sock.write_all(out.as_bytes()).await;
            });
        }
    });
    port
}

fn egress(allow_private: bool) -> Option<Arc<citadel_egress::Egress>> {
    let config = citadel_egress::EgressConfig {
        allow_private,
        ..citadel_egress::EgressConfig::default()
    };
    Some(Arc::new(citadel_egress::Egress::new(config).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reaches_granted_hosts_with_a_secret_and_nothing_else() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let port = http_server().await;
    let vault = vault(store).await;
    vault
        .create(&meta(&acme, "API_TOKEN", None), "tok_0123456789abcdef")
        .await
        .unwrap();
    let config = EngineConfig {
        vault: Some(vault),
        egress: egress(true),
        quotas: Quotas {
            http_calls_per_run: 3,
            ..Quotas::default()
        },
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);
    let grant = format!(
        r#"{{"http": {{"allow": ["http://127.0.0.1:{port}"]}}, "secrets": ["API_TOKEN"]}}"#
    );
    let poster = live(
        store.as_ref(),
        &acme,
        "poster",
        &grant,
        &format!(
            r#"
            const token = await api.secrets.get('API_TOKEN');
            const r = await api.http.fetch('http://127.0.0.1:{port}/echo', {{
                method: 'POST', headers: {{authorization: 'Bearer ' + token}}, body: {{processed: 3}},
            }});
            const seen = await r.json();
            return [r.status, r.ok, r.headers['x-seen'], seen.method, seen.authorization, JSON.parse(seen.body)];
            "#
        ),
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &poster).await,
        json!([200, true, "a, b", "POST", "Bearer [REDACTED:API_TOKEN]", {"processed": 3}])
    );

    // Outside the grant: another port, another host, plain http to a host
    // granted only https, and more calls than a run may make.
    let cases = [
        (
            "port",
            format!("http://127.0.0.1:{}/echo", port + 1),
            "capability_denied",
        ),
        (
            "host",
            "https://example.com/".to_owned(),
            "capability_denied",
        ),
        ("url", "not a url".to_owned(), "invalid_url"),
        ("hang", format!("http://127.0.0.1:{port}/hang"), "timeout"),
    ];
    for (name, url, code) in cases {
        let source = format!(
            "try {{ await api.http.fetch('{url}', {{timeout_ms: 300}}); return 'fetched'; }} \
             catch (e) {{ return e.code; }}"
        );
        let script = live(
            store.as_ref(),
            &acme,
            &format!("fetch-{name}"),
            &grant,
            &source,
        )
        .await;
        assert_eq!(result(&engine, &acme, &script).await, json!(code), "{name}");
    }
    let greedy = live(
        store.as_ref(),
        &acme,
        "greedy",
        &grant,
        &format!(
            "const codes = []; for (let i = 0; i < 4; i++) {{ try {{ \
             codes.push((await api.http.fetch('http://127.0.0.1:{port}/none')).status); }} \
             catch (e) {{ codes.push(e.code); }} }} return codes;"
        ),
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &greedy).await,
        json!([404, 404, 404, "limit_exceeded"])
    );
    let audit = citadel_testkit::audit(store.as_ref(), "capability.denied").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    let details: Value = serde_json::from_str(&audit[0].entry.details).unwrap();
    assert_eq!(details["capability"], "http");

    // A fetch that outlives the run's deadline ends with the run.
    let late = live(
        store.as_ref(),
        &acme,
        "late",
        &grant,
        &format!("try {{ await api.http.fetch('http://127.0.0.1:{port}/hang'); }} catch (e) {{ return e.code; }}"),
    )
    .await;
    let run = engine
        .run_sync(citadel_engine::RunSpec {
            timeout_ms: Some(400),
            ..run_spec(&acme, &late, "null")
        })
        .await
        .unwrap();
    // Either the fetch's own bound (the run's deadline) answers first and
    // the script returns the code, or the run's timer does: never later.
    match run.status.as_str() {
        "succeeded" => assert_eq!(run.result.as_deref(), Some("\"timeout\"")),
        other => assert_eq!(other, "timed_out", "{:?}", run.error),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_never_reaches_a_private_address_unless_the_platform_allows_it() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let config = EngineConfig {
        egress: egress(false),
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);
    let grant = r#"{"http": {"allow": ["*", "http://*"]}}"#;
    let corpus = include_str!("ssrf.txt");
    let mut n = 0;
    for line in corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (url, code) = line.rsplit_once(' ').unwrap();
        let source = format!(
            "try {{ await api.http.fetch({}); return 'fetched'; }} catch (e) {{ return e.code; }}",
            serde_json::to_string(url).unwrap()
        );
        let script = live(store.as_ref(), &acme, &format!("ssrf-{n}"), grant, &source).await;
        assert_eq!(result(&engine, &acme, &script).await, json!(code), "{url}");
        n += 1;
    }
    assert!(n >= 10, "{n}");
    // Each run's refusal is a security event on the record.
    let audit = citadel_testkit::audit(store.as_ref(), "capability.denied").await;
    let private = audit
        .iter()
        .filter(|a| {
            a.entry.details.contains("private_address") || a.entry.details.contains("private")
        })
        .count();
    assert_eq!(private, n, "{audit:?}");

    // A tenant's ceiling narrows every grant.
    let settings = citadel_scripts::TenantSettings {
        http_allow: Some(vec!["api.example.com".into()]),
        ..citadel_scripts::TenantSettings::default()
    };
    engine.put_settings(&acme, &settings).await.unwrap();
    let script = live(
        store.as_ref(),
        &acme,
        "ceiling",
        grant,
        "try { await api.http.fetch('https://other.example.org/'); } catch (e) { return [e.code, e.message]; }",
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &script).await,
        json!([
            "capability_denied",
            "host `other.example.org` is not allowed by the tenant's http_allow"
        ])
    );
}

/// A data-source root holding `app.db`: users, two of them stale.
async fn reporting_db() -> citadel_testkit::TempDir {
    use sqlx::ConnectOptions;
    let dir = citadel_testkit::temp_dir("datasources");
    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("app.db"))
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, last_seen_days INTEGER)",
        "INSERT INTO users VALUES (1, 'ann@example.com', 3), (2, 'bob@example.com', 45), \
         (3, 'cy@example.com', 90)",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_query_reads_a_granted_source_and_refuses_everything_else() {
    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let globex = db.tenant("globex").await;
    let root = reporting_db().await;
    let source = |tenant: &str, name: &str| citadel_store::DataSource {
        tenant_id: tenant.into(),
        name: name.into(),
        kind: "sqlite".into(),
        location: "app.db".into(),
        password_secret: None,
        created_at: 0,
        updated_at: 0,
    };
    store
        .put_datasource(&source(&acme, "reporting"))
        .await
        .unwrap();
    store
        .put_datasource(&source(&globex, "theirs"))
        .await
        .unwrap();
    let config = EngineConfig {
        datasources: Some(citadel_engine::DataSourceConfig {
            root: root.path().to_path_buf(),
            limits: citadel_datasource::QueryLimits {
                max_rows: 2,
                timeout: std::time::Duration::from_millis(300),
                ..citadel_datasource::QueryLimits::default()
            },
        }),
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);
    let grant = r#"{"db": ["reporting", "theirs"]}"#;
    let stale = live(
        store.as_ref(),
        &acme,
        "stale",
        grant,
        "const r = await api.db.query('SELECT id, email FROM users WHERE last_seen_days > ? ORDER BY id', [30], {source: 'reporting'}); \
         return r;",
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &stale).await,
        json!({"columns": ["id", "email"], "rows": [
            {"id": 2, "email": "bob@example.com"}, {"id": 3, "email": "cy@example.com"}]})
    );

    let corpus = include_str!("sql.txt");
    let mut n = 0;
    for line in corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (sql, code) = line.rsplit_once(" => ").unwrap();
        let source = format!(
            "try {{ await api.db.query({}, [], {{source: 'reporting'}}); return 'ran'; }} \
             catch (e) {{ return e.code; }}",
            serde_json::to_string(sql).unwrap()
        );
        let script = live(store.as_ref(), &acme, &format!("sql-{n}"), grant, &source).await;
        assert_eq!(result(&engine, &acme, &script).await, json!(code), "{sql}");
        n += 1;
    }
    assert!(n >= 12, "{n}");
    // Nothing was written, whatever was tried.
    let count = live(
        store.as_ref(),
        &acme,
        "count",
        grant,
        "return (await api.db.query('SELECT count(*) AS n FROM users', [], {source: 'reporting'})).rows[0].n;",
    )
    .await;
    assert_eq!(result(&engine, &acme, &count).await, json!(3));

    // Another tenant's source, granted by name, is not this tenant's; an
    // ungranted name is denied; two granted and none named is ambiguous.
    let cases = [
        (
            "foreign",
            "api.db.query('SELECT 1', [], {source: 'theirs'})",
            "datasource_not_found",
        ),
        (
            "ungranted",
            "api.db.query('SELECT 1', [], {source: 'payroll'})",
            "capability_denied",
        ),
        ("unnamed", "api.db.query('SELECT 1')", "invalid_argument"),
        (
            "params",
            "api.db.query('SELECT ?', {a: 1}, {source: 'reporting'})",
            "invalid_argument",
        ),
        (
            "arity",
            "api.db.query('SELECT ?', [], {source: 'reporting'})",
            "invalid_params",
        ),
    ];
    for (name, call, code) in cases {
        let source =
            format!("try {{ await {call}; return 'ran'; }} catch (e) {{ return e.code; }}");
        let script = live(store.as_ref(), &acme, &format!("db-{name}"), grant, &source).await;
        assert_eq!(result(&engine, &acme, &script).await, json!(code), "{name}");
    }
    // A refused statement is a security event on the record.
    let audit = citadel_testkit::audit(store.as_ref(), "capability.denied").await;
    assert!(
        audit
            .iter()
            .any(|a| a.entry.details.contains("\"code\":\"statement_refused\"")),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_query_reaches_postgres_with_its_password_from_the_vault() {
    use sqlx::{Connection, Executor, PgConnection};
    let Some(cluster) = citadel_testkit::pg::shared() else {
        return;
    };
    let mut admin = PgConnection::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    admin
        .execute("DROP DATABASE IF EXISTS gateway_reporting")
        .await
        .unwrap();
    admin
        .execute("CREATE DATABASE gateway_reporting")
        .await
        .unwrap();
    admin.close().await.unwrap();
    let url = cluster.url("gateway_reporting");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute(
        "CREATE TABLE users (id int4 PRIMARY KEY, email text, seen timestamptz);
         INSERT INTO users VALUES (1, 'ann@example.com', '2026-01-02T03:04:05Z'), (2, 'bob@example.com', NULL);",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();

    let db = TestDb::new().await;
    let store = &db.store;
    let acme = db.tenant("acme").await;
    let vault = vault(store).await;
    vault
        .create(&meta(&acme, "PG_PASSWORD", None), "pg-password-0123")
        .await
        .unwrap();
    store
        .put_datasource(&citadel_store::DataSource {
            tenant_id: acme.clone(),
            name: "warehouse".into(),
            kind: "postgres".into(),
            location: url,
            password_secret: Some("PG_PASSWORD".into()),
            created_at: 0,
            updated_at: 0,
        })
        .await
        .unwrap();
    let config = EngineConfig {
        vault: Some(vault),
        datasources: Some(citadel_engine::DataSourceConfig {
            root: db.dir().to_path_buf(),
            limits: citadel_datasource::QueryLimits::default(),
        }),
        ..EngineConfig::default()
    };
    let engine = citadel_testkit::engine(store, 1, config);
    let script = live(
        store.as_ref(),
        &acme,
        "warehouse",
        r#"{"db": ["warehouse"]}"#,
        "const r = await api.db.query('SELECT id, email, seen FROM users WHERE id = $1', [1]);\n\
         let write; try { await api.db.query('SELECT id FROM users FOR UPDATE'); } catch (e) { write = e.code; }\n\
         return [r.rows, write];",
    )
    .await;
    assert_eq!(
        result(&engine, &acme, &script).await,
        json!([[{"id": 1, "email": "ann@example.com", "seen": "2026-01-02T03:04:05Z"}], "statement_refused"])
    );
}
