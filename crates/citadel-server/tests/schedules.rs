//! Cron schedules through the API, on a fresh SQLite file with isolates run
//! in process: validation, next fire times, firing, run now, the missed-run
//! policies, kill switches, and two nodes sharing one database firing each
//! occurrence once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use citadel_engine::{Engine, EngineConfig};
use citadel_server::HttpSettings;
use citadel_store::{Schedule, Store, now_ms};
use citadel_testkit::{Api, TestDb, eventually};
use serde_json::{Value, json};

struct World {
    /// Callers by role: `owner`, `developer`, `operator`, `viewer`.
    api: Api,
    store: Arc<dyn Store>,
    url: String,
    acme: String,
    _engine: Engine,
    _db: TestDb,
}

fn engine(store: &Arc<dyn Store>) -> Engine {
    citadel_testkit::engine(store, 2, EngineConfig::default())
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let roles = ["owner", "developer", "operator", "viewer"];
    let tokens = citadel_testkit::tokens(store.as_ref(), &acme, &roles).await;
    let engine = engine(&store);
    let api = Api::new(
        Arc::clone(&store),
        Some(engine.clone()),
        &HttpSettings::default(),
    )
    .with_callers(tokens);
    World {
        api,
        store,
        url: db.url.clone(),
        acme,
        _engine: engine,
        _db: db,
    }
}

impl World {
    async fn audits(&self, action: &str) -> usize {
        citadel_testkit::audit(self.store.as_ref(), action)
            .await
            .len()
    }

