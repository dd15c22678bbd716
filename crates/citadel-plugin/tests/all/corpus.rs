//! The plugin corpus: each `tests/corpus/plugins/*.case` is a whole bundle
//! in one file, with the exact diagnostics it must produce.
//!
//! ```text
//! # what the case is about
//! # expect: CODE FILE:LINE:COLUMN
//! # expect: CODE FILE
//! # expect: CODE
//! ==> citadel-plugin.yaml <==
//! …
//! ==> main.js <==
//! …
//! ```
//!
//! Every diagnostic (errors and warnings) must be expected and every
//! expectation met; a case without `expect` lines must validate cleanly.

use std::collections::BTreeMap;
use std::path::Path;

use citadel_plugin::{Bundle, Diagnostic, validate};

fn parse_case(text: &str) -> (Vec<String>, BTreeMap<String, Vec<u8>>) {
    let mut expect = Vec::new();
    let mut files = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches('\n');
        if let Some(name) = trimmed
            .strip_prefix("==> ")
            .and_then(|r| r.strip_suffix(" <=="))
        {
            if let Some((n, body)) = current.take() {
                files.insert(n, body.into_bytes());
            }
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
        } else if let Some(e) = trimmed.strip_prefix("# expect: ") {
            expect.push(e.trim().to_owned());
        }
    }
    if let Some((n, body)) = current {
        files.insert(n, body.into_bytes());
    }
    (expect, files)
}

/// How an expectation line renders a diagnostic, as precisely as it asks.
fn shown(d: &Diagnostic, precision: usize) -> String {
    let mut s = d.code.to_owned();
    if precision >= 1
        && let Some(file) = &d.file
    {
        s.push(' ');
        s.push_str(file);
        if precision >= 2
            && let (Some(l), Some(c)) = (d.line, d.column)
        {
            s.push_str(&format!(":{l}:{c}"));
        }
    }
    s
}

fn precision(expect: &str) -> usize {
    match expect.split_once(' ') {
        None => 0,
        Some((_, loc)) if loc.contains(':') => 2,
        Some(_) => 1,
    }
}

#[test]
fn the_plugin_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/plugins");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "the corpus is missing cases: {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case).unwrap();
        let (mut expect, files) = parse_case(&text);
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let diags = match Bundle::from_files(files) {
            Err(d) => vec![d],
            Ok(bundle) => match validate(&bundle) {
                Ok(plugin) => plugin.warnings,
                Err(diags) => diags,
            },
        };
        let mut got: Vec<String> = Vec::new();
        for d in &diags {
            let p = expect
                .iter()
                .find(|e| e.split(' ').next() == Some(d.code))
                .map_or(2, |e| precision(e));
            got.push(shown(d, p));
        }
        got.sort();
        expect.sort();
        if got != expect {
            let all: Vec<String> = diags.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{name}:\n  expected {expect:?}\n  got      {got:?}\n  {}",
                all.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
