//! `Intl` against Deno: every case of `intl/cases.json` (an expression)
//! must give what Deno 2 gave for it (`intl/deno.json`, made with
//! `TZ=UTC deno run --allow-read intl/gen.js intl/cases.json`; Deno can
//! be installed from npm, `@deno/linux-x64-glibc`).

use std::rc::Rc;

use citadel_sandbox::{Grants, Language, Limits, NoHost, RunRequest, RunStatus, Sandbox};
use serde_json::Value;

const EXPECTED: &str = include_str!("intl/deno.json");

/// Where ICU4X's data differ from ICU4C's, as Deno shows them: a numeric
/// date in German has two-digit days and months in ICU4X (its semantic
/// skeletons do not use CLDR's `availableFormats`), and Swiss German groups
/// with an ASCII apostrophe in ICU4X's CLDR 49 (Deno's ICU, an older CLDR,
/// has U+2019). The case, and what the sandbox gives.
const KNOWN: &[(&str, &str)] = &[
    (
        "new Intl.NumberFormat('de-CH', { style: 'currency', currency: 'CHF' }).format(1234.5)",
        "CHF\u{a0}1'234.50",
    ),
    (
        "new Intl.DateTimeFormat('de-DE', { timeZone: 'Europe/Berlin' }).format(new Date(Date.UTC(2020, 0, 2, 15, 4, 5)))",
        "02.01.2020",
    ),
    (
        "new Date(Date.UTC(2020, 0, 2, 15, 4, 5)).toLocaleDateString('de-DE', { timeZone: 'UTC' })",
        "02.01.2020",
    ),
    (
        "new Date(Date.UTC(2020, 0, 2, 15, 4, 5)).toLocaleString('de-DE', { timeZone: 'Europe/Berlin' })",
        "02.01.2020, 16:04:05",
    ),
];

async fn run(source: &str) -> Value {
    let sandbox = Sandbox::default();
    let script = sandbox.load(source, Language::Js);
    let out = sandbox
        .run(
            &script,
            RunRequest {
                input_json: "null",
                limits: Limits::default(),
                grants: Grants::NONE,
                host: Rc::new(NoHost),
                cancel: None,
            },
        )
        .await;
    assert_eq!(out.status, RunStatus::Succeeded, "{:?}", out.error);
    out.result_value()
}

#[tokio::test(flavor = "current_thread")]
async fn intl_formats_as_deno_does() {
    let expected: Vec<(String, Value)> = serde_json::from_str(EXPECTED).unwrap();
    let mut source = String::from("const out = [];\n");
    for (case, _) in &expected {
        source.push_str(&format!(
            "try {{ out.push({case}); }} catch (e) {{ out.push('threw ' + e.name); }}\n"
        ));
    }
    source.push_str("return out;");
    let got = run(&source).await;
    let mut wrong = Vec::new();
    for (i, (case, want)) in expected.iter().enumerate() {
        let known = KNOWN.iter().find(|(c, _)| c == case);
        let want = &known.map_or_else(|| want.clone(), |(_, v)| Value::from(*v));
        if &got[i] != want {
            wrong.push(format!("{case}\n    got  {}\n    want {want}", got[i]));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ from Deno:\n{}",
        wrong.len(),
        expected.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_seed_webhook_formats_the_amount_in_the_customers_locale() {
    let got = run("const amount = 1234.5; return new Intl.NumberFormat('de-DE', { style: 'currency', currency: 'EUR' }).format(amount);").await;
    assert_eq!(got, Value::from("1.234,50\u{a0}€"));
}

#[tokio::test(flavor = "current_thread")]
async fn extreme_numbers_and_dates_format_without_failing() {
    let got = run("const out = []; const values = [1e308, -1e308, 5e-324, -0, 0, 1e21, 123456789012345680000, 2 ** 53 + 1];
      const options = [{}, { style: 'percent' }, { style: 'currency', currency: 'EUR' }, { notation: 'compact' }, { notation: 'compact', compactDisplay: 'long' },
        { maximumSignificantDigits: 21 }, { minimumSignificantDigits: 21 }, { minimumFractionDigits: 100 }, { maximumFractionDigits: 100 }, { minimumIntegerDigits: 21 }];
      for (const v of values) for (const o of options) out.push(typeof new Intl.NumberFormat('en-US', o).format(v));
      for (const v of values) out.push(new Intl.PluralRules('en').select(v), new Intl.RelativeTimeFormat('en').format(v, 'day'));
      for (const t of [8.64e15, -8.64e15, 0, -62198755200000]) out.push(new Intl.DateTimeFormat('en-US', { dateStyle: 'full', timeStyle: 'full', timeZone: 'Australia/Lord_Howe' }).format(t), new Date(t).toLocaleString('de-DE'));
      return out.filter((s) => typeof s !== 'string' || s.length === 0).length;").await;
    assert_eq!(got, Value::from(0));
}

#[tokio::test(flavor = "current_thread")]
async fn sorting_and_formatting_in_loops_stay_cheap() {
    let started = std::time::Instant::now();
    let got = run(
        "const words = []; for (let i = 0; i < 3000; i++) words.push('w' + ((i * 7919) % 3001));
      const c = new Intl.Collator('de', { numeric: true }); words.sort(c.compare);
      const nf = new Intl.NumberFormat('de-DE', { style: 'currency', currency: 'EUR' });
      let total = 0; for (let i = 0; i < 3000; i++) total += nf.format(i).length;
      return [words[0], words[2999], total];",
    )
    .await;
    println!("{:?}", started.elapsed());
    assert_eq!(got[0], Value::from("w0"));
}
