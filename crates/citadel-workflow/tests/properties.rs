//! Property tests: the parser, the validator and the template engine never
//! panic and finish quickly on arbitrary input, and shell escaping holds
//! for arbitrary values.

use std::process::Command;
use std::time::{Duration, Instant};

use citadel_workflow::{Expr, Profile, Quoting, Scope, ShellCommand, Template, escape, validate};
use proptest::prelude::*;
use serde_json::json;

const BOUND: Duration = Duration::from_secs(2);

fn scope() -> Scope {
    let mut scope = Scope::with_inputs(
        json!({"name": "Developer", "n": 3, "list": [1, "two", {"three": 3}], "flag": true})
            .as_object()
            .cloned()
            .unwrap(),
    );
    scope.env.insert("REGION".into(), "eu".into());
    scope
}

/// Pieces that YAML and workflows are made of, to build near-miss
/// documents more often than random text would.
fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name: w\n".to_owned()),
        Just("steps:\n".to_owned()),
        Just("  - id: a\n".to_owned()),
        Just("    type: shell\n".to_owned()),
        Just("    type: foreach\n".to_owned()),
        Just("    depends_on: [a, b]\n".to_owned()),
        Just("    when: \"steps.a.status == 'ok'\"\n".to_owned()),
        Just("    command: \"echo '{{ inputs.x }}'\"\n".to_owned()),
        Just("inputs:\n  x: { type: string, validation: { pattern: \"(a+)+$\" } }\n".to_owned()),
        Just("&a ".to_owned()),
        Just("*a ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(": ".to_owned()),
        Just("- ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("!!str ".to_owned()),
        Just("---\n".to_owned()),
        Just("  ".to_owned()),
        Just("\n".to_owned()),
        "[a-z_]{1,8}".prop_map(|s| s),
        "\\PC{0,12}".prop_map(|s| s),
    ]
}

fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{ ".to_owned()),
        Just(" }}".to_owned()),
        Just("{%".to_owned()),
        Just("inputs.name".to_owned()),
        Just("inputs.list".to_owned()),
        Just("steps.a-b.output".to_owned()),
        Just("env.REGION".to_owned()),
        Just("secrets.X".to_owned()),
        Just("item".to_owned()),
        Just(" ~ ".to_owned()),
        Just(" + ".to_owned()),
        Just(" * ".to_owned()),
        Just(" | join(',')".to_owned()),
        Just(" | length".to_owned()),
        Just(" | default('x')".to_owned()),
        Just(" if inputs.flag else ".to_owned()),
        Just(" is defined".to_owned()),
        Just(" in ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just(".".to_owned()),
        Just("__class__".to_owned()),
        Just("$(".to_owned()),
        Just("`".to_owned()),
        Just("#".to_owned()),
        Just("}}".to_owned()),
        Just("\u{20ac}".to_owned()),
        Just("-".to_owned()),
        "[0-9]{1,12}".prop_map(|s| s),
        "\\PC{0,8}".prop_map(|s| s),
    ]
}

proptest! {
    // 256 cases unless `PROPTEST_CASES` says otherwise.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn validate_never_panics_on_text(text in "\\PC{0,2000}") {
        let started = Instant::now();
        let _ = validate(&text, Profile::Elevated);
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn validate_never_panics_on_near_workflows(pieces in prop::collection::vec(yaml_piece(), 0..80)) {
        let text = pieces.concat();
        let started = Instant::now();
        if let Err(diags) = validate(&text, Profile::Standard) {
            for d in diags {
                prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
            }
        }
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn templates_never_panic(pieces in prop::collection::vec(template_piece(), 0..40), item in any::<bool>()) {
        let text = pieces.concat();
        let started = Instant::now();
        if let Ok(t) = Template::parse(&text, item) {
            let mut s = scope();
            if item {
                s.item = Some((json!("it"), 0));
            }
            let _ = t.render(&s);
            let _ = t.render_value(&s);
        }
        if let Ok(e) = Expr::parse(&text, item) {
            let _ = e.eval(&scope());
        }
        if let Ok(c) = ShellCommand::parse(&text) {
            let _ = c.render(&scope());
        }
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn expressions_never_panic_on_text(text in "\\PC{0,300}") {
        let started = Instant::now();
        if let Ok(e) = Expr::parse(&text, false) {
            let _ = e.eval_bool(&scope());
        }
        let _ = Template::parse(&text, false).map(|t| t.render(&scope()));
        prop_assert!(started.elapsed() < BOUND);
    }
}

proptest! {
    // Each case starts /bin/sh three times: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn escaped_values_read_back_literally(value in "[^\\x00]{0,40}") {
        for (ctx, open, close) in [
            (Quoting::Unquoted, "", ""),
            (Quoting::SingleQuoted, "'", "'"),
            (Quoting::DoubleQuoted, "\"", "\""),
        ] {
            let command = format!("printf '%s' {open}{}{close}", escape(&value, ctx));
            let out = Command::new("/bin/sh").arg("-c").arg(&command).env_clear().output().unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&out.stdout), value.as_str(), "{}", command);
        }
    }
}
