//! The real `citadel` binary: output and exit codes of the CLI contract.

use std::path::{Path, PathBuf};
use std::process::Command;

use citadel_testkit::{TempDir, temp_dir};
use common::repo;

mod common;

/// Runs `citadel ARGS` in the repository root; returns (exit code, stdout, stderr).
fn citadel(args: &[&str]) -> (i32, String, String) {
    common::citadel_in(&repo(), args)
}

/// Writes `source` to `dir/name`; its path.
fn temp_script(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, source).unwrap();
    path
}

#[test]
fn run_prints_the_result_and_exits_0() {
    let (code, stdout, stderr) = citadel(&["run", "examples/hello.ts", "--input", r#"{"n":2}"#]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), r#"{"processed":3,"doubled":4}"#);
    assert_eq!(stderr.trim(), "doubling 2");
}

#[test]
fn run_json_prints_one_object() {
    let (code, stdout, _) = citadel(&["run", "examples/hello.ts", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(
        v["result"],
        serde_json::json!({"processed": 3, "doubled": 2})
    );
    assert_eq!(v["logs"][0]["message"], "doubling 1");
    assert!(
        v["duration_ms"].is_number()
            && v["cpu_ms"].is_number()
            && v["peak_memory_bytes"].is_number()
    );
}

#[test]
fn check_reports_a_located_diagnostic_and_exits_1() {
    let (code, _, stderr) = citadel(&["check", "examples/uses-eval.js"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("examples/uses-eval.js:3:8: error[no-eval]"),
        "{stderr}"
    );
    let (code, _, _) = citadel(&["check", "examples/hello.ts"]);
    assert_eq!(code, 0);
}

#[test]
fn exit_codes_follow_the_contract() {
    let dir = temp_dir("cli");
    let threw = temp_script(&dir, "threw.js", "throw new Error('no');");
    let limit = temp_script(
        &dir,
        "limit.js",
        "let i = 0; for (;;) { i++; if (i < 0) break; }",
    );
    let rejected = temp_script(&dir, "rejected.js", "return eval('1');");
    let syntax = temp_script(&dir, "syntax.js", "return (;");
    let cases: &[(&[&str], i32)] = &[
        (&["run", threw.to_str().unwrap()], 1),
        (&["run", limit.to_str().unwrap(), "--timeout-ms", "200"], 3),
        (&["run", rejected.to_str().unwrap()], 4),
        (&["run", syntax.to_str().unwrap()], 4),
        (&["run", "examples/hello.ts", "--input", "{nope"], 2),
        (&["run", "does/not/exist.js"], 2),
        (&["run", "examples/hello.ts", "--grant", "teleport"], 2),
        (&["run"], 2),
    ];
    for (args, want) in cases {
        let (code, stdout, stderr) = citadel(args);
        assert_eq!(
            code, *want,
            "citadel {args:?}: stdout {stdout} stderr {stderr}"
        );
    }
}

#[test]
fn a_policy_can_allow_a_rule() {
    let dir = temp_dir("cli");
    let policy = temp_script(&dir, "policy.json", r#"{"allow": ["no-unbounded-loop"]}"#);
    let looping = temp_script(&dir, "loop.js", "while (true) {}");
    let (code, _, stderr) = citadel(&[
        "run",
        looping.to_str().unwrap(),
        "--timeout-ms",
        "200",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error[cpu_limit]") || stderr.contains("error[timeout]"),
        "{stderr}"
    );
    let bad = temp_script(&dir, "bad-policy.json", r#"{"allow": ["no-such-rule"]}"#);
    let (code, _, stderr) = citadel(&[
        "check",
        looping.to_str().unwrap(),
        "--policy",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown rule `no-such-rule`"), "{stderr}");
}

/// One case of `tests/exit_codes/`: a command line, what it is run with, and
/// the exit code and standard error it must give.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExitCase {
    args: Vec<String>,
    /// `CITADEL_*` variables set for the case (all others are removed).
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    /// Files written to the case's directory, `{tmp}` in arguments.
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
    exit: i32,
    /// The whole of standard error.
    stderr: Option<String>,
    stderr_starts_with: Option<String>,
}

#[test]
fn every_exit_case_gives_its_code_and_message() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exit_codes");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "the corpus is missing: {corpus:?}");
    let mut failures = Vec::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case: ExitCase = toml::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let tmp = temp_dir(&format!("exit-{name}"));
        for (file, text) in &case.files {
            std::fs::write(tmp.path().join(file), text).unwrap();
        }
        let tmp_text = tmp.path().to_str().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CITADEL_") {
                cmd.env_remove(key);
            }
        }
        let out = cmd
            .args(case.args.iter().map(|a| a.replace("{tmp}", tmp_text)))
            .envs(&case.env)
            .current_dir(repo())
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr_ok = case
            .stderr
            .as_ref()
            .is_none_or(|want| *stderr == want.replace("{tmp}", tmp_text))
            && case
                .stderr_starts_with
                .as_ref()
                .is_none_or(|want| stderr.starts_with(&want.replace("{tmp}", tmp_text)));
        if code != case.exit || !stderr_ok {
            failures.push(format!(
                "{name}: exit {code} (want {}), stderr:\n{stderr}",
                case.exit
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A server on 127.0.0.1 answering one request per connection with
/// `{"seen": "<authorization header>"}`; its port.
fn tiny_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = sock.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let auth = head
                .lines()
                .find_map(|l| l.strip_prefix("authorization: "))
                .unwrap_or("")
                .to_owned();
            let body = format!("{{\"seen\":\"{auth}\"}}");
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn run_allow_net_grants_fetch_to_those_hosts_only() {
    let dir = temp_dir("cli-net");
    let port = tiny_server();
    let script = temp_script(
        &dir,
        "fetch.js",
        &format!(
            "const r = await api.http.fetch('http://127.0.0.1:{port}/', {{headers: {{authorization: 'Bearer t'}}}});\n\
             let other; try {{ await api.http.fetch('https://example.com/'); }} catch (e) {{ other = e.code; }}\n\
             return [r.status, (await r.json()).seen, other];"
        ),
    );
    let allow = format!("http://127.0.0.1:{port}");
    let path = script.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["run", path, "--allow-net", &allow])
        .env("CITADEL_EGRESS_ALLOW_PRIVATE", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[200,"Bearer t","capability_denied"]"#
    );
    // Without the platform's consent loopback stays out of reach, granted
    // or not.
    let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["run", path, "--allow-net", &allow])
        .env_remove("CITADEL_EGRESS_ALLOW_PRIVATE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[script_error]")
            || stderr.contains("private_address")
            || stderr.contains("not a public address"),
        "{stderr}"
    );
    // Without --allow-net there is no fetch at all.
    let (code, _, stderr) = citadel(&["run", path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("capability `http` is not granted"),
        "{stderr}"
    );
    // A malformed pattern is a usage error.
    let (code, _, stderr) = citadel(&["run", path, "--allow-net", "exa mple.com"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--allow-net"), "{stderr}");
}

#[test]
fn workflow_validate_and_plan_report_located_and_rendered() {
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "validate",
        "examples/workflows/hello-world.yaml",
        "--profile",
        "elevated",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "examples/workflows/hello-world.yaml: workflow `hello-world` 1.0 is valid (1 steps)"
    );
    // Under a profile without shell, the shell step is refused where it is.
    let (code, _, stderr) = citadel(&[
        "workflow",
        "validate",
        "examples/workflows/hello-world.yaml",
        "--profile",
        "standard",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.lines().next(),
        Some(
            "examples/workflows/hello-world.yaml:8:11: shell steps are not allowed under the `standard` profile (the lowest that allows them is `elevated`) [step.forbidden]"
        )
    );
    // The plan renders the seed's template with the input, escaped for its
    // quotes, and runs nothing.
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "plan",
        "examples/workflows/hello-world.yaml",
        "--profile",
        "elevated",
        "--input",
        r#"{"name":"Developer"}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l == "      command: echo 'Hello Developer!'"),
        "{stdout}"
    );
    let (code, stdout, _) = citadel(&[
        "workflow",
        "plan",
        "examples/workflows/hello-world.yaml",
        "--profile",
        "elevated",
        "--input",
        r#"{"name":"x'; touch /tmp/p; echo '"}"#,
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout
            .lines()
            .any(|l| l == r#"      command: echo 'Hello x'\''; touch /tmp/p; echo '\''!'"#),
        "{stdout}"
    );
    // A required input left out is an input error.
    let (code, _, stderr) = citadel(&[
        "workflow",
        "plan",
        "examples/workflows/deploy-application.yaml",
        "--profile",
        "elevated",
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "citadel: input `environment`: a string is required [input.missing]"
    );
}

#[test]
fn plugin_validate_and_pack_check_bundles_with_located_errors() {
    for (dir, summary) in [
        (
            "examples/plugins/welcome-email",
            "ok: welcome-email 1.0.0 (1 events, 2 routes, 0 jobs; 0 warnings)",
        ),
        (
            "examples/plugins/daily-kpi",
            "ok: daily-kpi 0.3.1 (0 events, 1 routes, 1 jobs; 0 warnings)",
        ),
    ] {
        let (code, _, stderr) = citadel(&["plugin", "validate", dir]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stderr.trim(), summary);
    }
    // A handler for an event the manifest does not declare.
    let dir = temp_dir("cli-plugin");
    std::fs::write(
        dir.path().join("citadel-plugin.json"),
        r#"{"slug": "bad", "name": "Bad", "version": "1.0.0", "entry": "main.js", "events": []}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.js"),
        "hook(\"user.deleted\", async (ctx, e) => 1);\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, _, stderr) = citadel(&["plugin", "validate", path]);
    assert_eq!(code, 1);
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("main.js:1:") && first.contains("error[undeclared_hook]"),
        "{stderr}"
    );
    // Packing is deterministic: the same directory, the same bytes.
    let out = dir.path().join("a.tar.gz");
    let out2 = dir.path().join("b.tar.gz");
    let (code, first, stderr) = citadel(&[
        "plugin",
        "pack",
        "examples/plugins/daily-kpi",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (_, second, _) = citadel(&[
        "plugin",
        "pack",
        "examples/plugins/daily-kpi",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    let sha = |s: &str| s.trim().rsplit_once("sha256:").map(|(_, h)| h.to_owned());
    assert_eq!(sha(&first), sha(&second));
    // A packed bundle validates as the directory did.
    let (code, _, stderr) = citadel(&["plugin", "validate", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}
