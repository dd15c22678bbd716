//! Statuses and states are the domain's enums everywhere but at the two
//! edges that speak text: the store's row mapping (and its SQL) and the
//! domain crate that names them. A status written as a string literal in
//! any other crate's code would compare or store text the compiler cannot
//! check, so this test fails on one (test code is exempt: it asserts the
//! wire values on purpose).

use std::path::{Path, PathBuf};

/// Names only a status or state has (words that are also error codes,
/// triggers or scopes, such as `failed` or `script`, are left out).
const STATE_WORDS: &[&str] = &[
    "queued",
    "running",
    "succeeded",
    "timed_out",
    "dead",
    "draft",
    "submitted",
    "approved",
    "draining",
    "catch_up",
    "api_async",
    "pending",
    "delivered",
];

/// Crates whose code may spell them: the domain names them, the store maps
/// rows.
const EXEMPT: &[&str] = &["citadel-domain", "citadel-store"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_crate_spells_a_status_as_a_string() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap().flatten() {
        let name = krate.file_name().to_string_lossy().into_owned();
        if EXEMPT.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        let src = krate.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests sit at the end of a module, after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                let line_code = line.split("//").next().unwrap_or("");
                for word in STATE_WORDS {
                    if line_code.contains(&format!("\"{word}\"")) {
                        found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "statuses spelled as strings outside the store:\n{}",
        found.join("\n")
    );
}
