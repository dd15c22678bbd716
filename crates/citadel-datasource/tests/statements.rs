//! The parser layer against a corpus (`statements.txt`): each line names
//! the expected outcome, the dialect(s) and the statement.

use citadel_datasource::{Kind, check_statement};

#[test]
fn corpus() {
    let corpus = include_str!("statements.txt");
    let mut failures = Vec::new();
    let mut cases = 0;
    for (n, line) in corpus.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        let expected = parts.next().unwrap();
        let dialect = parts.next().expect("a dialect");
        let sql = parts.next().unwrap_or("");
        assert!(
            matches!(expected, "ok" | "statement_refused" | "invalid_params"),
            "line {}: unknown outcome {expected}",
            n + 1
        );
        let kinds: &[Kind] = match dialect {
            "both" => &[Kind::Sqlite, Kind::Postgres],
            "sqlite" => &[Kind::Sqlite],
            "pg" => &[Kind::Postgres],
            other => panic!("line {}: unknown dialect {other}", n + 1),
        };
        for &kind in kinds {
            cases += 1;
            let got = match check_statement(sql, kind) {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.code().to_owned(),
            };
            if got != expected {
                let detail = check_statement(sql, kind)
                    .err()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                failures.push(format!(
                    "line {} {kind:?}: expected {expected}, got {got}{detail}: {sql}",
                    n + 1
                ));
            }
        }
    }
    assert!(cases > 100, "the corpus has {cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_say_why() {
    let reason = |sql, kind| check_statement(sql, kind).unwrap_err().to_string();
    assert!(reason("SELECT 1; DROP TABLE users", Kind::Sqlite).contains("2 statements"));
    assert!(reason("DROP TABLE users", Kind::Sqlite).contains("DROP TABLE"));
    assert!(
        reason(
            "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
            Kind::Postgres
        )
        .contains("data-modifying")
    );
    assert!(reason("SELECT pg_sleep(10)", Kind::Postgres).contains("pg_sleep"));
    assert!(reason("SELECT * FROM users FOR UPDATE", Kind::Postgres).contains("FOR UPDATE"));
    assert!(reason("SELECT * INTO t FROM users", Kind::Postgres).contains("INTO"));
    assert!(reason("SELEC 1", Kind::Sqlite).contains("does not parse"));
}
