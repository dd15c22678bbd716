//! `Progress`: which steps are ready after which results, how skips and
//! failures propagate, `continue_on_error`, `when` over real results,
//! resuming from stored results, and the outcome with its outputs.

use std::collections::BTreeMap;

use citadel_workflow::{
    Profile, Progress, Ready, StepResult, StepStatus, Workflow, check_inputs, validate,
};
use serde_json::{Value, json};

fn workflow(yaml: &str) -> Workflow {
    validate(yaml, Profile::Elevated).unwrap_or_else(|d| panic!("{d:?}"))
}

fn ok(output: Value) -> StepResult {
    StepResult {
        status: StepStatus::Succeeded,
        output,
        exit_code: None,
    }
}

fn failed() -> StepResult {
    StepResult {
        status: StepStatus::Failed,
        output: json!({"error": "boom"}),
        exit_code: Some(1),
    }
}

/// What `ready` answered, as `(id, "run"|"skipped: …"|"refused: …")`.
fn decisions(ready: Vec<Ready<'_>>) -> Vec<(String, String)> {
    ready
        .into_iter()
        .map(|r| match r {
            Ready::Run { step, .. } => (step.id.clone(), "run".to_owned()),
            Ready::Skipped { step, reason } => (step.id.clone(), format!("skipped: {reason}")),
            Ready::Refused { step, reason } => (step.id.clone(), format!("refused: {reason}")),
        })
        .collect()
}

fn pair(id: &str, what: &str) -> (String, String) {
    (id.to_owned(), what.to_owned())
}

const DIAMOND: &str = r#"
name: diamond
version: 1
inputs:
  go: { type: boolean, default: true }
steps:
  - id: a
    type: script
    code: "return 1"
  - id: b
    type: script
    depends_on: [a]
    code: "return 2"
  - id: c
    type: script
    depends_on: [a]
    when: "inputs.go and steps.a.output == 1"
    code: "return 3"
  - id: d
    type: script
    depends_on: [b, c]
    input: { sum: "{{ steps.b.output + steps.c.output }}" }
    code: "return input.sum"
outputs:
  total: "{{ steps.d.output }}"
"#;

