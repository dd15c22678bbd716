//! Plugins through the API on a fresh SQLite file with isolates run in
//! process: the seed's welcome-email plugin installed from its example
//! bundle, configured, given its secret, enabled, reached through its
//! routes, its hook fired by a real event against a local mail-API
//! stand-in, tested with a synthetic event, disabled and uninstalled;
//! upgrades and rollbacks; jobs run now with their key-value namespace;
//! signed inbound routes; and the hostile bundles and handlers of
//! `tests/plugins/hostile.json`, each with its exact answer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use citadel_engine::EngineConfig;
use citadel_server::HttpSettings;
use citadel_store::Store;
use citadel_testkit::{Api, TestDb, eventually};
use serde_json::{Value, json};

struct World {
    api: Api,
    store: Arc<dyn Store>,
    acme: String,
    /// The data sources' root.
    sources: tempfile::TempDir,
    _db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let other = db.tenant("other").await;
    let mut tokens =
        citadel_testkit::tokens(store.as_ref(), &acme, &["owner", "developer", "viewer"]).await;
    tokens.push((
        "other_owner",
        citadel_testkit::token(store.as_ref(), &other, "owner").await,
    ));
    let vault = citadel_secrets::Vault::open(
        Arc::clone(&store),
        citadel_secrets::MasterKey::generate().unwrap(),
    )
    .await
    .unwrap();
    let egress = citadel_egress::Egress::new(citadel_egress::EgressConfig {
        allow_private: true,
        ..citadel_egress::EgressConfig::default()
    })
    .unwrap();
    let sources = citadel_testkit::temp_dir("plugin-sources");
    let engine = citadel_testkit::engine(
        &store,
        2,
        EngineConfig {
            vault: Some(Arc::new(vault)),
            egress: Some(Arc::new(egress)),
            datasources: Some(citadel_engine::DataSourceConfig {
                root: sources.path().to_path_buf(),
                limits: citadel_datasource::QueryLimits::default(),
            }),
            ..EngineConfig::default()
        },
    );
    let api =
        Api::new(Arc::clone(&store), Some(engine), &HttpSettings::default()).with_callers(tokens);
    World {
        api,
        store,
        acme,
        sources,
        _db: db,
    }
}

impl World {
    async fn call(
        &self,
        as_: &str,
        method: Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let body = (!body.is_null()).then_some(body);
        self.api.call_json(as_, method, path, body).await
    }

    async fn upload(
        &self,
        as_: &str,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let req = self
            .api
            .builder(Some(as_), Method::POST, path)
            .header("content-type", content_type)
            .body(Body::from(bytes))
            .unwrap();
        citadel_testkit::http::json(self.api.send(req).await).await
    }

    async fn install(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.upload("owner", "/v1/plugins", bytes, "application/gzip")
            .await
    }

    /// A request to a plugin route: status, headers, body text.
    async fn ext(
        &self,
        as_: Option<&str>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = self.api.builder(as_, method, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .api
            .send(req.body(Body::from(body.to_owned())).unwrap())
            .await;
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, citadel_testkit::http::text(res).await)
    }

    async fn run_when(&self, id: &str, status: &str) -> Value {
        eventually(&format!("run {id} {status}"), || async {
            let (code, run) = self
                .call(
                    "viewer",
                    Method::GET,
                    &format!("/v1/runs/{id}"),
                    Value::Null,
                )
                .await;
            (code == StatusCode::OK && run["status"] == status).then_some(run)
        })
        .await
    }

    async fn settings(&self, settings: Value) {
        let (status, body) = self
            .call("owner", Method::PUT, "/v1/settings", settings)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A `.tar.gz` bundle of these files.
fn bundle(files: &[(&str, &str)]) -> Vec<u8> {
    let files: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.as_bytes().to_vec()))
        .collect();
    citadel_plugin::pack(&citadel_plugin::Bundle::from_files(files).unwrap())
}

/// An example plugin's files, with `from` replaced by `to` in each.
fn example(name: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins")
        .join(name);
    let mut out = Vec::new();
    for entry in walk(&dir) {
        let rel = entry
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&entry).unwrap().replace(from, to);
        out.push((rel, text));
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn packed(files: &[(String, String)]) -> Vec<u8> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    bundle(&refs)
}