    /// Saves a live script as the developer.
    async fn save(&self, name: &str, source: &str) {
        let (status, got) = self
            .api
            .call_json(
                "developer",
                Method::POST,
                "/v1/scripts",
                Some(json!({ "name": name, "source": source })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{got}");
    }

    async fn put(&self, name: &str, body: Value) -> (StatusCode, Value) {
        self.api
            .call_json(
                "operator",
                Method::PUT,
                &format!("/v1/schedules/{}", name.replace('/', "%2F")),
                Some(body),
            )
            .await
    }

    async fn schedule(&self, name: &str) -> Schedule {
        self.store
            .schedule(&self.acme, name)
            .await
            .unwrap()
            .unwrap()
    }

    async fn runs(&self, script: &str) -> Vec<Value> {
        let (status, list) = self
            .api
            .call_json(
                "viewer",
                Method::GET,
                &format!("/v1/runs?script={}&limit=1000", script.replace('/', "%2F")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list.as_array().unwrap().clone()
    }

    /// The occurrences (Unix ms) the schedule's jobs were enqueued for, by
    /// run id.
    async fn occurrences(&self, schedule_id: &str) -> HashMap<String, i64> {
        let prefix = format!("schedule:{schedule_id}:");
        self.store
            .list_jobs(&self.acme, None, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|j| {
                let at = j.idempotency_key?.strip_prefix(&prefix)?.parse().ok()?;
                Some((j.id, at))
            })
            .collect()
    }
}

const FIELDS: &str = "(fields: [second] minute hour day-of-month month day-of-week)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_schedules_are_refused_with_the_reason() {
    let w = world().await;
    w.save("jobs/tick", "return input;").await;
    let cases = [
        (
            json!({"script": "jobs/tick", "cron": "61 * * * *"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "invalid cron expression `61 * * * *`: Component error: Number out of bounds. {FIELDS}"
            ),
        ),
        (
            json!({"script": "jobs/tick", "cron": "* * *"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            format!(
                "invalid cron expression `* * *`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed. {FIELDS}"
            ),
        ),
        (
            json!({"script": "jobs/tick", "cron": "0 0 30 2 *"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "cron expression `0 0 30 2 *` never matches a date".to_owned(),
        ),
        (
            json!({"script": "jobs/tick", "cron": "* * * * *", "timezone": "Mars/Olympus"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "unknown time zone `Mars/Olympus` (use an IANA name such as `Europe/Berlin`, or `UTC`)"
                .to_owned(),
        ),
        (
            json!({"script": "jobs/none", "cron": "* * * * *"}),
            StatusCode::NOT_FOUND,
            "not_found",
            "script `jobs/none` not found".to_owned(),
        ),
        (
            json!({"script": "Jobs", "cron": "* * * * *"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            "invalid script name `Jobs`: each segment starts with a lowercase letter or a digit"
                .to_owned(),
        ),
    ];
    for (body, status, code, message) in cases {
        let (got_status, got) = w.put("tick", body.clone()).await;
        assert_eq!(got_status, status, "{body}: {got}");
        assert_eq!(got["error"]["code"], code, "{body}: {got}");
        assert_eq!(got["error"]["message"], message, "{body}: {got}");
    }
    let (status, got) = w
        .put(
            "tick",
            json!({"script": "jobs/tick", "cron": "* * * * *", "missed": "later"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(got["error"]["code"], "invalid");
    let (status, got) = w
        .put(
            "Bad%20Name",
            json!({"script": "jobs/tick", "cron": "* * * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
    assert_eq!(
        got["error"]["message"],
        "invalid schedule name `Bad Name`: each segment starts with a lowercase letter or a digit"
    );
    // A viewer may not schedule runs.
    let (status, got) = w
        .api
        .call_json(
            "viewer",
            Method::PUT,
            "/v1/schedules/tick",
            Some(json!({"script": "jobs/tick", "cron": "* * * * *"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{got}");
    assert_eq!(got["error"]["details"]["permission"], "script.run");
    // Nothing was stored or audited.
    assert_eq!(w.store.list_schedules(&w.acme).await.unwrap(), vec![]);
    assert_eq!(w.audits("schedule.put").await, 0);
    let (status, _) = w
        .api
        .call_json("viewer", Method::GET, "/v1/schedules/tick", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_show_their_next_fire_times() {
    let w = world().await;
    w.save("reports/daily", "return 1;").await;
    let (status, got) = w
        .put(
            "reports/tokyo",
            json!({"script": "reports/daily", "cron": "0 30 2 * * *", "timezone": "asia/tokyo",
                   "input": {"region": "jp"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    assert_eq!(got["name"], "reports/tokyo");
    assert_eq!(got["script"], "reports/daily");
    assert_eq!(got["cron"], "0 30 2 * * *");
    assert_eq!(got["timezone"], "Asia/Tokyo");
    assert_eq!(got["input"], json!({"region": "jp"}));
    assert_eq!(got["missed"], "skip");
    assert_eq!(got["enabled"], true);
    assert_eq!(got["last_fired_at"], Value::Null);
    let times = got["next_fire_times"].as_array().unwrap();
    assert_eq!(times.len(), 5);
    assert_eq!(got["next_fire_at"], times[0]["at"]);
    for (i, t) in times.iter().enumerate() {
        let text = t["time"].as_str().unwrap();
        assert_eq!(&text[10..], "T02:30:00+09:00", "{t}");
        // 02:30 in Tokyo is 17:30 UTC the day before.
        assert_eq!(t["at"].as_i64().unwrap() % 86_400_000, 63_000_000, "{t}");
        if i > 0 {
            assert_eq!(
                t["at"].as_i64().unwrap() - times[i - 1]["at"].as_i64().unwrap(),
                86_400_000
            );
        }
    }
    assert!(times[0]["at"].as_i64().unwrap() > now_ms());

    // Replacing answers 200 and keeps the creation time.
    let (status, again) = w
        .put(
            "reports/tokyo",
            json!({"script": "reports/daily", "cron": "@hourly", "missed": "catch_up", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created_at"], got["created_at"]);
    assert_eq!(again["timezone"], "UTC");
    assert_eq!(again["input"], Value::Null);
    assert_eq!(again["missed"], "catch_up");
    assert_eq!(again["enabled"], false);
    assert_eq!(again["next_fire_at"], Value::Null);
    assert_eq!(again["next_fire_times"], json!([]));
    assert_eq!(w.audits("schedule.put").await, 2);

    let (status, list) = w
        .api
        .call_json("viewer", Method::GET, "/v1/schedules", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "reports/tokyo");
    let (status, one) = w
        .api
        .call_json("viewer", Method::GET, "/v1/schedules/reports%2Ftokyo", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["cron"], "@hourly");

    // A viewer may not delete; the operator may, once.
    let (status, _) = w
        .api
        .call_json(
            "viewer",
            Method::DELETE,
            "/v1/schedules/reports%2Ftokyo",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .api
        .call_json(
            "operator",
            Method::DELETE,
            "/v1/schedules/reports%2Ftokyo",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .api
        .call_json(
            "operator",
            Method::DELETE,
            "/v1/schedules/reports%2Ftokyo",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(w.audits("schedule.delete").await, 1);

    // Every schedule route is in the OpenAPI document.
    let (status, doc) = w
        .api
        .call_json("viewer", Method::GET, "/v1/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, methods) in [
        ("/v1/schedules", &["get"][..]),
        ("/v1/schedules/{name}", &["put", "get", "delete"][..]),
        ("/v1/schedules/{name}/run-now", &["post"][..]),
    ] {
        for m in methods {
            assert!(
                doc["paths"][path].get(m).is_some(),
                "{m} {path} is not documented"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_fires_runs_with_the_schedule_trigger() {
    let w = world().await;
    w.save("jobs/tick", "return input.n + 1;").await;
    let (status, got) = w
        .put(
            "tick",
            json!({"script": "jobs/tick", "cron": "* * * * * *", "input": {"n": 41}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    let runs = eventually("two scheduled runs to succeed", || async {
        let runs = w.runs("jobs/tick").await;
        let done = runs.iter().filter(|r| r["status"] == "succeeded").count();
        (done >= 2).then_some(runs)
    })
    .await;
    for r in runs.iter().filter(|r| r["status"] == "succeeded") {
        assert_eq!(r["trigger"], "schedule", "{r}");
        assert_eq!(r["principal"], "schedule:tick", "{r}");
        assert_eq!(r["input"], json!({"n": 41}), "{r}");
        assert_eq!(r["result"], 42, "{r}");
    }
    // Each run is one occurrence, on a whole second.
    let s = w.schedule("tick").await;
    let occurrences = w.occurrences(&s.id).await;
    for r in &runs {
        let at = occurrences[r["id"].as_str().unwrap()];
        assert_eq!(at % 1000, 0);
    }
    // Disabling stops it; what fired stays on the record.
    let (status, got) = w
        .put(
            "tick",
            json!({"script": "jobs/tick", "cron": "* * * * * *", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert!(got["last_fired_at"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_enqueues_a_manual_run_with_the_schedule_input() {
    let w = world().await;
    w.save("jobs/echo", "return input;").await;
    let (status, _) = w
        .put(
            "echo",
            json!({"script": "jobs/echo", "cron": "0 0 1 1 *", "input": {"hello": "world"}, "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, got) = w
        .api
        .call_json("operator", Method::POST, "/v1/schedules/echo/run-now", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{got}");
    let id = got["run_id"].as_str().unwrap().to_owned();
    let run = eventually("the run to finish", || async {
        let (status, run) = w
            .api
            .call_json("viewer", Method::GET, &format!("/v1/runs/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        (run["status"] != "queued" && run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["result"], json!({"hello": "world"}));
    assert_eq!(w.audits("schedule.run_now").await, 1);
    // The schedule itself did not change.
    assert_eq!(w.schedule("echo").await.last_fired_at, None);
    // A viewer may not; an unknown schedule is 404.
    let (status, _) = w
        .api
        .call_json("viewer", Method::POST, "/v1/schedules/echo/run-now", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .api
        .call_json("operator", Method::POST, "/v1/schedules/nope/run-now", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A cron expression that fired last about 30 minutes ago and fires next in
/// about 30 minutes.
fn half_an_hour_off() -> String {
    let minute = (now_ms() / 60_000) % 60;
    format!("0 {} * * * *", (minute + 30) % 60)
}

/// Puts the schedule's next occurrence two hours in the past, as after
/// downtime.
async fn as_after_downtime(w: &World, name: &str) -> Schedule {
    let s = w.schedule(name).await;
    let past = s.next_fire_at - 2 * 3_600_000;
    assert!(
        w.store
            .advance_schedule(&s.id, s.next_fire_at, past, None)
            .await
            .unwrap()
    );
    Schedule {
        next_fire_at: past,
        ..s
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_occurrences_are_skipped_or_caught_up_once() {
    let w = world().await;
    w.save("jobs/hourly", "return 1;").await;
    let cron = half_an_hour_off();
    for (name, missed) in [("skipper", "skip"), ("catcher", "catch_up")] {
        let (status, got) = w
            .put(
                name,
                json!({"script": "jobs/hourly", "cron": cron, "missed": missed}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{got}");
    }
    let skipper = as_after_downtime(&w, "skipper").await;
    let catcher = as_after_downtime(&w, "catcher").await;
    // Both move on to the next occurrence after now.
    for s in [&skipper, &catcher] {
        let now = now_ms();
        let moved = eventually("the schedule to move on", || async {
            let got = w.schedule(&s.name).await;
            (got.next_fire_at > now).then_some(got)
        })
        .await;
        assert!(moved.next_fire_at - now < 3_600_000);
    }
    // `skip` fired nothing; `catch_up` fired one run, for the most recent
    // missed occurrence (an hour before the next one).
    let skipped = w.schedule("skipper").await;
    assert_eq!(skipped.last_fired_at, None);
    assert_eq!(w.occurrences(&skipper.id).await.len(), 0);
    let caught = w.schedule("catcher").await;
    let latest = caught.next_fire_at - 3_600_000;
    assert_eq!(caught.last_fired_at, Some(latest));
    let fired = w.occurrences(&catcher.id).await;
    assert_eq!(fired.values().copied().collect::<Vec<_>>(), vec![latest]);
    let run_id = fired.keys().next().unwrap().clone();
    let runs = eventually("the caught-up run to finish", || async {
        let runs = w.runs("jobs/hourly").await;
        runs.iter()
            .all(|r| r["status"] == "succeeded")
            .then_some(runs)
            .filter(|r| !r.is_empty())
    })
    .await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], run_id.as_str());
    assert_eq!(runs[0]["trigger"], "schedule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_stops_scheduled_runs_without_stopping_the_schedule() {
    let w = world().await;
    w.save("jobs/stopped", "return 1;").await;
    let (status, got) = w
        .api
        .call_json(
            "owner",
            Method::POST,
            "/v1/kill-switch",
            Some(json!({"scope": "script", "target": "jobs/stopped", "reason": "incident"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    let (status, _) = w
        .put(
            "stopped",
            json!({"script": "jobs/stopped", "cron": "* * * * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let first = w.schedule("stopped").await.next_fire_at;
    // It keeps advancing, second by second, and records nothing.
    eventually("the schedule to pass two occurrences", || async {
        (w.schedule("stopped").await.next_fire_at >= first + 2_000).then_some(())
    })
    .await;
    let s = w.schedule("stopped").await;
    assert_eq!(s.last_fired_at, None);
    assert_eq!(w.occurrences(&s.id).await.len(), 0);
    assert_eq!(w.runs("jobs/stopped").await.len(), 0);
    // Run now is refused the same way.
    let (status, got) = w
        .api
        .call_json(
            "operator",
            Method::POST,
            "/v1/schedules/stopped/run-now",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::LOCKED, "{got}");
    assert_eq!(got["error"]["code"], "killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_fire_each_occurrence_once() {
    let w = world().await;
    // A second node: its own connection to the same SQLite file, its own
    // scheduler and queue worker.
    let other_store = citadel_store::connect(&w.url).await.unwrap();
    let other = engine(&other_store);
    w.save("jobs/both", "return 1;").await;
    let (status, got) = w
        .put(
            "both",
            json!({"script": "jobs/both", "cron": "* * * * * *"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    let s = w.schedule("both").await;
    // Let both nodes race for about three seconds of occurrences, then stop
    // the schedule.
    eventually("three occurrences to fire", || async {
        (w.occurrences(&s.id).await.len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = w
        .put(
            "both",
            json!({"script": "jobs/both", "cron": "* * * * * *", "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Wait until every fired occurrence has a finished run.
    let (fired, runs) = eventually("the fired runs to finish", || async {
        let fired = w.occurrences(&s.id).await;
        let runs = w.runs("jobs/both").await;
        let finished = runs.iter().all(|r| r["status"] == "succeeded");
        (finished && runs.len() == fired.len()).then_some((fired, runs))
    })
    .await;
    drop(other);
    // One run per occurrence: every run is a distinct occurrence's job, and
    // the occurrences are distinct whole seconds.
    let run_ids: HashSet<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let job_ids: HashSet<&str> = fired.keys().map(String::as_str).collect();
    assert_eq!(run_ids, job_ids);
    let mut seconds: Vec<i64> = fired.values().copied().collect();
    seconds.sort_unstable();
    let distinct: HashSet<i64> = seconds.iter().copied().collect();
    assert_eq!(distinct.len(), seconds.len(), "{seconds:?}");
    assert!(seconds.len() >= 3, "{seconds:?}");
    assert!(seconds.iter().all(|t| t % 1000 == 0), "{seconds:?}");
    for r in &runs {
        assert_eq!(r["trigger"], "schedule");
    }
    // The schedule records one of them as its last firing.
    let last = w.schedule("both").await.last_fired_at.unwrap();
    assert!(distinct.contains(&last), "{last} not in {seconds:?}");
}
