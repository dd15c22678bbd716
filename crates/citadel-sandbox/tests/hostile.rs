//! The hostile-script corpus in `tests/hostile/` at the repository root,
//! and the web globals' own in `tests/web_hostile/` beside this file.
//!
//! Each file starts with `// key: value` lines saying what to expect:
//! `expect: STATUS CODE` (CODE `-` for none), and optionally `result:`,
//! `message:` (a substring of the error message), `line:`, `logs_truncated:`,
//! `limits:` (`timeout_ms=`, `cpu_ms=`, `memory_mb=`, `time_zone=`), `grants:`, `input:`,
//! `after:` (a second script run afterwards in the same sandbox) and
//! `after-result:`. After every case a plain script must still succeed.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use citadel_sandbox::{Capability, Grants, Language, Limits, NoHost, RunRequest, Sandbox};

#[derive(Default)]
struct Case {
    status: String,
    code: String,
    result: Option<serde_json::Value>,
    message: Option<String>,
    line: Option<u32>,
    logs_truncated: Option<bool>,
    limits: Limits,
    grants: Grants,
    input: String,
    after: Option<String>,
    after_result: Option<serde_json::Value>,
}

fn parse_case(path: &Path, source: &str) -> Case {
    let mut case = Case {
        input: "null".into(),
        ..Case::default()
    };
    // Hostile cases get tight limits unless they say otherwise, so the corpus is quick.
    case.limits.timeout = Duration::from_secs(2);
    case.limits.cpu = Duration::from_secs(1);
    for line in source.lines().take_while(|l| l.starts_with("//")) {
        let Some((key, value)) = line.trim_start_matches("//").trim().split_once(": ") else {
            continue;
        };
        let json = |v: &str| {
            serde_json::from_str(v)
                .unwrap_or_else(|e| panic!("{}: bad JSON in `{key}`: {e}", path.display()))
        };
        match key {
            "expect" => {
                let (s, c) = value.split_once(' ').expect("expect: STATUS CODE");
                case.status = s.into();
                case.code = c.into();
            }
            "result" => case.result = Some(json(value)),
            "message" => case.message = Some(value.into()),
            "line" => case.line = Some(value.parse().unwrap()),
            "logs_truncated" => case.logs_truncated = Some(value == "true"),
            "input" => case.input = value.into(),
            "after" => case.after = Some(value.into()),
            "after-result" => case.after_result = Some(json(value)),
            "grants" => {
                case.grants = value
                    .split(',')
                    .map(|g| {
                        serde_json::from_value::<Capability>(serde_json::Value::String(
                            g.trim().into(),
                        ))
                        .unwrap()
                    })
                    .collect()
            }
            "limits" => {
                for kv in value.split_whitespace() {
                    let (k, v) = kv.split_once('=').unwrap();
                    if k == "time_zone" {
                        case.limits.time_zone = citadel_sandbox::TimeZoneName::new(v).unwrap();
                        continue;
                    }
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
    corpus_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile"),
        40,
    )
}

fn corpus_in(dir: &Path, at_least: usize) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= at_least,
        "the corpus is missing: {}",
        dir.display()
    );
    files
}

async fn check(sandbox: &Sandbox, path: &Path) -> Result<(), String> {
    let source = std::fs::read_to_string(path).unwrap();
    let case = parse_case(path, &source);
    let script = sandbox.load(&source, Language::from_path(path));
    let request = RunRequest {
        input_json: &case.input,
        limits: case.limits,
        grants: case.grants,
        host: Rc::new(NoHost),
        cancel: None,
    };
    let out = sandbox.run(&script, request).await;
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
    if let Some(want) = &case.message {
        let got = out.error.as_ref().map(|e| e.message.as_str()).unwrap_or("");
        if !got.contains(want.as_str()) {
            problems.push(format!("message {got:?} does not contain {want:?}"));
        }
    }
    if let Some(want) = case.line {
        let got = out.error.as_ref().and_then(|e| e.line);
        if got != Some(want) {
            problems.push(format!("error line {got:?} != {want} ({:?})", out.error));
        }
    }
    if let Some(want) = case.logs_truncated
        && out.logs_truncated != want
    {
        problems.push(format!("logs_truncated {} != {want}", out.logs_truncated));
    }
    // Every case ends within its wall-clock limit plus a margin.
    let bound = case.limits.timeout + Duration::from_millis(750);
    if out.duration > bound {
        problems.push(format!("took {:?}, more than {bound:?}", out.duration));
    }
    if let Some(after) = &case.after {
        let script = sandbox.load(after, Language::Js);
        let req = RunRequest {
            input_json: "null",
            limits: Limits::default(),
            grants: Grants::NONE,
            host: Rc::new(NoHost),
            cancel: None,
        };
        let out = sandbox.run(&script, req).await;
        if Some(out.result_value()) != case.after_result {
            problems.push(format!(
                "after-run result {} ({:?}) != {:?}",
                out.result_value(),
                out.error,
                case.after_result
            ));
        }
    }
    // The process is still healthy.
    let hello = sandbox.load("return [1, 2, 3].map((x) => x * 2);", Language::Js);
    let req = RunRequest {
        input_json: "null",
        limits: Limits::default(),
        grants: Grants::NONE,
        host: Rc::new(NoHost),
        cancel: None,
    };
    let out = sandbox.run(&hello, req).await;
    if out.result_value() != serde_json::json!([2, 4, 6]) {
        problems.push(format!("the next run failed: {:?}", out.error));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn hostile_corpus() {
    run_corpus(corpus()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn web_hostile_corpus() {
    run_corpus(corpus_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web_hostile"),
        12,
    ))
    .await;
}

async fn run_corpus(files: Vec<PathBuf>) {
    let sandbox = Sandbox::default();
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match check(&sandbox, &path).await {
            Ok(()) => println!("ok   {name}"),
            Err(e) => {
                println!("FAIL {name}: {e}");
                failures.push(name);
            }
        }
    }
    assert!(failures.is_empty(), "failing cases: {failures:?}");
}

/// The jailed hosts' built-ins corpus (`tests/builtins/` at the repository
/// root, run in real hosts by `crates/citadel/tests/pool_builtins.rs`),
/// here in process: the same results without a jail.
#[tokio::test(flavor = "current_thread")]
async fn builtins_corpus_in_process() {
    run_corpus(corpus_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/builtins"),
        50,
    ))
    .await;
}