/// A local mail-API stand-in: records each POST to `/send` (its
/// authorization header and JSON body) and answers 202.
async fn mail_api() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let record = Arc::clone(&record);
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                record
                    .lock()
                    .unwrap()
                    .push(json!({ "authorization": auth, "body": body }));
                (StatusCode::ACCEPTED, axum::Json(json!({ "id": "msg_1" })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

const MAIL_KEY: &str = "mail-key-0123456789";

/// The welcome-email example, pointed at the stand-in on `port`.
fn welcome_email(port: u16) -> Vec<(String, String)> {
    example(
        "welcome-email",
        "127.0.0.1:8025",
        &format!("127.0.0.1:{port}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_email_plugin_end_to_end() {
    let w = world().await;
    let (port, mails) = mail_api().await;

    // Installed disabled, with what keeps it from running.
    let (status, body) = w.install(packed(&welcome_email(port))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["slug"], "welcome-email");
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["enabled"], false);
    assert_eq!(
        body["config"],
        json!({ "mail_api_url": "https://api.mail.example.com/v1/send", "subject": "Welcome aboard" })
    );
    assert_eq!(
        body["secrets"],
        json!([{ "name": "MAIL_API_KEY", "set": false, "version": null }])
    );
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{body}");
    assert!(
        problems[0].as_str().unwrap().starts_with("config: "),
        "{body}"
    );
    assert!(
        problems[1].as_str().unwrap().contains("MAIL_API_KEY"),
        "{body}"
    );

    // Not enabled while it cannot run.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/welcome-email/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "invalid_state");
    assert_eq!(
        body["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A configuration that breaks the schema is refused with its problems.
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/plugins/welcome-email/config",
            json!({ "from": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid");
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/plugins/welcome-email/config",
            json!({ "from": "hello@acme.test", "mail_api_url": format!("http://127.0.0.1:{port}/send") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["subject"], "Welcome aboard");
    // Only declared secrets; values never come back.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/welcome-email/secrets",
            json!({ "name": "OTHER", "value": MAIL_KEY }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/welcome-email/secrets",
            json!({ "name": "MAIL_API_KEY", "value": MAIL_KEY }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["secrets"],
        json!([{ "name": "MAIL_API_KEY", "set": true, "version": 1 }])
    );
    assert!(!body.to_string().contains(MAIL_KEY));
    // A developer may not manage plugins.
    let (status, body) = w
        .call(
            "developer",
            Method::POST,
            "/v1/plugins/welcome-email/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["details"]["permission"], "plugin.install");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/welcome-email/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["problems"], json!([]));

    // A public route, and a token route that needs `plugin.install`.
    let (status, headers, text) = w
        .ext(None, Method::GET, "/ext/acme/welcome-email/ping", &[], "")
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("citadel-run-id"));
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "status": "ok", "plugin": "welcome-email" })
    );
    let (status, _, text) = w
        .ext(
            None,
            Method::POST,
            "/ext/acme/welcome-email/send-test",
            &[("content-type", "application/json")],
            r#"{"email":"a@b.test"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let (status, _, text) = w
        .ext(
            Some("developer"),
            Method::POST,
            "/ext/acme/welcome-email/send-test",
            &[("content-type", "application/json")],
            r#"{"email":"a@b.test"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, _, text) = w
        .ext(
            Some("other_owner"),
            Method::POST,
            "/ext/acme/welcome-email/send-test",
            &[("content-type", "application/json")],
            r#"{"email":"a@b.test"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, _, text) = w
        .ext(
            Some("owner"),
            Method::POST,
            "/ext/acme/welcome-email/send-test",
            &[("content-type", "application/json")],
            r#"{"email":"a@b.test"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "status": 202 })
    );
    {
        let mails = mails.lock().unwrap();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0]["authorization"], format!("Bearer {MAIL_KEY}"));
        assert_eq!(mails[0]["body"]["to"], "a@b.test");
        assert_eq!(mails[0]["body"]["from"], "hello@acme.test");
    }
    // Unknown paths and methods.
    let (status, _, text) = w
        .ext(None, Method::GET, "/ext/acme/welcome-email/nope", &[], "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let (status, _, text) = w
        .ext(None, Method::POST, "/ext/acme/welcome-email/ping", &[], "")
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{text}");
    assert!(text.contains("\"method_not_allowed\""), "{text}");
    let (status, _, _) = w
        .ext(None, Method::GET, "/ext/nobody/welcome-email/ping", &[], "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Its hook, through the event path: a queued run per event.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/events",
            json!({ "type": "auth.user.created", "data": { "user": { "email": "new@acme.test", "first_name": "Ada" } } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let delivery = body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription"] == "plugin:welcome-email")
        .cloned()
        .unwrap_or_else(|| panic!("no plugin delivery in {body}"));
    let run = w
        .run_when(delivery["run_id"].as_str().unwrap(), "succeeded")
        .await;
    assert_eq!(run["result"], json!({ "sent": true }));
    assert_eq!(run["script"], "plugins/welcome-email");
    assert_eq!(run["trigger"], "event");
    {
        let mails = mails.lock().unwrap();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[1]["body"]["to"], "new@acme.test");
        assert_eq!(mails[1]["body"]["text"], "Hello Ada, welcome!");
    }

    // A test event: what the hook did, without storing the event.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/test-event",
            json!({ "type": "auth.user.created", "data": { "user": {} } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes = body.as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{body}");
    assert_eq!(outcomes[0]["slug"], "welcome-email");
    assert_eq!(outcomes[0]["hooks"], json!(["auth.user.created"]));
    assert_eq!(outcomes[0]["status"], "succeeded");
    assert_eq!(outcomes[0]["result"], json!({ "sent": false }));
    assert_eq!(
        outcomes[0]["logs"][0]["message"],
        "user without an email, nothing sent"
    );

    // Status, audit and `plugin.*` events.
    let (status, body) = w
        .call("viewer", Method::GET, "/v1/plugins/status", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["installed"], 1);
    assert_eq!(body["enabled"], 1);
    assert_eq!(body["webhooks_active"], 0);
    assert_eq!(body["jobs_scheduled"], 0);
    assert_eq!(body["plugins"][0]["routes"], 2);
    for action in [
        "plugin.install",
        "plugin.configure",
        "plugin.secret.set",
        "plugin.enable",
    ] {
        let entries = citadel_testkit::audit(w.store.as_ref(), action).await;
        assert_eq!(entries.len(), 1, "{action}");
        assert_eq!(entries[0].entry.target, "plugin:welcome-email");
        assert!(!entries[0].entry.details.contains(MAIL_KEY));
    }
    let (_, events) = w
        .call("owner", Method::GET, "/v1/events", Value::Null)
        .await;
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in [
        "plugin.installed",
        "plugin.configured",
        "plugin.enabled",
        "auth.user.created",
    ] {
        assert_eq!(
            types.iter().filter(|x| **x == t).count(),
            1,
            "{t} in {types:?}"
        );
    }

    // Per plugin and kind, in /metrics.
    let metrics = w.api.metrics().await;
    for (kind, n) in [("route", 2), ("hook", 2)] {
        let line = format!(
            "citadel_extension_runs_total{{tenant=\"{}\",name=\"welcome-email\",kind=\"{kind}\",outcome=\"ok\"}} {n}",
            w.acme
        );
        assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");
    }

    // Each execution on the audit record (appended in the background).
    for (action, n) in [("route.accessed", 2), ("hook.executed", 2)] {
        let entries = eventually(action, || async {
            let entries = citadel_testkit::audit(w.store.as_ref(), action).await;
            (entries.len() == n).then_some(entries)
        })
        .await;
        assert!(
            entries
                .iter()
                .all(|e| e.entry.target == "plugin:welcome-email")
        );
    }

    // Disabled: no route answers, no hook runs.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/welcome-email/disable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = w
        .ext(None, Method::GET, "/ext/acme/welcome-email/ping", &[], "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/events",
            json!({ "type": "auth.user.created", "data": {} }),
        )
        .await;
    assert!(
        !body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["subscription"] == "plugin:welcome-email"),
        "{body}"
    );

    // Uninstalled: gone with its secret.
    let (status, _) = w
        .call(
            "owner",
            Method::DELETE,
            "/v1/plugins/welcome-email",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(
            "owner",
            Method::GET,
            "/v1/plugins/welcome-email",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        w.store
            .secret(&w.acme, "PLUGIN_WELCOME_EMAIL__MAIL_API_KEY")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.store
            .script(&w.acme, "plugins/welcome-email")
            .await
            .unwrap()
            .is_none()
    );
    // Reinstalling starts afresh.
    let (status, body) = w.install(packed(&welcome_email(port))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["secrets"][0]["set"], false);
}

const V1_MANIFEST: &str = r#"{
  "slug": "greeter", "name": "Greeter", "version": "1.0.0", "entry": "main.js",
  "permissions": { "kv": true },
  "routes": [{ "method": "GET", "path": "/hello/:name", "auth": "public" },
             { "method": "GET", "path": "/last", "auth": "public" }],
  "jobs": [{ "name": "tick", "cron": "0 6 * * *", "timezone": "Europe/Berlin" }],
  "config": { "type": "object", "properties": { "greeting": { "type": "string", "default": "Hello" } } }
}"#;

fn greeter(version: &str, body: &str) -> Vec<u8> {
    let manifest = V1_MANIFEST.replace("1.0.0", version);
    let main = format!(
        "route(\"GET\", \"/hello/:name\", async (ctx, req) => ({{ status: 200, body: {body} }}));\n\
         route(\"GET\", \"/last\", async (ctx) => ({{ status: 200, body: await ctx.kv.get(\"last\") }}));\n\
         job(\"tick\", async (ctx) => {{ await ctx.kv.set(\"last\", \"{version}\"); return {{ ticked: ctx.plugin.version }}; }});\n"
    );
    bundle(&[("citadel-plugin.json", &manifest), ("main.js", &main)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_roll_back_and_jobs_keep_their_namespace() {
    let w = world().await;
    let v1 = greeter("1.0.0", "`${ctx.config.greeting}, ${req.params.name} (v1)`");
    let (status, body) = w.install(v1.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["jobs"][0]["schedule"], "plugins/greeter/tick");
    assert_eq!(
        body["jobs"][0]["next_fire_at"],
        Value::Null,
        "disabled: not scheduled"
    );
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/greeter/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["jobs"][0]["next_fire_at"].as_i64().unwrap() > 0);
    let (_, _, text) = w
        .ext(
            None,
            Method::GET,
            "/ext/acme/greeter/hello/Ada%20L",
            &[],
            "",
        )
        .await;
    assert_eq!(text, "Hello, Ada L (v1)");
    // The same bundle again is a conflict (it is installed).
    let (status, body) = w.install(v1.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Configuration is kept across an upgrade; the route switches.
    let (status, _) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/plugins/greeter/config",
            json!({ "greeting": "Hi" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w
        .upload(
            "owner",
            "/v1/plugins/greeter/versions",
            greeter("1.1.0", "`${ctx.config.greeting}, ${req.params.name} (v2)`"),
            "application/gzip",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], "1.1.0");
    assert_eq!(body["config"], json!({ "greeting": "Hi" }));
    let (_, _, text) = w
        .ext(None, Method::GET, "/ext/acme/greeter/hello/Bo", &[], "")
        .await;
    assert_eq!(text, "Hi, Bo (v2)");
    // Not downwards, and not another plugin's bundle.
    let (status, body) = w
        .upload(
            "owner",
            "/v1/plugins/greeter/versions",
            greeter("1.0.5", "'x'"),
            "application/gzip",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = w
        .upload(
            "owner",
            "/v1/plugins/greeter/versions",
            greeter("1.1.0", "'changed'"),
            "application/gzip",
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Jobs: run now, in the plugin's key-value namespace.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/greeter/jobs/tick/run-now",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = w
        .run_when(body["run_id"].as_str().unwrap(), "succeeded")
        .await;
    assert_eq!(run["result"], json!({ "ticked": "1.1.0" }));
    assert_eq!(run["trigger"], "manual");
    let (_, _, text) = w
        .ext(None, Method::GET, "/ext/acme/greeter/last", &[], "")
        .await;
    assert_eq!(text, "1.1.0");
    let (status, body) = w
        .call(
            "owner",
            Method::GET,
            "/v1/kv/plugin%3Agreeter%3Alast",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], "1.1.0");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/greeter/jobs/nope/run-now",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Its schedule is the plugin's: listed, but not the tenant's to edit.
    let (_, schedules) = w
        .call("owner", Method::GET, "/v1/schedules", Value::Null)
        .await;
    assert_eq!(schedules[0]["name"], "plugins/greeter/tick");
    assert_eq!(schedules[0]["timezone"], "Europe/Berlin");
    assert_eq!(
        schedules[0]["input"],
        json!({ "kind": "job", "job": "tick", "config": { "greeting": "Hi" } })
    );
    let (status, body) = w
        .call(
            "owner",
            Method::DELETE,
            "/v1/schedules/plugins%2Fgreeter%2Ftick",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Nor is its handler module a script to save or run.
    let (status, body) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts",
            json!({ "name": "plugins/greeter", "source": "return 1" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/scripts/plugins%2Fgreeter/run",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Rolled back to 1.0.0, configuration kept.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/greeter/rollback",
            json!({ "version": "1.0.0" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], "1.0.0");
    let (_, _, text) = w
        .ext(None, Method::GET, "/ext/acme/greeter/hello/Bo", &[], "")
        .await;
    assert_eq!(text, "Hi, Bo (v1)");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/greeter/rollback",
            json!({ "version": "9.9.9" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, versions) = w
        .call(
            "viewer",
            Method::GET,
            "/v1/plugins/greeter/versions",
            Value::Null,
        )
        .await;
    let listed: Vec<(Value, Value)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["current"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("1.0.0"), json!(true)),
            (json!("1.1.0"), json!(false))
        ]
    );

    // Uninstalling removes its key-value entries and its schedule.
    let (status, _) = w
        .call("owner", Method::DELETE, "/v1/plugins/greeter", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(
            "owner",
            Method::GET,
            "/v1/kv/plugin%3Agreeter%3Alast",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, schedules) = w
        .call("owner", Method::GET, "/v1/schedules", Value::Null)
        .await;
    assert_eq!(schedules, json!([]));
}

const SIGNED_MANIFEST: &str = r#"{
  "slug": "inbox", "name": "Inbox", "version": "1.0.0", "entry": "main.js",
  "routes": [{ "method": "POST", "path": "/hook", "auth": "signature", "secret": "SIGNING_SECRET" }],
  "secrets": ["SIGNING_SECRET"]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_routes_verify_and_refuse_replays() {
    let w = world().await;
    let main = "route(\"POST\", \"/hook\", async (ctx, req) => ({ status: 200, body: { got: req.body.n, signed: 'webhook-signature' in req.headers } }));\n";
    let (status, body) = w
        .install(bundle(&[
            ("citadel-plugin.json", SIGNED_MANIFEST),
            ("main.js", main),
        ]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = citadel_plugin::signature::secret_from_key(&[7u8; 32]);
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/inbox/secrets",
            json!({ "name": "SIGNING_SECRET", "value": secret }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/inbox/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let payload = r#"{"n":1}"#;
    let now = citadel_store::now_ms() / 1000;
    let signed = |id: &str, ts: i64, key: &str| {
        citadel_plugin::signature::signed_headers(&[key], id, ts, payload.as_bytes()).unwrap()
    };
    let send = |headers: Vec<(String, String)>| {
        let w = &w;
        async move {
            let mut h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            h.push(("content-type", "application/json"));
            w.ext(None, Method::POST, "/ext/acme/inbox/hook", &h, payload)
                .await
        }
    };
    let to_pairs = |h: [(&'static str, String); 3]| {
        h.into_iter()
            .map(|(a, b)| (a.to_owned(), b))
            .collect::<Vec<_>>()
    };

    let (status, _, text) = send(to_pairs(signed("msg_1", now, &secret))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "got": 1, "signed": true })
    );
    // The same message again: a replay.
    let (status, _, text) = send(to_pairs(signed("msg_1", now, &secret))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["details"]["reason"],
        "replayed"
    );
    // Signed with another key: forged.
    let forged = citadel_plugin::signature::secret_from_key(&[8u8; 32]);
    let (status, _, text) = send(to_pairs(signed("msg_2", now, &forged))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["details"]["reason"],
        "invalid_signature"
    );
    // Too old.
    let (status, _, text) = send(to_pairs(signed("msg_3", now - 3600, &secret))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["details"]["reason"],
        "timestamp_too_old"
    );
    // Unsigned.
    let (status, _, text) = send(Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error"]["details"]["reason"],
        "missing_signature_header"
    );
}

/// The hostile corpus: each case a bundle (or a handler) and its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_plugin_corpus() {
    let w = world().await;
    let corpus: Value = serde_json::from_str(include_str!("plugins/hostile.json")).unwrap();
    // Installed once, for the route and slug cases.
    let (status, body) = w
        .install(bundle(&[
            (
                "citadel-plugin.json",
                include_str!("plugins/routes/citadel-plugin.json"),
            ),
            ("main.js", include_str!("plugins/routes/main.js")),
        ]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/hostile/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.settings(json!({ "limits": { "timeout_ms": 500 }, "plugin_capabilities": ["kv", "http"], "http_allow": ["*.example.com"] }))
        .await;

    for case in corpus["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (status, text) = if let Some(route) = case["route"].as_str() {
            let (status, _, text) = w
                .ext(
                    None,
                    Method::GET,
                    &format!("/ext/acme/hostile{route}"),
                    &[],
                    "",
                )
                .await;
            (status, text)
        } else {
            let bytes = archive(&case["bundle"]);
            let content_type = case["content_type"].as_str().unwrap_or("application/zip");
            let (status, body) = w.upload("owner", "/v1/plugins", bytes, content_type).await;
            (status, body.to_string())
        };
        let expect = &case["expect"];
        assert_eq!(
            status.as_u16() as u64,
            expect["status"].as_u64().unwrap(),
            "{name}: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], expect["code"], "{name}: {text}");
        if let Some(d) = expect.get("diagnostic") {
            let codes: Vec<&Value> = body["error"]["details"]["diagnostics"]
                .as_array()
                .map(|a| a.iter().map(|d| &d["code"]).collect())
                .unwrap_or_default();
            assert!(codes.contains(&d), "{name}: no diagnostic {d} in {text}");
        }
        if let Some(absent) = expect.get("absent").and_then(Value::as_str) {
            assert!(
                !text.contains(absent),
                "{name}: `{absent}` leaked in {text}"
            );
        }
    }
}

/// A case's archive: `{"files": {name: text}}` zipped as is (names
/// unnormalised), `{"symlink": [name, target]}` added as a link,
/// `{"zeros": [name, bytes]}` a deflated file of zeros, `{"bytes": n}` n
/// random-looking bytes.
fn archive(spec: &Value) -> Vec<u8> {
    use std::io::Write;
    if let Some(n) = spec["bytes"].as_u64() {
        return (0..n).map(|i| (i * 7919 % 251) as u8).collect();
    }
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in spec["files"].as_object().into_iter().flatten() {
            zip.start_file(name.as_str(), options).unwrap();
            zip.write_all(text.as_str().unwrap().as_bytes()).unwrap();
        }
        if let Some(link) = spec["symlink"].as_array() {
            zip.add_symlink(
                link[0].as_str().unwrap(),
                link[1].as_str().unwrap(),
                options,
            )
            .unwrap();
        }
        if let Some(z) = spec["zeros"].as_array() {
            zip.start_file(z[0].as_str().unwrap(), options).unwrap();
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..z[1].as_u64().unwrap() >> 20 {
                zip.write_all(&chunk).unwrap();
            }
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_requests_name_their_media_type() {
    let w = world().await;
    let (status, body) = w
        .upload("owner", "/v1/plugins", b"{}".to_vec(), "application/json")
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let (status, body) = w
        .upload("owner", "/v1/plugins", Vec::new(), "application/zip")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let req = Request::post("/v1/plugins")
        .header("content-type", "application/zip")
        .body(Body::from("x"))
        .unwrap();
    let (status, _) = citadel_testkit::http::json(w.api.send(req).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A chat-service stand-in: records each POST (path and JSON body) and
/// answers 200.
async fn chat_api() -> (u16, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
        let record = Arc::clone(&record);
        async move {
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            record.lock().unwrap().push((uri.path().to_owned(), body));
            (StatusCode::OK, "ok")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// The seed's Slack-style notifier: its hooks post to the chat stand-in,
/// its signed slash-command route answers, its key-value entries are read
/// back through its token route, and its outgoing webhook endpoint (the
/// example's YAML and transform) delivers the same events, signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slack_notifier_example_end_to_end() {
    let w = world().await;
    let (port, posts) = chat_api().await;
    let files = example(
        "slack-notifier",
        "127.0.0.1:9000",
        &format!("127.0.0.1:{port}"),
    );
    let (status, body) = w.install(packed(&files)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let signing = citadel_plugin::signature::secret_from_key(&[3u8; 32]);
    for (name, value) in [
        ("SLACK_WEBHOOK_URL", format!("http://127.0.0.1:{port}/chat")),
        ("SLACK_SIGNING_SECRET", signing.clone()),
    ] {
        let (status, body) = w
            .call(
                "owner",
                Method::POST,
                "/v1/plugins/slack-notifier/secrets",
                json!({ "name": name, "value": value }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/plugins/slack-notifier/config",
            json!({ "min_amount_cents": 1000 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/slack-notifier/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Its outgoing webhook endpoint, as code, with tenant secrets.
    for (name, value) in [
        (
            "SLACK_WEBHOOK_URL",
            format!("http://127.0.0.1:{port}/endpoint"),
        ),
        (
            "WEBHOOK_SIGNING_KEY",
            citadel_plugin::signature::secret_from_key(&[4u8; 32]),
        ),
    ] {
        let (status, body) = w
            .call(
                "owner",
                Method::POST,
                "/v1/secrets",
                json!({ "name": name, "value": value }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let file = |rel: &str| files.iter().find(|(n, _)| n == rel).unwrap().1.clone();
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/webhooks/notifications",
            json!({ "source": file("webhooks/notifications.yaml"), "transform": file("transforms/slack.ts") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A large paid order: the hook posts, the endpoint delivers; a small
    // one is skipped by the hook (below min_amount_cents).
    w.call(
        "owner",
        Method::POST,
        "/v1/events",
        json!({ "type": "order.paid", "data": { "order_id": "o-9", "amount_cents": 4200 } }),
    )
    .await;
    w.call(
        "owner",
        Method::POST,
        "/v1/events",
        json!({ "type": "build.completed", "data": { "id": "b-1", "ok": true } }),
    )
    .await;
    let (_, small) = w
        .call(
            "owner",
            Method::POST,
            "/v1/events",
            json!({ "type": "order.paid", "data": { "order_id": "o-1", "amount_cents": 100 } }),
        )
        .await;
    let run = small["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription"] == "plugin:slack-notifier")
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let skipped = w.run_when(&run, "succeeded").await;
    assert_eq!(skipped["result"], json!({ "skipped": true }));
    let seen = eventually("five posts", || async {
        let seen = posts.lock().unwrap().clone();
        (seen.len() == 5).then_some(seen)
    })
    .await;
    let chat: Vec<&Value> = seen
        .iter()
        .filter(|(p, _)| p == "/chat")
        .map(|(_, b)| b)
        .collect();
    let mut texts: Vec<&str> = chat.iter().map(|b| b["text"].as_str().unwrap()).collect();
    texts.sort();
    assert_eq!(texts, ["Build b-1 passed", "Order o-9 paid: 42"]);
    assert!(chat.iter().all(|b| b["channel"] == "#ops"));
    let endpoint: Vec<&Value> = seen
        .iter()
        .filter(|(p, _)| p == "/endpoint")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        endpoint.len(),
        3,
        "every order.paid and build.completed: {seen:?}"
    );
    assert!(
        endpoint
            .iter()
            .any(|b| b["text"] == "order.paid: {\"amount_cents\":4200,\"order_id\":\"o-9\"}"),
        "{endpoint:?}"
    );

    // Its slash commands: signed by the chat service.
    let payload = r#"{"text":"hello"}"#;
    let headers = citadel_plugin::signature::signed_headers(
        &[signing.as_str()],
        "cmd-1",
        citadel_store::now_ms() / 1000,
        payload.as_bytes(),
    )
    .unwrap();
    let mut h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (*a, b.as_str())).collect();
    h.push(("content-type", "application/json"));
    let (status, _, text) = w
        .ext(
            None,
            Method::POST,
            "/ext/acme/slack-notifier/commands",
            &h,
            payload,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "response_type": "ephemeral", "text": "echo: hello" })
    );

    // What it kept, in its own key-value namespace, read through its route.
    let (_, kv) = w
        .call(
            "owner",
            Method::GET,
            "/v1/kv?prefix=plugin%3Aslack-notifier%3Alast%3A",
            Value::Null,
        )
        .await;
    let keys: Vec<&str> = kv["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "plugin:slack-notifier:last:b-1",
            "plugin:slack-notifier:last:o-9"
        ],
        "{kv}"
    );
    let (status, _, text) = w
        .ext(
            Some("viewer"),
            Method::GET,
            "/ext/acme/slack-notifier/messages/o-9",
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "text": "Order o-9 paid: 42" })
    );
    let (status, _, _) = w
        .ext(
            Some("viewer"),
            Method::GET,
            "/ext/acme/slack-notifier/messages/o-1",
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The seed's daily KPI job: run now, it reads yesterday's orders from the
/// tenant's reporting data source, keeps the KPIs in its key-value
/// namespace, emits `kpi.computed`, and its token route reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_kpi_example_end_to_end() {
    let w = world().await;
    let yesterday = jiff::Timestamp::from_millisecond(citadel_store::now_ms() - 24 * 3600 * 1000)
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string();
    {
        use sqlx::ConnectOptions;
        let path = w.sources.path().join("reporting.db");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, day TEXT, amount_cents INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        for (day, cents) in [
            (yesterday.as_str(), 1500),
            (yesterday.as_str(), 2500),
            ("2000-01-01", 9999),
        ] {
            sqlx::query("INSERT INTO orders (day, amount_cents) VALUES (?, ?)")
                .bind(day)
                .bind(cents)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/datasources/reporting",
            json!({ "kind": "sqlite", "location": "reporting.db" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w.install(packed(&example("daily-kpi", "\0", "\0"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["jobs"][0]["timezone"], "Europe/Berlin");
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/daily-kpi/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["jobs"][0]["next_fire_at"].as_i64().unwrap();
    let local = jiff::Timestamp::from_millisecond(next)
        .unwrap()
        .in_tz("Europe/Berlin")
        .unwrap();
    assert_eq!((local.hour(), local.minute()), (6, 0), "06:00 Berlin time");

    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/plugins/daily-kpi/jobs/daily_kpi/run-now",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["run_id"].as_str().unwrap().to_owned();
    let run = eventually("the job's run", || async {
        let (_, run) = w
            .call(
                "viewer",
                Method::GET,
                &format!("/v1/runs/{id}"),
                Value::Null,
            )
            .await;
        matches!(run["status"].as_str(), Some("succeeded" | "failed")).then_some(run)
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let kpi = json!({ "day": yesterday, "orders": 2, "revenue_cents": 4000 });
    assert_eq!(run["result"], kpi);
    let (status, _, text) = w
        .ext(
            Some("viewer"),
            Method::GET,
            &format!("/ext/acme/daily-kpi/kpi/{yesterday}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), kpi);
    let (status, _, _) = w
        .ext(
            Some("viewer"),
            Method::GET,
            "/ext/acme/daily-kpi/kpi/1999-01-01",
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = w
        .ext(
            None,
            Method::GET,
            &format!("/ext/acme/daily-kpi/kpi/{yesterday}"),
            &[],
            "",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, events) = w
        .call("owner", Method::GET, "/v1/events", Value::Null)
        .await;
    let computed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "kpi.computed")
        .cloned();
    assert_eq!(computed.unwrap()["data"], kpi);
}
