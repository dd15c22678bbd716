//! The dry run of the seed's workflows: order, levels, decisions and
//! rendered templates, nothing executed.

use citadel_workflow::{Decision, Profile, Rendered, input_codes, plan, validate};
use serde_json::json;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/workflows/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn field<'a>(step: &'a citadel_workflow::PlannedStep, name: &str) -> &'a Rendered {
    &step
        .fields
        .iter()
        .find(|f| f.field == name)
        .unwrap()
        .rendered
}

#[test]
fn hello_world_renders_its_greeting() {
    let wf = validate(&read("hello-world.yaml"), Profile::Elevated).unwrap();
    let p = plan(&wf, &json!({}), Profile::Elevated).unwrap();
    assert_eq!(p.inputs, *json!({"name": "Developer"}).as_object().unwrap());
    assert_eq!(p.levels, [["greet"]]);
    assert_eq!(p.steps[0].decision, Decision::Runs("no condition".into()));
    assert_eq!(
        *field(&p.steps[0], "command"),
        Rendered::Value(json!("echo 'Hello Developer!'"))
    );
    // A hostile name is escaped in the plan as it would be in the run.
    let p = plan(&wf, &json!({"name": "x'; id; echo '"}), Profile::Elevated).unwrap();
    assert_eq!(
        *field(&p.steps[0], "command"),
        Rendered::Value(json!(r"echo 'Hello x'\''; id; echo '\''!'"))
    );
}

#[test]
fn deploy_application_in_levels() {
    let wf = validate(&read("deploy-application.yaml"), Profile::Elevated).unwrap();
    let p = plan(&wf, &json!({"environment": "staging"}), Profile::Elevated).unwrap();
    assert_eq!(p.profile, Profile::Elevated);
    assert_eq!(
        p.levels,
        vec![vec!["validate-environment", "run-tests"], vec!["deploy"]]
    );
    let ids: Vec<_> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["validate-environment", "run-tests", "deploy"]);
    assert_eq!(
        p.steps[0].decision,
        Decision::Runs("the assertion holds".into())
    );
    assert!(
        matches!(&p.steps[2].decision, Decision::AtRunTime(r) if r.contains("steps.run-tests"))
    );
    assert_eq!(
        *field(&p.steps[2], "command"),
        Rendered::Value(json!("kubectl apply -f k8s/'staging'/"))
    );
    assert_eq!(p.inputs["version"], json!("latest"));
}

#[test]
fn under_standard_the_shell_steps_would_be_refused() {
    let wf = validate(&read("deploy-application.yaml"), Profile::Elevated).unwrap();
    let p = plan(&wf, &json!({"environment": "dev"}), Profile::Standard).unwrap();
    assert!(!p.rules.shell);
    assert!(matches!(&p.steps[1].decision, Decision::Refused(r) if r.contains("shell")));
    assert!(matches!(&p.steps[2].decision, Decision::Refused(_)));
}

#[test]
fn plan_only_plans_but_does_not_execute() {
    let wf = validate(&read("hello-world.yaml"), Profile::PlanOnly).unwrap();
    let p = plan(&wf, &json!({}), Profile::PlanOnly).unwrap();
    assert!(!p.rules.executes);
    assert_eq!(p.profile, Profile::PlanOnly);
}

#[test]
fn the_spec_workflow_outputs_wait_for_the_run() {
    let wf = validate(&read("deploy-application-spec.yaml"), Profile::Elevated).unwrap();
    let p = plan(
        &wf,
        &json!({"environment": "prod", "version": "2.0"}),
        Profile::Elevated,
    )
    .unwrap();
    assert_eq!(
        p.levels,
        vec![vec!["validate", "build"], vec!["approve"], vec!["deploy"]]
    );
    let build = &p.steps[1];
    assert_eq!(build.id, "build");
    assert_eq!(
        *field(build, "input"),
        Rendered::Value(json!({"version": "2.0"}))
    );
    assert!(matches!(&p.outputs[0].rendered, Rendered::AtRunTime(_)));
}

#[test]
fn bad_inputs_are_each_located_by_name() {
    let wf = validate(&read("deploy-application.yaml"), Profile::Elevated).unwrap();
    let errs = plan(
        &wf,
        &json!({"environment": "test", "versoin": "1"}),
        Profile::Elevated,
    )
    .unwrap_err();
    let got: Vec<_> = errs.iter().map(|e| (e.input.as_str(), e.code)).collect();
    assert_eq!(
        got,
        [
            ("versoin", input_codes::UNKNOWN),
            ("environment", input_codes::PATTERN)
        ]
    );
    assert!(errs[0].message.contains("did you mean `version`"));
    let errs = plan(&wf, &json!({"version": 3}), Profile::Elevated).unwrap_err();
    let got: Vec<_> = errs.iter().map(|e| (e.input.as_str(), e.code)).collect();
    assert_eq!(
        got,
        [
            ("environment", input_codes::MISSING),
            ("version", input_codes::TYPE)
        ]
    );
}

#[test]
fn a_when_the_inputs_decide_is_evaluated() {
    let wf = validate(
        "name: w\ninputs:\n  go: { type: boolean, default: false }\nsteps:\n  - id: a\n    type: emit\n    event: e\n    when: inputs.go\n  - id: b\n    type: sleep\n    seconds: 1\n    depends_on: [a]\n",
        Profile::Standard,
    )
    .unwrap();
    let p = plan(&wf, &json!({}), Profile::Standard).unwrap();
    assert_eq!(
        p.steps[0].decision,
        Decision::Skipped("`when: inputs.go` is false".into())
    );
    assert_eq!(
        p.steps[1].decision,
        Decision::Skipped("`a` is skipped".into())
    );
    let p = plan(&wf, &json!({"go": true}), Profile::Standard).unwrap();
    assert_eq!(
        p.steps[0].decision,
        Decision::Runs("`when: inputs.go` is true".into())
    );
    assert_eq!(p.steps[1].decision, Decision::Runs("no condition".into()));
}

