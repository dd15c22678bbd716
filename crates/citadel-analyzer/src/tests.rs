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

fn nesting_rule(src: &str, language: Language) -> Option<(u32, u32)> {
    prepare(src, language)
        .diagnostics
        .iter()
        .find(|d| d.rule == NESTING_RULE)
        .map(|d| (d.line, d.column))
}

#[test]
fn nesting_past_the_limit_is_refused_with_its_position() {
    let deep = format!(
        "let a = 1;\nreturn {}1{};",
        "(".repeat(200),
        ")".repeat(200)
    );
    let p = prepare(&deep, Language::Js);
    assert!(p.has_syntax_errors());
    assert_eq!(p.diagnostics.len(), 1);
    let d = &p.diagnostics[0];
    assert_eq!(
        (d.rule.as_str(), d.severity, d.line, d.column),
        (NESTING_RULE, Severity::Error, 2, 8 + MAX_NESTING)
    );
    assert!(d.message.contains("more than 128 levels"), "{}", d.message);
    let at_limit = format!("return {}1{};", "(".repeat(120), ")".repeat(120));
    assert_eq!(prepare(&at_limit, Language::Js).diagnostics, vec![]);
}

#[test]
fn the_nesting_rule_cannot_be_allowed_or_downgraded() {
    let d = prepare(&"!".repeat(3000), Language::Js).diagnostics;
    assert_eq!(d[0].rule, NESTING_RULE);
    let lenient = Policy {
        allow: vec![NESTING_RULE.into()],
        severity: [(NESTING_RULE.to_owned(), Severity::Info)].into(),
        ..Policy::default()
    };
    assert!(lenient.blocks(&d));
    assert_eq!(lenient.validate(), Err(PolicyError::SyntaxRule));
}

/// What a scan that misread these tokens would hide: each prefix leaves
/// the parser in code, so the parentheses after it must still be counted.
#[test]
fn brackets_after_regexes_strings_and_comments_are_counted() {
    let prefixes = [
        "x = /'/;",
        "x = /\"/;",
        "x = /`/;",
        "x = /[/'\"]/;",
        "x = /\\/'/;",
        "x = /[\\]'/]/g;",
        "if (a) /'/.test(s);",
        "while (a) /'/.test(s);",
        "x = a++ / 1 / '/';",
        "x = f(a) / '/'.length;",
        "x = a.if(1) / '/'.length;",
        "x = {if: (1) / '/'.length};",
        "x = '\\'';",
        "x = \"it's\";",
        "x = `${'}'}`;",
        "x = `${`${'`'}`}`;",
        "x = 1; // comment\u{2028}",
        "x = 1; /* '\n */",
        "x = 1 <!-- comment '\n",
        "x = 1;\n--> comment '\n",
        "x = 1..toString();",
        "x = a ?.5 : 1;",
        "x = \\u{61};",
    ];
    for prefix in prefixes {
        let src = format!("{prefix}\nreturn {}1{};", "(".repeat(300), ")".repeat(300));
        assert_eq!(
            nesting_rule(&src, Language::Js).map(|(line, _)| line),
            Some(src.lines().count() as u32),
            "not refused after {prefix:?}"
        );
    }
    // In TypeScript too, where `<` may open type arguments: `<<` is one
    // token, so what follows it is no `<!--` comment.
    for prefix in ["x = a <<!-- b + ", "let y: A<B> = a < b ? 1 : "] {
        let src = format!("{prefix}{}1{};", "(".repeat(300), ")".repeat(300));
        assert_eq!(
            nesting_rule(&src, Language::Ts).map(|(line, _)| line),
            Some(1),
            "not refused after {prefix:?}"
        );
    }
    // After a token the parser only recovers from, nothing is trusted: the
    // token is the error once the rest could nest too deeply.
    for (prefix, at) in [
        ("x = a\n/'/g;", (2, 2)),
        ("x = '(", (1, 5)),
        ("x = /(", (1, 5)),
        ("x = \\*/", (1, 5)),
        ("x = #", (1, 5)),
        ("x = \u{20ac}", (1, 5)),
        ("x = \u{1}", (1, 5)),
    ] {
        let src = format!("{prefix}\nreturn {}1{};", "(".repeat(300), ")".repeat(300));
        let d = prepare(&src, Language::Js).diagnostics;
        assert_eq!(
            (d[0].rule.as_str(), d[0].line, d[0].column),
            (SYNTAX_RULE, at.0, at.1),
            "{prefix:?}: {d:?}"
        );
    }
    // Without enough after it to nest deeply, the parser reports the error.
    let d = prepare("let s = 'unterminated\nreturn s;", Language::Js).diagnostics;
    assert_eq!(d[0].rule, SYNTAX_RULE);
    assert!(!d[0].message.contains("cannot be checked"), "{d:?}");
}

