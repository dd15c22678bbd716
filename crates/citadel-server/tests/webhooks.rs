//! Outgoing webhooks through the API, delivering to a local receiver: an
//! endpoint as code with a transform, Standard Webhooks signatures checked
//! on the receiving side, retries on the endpoint's schedule, a 410 that
//! disables the endpoint, redirects not followed, a slow receiver cut at
//! the timeout, the delivery log with every attempt, redelivery and test
//! sends, and the refusals each wrong request gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use citadel_engine::EngineConfig;
use citadel_server::HttpSettings;
use citadel_testkit::{Api, TestDb, eventually};
use serde_json::{Value, json};

struct World {
    api: Api,
    _db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let tokens = citadel_testkit::tokens(store.as_ref(), &acme, &["owner", "developer"]).await;
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
    let engine = citadel_testkit::engine(
        &store,
        2,
        EngineConfig {
            vault: Some(Arc::new(vault)),
            egress: Some(Arc::new(egress)),
            ..EngineConfig::default()
        },
    );
    let api =
        Api::new(Arc::clone(&store), Some(engine), &HttpSettings::default()).with_callers(tokens);
    World { api, _db: db }
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

    async fn secret(&self, name: &str, value: &str) {
        let (status, body) = self
            .call(
                "owner",
                Method::POST,
                "/v1/secrets",
                json!({ "name": name, "value": value }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn endpoint(
        &self,
        name: &str,
        source: &str,
        transform: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "source": source });
        if let Some(t) = transform {
            body["transform"] = json!(t);
        }
        self.call("owner", Method::PUT, &format!("/v1/webhooks/{name}"), body)
            .await
    }

    async fn publish(&self, event_type: &str, data: Value) -> Value {
        let (status, body) = self
            .call(
                "owner",
                Method::POST,
                "/v1/events",
                json!({ "type": event_type, "data": data }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    /// The delivery with its attempts once its state is `state`.
    async fn delivery_when(&self, endpoint: &str, id: &str, state: &str) -> Value {
        eventually(&format!("delivery {id} {state}"), || async {
            let (code, d) = self
                .call(
                    "owner",
                    Method::GET,
                    &format!("/v1/webhooks/{endpoint}/deliveries/{id}"),
                    Value::Null,
                )
                .await;
            (code == StatusCode::OK && d["state"] == state).then_some(d)
        })
        .await
    }
}

/// A receiver: records every request (path, headers, body) and answers
/// by path: `/ok` 200, `/flaky` 500 (with `Retry-After: 1`) the first time
/// then 200, `/gone` 410, `/redirect` 302 to a private address, `/slow`
/// after 5 s, anything else 500.
async fn receiver() -> (u16, Arc<Mutex<Vec<(String, HeaderMap, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, HeaderMap, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
            let record = Arc::clone(&record);
            async move {
                let path = uri.path().to_owned();
                let before = {
                    let mut seen = record.lock().unwrap();
                    let before = seen.iter().filter(|(p, _, _)| *p == path).count();
                    seen.push((path.clone(), headers, body));
                    before
                };
                let plain = |s: u16| {
                    axum::response::Response::builder()
                        .status(s)
                        .body(axum::body::Body::from("answer"))
                        .unwrap()
                };
                match path.as_str() {
                    "/ok" => plain(200),
                    "/flaky" if before == 0 => axum::response::Response::builder()
                        .status(500)
                        .header("retry-after", "1")
                        .body(axum::body::Body::from("try later"))
                        .unwrap(),
                    "/flaky" => plain(200),
                    "/gone" => plain(410),
                    "/redirect" => axum::response::Response::builder()
                        .status(302)
                        .header("location", "http://169.254.169.254/latest/meta-data/")
                        .body(axum::body::Body::empty())
                        .unwrap(),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        plain(200)
                    }
                    _ => plain(500),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

fn endpoint_yaml(port: u16, path: &str, on: &str, schedule: &str, transform: bool) -> String {
    let mut yaml = format!(
        "api_version: v1\non: [\"{on}\"]\ndelivery:\n  url: \"http://127.0.0.1:{port}{path}\"\n  headers:\n    X-Source: \"citadel\"\n  signing:\n    alg: \"HMAC-SHA256\"\n    secret: \"${{SECRET:SIGNING_KEY}}\"\n  timeout_ms: 500\nretry:\n  schedule: {schedule}\n"
    );
    if transform {
        yaml.push_str(
            "transform:\n  language: \"ts\"\n  entry: \"transforms/slack.ts#transform\"\n",
        );
    }
    yaml
}

const SLACK_TS: &str = include_str!("../../../examples/plugins/slack-notifier/transforms/slack.ts");

fn signing_key() -> String {
    citadel_plugin::signature::secret_from_key(&[42u8; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_transformed_deliveries_with_their_log() {
    let w = world().await;
    let (port, seen) = receiver().await;
    w.secret("SIGNING_KEY", &signing_key()).await;

    let yaml = endpoint_yaml(port, "/ok", "order.*", "[\"0s\"]", true);
    let (status, body) = w.endpoint("slack", &yaml, Some(SLACK_TS)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1);
    assert_eq!(body["enabled"], true);
    assert_eq!(body["on"], json!(["order.*"]));
    assert_eq!(body["url"], format!("http://127.0.0.1:{port}/ok"));
    // The same again stores nothing; a change is version 2.
    let (status, body) = w.endpoint("slack", &yaml, Some(SLACK_TS)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 1);
    let yaml = endpoint_yaml(port, "/ok", "order.paid", "[\"0s\"]", true);
    let (status, body) = w.endpoint("slack", &yaml, Some(SLACK_TS)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 2);
    let (_, versions) = w
        .call(
            "owner",
            Method::GET,
            "/v1/webhooks/slack/versions",
            Value::Null,
        )
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // An event it receives, and one it does not.
    let published = w
        .publish(
            "order.paid",
            json!({ "order_id": "o1", "amount_cents": 1200 }),
        )
        .await;
    w.publish("order.refunded", json!({})).await;
    let delivery = published["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["subscription"] == "webhook:slack")
        .cloned()
        .unwrap_or_else(|| panic!("no webhook delivery in {published}"));
    let id = delivery["run_id"].as_str().unwrap().to_owned();
    let d = w.delivery_when("slack", &id, "delivered").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 200);
    assert_eq!(d["event_type"], "order.paid");
    assert_eq!(
        d["payload"]["data"],
        json!({ "order_id": "o1", "amount_cents": 1200 })
    );
    let attempt = &d["attempt_log"][0];
    assert_eq!(attempt["status"], 200);
    assert_eq!(attempt["response"], "answer");
    assert_eq!(attempt["error"], Value::Null);

    // What the receiver got: the transformed body, signed.
    let (path, headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(path, "/ok");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "order.refunded is not delivered"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "text": "order.paid: {\"amount_cents\":1200,\"order_id\":\"o1\"}" })
    );
    assert_eq!(headers["x-source"], "citadel");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["webhook-id"], id.as_str());
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let signed = citadel_plugin::signature::SignedHeaders::from_pairs(pairs).unwrap();
    let now = citadel_store::now_ms() / 1000;
    let key = signing_key();
    citadel_plugin::signature::verify(
        &[key.as_str()],
        &signed,
        body.as_bytes(),
        now,
        Duration::from_secs(300),
    )
    .expect("the signature verifies with the endpoint's secret");
    let other = citadel_plugin::signature::secret_from_key(&[1u8; 32]);
    assert!(
        citadel_plugin::signature::verify(
            &[other.as_str()],
            &signed,
            body.as_bytes(),
            now,
            Duration::from_secs(300)
        )
        .is_err()
    );

    // A rotation: the secret holds the new and the old key; each signs.
    let new_key = citadel_plugin::signature::secret_from_key(&[43u8; 32]);
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/secrets/SIGNING_KEY",
            json!({ "value": format!("{new_key} {key}") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, sent) = w
        .call(
            "owner",
            Method::POST,
            "/v1/webhooks/slack/test",
            json!({ "type": "order.paid" }),
        )
        .await;
    assert_eq!(sent["state"], "delivered", "{sent}");
    let (_, headers, body) = seen.lock().unwrap().last().cloned().unwrap();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let signed = citadel_plugin::signature::SignedHeaders::from_pairs(pairs).unwrap();
    assert_eq!(signed.signature.split(' ').count(), 2);
    for k in [&new_key, &key] {
        citadel_plugin::signature::verify(
            &[k.as_str()],
            &signed,
            body.as_bytes(),
            now,
            Duration::from_secs(300),
        )
        .expect("each key verifies during the rotation");
    }

    // Redelivered: a new delivery of the same event.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            &format!("/v1/webhooks/slack/deliveries/{id}/redeliver"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let again = body["delivery_id"].as_str().unwrap().to_owned();
    assert_ne!(again, id);
    let d = w.delivery_when("slack", &again, "delivered").await;
    assert_eq!(d["event_id"], published["id"]);
    // A test send, answered at once.
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/webhooks/slack/test",
            json!({ "type": "order.paid", "data": { "order_id": "t" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "delivered");
    assert_eq!(body["attempt_log"][0]["status"], 200);
    let (_, list) = w
        .call(
            "owner",
            Method::GET,
            "/v1/webhooks/slack/deliveries",
            Value::Null,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    let metrics = w.api.metrics().await;
    assert!(
        metrics.contains("name=\"slack\",kind=\"delivery\",outcome=\"ok\"} 4"),
        "{metrics}"
    );
    eventually("webhook.delivered on the audit record", || async {
        let (_, audit) = w
            .call(
                "owner",
                Method::GET,
                "/v1/audit?action=webhook.delivered",
                Value::Null,
            )
            .await;
        // The two queued deliveries; test sends are audited as `webhook.test`.
        (audit["entries"].as_array().map_or(0, Vec::len) == 2).then_some(())
    })
    .await;
    // Developers may not read deliveries (they hold event data).
    let (status, _) = w
        .call(
            "developer",
            Method::GET,
            "/v1/webhooks/slack/deliveries",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_disable_and_never_follow_redirects() {
    let w = world().await;
    let (port, seen) = receiver().await;
    w.secret("SIGNING_KEY", &signing_key()).await;

    // 500 with Retry-After, then 200: two attempts.
    let (status, body) = w
        .endpoint(
            "flaky",
            &endpoint_yaml(port, "/flaky", "a.flaky", "[\"0s\", \"1s\"]", false),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let published = w.publish("a.flaky", json!({ "n": 1 })).await;
    let id = published["deliveries"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = w.delivery_when("flaky", &id, "delivered").await;
    let statuses: Vec<Value> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(500), json!(200)]);
    assert_eq!(d["attempt_log"][0]["response"], "try later");
    let at: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["at"].as_i64().unwrap())
        .collect();
    assert!(
        at[1] - at[0] >= 900,
        "the second attempt waited for its schedule: {at:?}"
    );
    // Without an unsigned body in between: the same webhook-id both times.
    let ids: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == "/flaky")
        .map(|(_, h, _)| h["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [id.clone(), id.clone()]);

    // 410 Gone disables the endpoint, with an event.
    w.endpoint(
        "gone",
        &endpoint_yaml(port, "/gone", "a.gone", "[\"0s\", \"1s\"]", false),
        None,
    )
    .await;
    let published = w.publish("a.gone", json!({})).await;
    let id = published["deliveries"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = w.delivery_when("gone", &id, "failed").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 410);
    let (_, e) = w
        .call("owner", Method::GET, "/v1/webhooks/gone", Value::Null)
        .await;
    assert_eq!(e["enabled"], false);
    assert_eq!(e["disabled_reason"], "the receiver answered 410 Gone");
    let (_, events) = w
        .call("owner", Method::GET, "/v1/events", Value::Null)
        .await;
    let disabled = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "webhook.endpoint.disabled")
        .cloned();
    assert_eq!(disabled.unwrap()["data"]["endpoint"], "gone");
    // Disabled: nothing more is delivered; enabled again, it is.
    let published = w.publish("a.gone", json!({})).await;
    assert!(
        published["deliveries"].as_array().unwrap().is_empty(),
        "{published}"
    );
    let (status, e) = w
        .call(
            "owner",
            Method::POST,
            "/v1/webhooks/gone/enable",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(e["enabled"], true);
    assert_eq!(e["disabled_reason"], Value::Null);

    // A redirect is a failed attempt; its target is never asked.
    w.endpoint(
        "redirect",
        &endpoint_yaml(port, "/redirect", "a.redirect", "[\"0s\"]", false),
        None,
    )
    .await;
    let published = w.publish("a.redirect", json!({})).await;
    let id = published["deliveries"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = w.delivery_when("redirect", &id, "failed").await;
    assert_eq!(d["attempt_log"][0]["status"], Value::Null);
    let error = d["attempt_log"][0]["error"].as_str().unwrap();
    assert!(error.contains("redirect"), "{error}");

    // A slow receiver is cut at the endpoint's timeout (500 ms).
    w.endpoint(
        "slow",
        &endpoint_yaml(port, "/slow", "a.slow", "[\"0s\"]", false),
        None,
    )
    .await;
    let (status, body) = w
        .call("owner", Method::POST, "/v1/webhooks/slow/test", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "failed");
    let attempt = &body["attempt_log"][0];
    assert_eq!(attempt["status"], Value::Null);
    assert!(
        attempt["error"].as_str().unwrap().starts_with("timeout"),
        "{attempt}"
    );
    assert!(attempt["latency_ms"].as_i64().unwrap() < 3000, "{attempt}");

    // Out of attempts: failed, on the audit record.
    w.endpoint(
        "down",
        &endpoint_yaml(port, "/down", "a.down", "[\"0s\", \"0s\"]", false),
        None,
    )
    .await;
    let published = w.publish("a.down", json!({})).await;
    let id = published["deliveries"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = w.delivery_when("down", &id, "failed").await;
    assert_eq!(d["attempts"], 2);
    // Appended in the background, soon after.
    eventually("webhook.failed on the audit record", || async {
        let (_, audit) = w
            .call(
                "owner",
                Method::GET,
                "/v1/audit?action=webhook.failed",
                Value::Null,
            )
            .await;
        audit.to_string().contains(&id).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_refuse_what_is_wrong() {
    let w = world().await;
    let ok = endpoint_yaml(9, "/ok", "a.b", "[\"0s\"]", false);
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "bad name",
            json!({ "source": ok }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "no such field",
            json!({ "source": format!("{ok}surprise: 1\n") }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
        ),
        (
            "not yaml",
            json!({ "source": "on: [" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
        ),
        (
            "transform named, not sent",
            json!({ "source": endpoint_yaml(9, "/ok", "a.b", "[\"0s\"]", true) }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "transform sent, not named",
            json!({ "source": ok, "transform": "export function transform(e) { return e; }" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "transform with eval",
            json!({ "source": endpoint_yaml(9, "/ok", "a.b", "[\"0s\"]", true), "transform": "export function transform(e) { return eval('e'); }" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
        ),
    ];
    for (name, body, status, code) in cases {
        let path = if name == "bad name" {
            "/v1/webhooks/Bad%20Name"
        } else {
            "/v1/webhooks/case"
        };
        let (got, answer) = w.call("owner", Method::PUT, path, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
    }
    let (status, _) = w
        .call("owner", Method::GET, "/v1/webhooks/case", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(
            "developer",
            Method::PUT,
            "/v1/webhooks/case",
            json!({ "source": ok }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A secret the endpoint names that is not set: the attempt says so.
    let (status, _) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/webhooks/nosecret",
            json!({ "source": ok }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/webhooks/nosecret/test",
            json!({}),
        )
        .await;
    assert_eq!(body["state"], "failed");
    let error = body["attempt_log"][0]["error"].as_str().unwrap();
    assert!(error.contains("SIGNING_KEY"), "{error}");
    let (status, _) = w
        .call(
            "owner",
            Method::DELETE,
            "/v1/webhooks/nosecret",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(
            "owner",
            Method::GET,
            "/v1/webhooks/nosecret/deliveries",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn hmac_hex(key: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl World {
    async fn hook(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .api
            .builder(None, Method::POST, path)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let res = self
            .api
            .send(req.body(axum::body::Body::from(body.to_owned())).unwrap())
            .await;
        citadel_testkit::http::json(res).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_webhooks_verify_and_refuse_replays() {
    let w = world().await;
    let (status, body) = w
        .call(
            "owner",
            Method::POST,
            "/v1/scripts",
            json!({ "name": "hooks/github", "source": "return { got: input.body.n, id: input.id, event: input.headers['x-github-event'] };" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    w.secret("GH_SECRET", "github-shared-secret").await;
    let whsec = citadel_plugin::signature::secret_from_key(&[9u8; 32]);
    w.secret("WH_SECRET", &whsec).await;

    // Who may expose what.
    let spec = json!({ "target": "hooks/github", "verify": "hmac", "secret": "GH_SECRET",
        "signature_header": "X-Hub-Signature-256", "id_header": "X-GitHub-Delivery" });
    let (status, _) = w
        .call(
            "developer",
            Method::PUT,
            "/v1/inbound-webhooks/gh",
            spec.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (bad, code) in [
        (
            json!({ "target": "nope", "secret": "GH_SECRET" }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "target": "hooks/github", "secret": "GH_SECRET", "verify": "md5" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "target": "hooks/github", "secret": "GH_SECRET", "verify": "hmac" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "target": "hooks/github", "secret": "GH_SECRET", "mode": "later" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "target": "hooks/github", "secret": "lower" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, body) = w
            .call("owner", Method::PUT, "/v1/inbound-webhooks/gh", bad.clone())
            .await;
        assert_eq!(status, code, "{bad}: {body}");
    }
    let (status, body) = w
        .call("owner", Method::PUT, "/v1/inbound-webhooks/gh", spec)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signature_header"], "x-hub-signature-256");

    // A shared-secret HMAC header, de-duplicated on the delivery id.
    let payload = r#"{"n":7}"#;
    let sig = format!("sha256={}", hmac_hex("github-shared-secret", payload));
    let headers = |id: &str, sig: &str| {
        vec![
            ("x-hub-signature-256", sig.to_owned()),
            ("x-github-delivery", id.to_owned()),
            ("x-github-event", "push".to_owned()),
        ]
    };
    let (status, body) = w
        .hook("/hooks/acme/gh", &headers("d-1", &sig), payload)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "succeeded");
    assert_eq!(
        body["result"],
        json!({ "got": 7, "id": "d-1", "event": "push" })
    );
    let run = body["run_id"].as_str().unwrap().to_owned();
    let (_, run) = w
        .call(
            "owner",
            Method::GET,
            &format!("/v1/runs/{run}"),
            Value::Null,
        )
        .await;
    assert_eq!(run["trigger"], "webhook");
    let (status, body) = w
        .hook("/hooks/acme/gh", &headers("d-1", &sig), payload)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "replayed");
    let forged = format!("sha256={}", hmac_hex("another-secret", payload));
    let (status, body) = w
        .hook("/hooks/acme/gh", &headers("d-2", &forged), payload)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "invalid_signature");
    let (status, body) = w.hook("/hooks/acme/gh", &[], payload).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        body["error"]["details"]["reason"],
        "missing_signature_header"
    );
    let (status, _) = w.hook("/hooks/acme/nope", &[], payload).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Standard Webhooks, queued.
    let (status, body) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/inbound-webhooks/std",
            json!({ "target": "hooks/github", "secret": "WH_SECRET", "mode": "async" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let now = citadel_store::now_ms() / 1000;
    let signed = |id: &str, ts: i64| -> Vec<(&'static str, String)> {
        citadel_plugin::signature::signed_headers(&[whsec.as_str()], id, ts, payload.as_bytes())
            .unwrap()
            .into_iter()
            .collect()
    };
    let (status, body) = w
        .hook("/hooks/acme/std", &signed("m-1", now), payload)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["run_id"].as_str().unwrap().to_owned();
    let run = eventually("the queued run", || async {
        let (_, run) = w
            .call("owner", Method::GET, &format!("/v1/runs/{id}"), Value::Null)
            .await;
        (run["status"] == "succeeded").then_some(run)
    })
    .await;
    assert_eq!(run["result"]["id"], "m-1");
    let (status, body) = w
        .hook("/hooks/acme/std", &signed("m-1", now), payload)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "replayed");
    let (status, body) = w
        .hook("/hooks/acme/std", &signed("m-2", now - 3600), payload)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["details"]["reason"], "timestamp_too_old");

    let (_, list) = w
        .call("owner", Method::GET, "/v1/inbound-webhooks", Value::Null)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, _) = w
        .call(
            "owner",
            Method::DELETE,
            "/v1/inbound-webhooks/std",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .hook("/hooks/acme/std", &signed("m-3", now), payload)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
