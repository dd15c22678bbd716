//! A throwaway PostgreSQL cluster for tests (shared by the store's
//! conformance tests and the process tests of `citadel`): `initdb` in a
//! temporary directory, run as the `postgres` user when the tests run as
//! root (the tools refuse root), stopped and removed on drop — or, for the
//! one a whole test binary shares ([`shared`]), when the process exits.

// Each test crate including this module uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
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

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the
/// tools refuse to run as root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let program = bin.join(tool);
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
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
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let data = std::env::temp_dir().join(format!("citadel-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&data).unwrap();
        // SAFETY: plain system call.
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = data.to_str().unwrap();
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

    /// A cluster, or `None` (saying so) where PostgreSQL is not installed.
    pub fn start_or_skip() -> Option<Cluster> {
        match postgres_bin() {
            Some(bin) => Some(Cluster::start(bin)),
            None => {
                let why = "no PostgreSQL server binaries under /usr/lib/postgresql (install the `postgresql` package)";
                // CI installs them; there a skip would hide a broken set-up.
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                println!("SKIPPED: {why}");
                None
            }
        }
    }

    /// Starts the server (again, after [`Cluster::crash`]).
    pub fn start_server(&self) {
        let d = self.data.to_str().unwrap();
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
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
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
    /// Stops the server and removes its directory.
    fn remove(&self) {
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.remove();
    }
}

static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();

/// One cluster for every test of this binary, started by the first caller
/// and removed when the process exits (statics are never dropped); `None`
/// as [`Cluster::start_or_skip`] decides. Under `CI=true` a missing
/// PostgreSQL panics in every caller, so each test fails.
pub fn shared() -> Option<&'static Cluster> {
    extern "C" fn remove_shared() {
        if let Some(Some(cluster)) = SHARED.get() {
            cluster.remove();
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
