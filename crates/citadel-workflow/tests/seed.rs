//! The seed's workflows validate, and are refused where the profile
//! forbids their shell steps.

use citadel_workflow::{Profile, codes, validate};

fn read(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/workflows/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_seed_workflows_validate_under_elevated() {
    for name in [
        "hello-world.yaml",
        "deploy-application.yaml",
        "deploy-application-spec.yaml",
    ] {
        let wf =
            validate(&read(name), Profile::Elevated).unwrap_or_else(|d| panic!("{name}: {d:#?}"));
        assert_eq!(wf.version, "1.0");
    }
}

#[test]
fn shell_steps_are_refused_under_standard() {
    let diags = validate(&read("deploy-application.yaml"), Profile::Standard).unwrap_err();
    let forbidden: Vec<_> = diags
        .iter()
        .filter(|d| d.code == codes::STEP_FORBIDDEN)
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(forbidden, [(25, 11), (33, 11)], "{diags:#?}");
}

#[test]
fn every_step_type_validates_and_plans() {
    use citadel_workflow::{Decision, Rendered, StepType, plan};
    use serde_json::json;
    let wf = validate(&read("every-step-type.yaml"), Profile::Elevated)
        .unwrap_or_else(|d| panic!("{d:#?}"));
    use citadel_workflow::Action;
    let mut types: std::collections::BTreeSet<StepType> =
        wf.steps.iter().map(|s| s.step_type()).collect();
    for step in &wf.steps {
        if let Action::Foreach { action, .. } = &step.action {
            types.insert(action.step_type());
        }
    }
    assert_eq!(types.len(), StepType::ALL.len());
    let p = plan(&wf, &json!({"service": "api"}), Profile::Elevated).unwrap();
    let decision = |id: &str| {
        p.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .decision
            .clone()
    };
    assert_eq!(
        decision("check"),
        Decision::Runs("the assertion holds".into())
    );
    assert_eq!(
        decision("wait"),
        Decision::Runs("`when: not inputs.dry` is true".into())
    );
    assert!(matches!(decision("announce"), Decision::AtRunTime(_)));
    let rollout = p.steps.iter().find(|s| s.id == "rollout").unwrap();
    assert_eq!(
        rollout.decision,
        Decision::Runs("no condition; 2 items".into())
    );
    assert!(
        matches!(&rollout.fields[1].rendered, Rendered::AtRunTime(r) if r.contains("foreach item"))
    );
    assert_eq!(p.outputs[1].rendered, Rendered::Value(json!("api")));
    // A dry run skips the wait, and so everything after it.
    let dry = plan(
        &wf,
        &json!({"service": "api", "dry": true}),
        Profile::Elevated,
    )
    .unwrap();
    let skipped: Vec<_> = dry
        .steps
        .iter()
        .filter(|s| matches!(s.decision, Decision::Skipped(_)))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(skipped, ["wait", "approve", "rollout", "smoke", "announce"]);
    // Under standard, the foreach's shell body is what is refused.
    let p = plan(&wf, &json!({"service": "api"}), Profile::Standard).unwrap();
    assert!(
        matches!(&p.steps.iter().find(|s| s.id == "rollout").unwrap().decision, Decision::Refused(r) if r.contains("shell"))
    );
    // Bad inputs, each by name.
    let errs = plan(
        &wf,
        &json!({"service": "A", "replicas": 11, "tier": "bronze"}),
        Profile::Elevated,
    )
    .unwrap_err();
    let codes: Vec<_> = errs.iter().map(|e| (e.input.as_str(), e.code)).collect();
    assert_eq!(
        codes,
        [
            ("service", "input.pattern"),
            ("replicas", "input.max"),
            ("tier", "input.enum")
        ]
    );
}

#[test]
fn crlf_line_ends_and_a_byte_order_mark_are_fine() {
    let text = read("hello-world.yaml").replace('\n', "\r\n");
    validate(&text, Profile::Elevated).unwrap();
    let text = format!("\u{feff}{}", read("hello-world.yaml"));
    validate(&text, Profile::Elevated).unwrap();
    // Positions still count lines and characters.
    let text = "\u{feff}name: w\r\nsteps:\r\n  - { id: a, type: slep }\r\n";
    let d = validate(text, Profile::Elevated).unwrap_err();
    assert_eq!((d[0].line, d[0].column), (3, 20));
}
