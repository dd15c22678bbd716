//! The analyzer corpus in `tests/analyzer/` at the repository root: each file
//! says `// expect: rule@line:column ...` (or `none`) and must produce exactly
//! those diagnostics, in that order.

use std::path::Path;

use citadel_analyzer::{Language, prepare};

#[test]
fn analyzer_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/analyzer");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the corpus is missing: {}",
        dir.display()
    );
    let mut failures = Vec::new();
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
        let got: Vec<String> = prepare(&source, Language::from_path(&path))
            .diagnostics
            .iter()
            .map(|d| format!("{}@{}:{}", d.rule, d.line, d.column))
            .collect();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if got == want {
            println!("ok   {name}");
        } else {
            println!("FAIL {name}: got {got:?}, want {want:?}");
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "failing cases: {failures:?}");
}