#[test]
fn brackets_inside_literals_and_comments_are_not_counted() {
    let many = "(".repeat(300);
    for src in [
        format!("const s = '{many}';\nreturn s;"),
        format!("const s = \"{many}\";\nreturn s;"),
        format!("const s = `{many}`;\nreturn s;"),
        format!("// {many}\nreturn 1;"),
        format!("/* {many} */\nreturn 1;"),
        format!("const r = /[{many}]/;\nreturn r;"),
        format!("const r = /{}/;\nreturn r;", "\\(".repeat(300)),
    ] {
        assert_eq!(nesting_rule(&src, Language::Js), None, "{src}");
    }
}

#[test]
fn statements_end_at_semicolons_commas_and_line_ends() {
    // Thousands of operators, but no statement nests deeply.
    let with_semicolons = "x = a.b + c[0] * f(1);\n".repeat(2000);
    let without = "x = a.b + c[0] * f(1)\n".repeat(2000);
    let elements = format!(
        "return [{}];",
        (0..3000)
            .map(|i| format!("a.b + {i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ts = "let x: Array<Map<string, number>> = a < b ? [] : []\n".repeat(1000);
    for (src, language) in [
        (with_semicolons.as_str(), Language::Js),
        (without.as_str(), Language::Js),
        (elements.as_str(), Language::Js),
        (ts.as_str(), Language::Ts),
    ] {
        assert_eq!(nesting_rule(src, language), None);
    }
    // A continued expression is one statement, however many lines it takes.
    let continued = format!("return 1{};", "\n+ 1".repeat(2000));
    assert!(nesting_rule(&continued, Language::Js).is_some());
}

#[test]
fn an_ambiguous_slash_is_refused_not_guessed() {
    for src in ["if (a) {}\n/x/.test(s);", "x = yield /x/;", "let /x/;"] {
        let d = prepare(src, Language::Js).diagnostics;
        assert_eq!(d[0].rule, NESTING_RULE, "{src}");
        assert!(d[0].message.contains("regular expression"), "{src}");
    }
}

/// Layers that each add one level to the syntax tree.
const JS_LAYERS: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a:", "}"),
    ("x=>", ""),
    ("!", ""),
    ("-", ""),
    ("typeof ", ""),
    ("await ", ""),
    ("new ", ""),
    ("f(", ")"),
    ("`${", "}`"),
    ("a?b:", ""),
    ("a=", ""),
    ("1+", ""),
    ("()=>{return ", "}"),
    ("function(){return ", "}"),
];
const TS_LAYERS: &[(&str, &str)] = &[
    ("A<", ">"),
    ("{a:", "}"),
    ("()=>", ""),
    ("keyof ", ""),
    ("(", ")"),
    ("[", "]"),
    ("T extends 1 ? 1 : ", ""),
];

fn layered(layers: &[(&str, &str)], picks: &[usize]) -> (String, String) {
    let (mut open, mut close) = (String::new(), String::new());
    for &i in picks {
        let (o, c) = layers[i % layers.len()];
        open.push_str(o);
        close.insert_str(0, c);
    }
    (open, close)
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// For every layer, the deepest stack of it the limits let through is
/// analysed within a runtime worker's 2 MiB stack (with a debug build's
/// large frames).
#[test]
fn the_deepest_accepted_sources_fit_a_worker_stack() {
    for (layers, language, wrap) in [
        (JS_LAYERS, Language::Js, "return {}1{};"),
        (TS_LAYERS, Language::Ts, "let x: {}number{};\nreturn 1;"),
    ] {
        for i in 0..layers.len() {
            let source = |n: usize| {
                let (open, close) = layered(layers, &vec![i; n]);
                wrap.replacen("{}", &open, 1).replacen("{}", &close, 1)
            };
            // The largest n the limits accept.
            let (mut lo, mut hi) = (0, MAX_DEPTH as usize + 1);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if nesting_rule(&source(mid), language).is_some() {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            assert!(lo >= 60, "{:?} refused at {hi}", layers[i]);
            let src = source(lo);
            let refused = on_small_stack(move || nesting_rule(&src, language));
            assert_eq!(refused, None, "{:?} x {lo}", layers[i]);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Deep sources are refused, shallow ones pass, and none of them
    /// overflows a runtime worker's 2 MiB stack.
    #[test]
    fn nesting_is_bounded_on_an_ordinary_stack(
        picks in proptest::collection::vec(0usize..64, 0..2500),
        ts in proptest::bool::ANY,
    ) {
        let (language, src) = if ts {
            let (open, close) = layered(TS_LAYERS, &picks);
            (Language::Ts, format!("let x: {open}number{close};\nreturn 1;"))
        } else {
            let (open, close) = layered(JS_LAYERS, &picks);
            (Language::Js, format!("return {open}1{close};"))
        };
        let levels = picks.len() as u32;
        let refused = on_small_stack(move || nesting_rule(&src, language).is_some());
        if levels > MAX_DEPTH {
            proptest::prop_assert!(refused, "{levels} levels passed");
        }
        if levels < 40 {
            proptest::prop_assert!(!refused, "{levels} levels refused");
        }
    }
}

#[test]
fn unterminated_tokens_at_the_end_are_scanned_safely() {
    for src in [
        "x = \\u{61",
        "x = '\\",
        "x = `\\",
        "x = /a\\",
        "x = `${",
        "/*",
        "x = 'a",
    ] {
        let _ = prepare(src, Language::Js);
        let _ = prepare(src, Language::Ts);
    }
}

/// Tokens where a scan could read a source differently from the parser.
const TRICKY: &[&str] = &[
    "/", "/=", "'", "\"", "`", "//", "/*", "*/", "\n", "\r", "\u{2028}", "}", "{", ")", "(", "]",
    "[", "${", "\\", "if", "while", "else", "return", "yield", "await", "of", "let", "x", "1", ".",
    "?.", "++", "--", "=", "<", ">", "<!--", "-->", "!", ":", ";", ",", "=>", "#", " ", "\u{a0}",
    "typeof", "\u{1}", "\u{20ac}", "#x", "@", "1n", "0x", "\\u0061", "as", "extends", "keyof",
    "<T>", "a<b>", "for", "of", "in", "class", "function", "async", "do", "\t", "?", "case",
    "default", "switch", "new", "this", "}`", "`${", "`x${",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever tricky tokens come first, a few thousand parentheses after
    /// them are either counted (refused) or never reach a recursive pass
    /// that could overflow a 2 MiB stack: the scan never hides nesting the
    /// parser sees.
    #[test]
    fn no_prefix_hides_deep_nesting(
        prefix in proptest::collection::vec(proptest::sample::select(TRICKY), 0..12),
        suffix in proptest::collection::vec(proptest::sample::select(TRICKY), 0..4),
        ts in proptest::bool::ANY,
    ) {
        let src = format!(
            "{}{}1{}{}",
            prefix.concat(),
            "(".repeat(3000),
            ")".repeat(3000),
            suffix.concat()
        );
        let language = if ts { Language::Ts } else { Language::Js };
        // Completing at all is the property: an overflow aborts the test.
        let _ = on_small_stack(move || prepare(&src, language).diagnostics.len());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Tricky tokens between runs of nesting constructs: the scan's count
    /// keeps every source it lets through within a 2 MiB stack.
    #[test]
    fn no_token_mix_hides_deep_nesting(
        parts in proptest::collection::vec(
            (proptest::sample::select(TRICKY), 0usize..12, 1usize..400),
            1..8,
        ),
        ts in proptest::bool::ANY,
    ) {
        const LAYERS: [&str; 12] =
            ["(", "!", "x=>", "a.", "[", "`${", "if(a)", "a=", "typeof ", "A<", "new ", "f()"];
        let mut src = String::new();
        for (token, layer, n) in &parts {
            src.push_str(token);
            src.push_str(&LAYERS[*layer].repeat(*n));
        }
        let language = if ts { Language::Ts } else { Language::Js };
        let _ = on_small_stack(move || prepare(&src, language).diagnostics.len());
    }
}
