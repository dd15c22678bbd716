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
