//! What a context costs to make with none, some and all of the optional
//! groups (built-in and web-standard), and a hello-world run end to end.
//! `cargo run -p citadel-sandbox --example context_cost [samples]`; the
//! figures are medians, for the profile it was built with.

use std::rc::Rc;
use std::time::{Duration, Instant};

use citadel_sandbox::yardstick::context_creation;
use citadel_sandbox::{Globals, Grants, Language, Limits, NoHost, RunRequest, Sandbox};

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let cases = [
        ("none (hello world)", Globals::NONE),
        ("url", Globals::URL),
        ("encoding", Globals::ENCODING),
        ("crypto", Globals::CRYPTO),
        ("events", Globals::EVENTS),
        ("clone", Globals::CLONE),
        ("timers", Globals::TIMERS),
        ("date (local time in the run's zone)", Globals::DATE),
        ("intl (+ date)", Globals::INTL),
        ("fetch (+ url, encoding, events)", Globals::FETCH),
        (
            "url + encoding + crypto (a webhook)",
            Globals::URL.with(Globals::ENCODING).with(Globals::CRYPTO),
        ),
        (
            "all built-in groups, no web",
            Globals::DATE
                .with(Globals::REGEXP)
                .with(Globals::MAP_SET)
                .with(Globals::TYPED_ARRAYS),
        ),
        ("all", Globals::ALL),
    ];
    println!("context creation, median of {samples}:");
    for (name, globals) in cases {
        let t = context_creation(globals, samples).expect("a context");
        println!("  {name:<38} {:>8.1} µs", t.as_secs_f64() * 1e6);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sandbox = Sandbox::default();
    for (name, source) in [
        ("hello world", "return [1, 2, 3].map((x) => x * 2);"),
        (
            "btoa + URL",
            "return [btoa('a'), new URL('https://a.example/').host];",
        ),
        (
            "Intl currency",
            "return new Intl.NumberFormat('de-DE', { style: 'currency', currency: 'EUR' }).format(1234.5);",
        ),
    ] {
        let script = sandbox.load(source, Language::Js);
        let mut times: Vec<Duration> = (0..samples)
            .map(|_| {
                let started = Instant::now();
                let out = rt.block_on(sandbox.run(
                    &script,
                    RunRequest {
                        input_json: "null",
                        limits: Limits::default(),
                        grants: Grants::NONE,
                        host: Rc::new(NoHost),
                        cancel: None,
                    },
                ));
                assert!(out.error.is_none(), "{:?}", out.error);
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "run end to end, {name:<26} {:>8.1} µs",
            times[samples / 2].as_secs_f64() * 1e6
        );
    }
}
