//! `citadel workflow run`: the seed's and SPEC.md's workflows run locally
//! as they show, every step type through the real sandbox host and process
//! jail, hostile inputs print literally, and the exit codes follow the CLI
//! contract.

use std::path::Path;

use citadel_testkit::temp_dir;
use common::repo;
use serde_json::{Value, json};

mod common;

fn citadel(args: &[&str]) -> (i32, String, String) {
    common::citadel_in(&repo(), args)
}

/// `workflow run FILE --json` with `extra` arguments: the exit code and
/// the run's JSON report.
fn run_json(file: &Path, extra: &[&str]) -> (i32, Value) {
    let file = file.to_str().unwrap();
    let mut args = vec!["workflow", "run", file, "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = citadel(&args);
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout:?}, stderr {stderr:?}"));
    (code, report)
}

#[test]
fn the_seeds_hello_world_prints_its_greeting_under_the_elevated_profile_only() {
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "run",
        "examples/workflows/hello-world.yaml",
        "--profile",
        "elevated",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello Developer!\n");
    // Piped, progress is plain lines on stderr.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "workflow hello-world 1.0 under the `elevated` profile",
            "started greet",
            lines[2],
        ]
    );
    assert!(lines[2].starts_with("succeeded greet ("), "{stderr}");
    assert!(lines[3].starts_with("workflow succeeded in "), "{stderr}");

    // Under the default (standard) profile the shell step is refused before
    // anything runs.
    let (code, stdout, stderr) =
        citadel(&["workflow", "run", "examples/workflows/hello-world.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.lines().next(),
        Some(
            "examples/workflows/hello-world.yaml:8:11: shell steps are not allowed under the `standard` profile (the lowest that allows them is `elevated`) [step.forbidden]"
        )
    );
    // plan_only never executes.
    let (code, _, stderr) = citadel(&[
        "workflow",
        "run",
        "examples/workflows/deploy-with-approval.yaml",
        "--profile",
        "plan_only",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr.trim(),
        "citadel: the `plan_only` profile never executes a workflow: `citadel workflow plan` shows what would run"
    );
}

#[test]
fn a_step_that_times_out_and_fails_the_run_exits_3() {
    let dir = temp_dir("workflow-timeout");
    let file = dir.path().join("slow.yaml");
    std::fs::write(
        &file,
        "name: slow\nversion: 1\nsteps:\n  - id: wait\n    type: script\n    code: \"await api.sleep(5000); return 1\"\n    timeout: 1\n",
    )
    .unwrap();
    let (code, report) = run_json(&file, &[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["failed_step"], "wait");
    assert_eq!(report["steps"]["wait"]["status"], "timed_out");
}

#[test]
fn inputs_reach_the_shell_as_data_in_the_jail() {
    // The seed's `echo 'Hello {{ inputs.name }}!'`: each value prints
    // literally, and nothing in it runs.
    for name in [
        "x'; touch /work/pwned; echo '",
        "$(id)",
        "`id`",
        "a\nb",
        "'\"'\"'",
        "; ls / #",
    ] {
        let input = json!({ "name": name }).to_string();
        let (code, stdout, stderr) = citadel(&[
            "workflow",
            "run",
            "examples/workflows/hello-world.yaml",
            "--profile",
            "elevated",
            "--input",
            &input,
        ]);
        assert_eq!(code, 0, "{name:?}: {stderr}");
        assert_eq!(stdout, format!("Hello {name}!\n"), "{name:?}");
    }
}

#[test]
fn specs_deploy_application_runs_with_its_approval_and_stops_without_it() {
    let file = repo().join("examples/workflows/deploy-with-approval.yaml");
    let (code, report) = run_json(
        &file,
        &[
            "--profile",
            "elevated",
            "--approve",
            "--input",
            r#"{"environment": "staging", "version": "1.4.2"}"#,
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "succeeded");
    let tag = report["outputs"]["tag"].as_str().unwrap().to_owned();
    let millis = tag.strip_prefix("1.4.2-").expect("the build's tag");
    assert!(millis.parse::<u64>().is_ok(), "{tag}");
    let steps = &report["steps"];
    assert_eq!(steps["validate"]["status"], "succeeded");
    assert_eq!(steps["build"]["output"], json!({ "tag": tag }));
    assert_eq!(
        steps["approve"]["output"],
        json!({"decision": "approve", "by": "--approve"})
    );
    assert_eq!(
        steps["deploy"]["output"]["stdout"],
        format!("deploying {tag}\n")
    );
    assert_eq!(steps["deploy"]["exit_code"], 0);

    // Without --approve and without a terminal nobody can approve: the
    // approval is rejected, the deploy skipped, the run failed (exit 1).
    let (code, report) = run_json(
        &file,
        &[
            "--profile",
            "elevated",
            "--input",
            r#"{"environment": "dev"}"#,
        ],
    );
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["status"], "failed");
    assert_eq!(report["failed_step"], "approve");
    assert_eq!(report["steps"]["approve"]["status"], "rejected");
    assert_eq!(report["steps"]["deploy"]["status"], "skipped");

    // Inputs are checked before anything runs: exit 2 with the rule.
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "run",
        file.to_str().unwrap(),
        "--profile",
        "elevated",
        "--input",
        r#"{"environment": "qa"}"#,
    ]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr.trim(),
        "citadel: input `environment`: \"qa\" does not match the pattern `^(dev|staging|prod)$` [input.pattern]"
    );
}

