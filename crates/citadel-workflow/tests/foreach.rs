//! A `foreach` over more items than its cap is refused with the cap in
//! the message: in validation (a cap over the platform's), in the plan
//! (items from the inputs) and when the engine resolves the items.

use citadel_workflow::{
    Action, DEFAULT_FOREACH_ITEMS, Decision, ItemsError, MAX_FOREACH_ITEMS, Profile, Scope, codes,
    plan, validate,
};
use serde_json::{Value, json};

const WORKFLOW: &str = "name: fan-out
inputs:
  hosts: { type: array }
steps:
  - id: each
    type: foreach
    items: \"{{ inputs.hosts }}\"
    parallelism: 8
    do:
      type: emit
      event: host
      payload: { host: \"{{ item }}\", n: \"{{ index }}\" }
";

fn million() -> Value {
    Value::Array(vec![json!(1); 1_000_000])
}

#[test]
fn the_plan_refuses_a_million_items_naming_the_cap() {
    let wf = validate(WORKFLOW, Profile::Standard).unwrap();
    let p = plan(&wf, &json!({ "hosts": million() }), Profile::Standard).unwrap();
    assert_eq!(
        p.steps[0].decision,
        Decision::Refused(format!(
            "the foreach has 1000000 items, over its cap of {DEFAULT_FOREACH_ITEMS} items"
        ))
    );
    let p = plan(&wf, &json!({ "hosts": ["a", "b"] }), Profile::Standard).unwrap();
    assert_eq!(
        p.steps[0].decision,
        Decision::Runs("no condition; 2 items".into())
    );
}

#[test]
fn resolving_the_items_refuses_them_past_the_cap() {
    let wf = validate(WORKFLOW, Profile::Standard).unwrap();
    let Action::Foreach {
        items, max_items, ..
    } = &wf.steps[0].action
    else {
        panic!()
    };
    let scope = Scope::with_inputs(json!({ "hosts": million() }).as_object().cloned().unwrap());
    let err = items.resolve(&scope, *max_items).unwrap_err();
    assert_eq!(
        err,
        ItemsError::OverCap {
            count: 1_000_000,
            cap: DEFAULT_FOREACH_ITEMS
        }
    );
    assert!(err.to_string().contains("cap of 1000 items"));
    let scope = Scope::with_inputs(json!({ "hosts": ["a"] }).as_object().cloned().unwrap());
    assert_eq!(items.resolve(&scope, *max_items).unwrap(), [json!("a")]);
}

#[test]
fn a_cap_of_a_million_is_refused_when_validated() {
    let text = WORKFLOW.replace("parallelism: 8", "parallelism: 8\n    max_items: 1000000");
    let diags = validate(&text, Profile::Standard).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!(
        (diags[0].code, diags[0].line, diags[0].column),
        (codes::FOREACH_CAP, 9, 16)
    );
    assert!(diags[0].message.contains(&MAX_FOREACH_ITEMS.to_string()));
}

#[test]
fn the_body_sees_item_and_index() {
    let wf = validate(WORKFLOW, Profile::Standard).unwrap();
    let Action::Foreach { action, .. } = &wf.steps[0].action else {
        panic!()
    };
    let Action::Emit {
        payload: Some(payload),
        ..
    } = action.as_ref()
    else {
        panic!()
    };
    let scope = Scope {
        item: Some((json!("db-1"), 4)),
        ..Scope::default()
    };
    assert_eq!(
        payload.render(&scope).unwrap(),
        json!({"host": "db-1", "n": 4})
    );
}
