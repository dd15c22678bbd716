//! The README's walkthroughs run as written, on a fresh data directory,
//! against real `citadel` processes.
//!
//! Every ```` ```sh ```` block of README.md belongs to a walkthrough: the
//! `main` one unless its info string names another (`sh walkthrough=NAME`),
//! or says it is not one (`sh not-a-walkthrough`: how to build, test and
//! benchmark). A walkthrough's blocks run in order in one bash process
//! (`set -eo pipefail`), with `citadel` on the PATH and the README's
//! addresses (`localhost:8080`, `:8081`) moved to free ports. Each `curl`
//! must answer 2xx, and each `citadel` exit 0, unless the command carries an
//! annotation in its trailing comment — `# → 422` (the HTTP status) or
//! `# → exit 1` — which it must then match exactly; every annotation must be
//! reached.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use citadel_testkit::{TempDir, pg};
use common::Proc;

/// One logical shell command: its first README line and its text.
#[derive(Debug)]
struct ShellCommand {
    line: usize,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Http(u16),
    Exit(i32),
}

#[derive(Debug, Default)]
struct Walkthrough {
    commands: Vec<ShellCommand>,
    expectations: BTreeMap<usize, Expect>,
}

fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")
}

/// The README's walkthroughs by name, in README order.
fn walkthroughs(readme: &str) -> BTreeMap<String, Walkthrough> {
    let mut out: BTreeMap<String, Walkthrough> = BTreeMap::new();
    let mut lines = readme.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((_, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let is_sh = words.next() == Some("sh");
        let mut name = Some("main".to_owned());
        for w in words {
            if let Some(n) = w.strip_prefix("walkthrough=") {
                name = Some(n.to_owned());
            } else if w == "not-a-walkthrough" {
                name = None;
            }
        }
        let mut body = Vec::new();
        for (n, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push((n, l));
        }
        if let (true, Some(name)) = (is_sh, name) {
            let w = out.entry(name).or_default();
            split_commands(&body, w);
        }
    }
    out
}

/// Splits a block into logical commands (a newline inside quotes, or after
/// `\`, `|`, `&&` or `||`, continues a command) and reads each command's
/// annotation from its comments.
fn split_commands(body: &[(usize, &str)], w: &mut Walkthrough) {
    let mut current: Option<ShellCommand> = None;
    let (mut single, mut double) = (false, false);
    for &(n, line) in body {
        let cmd = current.get_or_insert_with(|| ShellCommand {
            line: n,
            text: String::new(),
        });
        let mut comment = None;
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\\' if !single => i += 1,
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '#' if !single && !double && (i == 0 || chars[i - 1].is_whitespace()) => {
                    comment = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let code: String = chars[..comment.unwrap_or(chars.len())].iter().collect();
        if let Some(at) = comment {
            let text: String = chars[at + 1..].iter().collect();
            if let Some(expect) = annotation(&text) {
                let previous = w.expectations.insert(cmd.line, expect);
                assert!(previous.is_none(), "README line {n}: two annotations");
            }
        }
        cmd.text.push_str(&code);
        cmd.text.push('\n');
        let trimmed = code.trim_end();
        let continues = single
            || double
            || trimmed.ends_with('\\')
            || trimmed.ends_with('|')
            || trimmed.ends_with("&&");
        if !continues {
            let done = current.take().unwrap();
            if !done.text.trim().is_empty() {
                w.commands.push(done);
            }
        }
    }
    assert!(
        current.is_none_or(|c| c.text.trim().is_empty()),
        "a README block ends inside a command"
    );
}

/// `→ 422 …` or `→ exit 1 …` at the start of a comment.
fn annotation(comment: &str) -> Option<Expect> {
    let rest = comment.trim_start().strip_prefix('→')?.trim_start();
    let number = |s: &str| -> Option<u32> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if let Some(code) = rest.strip_prefix("exit ") {
        return Some(Expect::Exit(number(code)? as i32));
    }
    let status = u16::try_from(number(rest)?).ok()?;
    (100..600).contains(&status).then_some(Expect::Http(status))
}

const PRELUDE: &str = r#"set -eo pipefail
__line=0
trap 'echo "README line $__line failed: $BASH_COMMAND" >&2' ERR
curl() {
  local line=$__line body code want
  body=$(mktemp)
  code=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || {
    echo "README line $line: curl failed" >&2; rm -f "$body"; return 1; }
  cat "$body"; echo; rm -f "$body"
  echo "curl $line $code" >> "$README_LOG"
  want=${__http[$line]:-2xx}
  if [[ $want == 2xx && $code == 2?? ]] || [[ $code == "$want" ]]; then return 0; fi
  echo "README line $line: HTTP $code, expected $want" >&2
  return 1
}
citadel() {
  local line=$__line code=0 want
  # A server replaces the shell running it, so `citadel serve & PID=$!` is
  # the server's pid, as it is without this wrapper.
  case "$1" in serve|worker) echo "citadel $line 0" >> "$README_LOG"; exec citadel "$@";; esac
  command citadel "$@" || code=$?
  echo "citadel $line $code" >> "$README_LOG"
  want=${__exit[$line]:-0}
  if [[ $code == "$want" ]]; then return 0; fi
  echo "README line $line: citadel exited $code, expected $want" >&2
  return 1
}
"#;

/// The walkthrough as a bash script; README ports and URLs replaced.
fn script(w: &Walkthrough, replace: &[(&str, String)]) -> String {
    let mut s = String::from(PRELUDE);
    s.push_str("declare -A __http __exit\n");
    for (line, e) in &w.expectations {
        match e {
            Expect::Http(code) => writeln!(s, "__http[{line}]={code}").unwrap(),
            Expect::Exit(code) => writeln!(s, "__exit[{line}]={code}").unwrap(),
        }
    }
    for c in &w.commands {
        let mut text = c.text.clone();
        for (from, to) in replace {
            text = text.replace(from, to);
        }
        // An assignment before each command tells the wrappers which
        // README line they run for; it is valid before `done` and `fi` too.
        write!(s, "__line={}; {}", c.line, text).unwrap();
    }
    s
}

/// Runs a walkthrough in its own process group (killed afterwards, with any
/// server it started) and checks every call against its annotations.
fn run(
    name: &str,
    w: &Walkthrough,
    dir: &Path,
    env: &[(&str, String)],
    replace: &[(&str, String)],
) {
    let log = dir.join("calls.log");
    let bin = Path::new(env!("CARGO_BIN_EXE_citadel")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script(w, replace))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("PATH", path)
        .env("README_LOG", &log)
        .env_remove("CITADEL_DATABASE_URL")
        .env_remove("CITADEL_CONFIG")
        .stdin(Stdio::null())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Output goes to files, not pipes: servers the walkthrough leaves
    // running would hold a pipe open.
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let status = child.wait().unwrap();
    // SAFETY: plain system call on the group this test started.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    // The end of it is what shows where it stopped.
    let stdout = &stdout[stdout.floor_char_boundary(stdout.len().saturating_sub(4000))..];
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success(),
        "walkthrough `{name}` failed ({status}):\n--- stderr\n{stderr}\n--- stdout\n{stdout}"
    );
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let reached: std::collections::BTreeSet<usize> = calls
        .lines()
        .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
        .collect();
    for (line, e) in &w.expectations {
        assert!(
            reached.contains(line),
            "walkthrough `{name}`: the annotation {e:?} on README line {line} was never reached"
        );
    }
}

