//! Escape attempts that must fail inside the jail. The test prints which
//! isolation layers this kernel allowed and fails — never skips — when a
//! layer that was detected does not hold.

use std::time::Duration;

use citadel_jail::{CommandLimits, CommandOutput, CommandSpec, Exit, Jail, JailConfig};

fn jail() -> Jail {
    let jail = Jail::new(JailConfig::default()).expect("a jail can be made");
    println!("isolation on this machine: {}", jail.isolation().summary());
    jail
}

fn sh(script: &str) -> CommandSpec {
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        limits: CommandLimits {
            wall: Duration::from_secs(5),
            ..CommandLimits::default()
        },
        ..CommandSpec::default()
    }
}

async fn run(jail: &Jail, spec: CommandSpec) -> CommandOutput {
    let out = jail.run(&spec).await.expect("the jail starts");
    let short = |t: String| t.chars().take(200).collect::<String>();
    println!(
        "  {:?} -> {:?} stdout={:?} stderr={:?}",
        spec.args.last().unwrap_or(&spec.program),
        out.exit,
        short(out.stdout_text()),
        short(out.stderr_text())
    );
    out
}

#[tokio::test]
async fn runs_a_command_with_stdin_env_and_files() {
    let jail = jail();
    let mut spec = sh("cat; echo \"$GREETING\"; cat /work/data.txt; pwd");
    spec.stdin = b"from stdin\n".to_vec();
    spec.env = vec![("GREETING".into(), "hello".into())];
    spec.files = vec![("data.txt".into(), b"from a file\n".to_vec())];
    let out = run(&jail, spec).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stderr_text());
    let pwd = if jail.isolation().mount_ns {
        "/work"
    } else {
        ""
    };
    let text = out.stdout_text();
    assert!(
        text.starts_with("from stdin\nhello\nfrom a file\n"),
        "{text}"
    );
    if !pwd.is_empty() {
        assert_eq!(text.lines().last(), Some(pwd));
    }
}

#[tokio::test]
async fn the_environment_of_the_caller_does_not_leak() {
    let jail = jail();
    // SAFETY: test-only; no other thread reads this variable.
    unsafe { std::env::set_var("CITADEL_TEST_SECRET", "leaked") };
    let out = run(&jail, sh("env")).await;
    assert!(!out.stdout_text().contains("leaked"));
}

#[tokio::test]
async fn detected_layers_hold() {
    let jail = jail();
    let iso = jail.isolation().clone();
    let script = "echo pid=$$; id -u; cat /proc/sys/kernel/hostname; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; ls /; echo interfaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,)";
    let out = run(&jail, sh(script)).await;
    let text = out.stdout_text();
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stderr_text());
    if iso.pid_ns {
        assert!(
            text.contains("pid=1\n"),
            "pid namespace detected but the shell is not pid 1: {text}"
        );
    }
    if iso.root {
        assert!(
            text.contains("\n65534\n"),
            "running as root but the jail did not drop to nobody: {text}"
        );
    }
    if iso.uts_ns {
        assert!(
            text.contains("citadel\n"),
            "uts namespace detected but the hostname is not ours: {text}"
        );
    }
    if iso.seccomp {
        assert!(
            text.contains("Seccomp:\t2"),
            "seccomp detected but no filter is active: {text}"
        );
    }
    if iso.no_new_privs {
        assert!(
            text.contains("NoNewPrivs:\t1"),
            "no_new_privs detected but not set: {text}"
        );
    }
    if iso.net_ns {
        assert!(
            text.contains("interfaces=lo,\n"),
            "network namespace detected but host interfaces are visible: {text}"
        );
    }
    if iso.mount_ns {
        assert!(
            !text.contains("root\n") && !text.contains("home\n") && !text.contains("work\nroot"),
            "the view shows host directories: {text}"
        );
    }
}

