//! The broken-workflow corpus: one file per rule under
//! `tests/corpus/invalid/`, each naming the diagnostics it must produce,
//! exactly, in comment lines at its top:
//!
//! ```yaml
//! # profile: standard        (optional; elevated otherwise)
//! # expect: step.cycle 3:5
//! ```
//!
//! Set `CORPUS_PRINT=1` to print what each case produces instead.

use citadel_workflow::{Profile, validate};

fn expectations(text: &str) -> (Profile, Vec<String>) {
    let mut profile = Profile::Elevated;
    let mut expect = Vec::new();
    for line in text.lines() {
        let Some(comment) = line.strip_prefix("# ") else {
            break;
        };
        if let Some(p) = comment.strip_prefix("profile: ") {
            profile = p.trim().parse().unwrap();
        } else if let Some(e) = comment.strip_prefix("expect: ") {
            expect.push(e.trim().to_owned());
        }
    }
    (profile, expect)
}

#[test]
fn every_broken_workflow_gets_exactly_its_diagnostics() {
    let dir = format!("{}/tests/corpus/invalid", env!("CARGO_MANIFEST_DIR"));
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(entries.len() >= 40, "the corpus lost cases");
    let print = std::env::var_os("CORPUS_PRINT").is_some();
    let mut failures = Vec::new();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let (profile, mut expect) = expectations(&text);
        let mut got: Vec<String> = match validate(&text, profile) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .map(|d| format!("{} {}:{}", d.code, d.line, d.column))
                .collect(),
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if print {
            println!("== {name}");
            if let Err(diags) = validate(&text, profile) {
                for d in diags {
                    println!("  {d}");
                }
            }
            continue;
        }
        got.sort();
        expect.sort();
        if expect.is_empty() {
            failures.push(format!("{name}: no `# expect:` line"));
        } else if got != expect {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
