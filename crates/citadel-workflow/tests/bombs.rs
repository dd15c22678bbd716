//! YAML bombs are refused before parsing completes, quickly, with their
//! own diagnostic codes.

use std::time::{Duration, Instant};

use citadel_workflow::{
    MAX_WORKFLOW_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, Profile, codes, validate,
};

fn refused(text: &str) -> (&'static str, usize, usize) {
    let started = Instant::now();
    let diags = validate(text, Profile::Elevated).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(diags.len(), 1, "{diags:#?}");
    (diags[0].code, diags[0].line, diags[0].column)
}

#[test]
fn a_ten_megabyte_document_is_refused_unread() {
    let text = format!(
        "name: w\ndescription: \"{}\"\nsteps: []\n",
        "a".repeat(10 * 1024 * 1024)
    );
    assert_eq!(refused(&text), (codes::YAML_TOO_LARGE, 1, 1));
    let diags = validate(&text, Profile::Elevated).unwrap_err();
    assert!(diags[0].message.contains(&MAX_WORKFLOW_BYTES.to_string()));
}

#[test]
fn billion_laughs_is_refused_at_the_first_alias() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        text.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    assert_eq!(refused(&text), (codes::YAML_ALIAS, 2, 8));
}

#[test]
fn deep_nesting_is_refused_at_the_cap() {
    // Ten thousand levels, flow and block style: refused at the cap's
    // level without recursing into the rest.
    let flow = format!(
        "name: w\nsteps: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (code, line, _) = refused(&flow);
    assert_eq!((code, line), (codes::YAML_TOO_DEEP, 2));
    // Within the scanner's own look-ahead, at the cap exactly.
    let flow = format!("name: w\nsteps: {}{}\n", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        refused(&flow),
        (codes::YAML_TOO_DEEP, 2, 8 + MAX_YAML_DEPTH - 1)
    );
    let mut block = String::from("name: w\n");
    for level in 0..1_000 {
        block.push_str(&" ".repeat(level));
        block.push_str("k:\n");
    }
    let (code, line, _) = refused(&block);
    // The root mapping is level 1; the mapping starting on line n is level n - 1.
    assert_eq!((code, line), (codes::YAML_TOO_DEEP, 2 + MAX_YAML_DEPTH));
}

#[test]
fn too_many_nodes_are_refused() {
    let text = format!(
        "name: w\nsteps: [{}]\n",
        vec!["0"; MAX_YAML_NODES + 10].join(",")
    );
    assert!(text.len() < MAX_WORKFLOW_BYTES);
    assert_eq!(refused(&text).0, codes::YAML_TOO_MANY_NODES);
}

#[test]
fn a_long_flat_document_within_the_caps_is_checked_in_full() {
    // 1,000 steps is the cap; each has a bad field, all reported.
    let mut text = String::from("name: w\nsteps:\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "  - {{ id: s{i}, type: sleep, seconds: 1, colour: red }}\n"
        ));
    }
    let started = Instant::now();
    let diags = validate(&text, Profile::Elevated).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(diags.len(), 1000);
    assert!(diags.iter().all(|d| d.code == codes::FIELD_UNKNOWN));
}

#[test]
fn a_long_chain_of_steps_reading_each_other_is_checked_quickly() {
    // 1,000 steps (the cap), each depending on and reading the one before.
    let mut text = String::from("name: w\nsteps:\n  - { id: s0, type: sleep, seconds: 1 }\n");
    for i in 1..1000 {
        text.push_str(&format!(
            "  - {{ id: s{i}, type: emit, event: e, depends_on: [s{p}], when: \"steps.s{p}.status == 'succeeded'\", payload: \"{{{{ steps.s0.output }}}}\" }}\n",
            p = i - 1
        ));
    }
    let started = Instant::now();
    let wf = validate(&text, Profile::Elevated).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(wf.levels().len(), 1000);
    assert_eq!(wf.upstream_of("s999").len(), 999);
}
