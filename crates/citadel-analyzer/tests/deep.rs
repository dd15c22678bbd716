//! The nesting corpus in `tests/deep/` at the repository root: deep sources
//! (a few thousand levels of brackets, operators, keywords or types, JS and
//! TS) that must be refused with a located `nesting-limit` diagnostic, and
//! wide ones (many siblings, brackets inside strings, comments and regular
//! expressions) that must pass. Each file says `// expect: rule@line:column
//! ...` (or `none`).
//!
//! Each case is analysed on a thread with a runtime worker's 2 MiB stack,
//! not the analyzer's own large one: the nesting limits alone must keep every
//! recursive pass within it. Without them a case aborts the test process
//! with a stack overflow.

use std::path::Path;

use citadel_analyzer::{Language, NESTING_RULE, prepare};

const SMALL_STACK: usize = 2 << 20;

fn analyse_on_small_stack(source: String, language: Language) -> Vec<String> {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            prepare(&source, language)
                .diagnostics
                .iter()
                .map(|d| format!("{}@{}:{}", d.rule, d.line, d.column))
                .collect()
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deep_and_wide_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/deep");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus is missing: {}",
        dir.display()
    );
    let (mut failures, mut refused) = (Vec::new(), 0);
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let expect = source
            .lines()
            .find_map(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{}: no `// expect:` line", path.display()));
        let want: Vec<String> = if expect == "none" {
            Vec::new()
        } else {
            expect.split_whitespace().map(str::to_owned).collect()
        };
        refused += usize::from(want.iter().any(|w| w.starts_with(NESTING_RULE)));
        let got = analyse_on_small_stack(source.clone(), Language::from_path(&path));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if got == want {
            println!("ok   {name}");
        } else {
            println!("FAIL {name}: got {got:?}, want {want:?}");
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "failing cases: {failures:?}");
    assert!(refused >= 25, "only {refused} cases expect a refusal");
}
