use super::*;

fn rules_of(src: &str) -> Vec<(String, u32, u32)> {
    prepare(src, Language::Js)
        .diagnostics
        .into_iter()
        .map(|d| (d.rule, d.line, d.column))
        .collect()
}

#[test]
fn clean_script_has_no_diagnostics() {
    let p = prepare("const x = input.n * 2;\nreturn {x};", Language::Js);
    assert_eq!(p.diagnostics, vec![]);
    assert_eq!(
        p.program.unwrap().js,
        format!("{WRAP_PREFIX}const x = input.n * 2;\nreturn {{x}};{WRAP_SUFFIX}")
    );
}

#[test]
fn eval_is_located_on_first_and_later_lines() {
    assert_eq!(rules_of("eval('1')"), vec![("no-eval".into(), 1, 1)]);
    assert_eq!(
        rules_of("let a = 1;\n  eval(a)"),
        vec![("no-eval".into(), 2, 3)]
    );
}

#[test]
fn syntax_error_is_located() {
    let p = prepare("let x = 1;\nlet = = 2;", Language::Js);
    assert!(p.has_syntax_errors());
    assert_eq!(p.diagnostics[0].rule, SYNTAX_RULE);
    assert_eq!(p.diagnostics[0].line, 2);
}

#[test]
fn escaping_the_wrapper_is_a_syntax_error() {
    let p = prepare("}); globalThis.x = 1; (async function () {", Language::Js);
    assert!(p.has_syntax_errors());
    assert_eq!(
        p.diagnostics[0].message,
        "unbalanced `}`: the script body closes its function"
    );
}

#[test]
fn typescript_is_stripped_and_positions_map_back() {
    let p = prepare(
        "const a: number = 1;\ninterface X { y: string }\nconst b = a as number;\nreturn b;",
        Language::Ts,
    );
    assert_eq!(p.diagnostics, vec![]);
    let program = p.program.unwrap();
    assert!(!program.js.contains("interface"), "{}", program.js);
    assert!(!program.js.contains(": number"), "{}", program.js);
    // `return b` is on the user's line 4; find it in the generated code.
    let (gl, line) = program
        .js
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("return b"))
        .unwrap();
    let gc = line.find("return").unwrap() as u32 + 1;
    assert_eq!(program.positions.map(gl as u32 + 1, gc), (4, 1));
}

#[test]
fn policy_allows_denies_and_overrides() {
    let d = prepare(
        "const k = 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg9X';\neval(k)",
        Language::Js,
    )
    .diagnostics;
    let rules: Vec<_> = d.iter().map(|d| (d.rule.as_str(), d.severity)).collect();
    assert_eq!(
        rules,
        vec![
            ("high-entropy-string", Severity::Warning),
            ("no-eval", Severity::Error)
        ]
    );
    let default = Policy::default();
    assert!(default.blocks(&d));
    let lenient = Policy {
        allow: vec!["no-eval".into()],
        ..Policy::default()
    };
    assert!(!lenient.blocks(&d));
    let strict = Policy {
        allow: vec!["no-eval".into()],
        deny: vec!["high-entropy-string".into()],
        ..Policy::default()
    };
    assert!(strict.blocks(&d));
    assert_eq!(
        Policy {
            allow: vec!["nope".into()],
            ..Policy::default()
        }
        .validate(),
        Err(PolicyError::UnknownRule("nope".into()))
    );
    assert_eq!(
        Policy {
            allow: vec!["syntax".into()],
            ..Policy::default()
        }
        .validate(),
        Err(PolicyError::SyntaxRule)
    );
}

#[test]
fn oversize_source_is_rejected_without_parsing() {
    let big = "x".repeat(MAX_SOURCE_BYTES + 1);
    let p = prepare(&big, Language::Js);
    assert!(p.has_syntax_errors());
    assert!(p.diagnostics[0].message.contains("more than the limit"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    #[test]
    fn prepare_never_panics(src in "\\PC{0,200}") {
        let _ = prepare(&src, Language::Js);
        let _ = prepare(&src, Language::Ts);
    }

    #[test]
    fn prepare_never_panics_on_js_like_text(src in "[a-z(){};=+\\-*/<>!&|?:.,'\"`$\\[\\] \n0-9]{0,120}") {
        let p = prepare(&src, Language::Ts);
        for d in &p.diagnostics {
            proptest::prop_assert!(d.line >= 1 && d.column >= 1);
        }
    }
}