fn temp_dir(name: &str) -> TempDir {
    citadel_testkit::temp_dir(&format!("readme-{name}"))
}

#[test]
fn the_readme_has_its_walkthroughs() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let names: Vec<&str> = w.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["capabilities", "main", "plugins", "two-nodes", "workflows"]
    );
    // Annotations are read where they stand: a few the README must keep.
    let main = &w["main"];
    let expected: Vec<&Expect> = main.expectations.values().collect();
    assert!(expected.contains(&&Expect::Http(422)), "{expected:?}");
    assert!(expected.contains(&&Expect::Http(423)), "{expected:?}");
    assert!(expected.contains(&&Expect::Exit(1)), "{expected:?}");
}

#[test]
fn the_splitter_joins_continued_lines_and_reads_annotations() {
    let body = [
        (1, "curl -s a \\"),
        (2, "  -d '{"),
        (3, "  \"x\": \"# not a comment\"}'   # → 201 created"),
        (4, "for i in 1 2; do"),
        (5, "  citadel check x.js   # → exit 1"),
        (6, "done"),
        (7, "echo a |"),
        (8, "  cat   # prints a"),
        (9, "citadel check y.js   # → exit 4: rejected"),
    ];
    let mut w = Walkthrough::default();
    split_commands(&body, &mut w);
    let starts: Vec<usize> = w.commands.iter().map(|c| c.line).collect();
    assert_eq!(starts, [1, 4, 5, 6, 7, 9]);
    assert_eq!(
        w.expectations.into_iter().collect::<Vec<_>>(),
        [
            (1, Expect::Http(201)),
            (5, Expect::Exit(1)),
            (9, Expect::Exit(4))
        ]
    );
}

