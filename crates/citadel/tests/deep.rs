//! Deeply nested input through the real binary: `citadel check` and
//! `citadel run` refuse deep sources with their analysis exit codes, and a
//! jailed sandbox host survives capability arguments and replies nested as
//! deep as a script can make them, so the other runs on it are unharmed.

use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::Language;
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{Capability, Grants, Limits, RunStatus};
use serde_json::json;

mod common;

fn citadel(args: &[&str]) -> (i32, String, String) {
    common::citadel_in(&common::repo(), args)
}

#[test]
fn check_refuses_a_deep_source_with_its_analysis_exit_code() {
    for (file, at) in [
        ("tests/deep/paren.js", "3:136"),
        ("tests/deep/type_arguments.ts", "3:265"),
    ] {
        let (code, _, stderr) = citadel(&["check", file]);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!("{file}:{at}: error[nesting-limit]: ")),
            "{stderr}"
        );
        let (code, stdout, _) = citadel(&["check", file, "--json"]);
        assert_eq!(code, 1);
        let diagnostics: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(diagnostics[0]["rule"], "nesting-limit", "{stdout}");
    }
}

#[test]
fn run_refuses_a_deep_source_with_exit_4() {
    for extra in [&[][..], &["--in-process"][..]] {
        let mut args = vec!["run", "tests/deep/paren.js", "--json"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = citadel(&args);
        assert_eq!(code, 4, "{args:?}: {stderr}");
        let out: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(out["status"], "rejected");
        assert_eq!(out["error"]["code"], "rejected");
        assert_eq!(out["error"]["diagnostics"][0]["rule"], "nesting-limit");
    }
}

fn job(source: &str) -> PoolRun {
    PoolRun {
        tenant: "t".into(),
        source: source.into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        grants: Grants::NONE.with(Capability::Echo),
        cancel: None,
        version_key: None,
        fault: None,
    }
}

/// A script that echoes a value nested `depth` arrays deep through the
/// supervisor and answers how deep the reply was.
fn echo_nested(depth: usize) -> String {
    format!(
        "let v = 1; for (let i = 0; i < {depth}; i++) v = [v];
         let back = await api.echo(v), n = 0;
         while (Array.isArray(back)) {{ back = back[0]; n++; }}
         return n;"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_capability_arguments_fail_only_their_call_and_the_host_lives_on() {
    let pool = Pool::start(PoolConfig {
        size: 1,
        program: env!("CARGO_BIN_EXE_citadel").into(),
        ..PoolConfig::new().unwrap()
    })
    .unwrap();
    let hello = pool.run(job("return 1"), Arc::new(EchoGateway)).await;
    assert_eq!(hello.status, RunStatus::Succeeded, "{:?}", hello.error);
    let host = pool.host_pids();
    for depth in [100, 120, 124, 125, 126, 127, 128, 200, 10_000] {
        let out = pool
            .run(job(&echo_nested(depth)), Arc::new(EchoGateway))
            .await;
        if depth <= 126 {
            // Arguments the sandbox accepts go through and come back whole.
            assert_eq!(out.status, RunStatus::Succeeded, "{depth}: {:?}", out.error);
            assert_eq!(out.result_value(), json!(depth));
        } else {
            // Deeper ones fail the call, with a typed error, in the script.
            assert_eq!(out.status, RunStatus::Failed, "{depth}");
            let error = out.error.unwrap();
            assert_ne!(
                error.kind,
                citadel_sandbox::ErrorKind::SandboxCrashed,
                "{depth}: {error:?}"
            );
        }
        assert_eq!(pool.host_pids(), host, "the host was replaced at {depth}");
    }
    // A result nested deeper than serde_json parses travels as raw text.
    let deep_result = "let v = 1; for (let i = 0; i < 1000; i++) v = [v]; return v;";
    let out = pool.run(job(deep_result), Arc::new(EchoGateway)).await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    let raw = out.result.as_ref().unwrap().get();
    assert_eq!(raw, format!("{}1{}", "[".repeat(1000), "]".repeat(1000)));
    assert_eq!(pool.host_pids(), host);
    let after = pool.run(job("return 2"), Arc::new(EchoGateway)).await;
    assert_eq!(after.result_value(), json!(2));
    pool.shutdown();
}