#[tokio::test]
async fn reading_secrets_of_the_host_fails() {
    let jail = jail();
    let data_dir = std::env::temp_dir().join(format!("citadel-data-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("citadel.db"), "tenant secrets").unwrap();
    let cases = [
        "cat /etc/shadow".to_owned(),
        format!("cat {}/citadel.db", data_dir.display()),
        "cat /root/.bashrc".to_owned(),
    ];
    for script in cases {
        let out = run(&jail, sh(&script)).await;
        assert_ne!(out.exit, Exit::Code(0), "`{script}` succeeded in the jail");
        assert!(!out.stdout_text().contains("tenant secrets"));
    }
    std::fs::remove_dir_all(&data_dir).unwrap();
}

#[tokio::test]
async fn writing_outside_the_work_dir_fails() {
    let jail = jail();
    if !jail.isolation().mount_ns {
        println!("mount namespace unavailable: the view cannot be checked");
    }
    for target in [
        "/etc/citadel-escape",
        "/usr/citadel-escape",
        "/citadel-escape",
    ] {
        let out = run(&jail, sh(&format!("echo x > {target}"))).await;
        assert_ne!(out.exit, Exit::Code(0), "writing {target} succeeded");
        assert!(!std::path::Path::new(target).exists());
    }
    let out = run(
        &jail,
        sh("echo ok > /work/f && cat /work/f && echo t > /tmp/t && cat /tmp/t"),
    )
    .await;
    assert_eq!(out.stdout_text(), "ok\nt\n");
}

#[tokio::test]
async fn no_network_unless_granted() {
    let jail = jail();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('connected')"
    );
    let spec = CommandSpec {
        program: "/usr/bin/python3".into(),
        args: vec!["-c".into(), connect.clone()],
        ..CommandSpec::default()
    };
    let out = run(&jail, spec.clone()).await;
    assert_ne!(out.exit, Exit::Code(0));
    assert!(!out.stdout_text().contains("connected"));
    assert!(out.stderr_text().contains("Error"), "{}", out.stderr_text());
    // With network granted the same connection works.
    let out = run(
        &jail,
        CommandSpec {
            network: true,
            ..spec
        },
    )
    .await;
    assert_eq!(out.stdout_text(), "connected\n", "{}", out.stderr_text());
}

#[tokio::test]
async fn a_fork_bomb_is_contained() {
    let jail = jail();
    let mut spec = sh("bomb() { bomb | bomb & }; bomb; sleep 1; echo survived");
    spec.limits.wall = Duration::from_secs(3);
    spec.limits.processes = 32;
    let out = run(&jail, spec).await;
    // Bounded by the pids limit and ended by the deadline at the latest.
    assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
    // The machine is fine: the next jail runs normally.
    let out = run(&jail, sh("echo next")).await;
    assert_eq!(out.stdout_text(), "next\n");
}

#[tokio::test]
async fn memory_past_the_limit_fails() {
    let jail = jail();
    let spec = CommandSpec {
        program: "/usr/bin/python3".into(),
        args: vec![
            "-c".into(),
            "x = bytearray(512 * 1024 * 1024); print('allocated')".into(),
        ],
        limits: CommandLimits {
            memory_bytes: 128 << 20,
            ..CommandLimits::default()
        },
        ..CommandSpec::default()
    };
    let out = run(&jail, spec).await;
    assert_ne!(out.exit, Exit::Code(0));
    assert!(!out.stdout_text().contains("allocated"));
    assert!(
        out.stderr_text().contains("MemoryError")
            || out.oom_killed
            || matches!(out.exit, Exit::Signal(_)),
        "{out:?}"
    );
}

#[tokio::test]
async fn cpu_past_the_limit_is_killed() {
    let jail = jail();
    let mut spec = sh("while :; do :; done");
    spec.limits.cpu_seconds = 1;
    spec.limits.wall = Duration::from_secs(10);
    let out = run(&jail, spec).await;
    assert!(
        matches!(
            out.exit,
            Exit::Signal(libc::SIGXCPU) | Exit::Signal(libc::SIGKILL)
        ),
        "{:?}",
        out.exit
    );
    assert!(out.duration < Duration::from_secs(5), "{:?}", out.duration);
}

#[tokio::test]
async fn ignoring_sigterm_does_not_outlive_the_deadline() {
    let jail = jail();
    let mut spec = sh("trap '' TERM; while :; do sleep 0.1; done");
    spec.limits.wall = Duration::from_millis(500);
    let out = run(&jail, spec).await;
    assert_eq!(out.exit, Exit::TimedOut);
    assert!(out.duration < Duration::from_secs(2), "{:?}", out.duration);
}

fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(marker))
        .count()
}

#[tokio::test]
async fn a_daemon_does_not_outlive_its_command() {
    let jail = jail();
    let out = run(
        &jail,
        sh("(setsid sleep 31.337 &) ; sleep 31.338 & echo started"),
    )
    .await;
    assert_eq!(out.stdout_text(), "started\n");
    // Give the kernel a moment to reap, then look for survivors anywhere.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(processes_with("31.337"), 0, "a daemon survived its jail");
    assert_eq!(
        processes_with("31.338"),
        0,
        "a background job survived its jail"
    );
}

#[tokio::test]
async fn output_is_capped() {
    let jail = jail();
    let mut spec = sh("head -c 1000000 /dev/zero; head -c 5000 /dev/zero >&2");
    spec.limits.output_bytes = 4096;
    let out = run(&jail, spec).await;
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(out.stdout.len(), 4096);
    assert!(out.stdout_truncated);
    assert_eq!(out.stderr.len(), 4096);
    assert!(out.stderr_truncated);
}

#[tokio::test]
async fn dangerous_system_calls_are_refused() {
    let jail = jail();
    if !jail.isolation().seccomp {
        println!("seccomp unavailable on this kernel");
        return;
    }
    let probe = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.unshare(0x10000000), ctypes.get_errno())\nprint(libc.ptrace(0, 0, 0, 0), ctypes.get_errno())";
    let spec = CommandSpec {
        program: "/usr/bin/python3".into(),
        args: vec!["-c".into(), probe.into()],
        ..CommandSpec::default()
    };
    let out = run(&jail, spec).await;
    assert_eq!(
        out.stdout_text(),
        format!("-1 {}\n-1 {}\n", libc::EPERM, libc::EPERM),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn a_required_jail_refuses_to_start_without_namespaces() {
    let jail = Jail::new(JailConfig {
        required: true,
        ..JailConfig::default()
    });
    let iso = citadel_jail::Isolation::probe();
    assert_eq!(jail.is_ok(), iso.namespaces(), "{}", iso.summary());
}
