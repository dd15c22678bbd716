//! A throwaway PostgreSQL cluster: `initdb` in a temporary directory, run
//! as the `postgres` user when the tests run as root (the tools refuse
//! root), stopped and removed on drop — or, for the one a whole test binary
//! shares ([`shared`]), when the process exits.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TempDir;

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
pub struct Cluster {
    bin: PathBuf,
    data: TempDir,
    pub port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    // SAFETY: a plain system call with no arguments and no memory access.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the
/// tools refuse to run as root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let program = bin.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
}

impl Cluster {
    fn start(bin: PathBuf) -> Cluster {
        let data = crate::temp_dir("pg");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(data.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = crate::free_port();
        let d = data.path().to_str().unwrap();
        let out = pg_tool(
            &bin,
            "initdb",
            &["-D", d, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { bin, data, port };
        cluster.start_server();
        cluster
    }

    /// A cluster, or `None` (saying so) where PostgreSQL is not installed;
    /// under `CI=true`, which installs it, a failure instead.
    pub fn start_or_skip() -> Option<Cluster> {
        match postgres_bin() {
            Some(bin) => Some(Cluster::start(bin)),
            None => {
                crate::skip(
                    "no PostgreSQL server binaries under /usr/lib/postgresql (install the `postgresql` package)",
                );
                None
            }
        }
    }

    fn data(&self) -> &str {
        self.data.path().to_str().unwrap()
    }

    /// Starts the server (again, after [`Cluster::crash`]).
    pub fn start_server(&self) {
        let d = self.data();
        let opts = format!(
            "-p {} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port
        );
        let log = format!("{d}/server.log");
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", d, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once, as a crash would (no shutdown checkpoint;
    /// committed work survives in the WAL).
    pub fn crash(&self) {
        let out = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Cluster {
    fn stop_now(&self) {
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data(), "-m", "immediate", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The directory goes with `self.data`, once the server has stopped.
        self.stop_now();
    }
}

static SHARED: std::sync::OnceLock<Option<Cluster>> = std::sync::OnceLock::new();

/// One cluster for every test of this binary (each test then creates its
/// own database), started by the first caller and removed when the process
/// exits, since statics are never dropped; `None` as
/// [`Cluster::start_or_skip`] decides. Under `CI=true` a missing PostgreSQL
/// panics in every caller, so each test fails.
pub fn shared() -> Option<&'static Cluster> {
    extern "C" fn remove_shared() {
        if let Some(Some(cluster)) = SHARED.get() {
            cluster.stop_now();
            let _ = std::fs::remove_dir_all(cluster.data.path());
        }
    }
    SHARED
        .get_or_init(|| {
            let cluster = Cluster::start_or_skip()?;
            // SAFETY: registers a function that takes no arguments and
            // touches only the initialised static.
            let registered = unsafe { libc::atexit(remove_shared) };
            assert_eq!(registered, 0, "atexit");
            Some(cluster)
        })
        .as_ref()
}
