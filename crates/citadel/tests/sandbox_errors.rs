//! Error codes as they come out of a jailed sandbox host: unserved
//! capabilities, and every limit with its own code (and `citadel run` exit 3).

use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{Capability, Grants, Limits, RunStatus};
use serde_json::json;

fn config() -> PoolConfig {
    PoolConfig {
        size: 1,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        ..PoolConfig::new().unwrap()
    }
}

fn job(source: &str, grants: Grants) -> PoolRun {
    PoolRun {
        tenant: "t".into(),
        source: source.into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        grants,
        cancel: None,
        version_key: None,
        fault: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_capabilities_fail_as_unavailable_in_a_jailed_host() {
    let pool = Pool::start(config()).unwrap();
    let grants = Grants::NONE.with(Capability::Kv).with(Capability::Http);
    let caught = "try { await api.kv.get('k'); } catch (e) { return [e.name, e.code]; }";
    let out = pool.run(job(caught, grants), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    assert_eq!(out.result_value(), json!(["Unavailable", "unavailable"]));

    let uncaught = "return await api.http.fetch('https://example.com/')";
    let out = pool.run(job(uncaught, grants), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Failed);
    let error = serde_json::to_value(&out.error).unwrap();
    assert_eq!(error["code"], "unavailable", "{error}");
    assert_eq!(error["name"], "Unavailable", "{error}");
    pool.shutdown();
}

/// Runs `citadel run --json ARGS FILE`; returns (exit code, error code).
fn citadel_run(file: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_citadel"))
        .arg("run")
        .arg("--json")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let code = v["error"]["code"].as_str().unwrap_or("-").to_owned();
    (out.status.code().unwrap_or(-1), code)
}

#[test]
fn every_limit_reports_its_own_code_and_exits_3() {
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            "cpu.js",
            "let i = 0; for (;;) { i++; if (i < 0) break; }",
            &["--cpu-ms", "200"],
            "cpu_limit",
        ),
        (
            "timeout.js",
            "await api.sleep(60000);",
            &["--grant", "sleep", "--timeout-ms", "300"],
            "timeout",
        ),
        (
            "memory.js",
            "const hoard = []; for (let i = 0; i >= 0; i++) hoard.push(new Array(10000).fill(1));",
            &["--memory-mb", "16"],
            "memory_limit",
        ),
        (
            "memory_caught.js",
            "try { const hoard = []; for (let i = 0; i >= 0; i++) hoard.push(new Array(10000).fill(1)); } catch (e) { return 'caught'; }",
            &["--memory-mb", "16"],
            "memory_limit",
        ),
        (
            "microtasks.js",
            "const keep = []; const grow = () => { keep.push(new Array(1000).fill(1)); Promise.resolve().then(grow); }; grow(); await new Promise(() => {});",
            &["--memory-mb", "16"],
            "memory_limit",
        ),
        (
            "stack.js",
            "function down() { return down() + 1; } return down();",
            &[],
            "stack_overflow",
        ),
        (
            "result.js",
            "const big = 'x'.repeat(1 << 20); return new Array(100).fill(big);",
            &[],
            "result_too_large",
        ),
        (
            "result_deep.js",
            "let a = []; for (let i = 0; i < 100000; i++) a = [a]; return a;",
            &[],
            "stack_overflow",
        ),
        (
            "arguments.js",
            "const big = 'x'.repeat(1 << 20); try { await api.echo(new Array(100).fill(big)); } catch (e) { return 'caught'; }",
            &["--grant", "echo"],
            "host_call_limit",
        ),
        (
            "flood.js",
            "await Promise.all(Array.from({ length: 100000 }, () => api.sleep(1)));",
            &["--grant", "sleep"],
            "host_call_limit",
        ),
    ];
    let dir = citadel_testkit::temp_dir("limits");
    let mut wrong = Vec::new();
    for (name, source, args, want) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, source).unwrap();
        for in_process in [false, true] {
            let mut all = args.to_vec();
            if in_process {
                all.push("--in-process");
            }
            let (exit, code) = citadel_run(&file, &all);
            if (exit, code.as_str()) != (3, *want) {
                wrong.push(format!(
                    "{name} (in process: {in_process}): exit {exit} code {code}, want 3 {want}"
                ));
            }
        }
    }
    drop(dir);
    assert!(wrong.is_empty(), "{wrong:#?}");
}
