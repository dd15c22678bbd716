//! `citadel bench --capabilities`: what a capability call costs through the
//! supervisor (jailed sandbox host → pool → engine gateway → store, vault,
//! egress or data source and back), each next to its baseline measured in
//! the same run: a script making N calls against one making none (per-call
//! overhead), `api.http.fetch` against a direct reqwest call to the same
//! local server, and `api.db.query` of 100 rows against the same query made
//! in this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_engine::{DataSourceConfig, Engine, EngineConfig, Executor, LiveScript, RunSpec};
use citadel_pool::{Pool, PoolConfig};
use citadel_store::{NewVersion, SaveOutcome, SecretMeta, Store, now_ms};

use crate::{CliError, ResultExt};

/// Calls per measured run.
const CALLS: usize = 200;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::failed(anyhow::anyhow!("{e}"))
}

/// A tiny HTTP/1.1 server answering every request with `ok` (keep-alive),
/// on 127.0.0.1; its port.
async fn http_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut have = 0;
                loop {
                    let Ok(n) = sock.read(&mut buf[have..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
                        if sock.write_all(reply).await.is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                    if have == buf.len() {
                        return;
                    }
                }
            });
        }
    });
    port
}

async fn save(
    store: &dyn Store,
    tenant: &str,
    name: &str,
    source: &str,
    caps: &str,
) -> Arc<LiveScript> {
    let new = NewVersion {
        tenant_id: tenant.to_owned(),
        name: name.into(),
        hash: name.into(),
        source: source.into(),
        language: citadel_domain::Language::Js,
        kind: citadel_domain::ScriptKind::Script,
        capabilities: caps.into(),
        limits: r#"{"timeout_ms": 60000}"#.into(),
        diagnostics: "[]".into(),
        change_note: String::new(),
        author: "bench".into(),
        state: citadel_domain::VersionState::Approved,
        make_live: true,
    };
    let next = |_: Option<&str>| "1.0.0".to_owned();
    let saved = store.save_version(&new, &next).await.unwrap();
    assert!(matches!(saved, SaveOutcome::Created(_)));
    let (script, live) = store.live_version(tenant, name).await.unwrap().unwrap();
    Arc::new(LiveScript::decode(script, live).unwrap())
}

/// The mean wall time of `runs` runs of `live`.
async fn time_runs(
    engine: &Engine,
    tenant: &str,
    live: &Arc<LiveScript>,
    runs: usize,
) -> Result<Duration, CliError> {
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let spec = RunSpec {
            tenant_id: tenant.into(),
            live: Arc::clone(live),
            input_json: "null".into(),
            trigger: citadel_domain::Trigger::Api,
            principal: None,
            timeout_ms: Some(60_000),
            run_id: None,
            created_at: None,
        };
        let t = Instant::now();
        let run = engine.run_sync(spec).await.map_err(failed)?;
        total += t.elapsed();
        if run.status != citadel_domain::RunStatus::Succeeded {
            return Err(failed(format!(
                "the bench script `{}` did not succeed: {:?}",
                live.script.name, run.error
            )));
        }
    }
    Ok(total / runs as u32)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn capabilities(runs: usize) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .failed("cannot start the runtime")?;
    runtime.block_on(bench(runs.max(3)))
}

