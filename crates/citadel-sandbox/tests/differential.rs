//! The differential corpus in `tests/differential/`: everyday scripts
//! (URL building, base64, UUIDs, a webhook's HMAC check, encoders,
//! structuredClone, Headers, Request/Response, AbortController, timers,
//! events, AES-GCM, signatures, Blob/FormData, the seed's webhook transform
//! with its amount in the customer's locale via `Intl`), each run in the sandbox and
//! compared with `expected.json` — the results Deno gives, recorded when the
//! corpus was written. Where Deno can be found (`$DENO`, `deno` on `PATH`, or
//! installed from npm into the target directory when `CI=true` or
//! `CITADEL_INSTALL_DENO=1`), every script is also run in Deno now and must
//! give the same result; without it the Deno half is skipped with a
//! message, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use citadel_sandbox::{Grants, Language, Limits, NoHost, RunRequest, RunStatus, Sandbox};
use serde_json::Value;

fn corpus() -> (Vec<(String, String)>, serde_json::Map<String, Value>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "js"))
        .collect();
    files.sort();
    let scripts = files
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(p).unwrap())
        })
        .collect();
    let expected = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let Value::Object(expected) = serde_json::from_str(&expected).unwrap() else {
        panic!("expected.json is not an object");
    };
    (scripts, expected)
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn works(deno: &Path) -> bool {
    Command::new(deno)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Deno binary: `$DENO`, `deno` on `PATH`, one installed from npm into
/// the target directory before, or (under CI or when asked) installed now.
fn find_deno() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DENO") {
        return Some(PathBuf::from(path)).filter(|p| works(p));
    }
    if works(Path::new("deno")) {
        return Some(PathBuf::from("deno"));
    }
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deno-npm");
    let installed = prefix.join("node_modules/@deno/linux-x64-glibc/deno");
    if works(&installed) {
        return Some(installed);
    }
    if ci() || std::env::var("CITADEL_INSTALL_DENO").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&prefix).ok()?;
        let status = Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&prefix)
            .arg("@deno/linux-x64-glibc")
            .status();
        if status.is_ok_and(|s| s.success()) && works(&installed) {
            return Some(installed);
        }
    }
    None
}

/// The script's result in Deno: the body wrapped in an async function,
/// its value printed as JSON.
fn run_in_deno(deno: &Path, name: &str, body: &str) -> Value {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.js"));
    let source = format!(
        "const input = null;\nconst __result = await (async () => {{\n{body}\n}})();\nconsole.log(JSON.stringify(__result));\n"
    );
    std::fs::write(&file, source).unwrap();
    let out = Command::new(deno)
        .args(["run", "--quiet", "--no-prompt", "--no-config"])
        .arg(&file)
        .env("DENO_NO_UPDATE_CHECK", "1")
        .env("DENO_DIR", dir.join("deno-dir"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed in Deno: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: Deno printed no JSON: {e}"))
}

#[tokio::test(flavor = "current_thread")]
async fn everyday_scripts_give_denos_results() {
    let (scripts, expected) = corpus();
    assert!(scripts.len() >= 16, "the corpus is missing");
    let sandbox = Sandbox::default();
    let mut mismatches = Vec::new();
    for (name, body) in &scripts {
        let want = expected
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no entry in expected.json"));
        let script = sandbox.load(body, Language::Js);
        let out = sandbox
            .run(
                &script,
                RunRequest {
                    input_json: "null",
                    limits: Limits::default(),
                    grants: Grants::NONE,
                    host: Rc::new(NoHost),
                    cancel: None,
                },
            )
            .await;
        if out.status != RunStatus::Succeeded {
            mismatches.push(format!("{name}: {:?}", out.error));
        } else if &out.result_value() != want {
            mismatches.push(format!("{name}: citadel {} != {want}", out.result_value()));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    let Some(deno) = find_deno() else {
        assert!(
            !ci(),
            "Deno is required under CI=true (npm install @deno/linux-x64-glibc, or set DENO)"
        );
        eprintln!(
            "skipping the Deno half of the differential test: no Deno found ($DENO, PATH, or CITADEL_INSTALL_DENO=1 to install it from npm)"
        );
        return;
    };
    let mut differ = Vec::new();
    for (name, body) in &scripts {
        let got = run_in_deno(&deno, name, body);
        if &got != expected.get(name).unwrap() {
            differ.push(format!("{name}: deno {got} != recorded {}", expected[name]));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}