#[test]
fn every_local_step_type_runs_and_failures_follow_the_dag() {
    let dir = temp_dir("workflow-run");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    };
    write(
        "billing/total.ts",
        "const items: number[] = input.items;\nreturn items.reduce((a, b) => a + b, 0);\n",
    );
    write(
        "double.yaml",
        "name: double\nversion: 1\ninputs:\n  n: { type: integer, required: true }\nsteps:\n  - id: twice\n    type: script\n    code: \"return input.n * 2\"\n    input: { n: \"{{ inputs.n }}\" }\noutputs:\n  value: \"{{ steps.twice.output }}\"\n",
    );
    let main = write(
        "main.yaml",
        r#"name: everything
version: 1
inputs:
  items: { type: array, default: [1, 2, 3] }
steps:
  - id: total
    type: script
    script: billing/total
    input: { items: "{{ inputs.items }}" }
  - id: check
    type: assert
    depends_on: [total]
    condition: "steps.total.output == 6"
  - id: each
    type: foreach
    depends_on: [check]
    items: "{{ inputs.items }}"
    parallelism: 2
    do:
      type: script
      code: "return input * 10"
      input: "{{ item }}"
  - id: nested
    type: workflow
    depends_on: [total]
    workflow: double
    inputs: { n: "{{ steps.total.output }}" }
  - id: nap
    type: sleep
    seconds: 0
  - id: told
    type: emit
    event: order.totalled
    payload: { total: "{{ steps.total.output }}" }
    depends_on: [total]
  - id: flaky
    type: script
    code: "throw new Error('always')"
    retry: { attempts: 2, delay: 0 }
    continue_on_error: true
  - id: after-flaky
    type: assert
    depends_on: [flaky]
    condition: "steps.flaky.status == 'failed'"
  - id: slow
    type: shell
    command: "sleep 5"
    timeout: 1
    continue_on_error: true
  - id: broken
    type: shell
    command: "echo out; echo err >&2; exit 3"
  - id: never
    type: script
    depends_on: [broken]
    code: "return 1"
outputs:
  total: "{{ steps.total.output }}"
  tens: "{{ steps.each.output }}"
  doubled: "{{ steps.nested.output.value }}"
"#,
    );
    let (code, report) = run_json(&main, &["--profile", "elevated"]);
    assert_eq!(code, 1, "{report}");
    let steps = &report["steps"];
    let status = |id: &str| steps[id]["status"].as_str().unwrap_or("missing").to_owned();
    assert_eq!(steps["total"]["output"], 6);
    assert_eq!(status("check"), "succeeded");
    assert_eq!(steps["each"]["output"], json!([10, 20, 30]));
    assert_eq!(steps["nested"]["output"], json!({"value": 12}));
    assert_eq!(status("nap"), "succeeded");
    assert_eq!(
        steps["told"]["output"],
        json!({"type": "order.totalled", "data": {"total": 6}})
    );
    assert_eq!(status("flaky"), "failed");
    assert_eq!(steps["flaky"]["output"]["error"], "Error: always");
    assert_eq!(status("after-flaky"), "succeeded");
    assert_eq!(status("slow"), "timed_out");
    assert_eq!(status("broken"), "failed");
    assert_eq!(steps["broken"]["exit_code"], 3);
    assert_eq!(
        steps["broken"]["output"],
        json!({"stdout": "out\n", "stderr": "err\n", "error": "exited with code 3"})
    );
    assert_eq!(status("never"), "skipped");
    // `broken` fails the run; `flaky` and `slow` continue on error.
    assert_eq!(report["status"], "failed");
    assert_eq!(report["failed_step"], "broken");
    assert_eq!(
        report["outputs"],
        json!({"total": 6, "tens": [10, 20, 30], "doubled": 12})
    );

    // A saved script that is not beside the workflow, and a name that tries
    // to leave its directory, fail their step with the reason.
    let lost = write(
        "lost.yaml",
        "name: lost\nversion: 1\nsteps:\n  - id: gone\n    type: script\n    script: missing/thing\n",
    );
    let (code, report) = run_json(&lost, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        report["steps"]["gone"]["output"]["error"],
        "saved script `missing/thing`: a local run looks for missing/thing.ts or missing/thing.js beside the workflow"
    );
}

