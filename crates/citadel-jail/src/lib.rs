//! A Linux process jail for commands and for Citadel's own sandbox hosts.
//!
//! A jailed process starts in new mount, pid, net, ipc and uts namespaces
//! (and a user namespace where the kernel allows), sees a read-only view of
//! the system directories with private tmpfs `/work` and `/tmp`, runs as an
//! unprivileged user with `no_new_privs`, a seccomp filter, rlimits and —
//! where cgroups are writable — a cgroup with memory, pids and CPU limits. The
//! whole jail dies at its wall-clock deadline.
//!
//! What the kernel allows is probed once ([`Isolation::probe`]); the jail uses
//! every layer that was detected and never silently fewer. With
//! [`JailConfig::required`] it refuses to start without namespaces.
//!
//! This crate knows nothing of scripts, tenants, HTTP or SQL.

mod cgroup;
mod probe;
mod seccomp;
mod spawn;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use probe::Isolation;

/// For a short-lived process about to start its first jail (a one-shot
/// `citadel run`): call it first thing, so the kernel's first-migration
/// wait overlaps the start-up instead of the jail's set-up. Once per
/// process; a no-op without writable cgroups.
pub fn warm_cgroup_attach() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(cgroup::warm_attach);
}
pub use seccomp::Profile;
pub use spawn::{JailedProcess, ProcessSpec, restrict_self};

/// Errors of the jail itself (not of the jailed command).
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("the jail is required but this kernel allows no namespaces: {0}")]
    Unavailable(String),
    #[error("invalid command: {0}")]
    Invalid(String),
    #[error("could not build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("could not start the jailed process: {0}")]
    Spawn(#[from] std::io::Error),
}

/// How a jail is set up.
#[derive(Debug, Clone)]
pub struct JailConfig {
    /// Refuse to run anything when namespaces are unavailable.
    pub required: bool,
    /// Directories bound read-only into the jail (those that exist). Symlinks
    /// (as in a merged `/usr`) are recreated as symlinks.
    pub read_only: Vec<PathBuf>,
    /// Size of the private `/work` and `/tmp` tmpfs mounts.
    pub tmpfs_bytes: u64,
}

impl Default for JailConfig {
    fn default() -> Self {
        JailConfig {
            required: false,
            read_only: ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            tmpfs_bytes: 64 << 20,
        }
    }
}

/// Limits of one jailed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    /// Wall-clock time until the whole jail is killed.
    pub wall: Duration,
    /// CPU seconds (RLIMIT_CPU, and the cgroup's CPU share where available).
    pub cpu_seconds: u64,
    /// Address space (RLIMIT_AS) and the cgroup memory limit.
    pub memory_bytes: u64,
    /// Largest file the command may write.
    pub file_bytes: u64,
    /// Open file descriptors.
    pub open_files: u64,
    /// Processes and threads (cgroup pids limit, RLIMIT_NPROC).
    pub processes: u64,
    /// Bytes of stdout and of stderr kept; the rest is read and dropped.
    pub output_bytes: usize,
}

impl Default for CommandLimits {
    fn default() -> Self {
        CommandLimits {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 512 << 20,
            file_bytes: 16 << 20,
            open_files: 256,
            processes: 64,
            output_bytes: 1 << 20,
        }
    }
}

/// A command to run in the jail.
#[derive(Debug, Clone, Default)]
pub struct CommandSpec {
    /// The program, looked up on `PATH` inside the jail.
    pub program: String,
    pub args: Vec<String>,
    /// Environment; nothing of the caller's environment leaks in.
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    /// Files written into `/work` before the command starts.
    pub files: Vec<(String, Vec<u8>)>,
    pub limits: CommandLimits,
    /// Keep the host's network (no new network namespace).
    pub network: bool,
}

/// How a jailed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (e.g. SIGXCPU at the CPU limit, SIGKILL from the
    /// memory cgroup).
    Signal(i32),
    /// The wall-clock deadline passed and the jail was killed.
    TimedOut,
}

/// What a jailed command produced.
#[derive(Debug, Clone, Serialize)]
pub struct CommandOutput {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration: Duration,
    /// The memory cgroup killed something in the jail.
    pub oom_killed: bool,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs commands in jails.
#[derive(Debug, Clone)]
pub struct Jail {
    config: JailConfig,
    isolation: Isolation,
}

impl Jail {
    /// Probes the kernel and checks the configuration against it.
    pub fn new(config: JailConfig) -> Result<Jail, JailError> {
        let isolation = Isolation::probe();
        if config.required && !isolation.namespaces() {
            return Err(JailError::Unavailable(isolation.summary()));
        }
        Ok(Jail { config, isolation })
    }

    /// The layers every jail of this process gets.
    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    pub fn config(&self) -> &JailConfig {
        &self.config
    }

    /// Runs a command to completion in a fresh jail.
    pub async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, JailError> {
        spawn::run_command(self, spec).await
    }

    /// Starts a long-running process in a fresh jail; the caller owns its
    /// lifetime (dropping the handle kills the jail).
    pub fn spawn(&self, spec: ProcessSpec) -> Result<JailedProcess, JailError> {
        spawn::start(self, spec, &[])
    }
}