#[test]
fn the_plan_reads_as_text() {
    let wf = validate(&read("deploy-application.yaml"), Profile::Elevated).unwrap();
    let p = plan(&wf, &json!({"environment": "staging"}), Profile::Elevated).unwrap();
    let text = p.to_string();
    let expected = "\
deploy-application 1.0: profile elevated (executes; network: allowlisted domains; shell: in the jail)
inputs: environment=\"staging\", version=\"latest\"
level 0
  validate-environment (assert): runs: the assertion holds
      condition: true
      message: Invalid environment specified
  run-tests (shell): runs: no condition
      command: npm test
level 1
  deploy (shell) after validate-environment, run-tests: decided at run time: `when` reads steps.run-tests: decided at run time
      when: (reads steps.run-tests: decided at run time)
      command: kubectl apply -f k8s/'staging'/
";
    assert_eq!(text, expected);
}

#[test]
fn the_plan_and_diagnostics_serialise_for_the_api() {
    let wf = validate(&read("hello-world.yaml"), Profile::Elevated).unwrap();
    let p = plan(&wf, &json!({}), Profile::Elevated).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["profile"], json!("elevated"));
    assert_eq!(v["rules"]["network"], json!("allowlisted_domains"));
    assert_eq!(v["levels"], json!([["greet"]]));
    assert_eq!(v["steps"][0]["type"], json!("shell"));
    assert_eq!(
        v["steps"][0]["decision"],
        json!({"decision": "runs", "reason": "no condition"})
    );
    assert_eq!(
        v["steps"][0]["fields"][0],
        json!({
            "field": "command",
            "template": "echo 'Hello {{ inputs.name }}!'",
            "rendered": {"state": "value", "value": "echo 'Hello Developer!'"}
        })
    );
    let diags = validate(
        "name: w\nsteps:\n  - { id: a, type: slep }\n",
        Profile::Elevated,
    )
    .unwrap_err();
    assert_eq!(
        serde_json::to_value(&diags).unwrap(),
        json!([{
            "code": "step.type",
            "message": "unknown step type `slep`",
            "line": 3,
            "column": 20,
            "help": "did you mean `sleep`?"
        }])
    );
}

#[test]
fn the_plan_never_reads_a_secret_or_the_environment() {
    let wf = validate(
        "name: w\nsecrets: [API_KEY]\nenv: [REGION]\nsteps:\n  - id: call\n    type: http\n    url: \"https://api.example.com/{{ env.REGION }}\"\n    headers: { authorization: \"Bearer {{ secrets.API_KEY }}\" }\n",
        Profile::Standard,
    )
    .unwrap();
    let p = plan(&wf, &json!({}), Profile::Standard).unwrap();
    assert_eq!(
        *field(&p.steps[0], "url"),
        Rendered::AtRunTime("reads env: decided at run time".into())
    );
    assert_eq!(
        *field(&p.steps[0], "headers.authorization"),
        Rendered::AtRunTime("reads secrets: decided at run time".into())
    );
}

#[test]
fn a_step_sees_only_the_results_upstream_of_it() {
    use citadel_workflow::{Scope, StepResult, StepStatus};
    let wf = validate(&read("deploy-application-spec.yaml"), Profile::Elevated).unwrap();
    let mut all = Scope::default();
    for id in ["validate", "build", "approve"] {
        all.steps.insert(
            id.into(),
            StepResult {
                status: StepStatus::Succeeded,
                output: json!({"tag": id}),
                exit_code: None,
            },
        );
    }
    let deploy = all.for_step(&wf, "deploy");
    assert_eq!(
        deploy.steps.keys().collect::<Vec<_>>(),
        ["approve", "build"]
    );
    let when = wf.step("deploy").unwrap().when.as_ref().unwrap();
    assert!(when.eval_bool(&deploy).unwrap());
    // `validate` does not run before `build`: `build` sees nothing.
    assert!(all.for_step(&wf, "build").steps.is_empty());
}

#[test]
fn a_failing_assertion_stops_its_dependents_unless_it_continues_on_error() {
    let text = |cont: bool| {
        format!(
            "name: w\ninputs:\n  n: {{ type: integer }}\nsteps:\n  - id: check\n    type: assert\n    condition: inputs.n > 1\n    message: \"n is {{{{ inputs.n }}}}\"\n    continue_on_error: {cont}\n  - id: after\n    type: emit\n    event: e\n    depends_on: [check]\n"
        )
    };
    let wf = validate(&text(false), Profile::Standard).unwrap();
    let p = plan(&wf, &json!({"n": 0}), Profile::Standard).unwrap();
    assert_eq!(
        p.steps[0].decision,
        Decision::Refused("the assertion fails: n is 0".into())
    );
    assert_eq!(
        p.steps[1].decision,
        Decision::Skipped("`check` would be refused".into())
    );
    let wf = validate(&text(true), Profile::Standard).unwrap();
    let p = plan(&wf, &json!({"n": 0}), Profile::Standard).unwrap();
    assert_eq!(p.steps[1].decision, Decision::Runs("no condition".into()));
}
