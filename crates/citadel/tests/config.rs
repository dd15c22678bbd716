//! `citadel config show`: the layering of defaults, file, environment and
//! flags, every key shown, the database password masked.

use std::process::Command;

use citadel_testkit::TempDir;

mod common;

fn temp_dir(name: &str) -> TempDir {
    citadel_testkit::temp_dir(&format!("config-{name}"))
}

/// Runs `citadel ARGS` in `dir` with no `CITADEL_*` variable but `env`;
/// returns (exit code, stdout, stderr).
fn citadel(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CITADEL_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .envs(env.iter().copied())
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    common::outcome(out)
}

#[test]
fn the_defaults_show_every_key() {
    let dir = temp_dir("defaults");
    let (code, stdout, stderr) = citadel(&dir, &[], &["config", "show"]);
    assert_eq!(code, 0, "{stderr}");
    let (top, tables) = stdout.split_once("\n\n").unwrap();
    assert_eq!(
        top,
        "listen = \"127.0.0.1:8080\"
data_dir = \"citadel-data\"
body_limit_bytes = 1048576
request_timeout_ms = 30000
sandbox_hosts = 0
sandbox_hosts_max = 0
sandbox_hosts_per_tenant = 0
sandbox_host_idle_ms = 30000
jail_required = false
node_timeout_ms = 10000
node_retention_ms = 3600000
worker_concurrency = 2048
header_read_timeout_ms = 10000
body_read_timeout_ms = 10000
auth_failure_limit = 20
auth_failure_window_ms = 60000"
    );
    assert!(
        tables.starts_with(
            "[limits.default]
timeout_ms = 5000
memory_mb = 64
log_bytes = 65536
warm_runs = 1000
warm_seconds = 60

[limits.max]
timeout_ms = 60000
memory_mb = 512
log_bytes = 1048576
warm_runs = 100000
warm_seconds = 3600

[quotas]
"
        ),
        "{tables}"
    );
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let dir = temp_dir("layers");
    std::fs::write(
        dir.path().join("citadel.toml"),
        "listen = \"0.0.0.0:9000\"\ndata_dir = \"from-file\"\nsandbox_hosts = 3\ndatabase = \"postgres://app:filesecret@db/citadel\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = citadel(
        &dir,
        &[
            ("CITADEL_LISTEN", "127.0.0.1:9100"),
            ("CITADEL_DATA_DIR", "from-env"),
            ("CITADEL_DATABASE_URL", "postgres://app:envsecret@db/env"),
        ],
        &["config", "show", "--data-dir", "from-flag"],
    );
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "listen = \"127.0.0.1:9100\"",
        "data_dir = \"from-flag\"",
        "database = \"postgres://app:****@db/env\"",
        "sandbox_hosts = 3",
    ] {
        assert!(lines.contains(&expected), "{expected} in\n{stdout}");
    }
    assert!(!stdout.contains("envsecret"), "{stdout}");
}

#[test]
fn bad_configuration_exits_2_naming_what_is_wrong() {
    let dir = temp_dir("bad");
    std::fs::write(dir.path().join("bad.toml"), "lisen = \"x\"\n").unwrap();
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Env, &[&str], &str)] = &[
        (
            &[("CITADEL_LISTEN", "nope")],
            &["config", "show"],
            "citadel: invalid environment variable CITADEL_LISTEN: invalid socket address syntax\n",
        ),
        (
            &[],
            &["config", "show", "--config", "missing.toml"],
            "citadel: cannot read missing.toml: No such file or directory (os error 2)\n",
        ),
    ];
    for (env, args, message) in cases {
        let (code, stdout, stderr) = citadel(&dir, env, args);
        assert_eq!((code, stdout.as_str(), stderr.as_str()), (2, "", *message));
    }
    let (code, _, stderr) = citadel(&dir, &[], &["config", "show", "--config", "bad.toml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("citadel: invalid bad.toml: TOML parse error"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `lisen`"), "{stderr}");
}
