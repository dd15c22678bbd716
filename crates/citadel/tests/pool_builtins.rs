//! The built-ins corpus in `tests/builtins/` at the repository root, run in
//! real jailed sandbox hosts (under their seccomp allow list) through the
//! pool: ordinary JavaScript — dates in every form, locale methods, regular
//! expressions, typed arrays, big allocations, JSON, normalisation, sorts —
//! must end as the script says, never by killing its host.
//!
//! Each file starts with `// key: value` lines: `expect: STATUS CODE` (CODE
//! `-` for none), optionally `result:` (JSON) and `limits:` (`timeout_ms=`,
//! `cpu_ms=`, `memory_mb=`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{Grants, Limits};

struct Case {
    status: String,
    code: String,
    result: Option<serde_json::Value>,
    limits: Limits,
}

fn parse_case(path: &Path, source: &str) -> Case {
    let mut case = Case {
        status: String::new(),
        code: String::new(),
        result: None,
        limits: Limits::default(),
    };
    for line in source.lines().take_while(|l| l.starts_with("//")) {
        let Some((key, value)) = line.trim_start_matches("//").trim().split_once(": ") else {
            continue;
        };
        match key {
            "expect" => {
                let (s, c) = value.split_once(' ').expect("expect: STATUS CODE");
                case.status = s.into();
                case.code = c.into();
            }
            "result" => {
                case.result =
                    Some(serde_json::from_str(value).unwrap_or_else(|e| {
                        panic!("{}: bad JSON in `result`: {e}", path.display())
                    }))
            }
            "limits" => {
                for kv in value.split_whitespace() {
                    let (k, v) = kv.split_once('=').unwrap();
                    let n: u64 = v.parse().unwrap();
                    match k {
                        "timeout_ms" => case.limits.timeout = Duration::from_millis(n),
                        "cpu_ms" => case.limits.cpu = Duration::from_millis(n),
                        "memory_mb" => case.limits.memory_bytes = (n as usize) << 20,
                        other => panic!("{}: unknown limit {other}", path.display()),
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        !case.status.is_empty(),
        "{}: no `expect:` line",
        path.display()
    );
    case
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/builtins");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js" || e == "ts"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "the corpus is missing: {}",
        dir.display()
    );
    files
}

fn pool() -> Pool {
    Pool::start(PoolConfig {
        program: env!("CARGO_BIN_EXE_citadel").into(),
        size: 1,
        ..PoolConfig::new().unwrap()
    })
    .unwrap()
}

async fn check(pool: &Pool, path: &Path) -> Result<(), String> {
    let source = std::fs::read_to_string(path).unwrap();
    let case = parse_case(path, &source);
    let failed_before = pool.status().hosts_failed;
    let out = pool
        .run(
            PoolRun {
                tenant: "builtins".into(),
                source,
                language: Language::from_path(path),
                input_json: "null".into(),
                limits: case.limits,
                grants: Grants::NONE,
                cancel: None,
                version_key: None,
                fault: None,
            },
            Arc::new(EchoGateway),
        )
        .await;
    let status = serde_json::to_value(out.status).unwrap();
    let code = out.error.as_ref().map_or("-".to_owned(), |e| {
        serde_json::to_value(e.kind)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    });
    let mut problems = Vec::new();
    if status != case.status.as_str() || code != case.code {
        problems.push(format!(
            "got {status} {code} ({:?}), want {} {}",
            out.error, case.status, case.code
        ));
    }
    if let Some(want) = &case.result
        && &out.result_value() != want
    {
        problems.push(format!("result {} != {want}", out.result_value()));
    }
    let failed = pool.status().hosts_failed - failed_before;
    if failed != 0 {
        problems.push(format!("{failed} sandbox host(s) died"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_built_ins_never_kill_a_jailed_host() {
    let pool = pool();
    let mut failures = Vec::new();
    for path in corpus() {
        if let Err(problem) = check(&pool, &path).await {
            failures.push(format!(
                "{}: {problem}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    let status = pool.status();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(status.hosts_failed, 0, "{status:?}");
    assert_eq!(status.hosts_started, 1, "{status:?}");
}