#[test]
fn steps_are_ready_once_their_dependencies_end_and_see_only_upstream_results() {
    let w = workflow(DIAMOND);
    let inputs = check_inputs(&w, &json!({})).unwrap();
    let mut p = Progress::new(&w, inputs, Profile::Standard);
    assert_eq!(decisions(p.ready()), [pair("a", "run")]);
    // Nothing more until `a` ends.
    assert!(p.ready().is_empty());
    assert!(!p.is_finished());
    assert!(p.finish("a", ok(json!(1))));
    let ready = p.ready();
    let scopes: Vec<Vec<String>> = ready
        .iter()
        .map(|r| match r {
            Ready::Run { scope, .. } => scope.steps.keys().cloned().collect(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(decisions(ready), [pair("b", "run"), pair("c", "run")]);
    assert_eq!(scopes, [vec!["a".to_owned()], vec!["a".to_owned()]]);
    assert!(p.finish("c", ok(json!(3))));
    assert!(p.ready().is_empty(), "d waits for b");
    assert!(p.finish("b", ok(json!(2))));
    let ready = p.ready();
    let Ready::Run { step, scope } = &ready[0] else {
        panic!("{ready:?}")
    };
    assert_eq!(step.id, "d");
    assert_eq!(scope.steps.len(), 3);
    assert!(p.finish("d", ok(json!(5))));
    assert!(p.is_finished());
    // A second result for a step is ignored.
    assert!(!p.finish("d", ok(json!(6))));
    let outcome = p.outcome();
    assert_eq!(outcome.status, StepStatus::Succeeded);
    assert_eq!(outcome.failed_step, None);
    assert_eq!(Value::Object(outcome.outputs), json!({"total": 5}));
}

#[test]
fn a_false_when_skips_its_step_and_everything_after_it() {
    let w = workflow(DIAMOND);
    let inputs = check_inputs(&w, &json!({"go": false})).unwrap();
    let mut p = Progress::new(&w, inputs, Profile::Standard);
    p.ready();
    p.finish("a", ok(json!(1)));
    assert_eq!(
        decisions(p.ready()),
        [
            pair("b", "run"),
            pair(
                "c",
                "skipped: `when: inputs.go and steps.a.output == 1` is false"
            ),
        ]
    );
    p.finish("b", ok(json!(2)));
    assert_eq!(decisions(p.ready()), [pair("d", "skipped: `c` is skipped")]);
    assert!(p.is_finished());
    let outcome = p.outcome();
    // Skips are not failures, but an output over a skipped step's null
    // output renders as null.
    assert_eq!(outcome.status, StepStatus::Succeeded);
    assert_eq!(outcome.outputs["total"], Value::Null);
}

#[test]
fn a_failure_skips_its_dependents_and_fails_the_run_unless_it_continues_on_error() {
    let yaml = r#"
name: chain
version: 1
steps:
  - id: first
    type: shell
    command: "false"
  - id: second
    type: script
    depends_on: [first]
    code: "return 1"
  - id: tolerant
    type: shell
    command: "false"
    continue_on_error: true
  - id: after-tolerant
    type: script
    depends_on: [tolerant]
    when: "steps.tolerant.exit_code == 1"
    code: "return 2"
"#;
    let w = workflow(yaml);
    let mut p = Progress::new(&w, Default::default(), Profile::Elevated);
    assert_eq!(
        decisions(p.ready()),
        [pair("first", "run"), pair("tolerant", "run")]
    );
    p.finish("first", failed());
    p.finish("tolerant", failed());
    assert_eq!(
        decisions(p.ready()),
        [
            pair("second", "skipped: `first` failed"),
            pair("after-tolerant", "run"),
        ]
    );
    p.finish("after-tolerant", ok(json!(2)));
    let outcome = p.outcome();
    assert_eq!(outcome.status, StepStatus::Failed);
    assert_eq!(outcome.failed_step.as_deref(), Some("first"));
}

#[test]
fn a_profile_lower_than_the_one_validated_refuses_the_step_at_run_time() {
    // Validated under `elevated`, run under `restricted` (a tenant's
    // maximum lowered between saving and running).
    let yaml = "name: s\nversion: 1\nsteps:\n  - id: sh\n    type: shell\n    command: \"echo hi\"\n  - id: next\n    type: script\n    depends_on: [sh]\n    code: \"return 1\"\n";
    let w = workflow(yaml);
    let mut p = Progress::new(&w, Default::default(), Profile::Restricted);
    assert_eq!(
        decisions(p.ready()),
        [
            pair(
                "sh",
                "refused: shell steps are not allowed under the `restricted` profile"
            ),
            pair("next", "skipped: `sh` failed"),
        ]
    );
    assert!(p.is_finished());
    assert_eq!(
        p.results()["sh"].output,
        json!({"error": "shell steps are not allowed under the `restricted` profile"})
    );
    assert_eq!(p.outcome().failed_step.as_deref(), Some("sh"));
}

#[test]
fn a_resumed_run_hands_out_only_the_steps_without_a_result() {
    let w = workflow(DIAMOND);
    let inputs = check_inputs(&w, &json!({})).unwrap();
    // `a` and `b` finished before the node died; `c` was running.
    let stored = BTreeMap::from([
        ("a".to_owned(), ok(json!(1))),
        ("b".to_owned(), ok(json!(2))),
        ("gone".to_owned(), ok(json!(0))),
    ]);
    let mut p = Progress::resume(&w, inputs, Profile::Standard, stored);
    assert_eq!(decisions(p.ready()), [pair("c", "run")]);
    assert_eq!(p.results().len(), 2, "a result of no step is dropped");
    p.finish("c", ok(json!(3)));
    assert_eq!(decisions(p.ready()), [pair("d", "run")]);
}

#[test]
fn an_output_that_cannot_render_fails_the_run_and_says_why() {
    let yaml = "name: o\nversion: 1\nsteps:\n  - id: a\n    type: script\n    code: \"return 1\"\noutputs:\n  bad: \"{{ steps.a.output.missing.deeper }}\"\n";
    let w = workflow(yaml);
    let mut p = Progress::new(&w, Default::default(), Profile::Standard);
    p.ready();
    p.finish("a", ok(json!(1)));
    let outcome = p.outcome();
    assert_eq!(outcome.status, StepStatus::Failed);
    assert_eq!(outcome.failed_step, None);
    assert_eq!(outcome.output_errors.len(), 1, "{outcome:?}");
    assert_eq!(
        outcome.output_errors["bad"],
        "`steps.a.output.missing.deeper` is undefined"
    );
}
