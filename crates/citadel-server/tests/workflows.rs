//! Workflows through the API on a fresh SQLite file with isolates run in
//! process: versions, review and rollback as for scripts, checking and
//! planning, durable runs with their step timeline, approvals that wait
//! holding no worker, rejections, cancellation, and the refusals each
//! wrong request gets.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use citadel_engine::{EngineConfig, WorkflowSettings};
use citadel_server::HttpSettings;
use citadel_store::Store;
use citadel_testkit::{Api, TestDb, eventually};
use citadel_workflow::Profile;
use serde_json::{Value, json};

struct World {
    api: Api,
    store: Arc<dyn Store>,
    _db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let other = db.tenant("other").await;
    let roles = ["owner", "developer", "approver", "viewer"];
    let mut tokens = citadel_testkit::tokens(store.as_ref(), &acme, &roles).await;
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
    let engine = citadel_testkit::engine(
        &store,
        2,
        EngineConfig {
            workflows: WorkflowSettings {
                max_profile: Profile::Standard,
                ..WorkflowSettings::default()
            },
            vault: Some(Arc::new(vault)),
            ..EngineConfig::default()
        },
    );
    let api =
        Api::new(Arc::clone(&store), Some(engine), &HttpSettings::default()).with_callers(tokens);
    World {
        api,
        store,
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

    async fn save(&self, name: &str, yaml: &str) -> (StatusCode, Value) {
        self.call(
            "developer",
            Method::POST,
            "/v1/workflows",
            json!({ "name": name, "source": yaml, "change_note": "test" }),
        )
        .await
    }

    async fn save_script(&self, name: &str, source: &str) {
        let (status, body) = self
            .call(
                "developer",
                Method::POST,
                "/v1/scripts",
                json!({ "name": name, "source": source }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn start(&self, name: &str, input: Value) -> String {
        let path = format!("/v1/workflows/{}/run", name.replace('/', "%2F"));
        let (status, body) = self
            .call("developer", Method::POST, &path, json!({ "input": input }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["run_id"].as_str().unwrap().to_owned()
    }

    /// The run once its status is `status`.
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
            assert_eq!(code, StatusCode::OK, "{run}");
            (run["status"] == status).then_some(run)
        })
        .await
    }

    async fn steps(&self, id: &str) -> Value {
        let (code, steps) = self
            .call(
                "viewer",
                Method::GET,
                &format!("/v1/runs/{id}/steps"),
                Value::Null,
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{steps}");
        steps
    }

    /// The step once its status is `status`.
    async fn step_when(&self, id: &str, step: &str, status: &str) -> Value {
        eventually(&format!("step {step} {status}"), || async {
            let steps = self.steps(id).await;
            steps
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == step && s["status"] == status)
                .cloned()
        })
        .await
    }
}

const PIPELINE: &str = r#"
name: pipeline
version: 1.0
inputs:
  name: { type: string, required: true, validation: { min_length: 2 } }
steps:
  - id: greet
    type: script
    script: greeter
    input: { name: "{{ inputs.name }}" }
  - id: shout
    type: script
    depends_on: [greet]
    code: "return input.text.toUpperCase();"
    input: { text: "{{ steps.greet.output.greeting }}" }
  - id: check
    type: assert
    depends_on: [shout]
    condition: "steps.shout.output == 'HELLO ADA'"
  - id: skipped
    type: assert
    depends_on: [check]
    when: "inputs.name == 'nobody'"
    condition: "false"
outputs:
  loud: "{{ steps.shout.output }}"
"#;

#[tokio::test]
async fn a_workflow_runs_durably_step_by_step_and_answers_its_outputs() {
    let w = world().await;
    w.save_script("greeter", "return { greeting: `hello ${input.name}` };")
        .await;
    let (status, saved) = w.save("pipeline", PIPELINE).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["language"], "workflow");
    assert_eq!(saved["version"], "1.0.0");
    assert_eq!(saved["live"], true);

    let id = w.start("pipeline", json!({ "name": "ada" })).await;
    let run = w.run_when(&id, "succeeded").await;
    assert_eq!(run["result"], json!({ "loud": "HELLO ADA" }));
    assert_eq!(run["script"], "pipeline");
    assert_eq!(run["trigger"], "api_async");
    let logs: Vec<&str> = run["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        logs[0].starts_with("workflow pipeline 1.0 started"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("step shout succeeded in ")),
        "{logs:?}"
    );

    let steps = w.steps(&id).await;
    let summary: Vec<(String, String, i64)> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
                s["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("greet".into(), "succeeded".into(), 1),
            ("shout".into(), "succeeded".into(), 1),
            ("check".into(), "succeeded".into(), 1),
            ("skipped".into(), "skipped".into(), 0),
        ]
    );
    assert_eq!(steps[0]["kind"], "script");
    assert_eq!(steps[0]["output"], json!({ "greeting": "hello ada" }));

    // The script step's own run is a run like any, started by the workflow.
    let (_, runs) = w
        .call(
            "viewer",
            Method::GET,
            "/v1/runs?script=greeter",
            Value::Null,
        )
        .await;
    assert_eq!(runs[0]["trigger"], "workflow");
    assert_eq!(runs[0]["result"], json!({ "greeting": "hello ada" }));

    // Listing separates workflows from scripts.
    let (_, workflows) = w
        .call("viewer", Method::GET, "/v1/workflows", Value::Null)
        .await;
    let names: Vec<&str> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pipeline"]);
    let (_, scripts) = w
        .call("viewer", Method::GET, "/v1/scripts", Value::Null)
        .await;
    let names: Vec<&str> = scripts
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greeter"]);
}

#[tokio::test]
async fn a_failing_step_fails_the_run_naming_it_and_its_dependents_are_skipped() {
    let w = world().await;
    let yaml = r#"
name: breaks
version: 1
steps:
  - id: boom
    type: script
    code: "throw new Error('no luck');"
  - id: after
    type: assert
    depends_on: [boom]
    condition: "true"
"#;
    assert_eq!(w.save("breaks", yaml).await.0, StatusCode::CREATED);
    let id = w.start("breaks", json!({})).await;
    let run = w.run_when(&id, "failed").await;
    assert_eq!(run["error"]["code"], "step_failed");
    assert_eq!(
        run["error"]["message"],
        "step `boom` failed: Error: no luck"
    );
    let steps = w.steps(&id).await;
    assert_eq!(steps[0]["status"], "failed");
    assert_eq!(steps[0]["output"]["code"], "script_error");
    assert_eq!(steps[1]["status"], "skipped");
}

const GATED: &str = r#"
name: gated
version: 2
steps:
  - id: build
    type: script
    code: "return 'built';"
  - id: gate
    type: approval
    depends_on: [build]
    message: "ship {{ steps.build.output }}?"
  - id: ship
    type: script
    depends_on: [gate]
    code: "return 'shipped';"
outputs:
  result: "{{ steps.ship.output }}"
"#;

#[tokio::test]
async fn an_approval_waits_without_a_worker_until_someone_with_the_permission_decides() {
    let w = world().await;
    assert_eq!(w.save("ops/gated", GATED).await.0, StatusCode::CREATED);
    let id = w.start("ops/gated", json!({})).await;
    let gate = w.step_when(&id, "gate", "waiting").await;
    assert_eq!(gate["output"], json!({ "message": "ship built?" }));
    assert!(gate["deadline_at"].as_i64().unwrap() > gate["started_at"].as_i64().unwrap());
    // Waiting holds no worker: the run is back in the queue.
    let run = w.run_when(&id, "queued").await;
    assert!(run["finished_at"].is_null());

    // The graph: every step of the version, reached or not.
    let graph_path = format!("/v1/runs/{id}/graph");
    let (code, graph) = w
        .call("viewer", Method::GET, &graph_path, Value::Null)
        .await;
    assert_eq!(code, StatusCode::OK, "{graph}");
    assert_eq!(
        graph,
        json!({
            "workflow": "ops/gated",
            "version": "1.0.0",
            "steps": [
                { "id": "build", "type": "script", "level": 0, "depends_on": [], "status": "succeeded" },
                { "id": "gate", "type": "approval", "level": 1, "depends_on": ["build"], "status": "waiting" },
                { "id": "ship", "type": "script", "level": 2, "depends_on": ["gate"], "status": null },
            ]
        })
    );
    let (code, _) = w
        .call("other_owner", Method::GET, &graph_path, Value::Null)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    let approve = format!("/v1/runs/{id}/steps/gate/approve");
    // A viewer may not decide; another tenant does not see the run.
    let (code, err) = w.call("viewer", Method::POST, &approve, json!({})).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (code, _) = w
        .call("other_owner", Method::POST, &approve, json!({}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Not an approval step.
    let (code, err) = w
        .call(
            "approver",
            Method::POST,
            &format!("/v1/runs/{id}/steps/build/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );

    let (code, decided) = w
        .call(
            "approver",
            Method::POST,
            &approve,
            json!({ "reason": "looks good" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "succeeded");
    assert_eq!(decided["output"]["decision"], "approve");
    assert_eq!(decided["output"]["reason"], "looks good");
    assert!(decided["decided_by"].is_string());
    // Twice is a conflict: it is not waiting any more.
    let (code, err) = w.call("approver", Method::POST, &approve, json!({})).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let run = w.run_when(&id, "succeeded").await;
    assert_eq!(run["result"], json!({ "result": "shipped" }));
    assert_eq!(w.steps(&id).await[2]["status"], "succeeded");
    let audited = citadel_testkit::audit(w.store.as_ref(), "workflow.step.approve").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].entry.target, id);
}

#[tokio::test]
async fn a_rejected_approval_fails_the_run_and_a_waiting_run_can_be_cancelled() {
    let w = world().await;
    assert_eq!(w.save("gated", GATED).await.0, StatusCode::CREATED);
    let id = w.start("gated", json!({})).await;
    w.step_when(&id, "gate", "waiting").await;
    let (code, _) = w
        .call(
            "approver",
            Method::POST,
            &format!("/v1/runs/{id}/steps/gate/reject"),
            json!({ "reason": "not today" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let run = w.run_when(&id, "failed").await;
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("step `gate` was rejected: rejected by "),
        "{message}"
    );
    assert!(message.ends_with(": not today"), "{message}");
    assert_eq!(w.steps(&id).await[2]["status"], "skipped");

    let second = w.start("gated", json!({})).await;
    w.step_when(&second, "gate", "waiting").await;
    w.run_when(&second, "queued").await;
    let (code, cancelled) = w
        .call(
            "developer",
            Method::POST,
            &format!("/v1/runs/{second}/cancel"),
            Value::Null,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (code, err) = w
        .call(
            "approver",
            Method::POST,
            &format!("/v1/runs/{second}/steps/gate/approve"),
            json!({}),
        )
        .await;
    // Its run is over: no decision is taken, and the step shows why.
    assert_eq!(code, StatusCode::CONFLICT, "{err}");
    assert_eq!(
        err["error"]["message"],
        format!("run `{second}` is already cancelled")
    );
    assert_eq!(w.steps(&second).await[1]["status"], "cancelled");
}

#[tokio::test]
async fn bad_definitions_inputs_and_kinds_are_refused_with_what_is_wrong() {
    let w = world().await;
    // Every problem at once, located.
    let bad = "name: x\nversion: 1\nsteps:\n  - id: a\n    type: script\n    cod: 'return 1'\n  - id: a\n    type: assert\n    condition: 'true'\n";
    let (code, err) = w.save("bad", bad).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rejected"))
    );
    let diags = err["error"]["details"]["diagnostics"].as_array().unwrap();
    assert!(diags.len() >= 2, "{diags:?}");
    assert!(diags.iter().all(|d| d["line"].as_u64().unwrap() > 0));
    // The same through the validator, which saves nothing.
    let (code, checked) = w
        .call(
            "developer",
            Method::POST,
            "/v1/workflows:validate",
            json!({ "source": bad }),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(checked["valid"], false);
    assert_eq!(
        checked["diagnostics"].as_array().unwrap().len(),
        diags.len()
    );
    let (_, listed) = w
        .call("viewer", Method::GET, "/v1/workflows", Value::Null)
        .await;
    assert_eq!(listed, json!([]));

    // A shell step is beyond the tenant's `standard` profile.
    let shell =
        "name: s\nversion: 1\nsteps:\n  - id: sh\n    type: shell\n    command: 'echo hi'\n";
    let (code, err) = w.save("shell", shell).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("profile"),
        "{err}"
    );

    // Inline code is analysed as a script's source.
    let evil = "name: e\nversion: 1\nsteps:\n  - id: e\n    type: script\n    code: 'return eval(\"1\")'\n";
    let (code, err) = w.save("evil", evil).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("step `e`"),
        "{err}"
    );

    // Inputs are checked before anything is queued.
    assert_eq!(w.save("pipeline", PIPELINE).await.0, StatusCode::CREATED);
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            "/v1/workflows/pipeline/run",
            json!({ "input": { "name": "a" } }),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    assert_eq!(err["error"]["details"]["inputs"][0]["input"], "name");
    let (code, _) = w
        .call(
            "developer",
            Method::POST,
            "/v1/workflows/pipeline/run",
            json!({}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    // A name keeps its kind; scripts and workflows run by their own routes.
    w.save_script("greeter", "return 1;").await;
    // A script's run has no graph.
    let (code, run) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts/greeter/run",
            json!({ "input": {} }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{run}");
    let graph_path = format!("/v1/runs/{}/graph", run["id"].as_str().unwrap());
    let (code, err) = w
        .call("viewer", Method::GET, &graph_path, Value::Null)
        .await;
    assert_eq!(
        (code, err["error"]["message"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some(
                format!(
                    "run `{}` is not a workflow run",
                    run["id"].as_str().unwrap()
                )
                .as_str()
            )
        )
    );
    let (code, err) = w.save("greeter", PIPELINE).await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (code, _) = w
        .call("viewer", Method::GET, "/v1/workflows/greeter", Value::Null)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts/pipeline/run",
            json!({ "input": {} }),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            "/v1/scripts",
            json!({ "name": "y", "source": "a: 1", "language": "workflow" }),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    // Another tenant sees none of it.
    let (code, _) = w
        .call(
            "other_owner",
            Method::GET,
            "/v1/workflows/pipeline",
            Value::Null,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn versions_diff_rollback_and_plan_work_as_for_scripts() {
    let w = world().await;
    assert_eq!(w.save("pipeline", PIPELINE).await.0, StatusCode::CREATED);
    let v2 = PIPELINE.replace("HELLO ADA", "HELLO BOB");
    let (code, saved) = w.save("pipeline", &v2).await;
    assert_eq!(
        (code, saved["version"].as_str()),
        (StatusCode::CREATED, Some("1.0.1"))
    );
    // Saving the same content again stores nothing.
    assert_eq!(w.save("pipeline", &v2).await.0, StatusCode::OK);

    let (_, versions) = w
        .call(
            "viewer",
            Method::GET,
            "/v1/workflows/pipeline/versions",
            Value::Null,
        )
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let (code, diff) = w
        .call(
            "viewer",
            Method::GET,
            "/v1/workflows/pipeline/diff?from=1.0.0&to=1.0.1",
            Value::Null,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("+    condition: \"steps.shout.output == 'HELLO BOB'\""),
        "{diff}"
    );

    let (code, rolled) = w
        .call(
            "developer",
            Method::POST,
            "/v1/workflows/pipeline/rollback",
            json!({ "version": "1.0.0" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{rolled}");
    let (_, detail) = w
        .call("viewer", Method::GET, "/v1/workflows/pipeline", Value::Null)
        .await;
    assert_eq!(detail["live_version"], "1.0.0");

    let (code, plan) = w
        .call(
            "viewer",
            Method::POST,
            "/v1/workflows/pipeline/plan",
            json!({ "input": { "name": "ada" } }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{plan}");
    assert_eq!(plan["profile"], "standard");
    assert_eq!(
        plan["levels"],
        json!([["greet"], ["shout"], ["check"], ["skipped"]])
    );
    // Planning runs nothing.
    let (_, runs) = w.call("viewer", Method::GET, "/v1/runs", Value::Null).await;
    assert_eq!(runs, json!([]));
}

#[tokio::test]
async fn an_event_subscription_starts_a_workflow_whose_emit_step_publishes() {
    let w = world().await;
    let yaml = r#"
name: on-order
version: 1
inputs:
  id: { type: string }
  type: { type: string }
  data: { type: object, required: true }
steps:
  - id: big
    type: assert
    condition: "inputs.data.amount > 10"
  - id: tell
    type: emit
    depends_on: [big]
    event: order.checked
    payload: { amount: "{{ inputs.data.amount }}" }
outputs:
  amount: "{{ inputs.data.amount }}"
"#;
    assert_eq!(w.save("on-order", yaml).await.0, StatusCode::CREATED);
    let (code, sub) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/subscriptions/orders",
            json!({ "event": "order.paid", "script": "on-order" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{sub}");
    let (code, event) = w
        .call(
            "owner",
            Method::POST,
            "/v1/events",
            json!({ "type": "order.paid", "data": { "amount": 42 } }),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{event}");
    let id = event["deliveries"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = w.run_when(&id, "succeeded").await;
    assert_eq!(run["trigger"], "event");
    assert_eq!(run["result"], json!({ "amount": 42 }));
    let tell = &w.steps(&id).await[1];
    assert_eq!(tell["output"]["type"], "order.checked");
    assert_eq!(tell["output"]["data"], json!({ "amount": 42 }));
    let (_, events) = w
        .call("owner", Method::GET, "/v1/events?limit=1", Value::Null)
        .await;
    assert_eq!(events[0]["type"], "order.checked", "{events}");
    assert_eq!(events[0]["data"], json!({ "amount": 42 }), "{events}");
    assert_eq!(events[0]["source"], id);
}

#[tokio::test]
async fn an_approval_nobody_decides_times_out_and_a_running_run_is_cancelled() {
    let w = world().await;
    let yaml = "name: t\nversion: 1\nsteps:\n  - id: gate\n    type: approval\n    timeout: 1\n  - id: after\n    type: assert\n    depends_on: [gate]\n    condition: 'true'\n";
    assert_eq!(w.save("timeout", yaml).await.0, StatusCode::CREATED);
    let id = w.start("timeout", json!({})).await;
    w.step_when(&id, "gate", "waiting").await;
    // The job was queued until the deadline; it wakes, and the step times out.
    let run = w.run_when(&id, "timed_out").await;
    assert_eq!(run["error"]["code"], "step_failed");
    assert_eq!(
        run["error"]["message"],
        "step `gate` timed out: nobody approved it before its timeout"
    );
    let steps = w.steps(&id).await;
    assert_eq!(
        (steps[0]["status"].as_str(), steps[1]["status"].as_str()),
        (Some("timed_out"), Some("skipped"))
    );

    let yaml = "name: s\nversion: 1\nsteps:\n  - id: nap\n    type: sleep\n    seconds: 30\n  - id: after\n    type: assert\n    depends_on: [nap]\n    condition: 'true'\n";
    assert_eq!(w.save("sleepy", yaml).await.0, StatusCode::CREATED);
    let id = w.start("sleepy", json!({})).await;
    w.step_when(&id, "nap", "running").await;
    let (code, run) = w
        .call(
            "developer",
            Method::POST,
            &format!("/v1/runs/{id}/cancel"),
            Value::Null,
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["error"]["message"], "the workflow run was cancelled");
    let steps = w.steps(&id).await;
    assert_eq!(steps.as_array().unwrap().len(), 1, "{steps}");
    assert_eq!(steps[0]["status"], "cancelled");
}

#[tokio::test]
async fn a_failed_run_is_re_run_from_its_failed_step_keeping_the_steps_before_it() {
    let w = world().await;
    // `flaky` fails; fixed, the re-run's second step sees the fix.
    w.save_script("flaky", "throw new Error('down');").await;
    let yaml = r#"
name: repair
version: 1
steps:
  - id: first
    type: script
    code: "return 1;"
  - id: second
    type: script
    depends_on: [first]
    script: flaky
  - id: third
    type: script
    depends_on: [second]
    code: "return 3;"
outputs:
  got: "{{ steps.second.output }}"
"#;
    assert_eq!(w.save("repair", yaml).await.0, StatusCode::CREATED);
    let id = w.start("repair", json!({})).await;
    w.run_when(&id, "failed").await;
    let rerun = format!("/v1/runs/{id}/rerun");
    w.save_script("flaky", "return 2;").await;
    let (code, body) = w.call("developer", Method::POST, &rerun, json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let again = body["run_id"].as_str().unwrap().to_owned();
    assert_ne!(again, id);
    let run = w.run_when(&again, "succeeded").await;
    assert_eq!(run["result"], json!({ "got": 2 }));
    let attempts: Vec<(String, String, i64)> = w
        .steps(&again)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
                s["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("first".into(), "succeeded".into(), 1),
            ("second".into(), "succeeded".into(), 1),
            ("third".into(), "succeeded".into(), 1),
        ]
    );
    // `first` was carried over, not run again.
    let logs = run["logs"].to_string();
    assert!(!logs.contains("step first started"), "{logs}");
    assert!(logs.contains("step second started"), "{logs}");

    // A succeeded run has no failed step; naming one works, naming none
    // that exists does not.
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            &format!("/v1/runs/{again}/rerun"),
            json!({}),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    let (code, _) = w
        .call(
            "developer",
            Method::POST,
            &format!("/v1/runs/{again}/rerun"),
            json!({ "from_step": "third" }),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            &format!("/v1/runs/{again}/rerun"),
            json!({ "from_step": "nope" }),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["message"], "`repair` has no step `nope`");
    let (code, _) = w.call("viewer", Method::POST, &rerun, json!({})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = w.call("other_owner", Method::POST, &rerun, json!({})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        citadel_testkit::audit(w.store.as_ref(), "workflow.rerun")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_tenant_lowers_its_own_profile_and_cannot_raise_it() {
    let w = world().await;
    let http = "name: h\nversion: 1\nsteps:\n  - id: get\n    type: http\n    url: https://api.example.com/\n";
    assert_eq!(w.save("fetcher", http).await.0, StatusCode::CREATED);
    let (code, err) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/settings",
            json!({ "workflow_profile": "root" }),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid"))
    );
    let (code, _) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/settings",
            json!({ "workflow_profile": "restricted" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    // Under `restricted` an http step is refused at save, and the live
    // version that has one no longer starts.
    let (code, err) = w.save("fetcher2", http).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (code, err) = w
        .call(
            "developer",
            Method::POST,
            "/v1/workflows/fetcher/run",
            json!({}),
        )
        .await;
    assert_eq!(
        (code, err["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid")),
        "{err}"
    );
    let (_, plan) = w
        .call(
            "viewer",
            Method::POST,
            "/v1/workflows/fetcher/plan",
            json!({}),
        )
        .await;
    assert_eq!(plan["error"]["code"], "invalid");
    // Asking for more than the platform's `standard` changes nothing.
    let (code, _) = w
        .call(
            "owner",
            Method::PUT,
            "/v1/settings",
            json!({ "workflow_profile": "elevated" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let shell =
        "name: s\nversion: 1\nsteps:\n  - id: sh\n    type: shell\n    command: 'echo hi'\n";
    assert_eq!(
        w.save("shell", shell).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_run_streams_its_step_timeline_as_server_sent_events() {
    use http_body_util::BodyExt;
    let w = world().await;
    let yaml = "name: slowish\nversion: 1\nsteps:\n  - id: one\n    type: assert\n    condition: 'true'\n  - id: nap\n    type: sleep\n    seconds: 1\n    depends_on: [one]\n";
    assert_eq!(w.save("slowish", yaml).await.0, StatusCode::CREATED);
    let id = w.start("slowish", json!({})).await;
    let res = w
        .api
        .response(
            Some("viewer"),
            Method::GET,
            &format!("/v1/runs/{id}/events"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let logs: Vec<String> = text
        .split("\n\n")
        .filter(|b| b.lines().any(|l| l == "event: log"))
        .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        logs.iter().any(|l| l == "step nap started (attempt 1)"),
        "{text}"
    );
    assert!(
        logs.iter().any(|l| l.starts_with("step nap succeeded in ")),
        "{text}"
    );
    assert!(text.trim_end().lines().any(|l| l == "event: run"), "{text}");
}

#[tokio::test]
async fn declared_secrets_reach_templates_and_never_what_the_run_leaves() {
    let w = world().await;
    let (code, _) = w
        .call(
            "owner",
            Method::POST,
            "/v1/secrets",
            json!({ "name": "DEPLOY_TOKEN", "value": "tok-5ecret-93411" }),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let yaml = r#"
name: uses-secret
version: 1
secrets: [DEPLOY_TOKEN]
steps:
  - id: has
    type: assert
    condition: "secrets.DEPLOY_TOKEN | length == 16"
  - id: tell
    type: emit
    depends_on: [has]
    event: deploy.started
    payload: { auth: "Bearer {{ secrets.DEPLOY_TOKEN }}" }
outputs:
  leaked: "{{ secrets.DEPLOY_TOKEN }}"
"#;
    let (code, saved) = w.save("uses-secret", yaml).await;
    assert_eq!(code, StatusCode::CREATED, "{saved}");
    // The declared secrets are the version's grant, reviewed with it.
    assert_eq!(
        saved["capabilities"],
        json!({ "secrets": ["DEPLOY_TOKEN"] })
    );
    let id = w.start("uses-secret", json!({})).await;
    let run = w.run_when(&id, "succeeded").await;
    assert_eq!(
        run["result"],
        json!({ "leaked": "[REDACTED:DEPLOY_TOKEN]" })
    );
    let tell = &w.steps(&id).await[1];
    assert_eq!(
        tell["output"]["data"],
        json!({ "auth": "Bearer [REDACTED:DEPLOY_TOKEN]" })
    );
    let (_, events) = w
        .call("owner", Method::GET, "/v1/events?limit=1", Value::Null)
        .await;
    assert_eq!(
        events[0]["data"],
        json!({ "auth": "Bearer [REDACTED:DEPLOY_TOKEN]" })
    );
    let (_, usage) = w
        .call(
            "owner",
            Method::GET,
            "/v1/secrets/DEPLOY_TOKEN/usage",
            Value::Null,
        )
        .await;
    assert_eq!(usage[0]["run_id"], id, "{usage}");

    // A script step's input may not carry one: its run record would.
    let yaml = "name: passes\nversion: 1\nsecrets: [DEPLOY_TOKEN]\nsteps:\n  - id: s\n    type: script\n    code: 'return 1;'\n    input: { t: '{{ secrets.DEPLOY_TOKEN }}' }\n";
    assert_eq!(w.save("passes", yaml).await.0, StatusCode::CREATED);
    let id = w.start("passes", json!({})).await;
    let run = w.run_when(&id, "failed").await;
    assert_eq!(
        run["error"]["message"],
        "step `s` failed: a script step's input may not carry a secret: grant the script the secret instead"
    );
    let (_, runs) = w
        .call("owner", Method::GET, "/v1/runs?limit=100", Value::Null)
        .await;
    assert!(!runs.to_string().contains("tok-5ecret-93411"));

    // Someone who may not read secrets cannot save a workflow that does.
    let (code, _) = w
        .call(
            "viewer",
            Method::POST,
            "/v1/workflows",
            json!({ "name": "x", "source": yaml }),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // A secret the tenant does not have fails the run before any step.
    let missing = "name: m\nversion: 1\nsecrets: [NOPE]\nsteps:\n  - id: a\n    type: assert\n    condition: 'true'\n";
    assert_eq!(w.save("missing", missing).await.0, StatusCode::CREATED);
    let id = w.start("missing", json!({})).await;
    let run = w.run_when(&id, "failed").await;
    assert_eq!(run["error"]["code"], "invalid_workflow");
    assert_eq!(
        run["error"]["message"],
        "secret `NOPE`: secret_not_found: the tenant has no secret `NOPE`"
    );
}