#[test]
fn the_configuration_sets_the_profile_timeouts_parallelism_and_workspace() {
    let dir = temp_dir("workflow-config");
    // `config init` writes the commented template, which validates.
    let toml = dir.path().join("citadel.toml");
    let (code, _, stderr) = citadel(&["config", "init", "--out", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let template = std::fs::read_to_string(&toml).unwrap();
    let (code, printed, _) = citadel(&["config", "init"]);
    assert_eq!(code, 0);
    assert_eq!(template, printed, "the file is what init prints");
    assert!(
        template.contains("\nprofile = \"standard\"\n"),
        "{template}"
    );
    let (code, stdout, stderr) = citadel(&["config", "validate", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), format!("{}: valid", toml.display()));
    // A second init does not overwrite it.
    let (code, _, stderr) = citadel(&["config", "init", "--out", toml.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        format!("citadel: {} exists; --force replaces it", toml.display())
    );

    // A broken file is refused where it is wrong.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[workflows]\nprofile = \"elevated\"\nmax_parralel_steps = 2\n",
    )
    .unwrap();
    let (code, _, stderr) = citadel(&["config", "validate", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        format!(
            "{}:3:1: unknown field `max_parralel_steps` (did you mean `max_parallel_steps`?)",
            bad.display()
        )
    );

    // The file's profile lets the seed's shell step run; the flag still
    // lowers it.
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    std::fs::write(workspace.join("answer.js"), "return 42;\n").unwrap();
    let config = dir.path().join("elevated.toml");
    std::fs::write(
        &config,
        format!(
            "[workflows]\nprofile = \"elevated\"\ndefault_timeout_s = 1\nmax_parallel_steps = 1\nworkspace_root = \"{}\"\n",
            workspace.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "run",
        "examples/workflows/hello-world.yaml",
        "--config",
        config,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello Developer!\n");
    let (code, _, _) = citadel(&[
        "workflow",
        "run",
        "examples/workflows/hello-world.yaml",
        "--config",
        config,
        "--profile",
        "standard",
    ]);
    assert_eq!(code, 1);

    // The default timeout (1 s) ends a step that sets none; one step at a
    // time runs `a` and `b` one after the other; `script: answer` is found
    // in the workspace root.
    let file = dir.path().join("paced.yaml");
    std::fs::write(
        &file,
        "name: paced\nversion: 1\nsteps:\n  - id: a\n    type: shell\n    command: \"echo a\"\n  - id: b\n    type: shell\n    command: \"echo b\"\n  - id: saved\n    type: script\n    script: answer\n  - id: long\n    type: shell\n    command: \"sleep 3\"\n    continue_on_error: true\n",
    )
    .unwrap();
    let (code, stdout, stderr) = citadel(&[
        "workflow",
        "run",
        file.to_str().unwrap(),
        "--config",
        config,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "a\nb\n");
    let order: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("started ") || l.starts_with("succeeded "))
        .take(4)
        .map(|l| l.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["started a", "succeeded a", "started b", "succeeded b"],
        "{stderr}"
    );
    let (code, report) = run_json(&file, &["--config", config]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["steps"]["saved"]["output"], 42);
    assert_eq!(report["steps"]["long"]["status"], "timed_out");
    assert_eq!(
        report["steps"]["long"]["output"]["error"],
        "did not finish within its timeout of 1 s"
    );
}

#[test]
fn a_sub_workflow_runs_under_the_lower_profile_and_plan_only_never_runs() {
    let dir = temp_dir("workflow-sub-profile");
    std::fs::write(
        dir.path().join("dry.yaml"),
        "name: dry\nversion: 1\nprofile: plan_only\nsteps:\n  - id: sh\n    type: shell\n    command: \"echo ran\"\n",
    )
    .unwrap();
    let main = dir.path().join("main.yaml");
    std::fs::write(
        &main,
        "name: main\nversion: 1\nsteps:\n  - id: nested\n    type: workflow\n    workflow: dry\n",
    )
    .unwrap();
    let (code, report) = run_json(&main, &["--profile", "elevated"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["steps"]["nested"]["status"], "failed");
    assert_eq!(
        report["steps"]["nested"]["output"]["error"],
        "sub-workflow `dry` asks for the `plan_only` profile, which never executes"
    );
}
