//! Template attacks from `tests/corpus/template_attacks.tsv`: attribute
//! walking, names not granted, loops, recursion and size bombs, each with
//! its exact outcome, each within a second.

use std::time::{Duration, Instant};

use citadel_workflow::{EvalError, Scope, Template};
use serde_json::json;

fn scope() -> Scope {
    let mut scope = Scope::with_inputs(
        json!({"name": "Developer", "list": [1, 2, 3]})
            .as_object()
            .cloned()
            .unwrap(),
    );
    scope.env.insert("REGION".into(), "eu".into());
    scope
        .secrets
        .insert("API_KEY".into(), "s3cr3t-value".into());
    scope
}

fn kind(e: &EvalError) -> &'static str {
    match e {
        EvalError::NotGranted { .. } => "not_granted",
        EvalError::OutOfFuel => "out_of_fuel",
        EvalError::TooDeep => "too_deep",
        EvalError::TooLarge { .. } => "too_large",
        EvalError::Undefined(_) => "undefined",
        EvalError::Refused(_) => "refused",
        EvalError::Failed(_) => "failed",
    }
}

fn outcome(template: &str) -> String {
    match Template::parse(template, false) {
        Err(e) => format!("refused {}", e.code),
        Ok(t) => match t.render(&scope()) {
            Ok(text) => format!("ok {text}"),
            Err(e) => format!("error {}", kind(&e)),
        },
    }
}

#[test]
fn every_attack_has_its_outcome_in_bounded_time() {
    let text = std::fs::read_to_string(format!(
        "{}/tests/corpus/template_attacks.tsv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let print = std::env::var_os("CORPUS_PRINT").is_some();
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (template, expected) = line.split_once('\t').unwrap();
        let started = Instant::now();
        let got = outcome(template);
        let took = started.elapsed();
        cases += 1;
        if print {
            println!("{template}\t{got}");
            continue;
        }
        if took > Duration::from_secs(1) {
            failures.push(format!("{template:?} took {took:?}"));
        }
        if got != expected {
            failures.push(format!("{template:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(cases >= 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn not_granted_names_the_name() {
    let t = Template::parse("{{ secrets.DB_PASSWORD }}", false).unwrap();
    assert_eq!(
        t.render(&scope()).unwrap_err().to_string(),
        "`secrets.DB_PASSWORD` is not granted to this run"
    );
}
