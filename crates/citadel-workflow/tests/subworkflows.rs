//! Sub-workflows through a resolver: unknown names, cycles (direct, and
//! through other workflows, and through a `foreach`), and depth.

use std::collections::HashMap;

use citadel_workflow::{MAX_SUBWORKFLOW_DEPTH, Profile, Workflow, codes, validate, validate_with};

fn calling(name: &str, callees: &[&str]) -> String {
    let mut text = format!("name: {name}\nsteps:\n");
    for (i, callee) in callees.iter().enumerate() {
        text.push_str(&format!(
            "  - id: call{i}\n    type: workflow\n    workflow: {callee}\n"
        ));
    }
    if callees.is_empty() {
        text.push_str("  - id: rest\n    type: sleep\n    seconds: 1\n");
    }
    text
}

fn library(entries: &[(&str, &[&str])]) -> HashMap<String, Workflow> {
    entries
        .iter()
        .map(|(name, callees)| {
            (
                name.to_string(),
                validate(&calling(name, callees), Profile::Standard).unwrap(),
            )
        })
        .collect()
}

fn check(text: &str, lib: &HashMap<String, Workflow>) -> Vec<(&'static str, usize, usize, String)> {
    let resolve = |name: &str| lib.get(name).cloned();
    match validate_with(text, Profile::Standard, Some(&resolve)) {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .into_iter()
            .map(|d| (d.code, d.line, d.column, d.message))
            .collect(),
    }
}

#[test]
fn a_cycle_through_sub_workflows_is_named() {
    let lib = library(&[("b", &["c"]), ("c", &["a"]), ("leaf", &[])]);
    let got = check(&calling("a", &["leaf", "b"]), &lib);
    assert_eq!(
        got,
        [(
            codes::WORKFLOW_CYCLE,
            6,
            5,
            "the sub-workflows form a cycle: `a` → `b` → `c` → `a`".to_owned()
        )]
    );
}

#[test]
fn a_workflow_calling_itself_is_a_cycle() {
    let got = check(&calling("a", &["a"]), &HashMap::new());
    assert_eq!(got[0].0, codes::WORKFLOW_CYCLE);
    assert_eq!(got[0].3, "the sub-workflows form a cycle: `a` → `a`");
}

#[test]
fn a_cycle_through_a_foreach_is_found() {
    let lib = library(&[("b", &["a"])]);
    let text = "name: a\nsteps:\n  - id: each\n    type: foreach\n    items: [1, 2]\n    do:\n      type: workflow\n      workflow: b\n";
    let got = check(text, &lib);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0, got[0].1, got[0].2),
        (codes::WORKFLOW_CYCLE, 3, 5)
    );
}

#[test]
fn unknown_sub_workflows_are_reported_with_their_caller() {
    let lib = library(&[("b", &["ghost"])]);
    let got = check(&calling("a", &["nobody", "b"]), &lib);
    assert_eq!(
        got,
        [
            (
                codes::WORKFLOW_UNKNOWN,
                3,
                5,
                "there is no workflow `nobody`".to_owned()
            ),
            (
                codes::WORKFLOW_UNKNOWN,
                6,
                5,
                "there is no workflow `ghost` (called by `a` → `b`)".to_owned()
            ),
        ]
    );
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    // w0 → w1 → … → w20, a chain longer than the limit.
    let names: Vec<String> = (0..=20).map(|i| format!("w{i}")).collect();
    let mut lib = HashMap::new();
    for i in 1..=20 {
        let callees: Vec<&str> = names
            .get(i + 1)
            .map(|n| vec![n.as_str()])
            .unwrap_or_default();
        lib.insert(
            names[i].clone(),
            validate(&calling(&names[i], &callees), Profile::Standard).unwrap(),
        );
    }
    let got = check(&calling("w0", &["w1"]), &lib);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, codes::WORKFLOW_DEPTH);
    assert!(got[0].3.contains(&MAX_SUBWORKFLOW_DEPTH.to_string()));
    // Within the limit, fine.
    let got = check(&calling("w12", &["w13"]), &lib);
    assert_eq!(got, []);
}

#[test]
fn inputs_handed_to_a_sub_workflow_are_checked() {
    let deploy = validate(
        "name: deploy\ninputs:\n  env: { type: string, required: true }\n  tag: { type: string, default: latest }\nsteps:\n  - { id: a, type: sleep, seconds: 1 }\n",
        Profile::Standard,
    )
    .unwrap();
    let lib: HashMap<String, Workflow> = [("deploy".to_owned(), deploy)].into();
    let text = "name: a\nsteps:\n  - id: call\n    type: workflow\n    workflow: deploy\n    inputs: { tga: v1 }\n";
    let got = check(text, &lib);
    assert_eq!(
        got,
        [
            (
                codes::FIELD_UNKNOWN,
                3,
                5,
                "the workflow `deploy` has no input `tga`".to_owned()
            ),
            (
                codes::FIELD_MISSING,
                3,
                5,
                "the workflow `deploy` needs the input `env`".to_owned()
            ),
        ]
    );
    let text = "name: a\nsteps:\n  - id: call\n    type: workflow\n    workflow: deploy\n    inputs: { env: dev }\n";
    assert_eq!(check(text, &lib), []);
}
