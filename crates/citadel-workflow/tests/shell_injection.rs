//! Shell injection through inputs, in every quoting context: each hostile
//! value is rendered into a command and the command is really run with
//! `/bin/sh -c` in an empty directory. It must print the value literally and
//! leave the directory empty.

use std::process::Command;

use citadel_workflow::{Quoting, Scope, ShellCommand};
use serde_json::json;

/// Values that would run something, or split or end a word, if spliced.
const HOSTILE: &[&str] = &[
    "Developer",
    "x'; touch pwned; echo '",
    "x\"; touch pwned; echo \"",
    "$(touch pwned)",
    "`touch pwned`",
    "${IFS}touch${IFS}pwned",
    "a\ntouch pwned",
    "a\r\ntouch pwned\r\n",
    "; touch pwned",
    "&& touch pwned",
    "| touch pwned",
    "> pwned",
    "< /etc/passwd",
    "'",
    "\"",
    "\\",
    "\\'",
    "'\\''",
    "\\\"",
    "$HOME",
    "$((1+1))",
    "*",
    "~",
    "-n",
    "",
    " leading and trailing ",
    "#not a comment",
    "!!",
    "{a,b}",
    "$'\\x41'",
    "\u{e9}t\u{e9} \u{1f600}",
    "a\tb",
];

/// (template, what it prints before and after the value, how many times
/// the value is printed, the quoting contexts)
const TEMPLATES: &[(&str, &str, &str, usize, &[Quoting])] = &[
    (
        "printf '%s' {{ inputs.v }}",
        "",
        "",
        1,
        &[Quoting::Unquoted],
    ),
    (
        "printf '%s' pre{{ inputs.v }}post",
        "pre",
        "post",
        1,
        &[Quoting::Unquoted],
    ),
    (
        "printf '%s' 'Hello {{ inputs.v }}!'",
        "Hello ",
        "!",
        1,
        &[Quoting::SingleQuoted],
    ),
    (
        "printf '%s' \"Hello {{ inputs.v }}!\"",
        "Hello ",
        "!",
        1,
        &[Quoting::DoubleQuoted],
    ),
    (
        "X={{ inputs.v }}; printf '%s' \"$X\"",
        "",
        "",
        1,
        &[Quoting::Unquoted],
    ),
    (
        "printf '%s' \"{{ inputs.v }}\"'{{ inputs.v }}'{{ inputs.v }}",
        "",
        "",
        3,
        &[
            Quoting::DoubleQuoted,
            Quoting::SingleQuoted,
            Quoting::Unquoted,
        ],
    ),
    (
        "printf '%s' \"it's \\\"{{ inputs.v }}\\\"\"",
        "it's \"",
        "\"",
        1,
        &[Quoting::DoubleQuoted],
    ),
];

fn run(command: &str) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let created = std::fs::read_dir(dir.path()).unwrap().next().is_some();
    (String::from_utf8_lossy(&out.stdout).into_owned(), created)
}

#[test]
fn every_hostile_value_prints_literally_in_every_context() {
    for (template, before, after, times, contexts) in TEMPLATES {
        let cmd = ShellCommand::parse(template).unwrap();
        assert_eq!(cmd.contexts(), *contexts, "{template}");
        for value in HOSTILE {
            let scope = Scope::with_inputs(json!({ "v": value }).as_object().cloned().unwrap());
            let rendered = cmd.render(&scope).unwrap();
            let (stdout, created) = run(&rendered);
            assert_eq!(
                stdout,
                format!("{before}{}{after}", value.repeat(*times)),
                "{template} with {value:?} rendered as {rendered:?}"
            );
            assert!(!created, "{rendered:?} created a file");
        }
    }
}

#[test]
fn the_seed_hello_world_prints_hello_developer() {
    let cmd = ShellCommand::parse("echo 'Hello {{ inputs.name }}!'").unwrap();
    let scope = Scope::with_inputs(json!({ "name": "Developer" }).as_object().cloned().unwrap());
    assert_eq!(run(&cmd.render(&scope).unwrap()).0, "Hello Developer!\n");
}

#[test]
fn a_nul_byte_is_refused() {
    let cmd = ShellCommand::parse("echo {{ inputs.v }}").unwrap();
    let scope = Scope::with_inputs(json!({ "v": "a\u{0}b" }).as_object().cloned().unwrap());
    assert!(cmd.render(&scope).is_err());
}