async fn bench(runs: usize) -> Result<(), CliError> {
    let dir = std::env::temp_dir().join(format!("citadel-bench-caps-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("datasources"))
        .failed("cannot create a temporary directory")?;
    let result = bench_in(&dir, runs).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn bench_in(dir: &std::path::Path, runs: usize) -> Result<(), CliError> {
    let store = citadel_store::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .map_err(failed)?;
    let tenant = store.create_tenant("bench").await.map_err(failed)?.id;
    let vault = citadel_secrets::Vault::open(
        Arc::clone(&store),
        citadel_secrets::MasterKey::generate().map_err(failed)?,
    )
    .await
    .map_err(failed)?;
    let meta = SecretMeta {
        tenant_id: tenant.clone(),
        name: "API_KEY".into(),
        description: String::new(),
        version: 1,
        created_at: now_ms(),
        rotated_at: None,
        expires_at: None,
        last_used_at: None,
    };
    vault
        .create(&meta, "sk_bench_0123456789")
        .await
        .map_err(failed)?;
    // The reporting database: 100 rows.
    let db_path = dir.join("datasources").join("app.db");
    {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(true)
            .connect()
            .await
            .map_err(failed)?;
        sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, seen INTEGER)")
            .execute(&mut c)
            .await
            .map_err(failed)?;
        for i in 0..100 {
            sqlx::query("INSERT INTO users VALUES (?, ?, ?)")
                .bind(i)
                .bind(format!("user{i}@example.com"))
                .bind(i * 3)
                .execute(&mut c)
                .await
                .map_err(failed)?;
        }
    }
    store
        .put_datasource(&citadel_store::DataSource {
            tenant_id: tenant.clone(),
            name: "reporting".into(),
            kind: "sqlite".into(),
            location: "app.db".into(),
            password_secret: None,
            created_at: 0,
            updated_at: 0,
        })
        .await
        .map_err(failed)?;
    store
        .kv_set(&citadel_store::KvWrite {
            tenant_id: &tenant,
            key: "k",
            value: "{\"n\":1}",
            expires_at: None,
            if_version: None,
            quota_bytes: 1 << 30,
            now: now_ms(),
        })
        .await
        .map_err(failed)?;
    let egress_config = citadel_egress::EgressConfig {
        allow_private: true,
        ..citadel_egress::EgressConfig::default()
    };
    let egress = citadel_egress::Egress::new(egress_config).map_err(failed)?;
    let mut pool_config = PoolConfig::new().failed("cannot find the citadel executable")?;
    pool_config.size = 1;
    let pool = Pool::start(pool_config).failed("cannot start a sandbox host")?;
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::Pool(pool.clone()),
        EngineConfig {
            vault: Some(Arc::new(vault)),
            egress: Some(Arc::new(egress)),
            datasources: Some(DataSourceConfig {
                root: dir.join("datasources"),
                limits: citadel_datasource::QueryLimits::default(),
            }),
            quotas: citadel_engine::Quotas {
                http_calls_per_run: 100_000,
                http_requests_per_minute: 100_000_000,
                db_queries_per_run: 100_000,
                ..citadel_engine::Quotas::default()
            },
            worker: None,
            ..EngineConfig::default()
        },
    );
    let port = http_server().await;
    let loop_of =
        |call: &str| format!("for (let i = 0; i < {CALLS}; i++) await {call};\nreturn 1;");
    let caps = format!(
        r#"{{"echo": true, "kv": true, "secrets": ["API_KEY"], "db": ["reporting"],
            "http": {{"allow": ["http://127.0.0.1:{port}"]}}}}"#
    );
    let s = store.as_ref();
    let none = save(
        s,
        &tenant,
        "none",
        "for (let i = 0; i < 200; i++) {}\nreturn 1;",
        &caps,
    )
    .await;
    let echo = save(s, &tenant, "echo", &loop_of("api.echo(i)"), &caps).await;
    let kv = save(s, &tenant, "kv", &loop_of("api.kv.get('k')"), &caps).await;
    let secret_once = save(
        s,
        &tenant,
        "secret-once",
        "await api.secrets.get('API_KEY');\nreturn 1;",
        &caps,
    )
    .await;
    let secret = save(
        s,
        &tenant,
        "secret",
        &loop_of("api.secrets.get('API_KEY')"),
        &caps,
    )
    .await;
    let fetch = save(
        s,
        &tenant,
        "fetch",
        &loop_of(&format!("api.http.fetch('http://127.0.0.1:{port}/')")),
        &caps,
    )
    .await;
    let query = save(
        s,
        &tenant,
        "query",
        &loop_of("api.db.query('SELECT id, email, seen FROM users ORDER BY id')"),
        &caps,
    )
    .await;

    // Warm everything up once (the host, the compile cache, the connection).
    for live in [&none, &echo, &kv, &secret_once, &secret, &fetch, &query] {
        time_runs(&engine, &tenant, live, 1).await?;
    }
    let base = time_runs(&engine, &tenant, &none, runs).await?;
    let per_call = |d: Duration| (d.saturating_sub(base)) / CALLS as u32;
    let echo_t = per_call(time_runs(&engine, &tenant, &echo, runs).await?);
    let kv_t = per_call(time_runs(&engine, &tenant, &kv, runs).await?);
    let secret_first = time_runs(&engine, &tenant, &secret_once, runs * 10)
        .await?
        .saturating_sub(base);
    let secret_t = per_call(time_runs(&engine, &tenant, &secret, runs).await?);
    let fetch_t = per_call(time_runs(&engine, &tenant, &fetch, runs).await?);
    let query_t = per_call(time_runs(&engine, &tenant, &query, runs).await?);

    // The baselines, in this process.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(failed)?;
    let url = format!("http://127.0.0.1:{port}/");
    let n = CALLS * runs;
    let t = Instant::now();
    for _ in 0..n {
        let r = client.get(&url).send().await.map_err(failed)?;
        r.bytes().await.map_err(failed)?;
    }
    let direct_fetch = t.elapsed() / n as u32;
    let source = citadel_datasource::Source::Sqlite {
        path: db_path.canonicalize().map_err(failed)?,
    };
    let limits = citadel_datasource::QueryLimits::default();
    let t = Instant::now();
    for _ in 0..n {
        let r = citadel_datasource::query(
            &source,
            "SELECT id, email, seen FROM users ORDER BY id",
            &[],
            &limits,
        )
        .await
        .map_err(failed)?;
        assert_eq!(r.rows.len(), 100);
    }
    let direct_query = t.elapsed() / n as u32;
    pool.shutdown();

    println!(
        "citadel capability calls through the supervisor ({runs} runs of {CALLS} calls each, one jailed sandbox host, SQLite):"
    );
    println!(
        "  echo (the round trip alone)          {:8.1} µs/call",
        us(echo_t)
    );
    println!(
        "  kv.get                               {:8.1} µs/call",
        us(kv_t)
    );
    println!(
        "  secrets.get, first in a run          {:8.1} µs (vault open + usage record)",
        us(secret_first)
    );
    println!(
        "  secrets.get, again in the run        {:8.1} µs/call",
        us(secret_t)
    );
    println!(
        "  http.fetch to a local server         {:8.1} µs/call   direct reqwest: {:8.1} µs   ratio {:.2}x",
        us(fetch_t),
        us(direct_fetch),
        fetch_t.as_secs_f64() / direct_fetch.as_secs_f64().max(1e-9)
    );
    println!(
        "  db.query, 100 rows (SQLite)          {:8.1} µs/call   in-process:     {:8.1} µs   ratio {:.2}x",
        us(query_t),
        us(direct_query),
        query_t.as_secs_f64() / direct_query.as_secs_f64().max(1e-9)
    );
    Ok(())
}
