//! The seed's three example plugins validate, pack deterministically and
//! read back from their own archive; `validate_path` and `pack_dir` print
//! what a CLI shows.

use std::path::{Path, PathBuf};

use citadel_plugin::{
    Bundle, EntryLanguage, Limits, Method, RegistrationKind, RouteAuth, pack_dir, validate,
    validate_config, validate_path,
};
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn welcome_email() {
    let report = validate_path(&fixture("welcome-email"));
    assert!(report.is_ok(), "{}", report.render());
    assert!(report.diagnostics.is_empty(), "{}", report.render());
    let plugin = report.plugin.unwrap();
    let m = &plugin.manifest;
    assert_eq!(
        (m.slug.as_str(), m.version.to_string()),
        ("welcome-email", "1.0.0".into())
    );
    assert_eq!(m.events, ["auth.user.created"]);
    assert_eq!(m.routes[0].auth, RouteAuth::Public);
    assert_eq!(
        m.routes[1].auth,
        RouteAuth::Token {
            permission: "plugin.install".into()
        }
    );
    assert_eq!(m.secrets, ["MAIL_API_KEY"]);
    let hooks: Vec<_> = plugin
        .registrations
        .iter()
        .filter(|r| r.kind == RegistrationKind::Hook)
        .map(|r| (r.name.as_str(), r.line))
        .collect();
    assert_eq!(hooks, [("auth.user.created", 18)]);
    let schema = m.config.as_ref().unwrap();
    assert!(validate_config(schema, &json!({"from": "hello@example.com"})).is_empty());
    assert_eq!(
        validate_config(schema, &json!({"subject": 3})),
        [
            "config.from: is required",
            "config.subject: must be string, not integer"
        ]
    );
}

#[test]
fn slack_notifier() {
    let report = validate_path(&fixture("slack-notifier"));
    assert!(report.is_ok(), "{}", report.render());
    assert!(report.diagnostics.is_empty(), "{}", report.render());
    let plugin = report.plugin.unwrap();
    let m = &plugin.manifest;
    assert_eq!(m.language, EntryLanguage::Ts);
    assert_eq!(m.events, ["order.paid", "build.*"]);
    assert_eq!(
        m.routes[0].auth,
        RouteAuth::Signature {
            secret: "SLACK_SIGNING_SECRET".into()
        }
    );
    assert_eq!(
        (m.routes[1].method, m.routes[1].path.as_str()),
        (Method::Get, "/messages/:id")
    );
    assert!(m.permissions.kv);
    assert!(
        plugin
            .bundle
            .files
            .contains_key("webhooks/notifications.yaml")
    );
}

#[test]
fn daily_kpi() {
    let report = validate_path(&fixture("daily-kpi"));
    assert!(report.is_ok(), "{}", report.render());
    let plugin = report.plugin.as_ref().unwrap();
    let job = &plugin.manifest.jobs[0];
    assert_eq!(
        (job.name.as_str(), job.cron.as_str(), job.timezone.as_str()),
        ("daily_kpi", "0 6 * * *", "Europe/Berlin")
    );
    assert_eq!(plugin.manifest.permissions.db, ["reporting"]);
    assert!(
        report
            .render()
            .ends_with("ok: daily-kpi 0.3.1 (0 events, 1 routes, 1 jobs; 0 warnings)\n")
    );
}

#[test]
fn packs_are_deterministic_and_valid() {
    for name in ["welcome-email", "slack-notifier", "daily-kpi"] {
        let a = pack_dir(&fixture(name)).unwrap();
        let b = pack_dir(&fixture(name)).unwrap();
        assert_eq!(a.bytes, b.bytes, "{name}");
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.sha256.len(), 64);
        assert!(a.file_name.starts_with(name) && a.file_name.ends_with(".tar.gz"));
        let bundle = Bundle::from_bytes(&a.bytes, &Limits::default()).unwrap();
        let back = validate(&bundle).unwrap();
        assert_eq!(back.manifest.slug, name);
        // Packed files are the directory's files.
        let dir = Bundle::from_dir(&fixture(name), &Limits::default()).unwrap();
        assert_eq!(bundle.files, dir.files);
    }
}

#[test]
fn the_cli_output_is_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("citadel-plugin.yaml"),
        "slug: Bad Slug\nname: X\nversion: 1.0.0\nentry: main.js\nevents: [a.b]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.js"),
        "hook(\"a.b\", f);\nhook(\"c.d\", f);\n",
    )
    .unwrap();
    let report = validate_path(dir.path());
    assert!(!report.is_ok());
    assert_eq!(
        report.render(),
        "citadel-plugin.yaml:1:7: error[invalid_slug]: slug `Bad Slug` must be 2 to 64 characters of a-z, 0-9 and single `-`, starting with a letter\n\
         main.js:2:1: error[undeclared_hook]: `hook(\"c.d\")`: the manifest's `events` do not list `c.d`\n\
         invalid: 2 errors, 0 warnings\n"
    );
    let refused = pack_dir(dir.path()).unwrap_err();
    assert_eq!(refused.diagnostics.len(), 2);
    // An archive is validated the same way.
    let zip_path = dir.path().join("x.zip");
    std::fs::write(&zip_path, b"not an archive").unwrap();
    assert_eq!(
        validate_path(&zip_path).diagnostics[0].code,
        "unknown_format"
    );
}

fn bundle(files: &[(&str, &[u8])]) -> Bundle {
    Bundle::from_files(
        files
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect(),
    )
    .unwrap()
}

const TINY: &[u8] = b"slug: tiny\nname: Tiny\nversion: 1.0.0\nentry: main.js\nevents: [a.b]\n";

#[test]
fn text_that_is_not_utf8() {
    let err = validate(&bundle(&[
        ("citadel-plugin.yaml", TINY),
        ("main.js", b"hook(\"a.b\", f);\xff"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.iter().map(|d| d.code).collect::<Vec<_>>(),
        ["entry_not_utf8"]
    );
    let err = validate(&bundle(&[
        ("citadel-plugin.yaml", b"slug: \xff"),
        ("main.js", b""),
    ]))
    .unwrap_err();
    assert_eq!(
        err.iter().map(|d| d.code).collect::<Vec<_>>(),
        ["manifest_syntax"]
    );
    // Names must be in normal form when handed over in memory too.
    let files = [("./main.js".to_owned(), Vec::new())].into_iter().collect();
    assert_eq!(Bundle::from_files(files).unwrap_err().code, "invalid_path");
    // A colon is fine where it is no drive letter.
    assert_eq!(citadel_plugin::normalize_name(b"a:b.js").unwrap(), "a:b.js");
}

#[test]
fn deep_entries_validate_on_a_small_stack() {
    // As deep as the analyzer lets through, checked from a thread with a
    // runtime worker's stack or less.
    let depth = citadel_analyzer::MAX_NESTING as usize - 2;
    let source = format!(
        "hook(\"a.b\", async () => {}1{});\n",
        "[".repeat(depth - 2),
        "]".repeat(depth - 2)
    );
    let b = bundle(&[
        ("citadel-plugin.yaml", TINY),
        ("main.js", source.as_bytes()),
    ]);
    let plugin = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || validate(&b).map(|p| p.registrations.len()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(plugin, Ok(1));
}