/// Sections "First steps" to "Using the CLI", against one `citadel serve`
/// on a fresh data directory.
#[test]
fn the_main_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let dir = temp_dir("main");
    let data = dir.path().join("citadel-data");
    let port = citadel_testkit::free_port();
    let server = Proc(
        Command::new(env!("CARGO_BIN_EXE_citadel"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir.path())
            .env("CITADEL_DATA_DIR", &data)
            .env_remove("CITADEL_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_for("the server", 60, || {
        common::request(port, "GET", "/health", None, None).0 == 200
    });
    run(
        "main",
        &w["main"],
        dir.path(),
        &[("CITADEL_DATA_DIR", data.display().to_string())],
        &[
            ("localhost:8080", format!("127.0.0.1:{port}")),
            ("127.0.0.1:8080", format!("127.0.0.1:{port}")),
        ],
    );
    // The server lived through all of it.
    assert_eq!(common::request(port, "GET", "/health", None, None).0, 200);
    drop(server);
}

/// "Capabilities": the seed's example (a data source, a secret, a fetch to
/// this very server, the key-value store, events) against a server the
/// walkthrough starts itself on a fresh data directory.
#[test]
fn the_capabilities_walkthrough_runs_as_written() {
    if std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_err()
    {
        citadel_testkit::skip(
            "the capabilities walkthrough needs the sqlite3 command (apt-get install sqlite3)",
        );
        return;
    }
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let dir = temp_dir("capabilities");
    let data = dir.path().join("citadel-data");
    let port = citadel_testkit::free_port();
    run(
        "capabilities",
        &w["capabilities"],
        dir.path(),
        &[("CITADEL_DATA_DIR", data.display().to_string())],
        &[
            ("localhost:8082", format!("127.0.0.1:{port}")),
            ("127.0.0.1:8082", format!("127.0.0.1:{port}")),
        ],
    );
    // The master key was generated in the data directory, for its owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// "Workflows": the seed's workflows through the API, an approval decided
/// by another person, against a server the walkthrough starts itself.
#[test]
fn the_workflows_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let dir = temp_dir("workflows");
    let data = dir.path().join("citadel-data");
    let port = citadel_testkit::free_port();
    run(
        "workflows",
        &w["workflows"],
        dir.path(),
        &[("CITADEL_DATA_DIR", data.display().to_string())],
        &[
            ("localhost:8083", format!("127.0.0.1:{port}")),
            ("127.0.0.1:8083", format!("127.0.0.1:{port}")),
        ],
    );
}

/// "Plugins": the welcome-email example installed, configured, enabled,
/// its route called and its hook fired against a local mail-API stand-in.
#[test]
fn the_plugins_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let dir = temp_dir("plugins");
    let data = dir.path().join("citadel-data");
    let port = citadel_testkit::free_port();
    run(
        "plugins",
        &w["plugins"],
        dir.path(),
        &[("CITADEL_DATA_DIR", data.display().to_string())],
        &[
            ("localhost:8084", format!("127.0.0.1:{port}")),
            ("127.0.0.1:8084", format!("127.0.0.1:{port}")),
        ],
    );
}

/// "The queue and many nodes": two nodes on one PostgreSQL database, one
/// killed mid-run, the other finishing every job.
#[test]
fn the_two_node_walkthrough_runs_as_written() {
    let Some(cluster) = pg::Cluster::start_or_skip() else {
        return;
    };
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let w = walkthroughs(&readme);
    let dir = temp_dir("nodes");
    let (first, second) = two_free_ports();
    run(
        "two-nodes",
        &w["two-nodes"],
        dir.path(),
        &[(
            "CITADEL_DATA_DIR",
            dir.path().join("unused").display().to_string(),
        )],
        &[
            (
                "postgres://citadel:secret@localhost/citadel",
                cluster.url("postgres"),
            ),
            ("localhost:8080", format!("127.0.0.1:{first}")),
            ("127.0.0.1:8080", format!("127.0.0.1:{first}")),
            ("localhost:8081", format!("127.0.0.1:{second}")),
            ("127.0.0.1:8081", format!("127.0.0.1:{second}")),
        ],
    );
}

/// Two distinct ports nothing listens on now.
fn two_free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}
