//! Per-jail cgroups with memory, pids and CPU limits, where the cgroup
//! filesystem is writable (v1 controllers or a v2 unified hierarchy).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupKind {
    V1,
    V2,
}

const ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

fn try_dir(path: &Path) -> bool {
    let probe = path.join(format!("citadel-probe-{}", std::process::id()));
    let ok = std::fs::create_dir_all(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    ok
}

/// Which cgroup layout jails can use, if any.
pub(crate) fn probe() -> Option<CgroupKind> {
    let root = Path::new(ROOT);
    if V1_CONTROLLERS
        .iter()
        .all(|c| root.join(c).join("cgroup.procs").is_file())
        && V1_CONTROLLERS
            .iter()
            .all(|c| try_dir(&root.join(c).join("citadel")))
    {
        return Some(CgroupKind::V1);
    }
    if root.join("cgroup.controllers").is_file() && try_dir(&root.join("citadel")) {
        let parent = root.join("citadel");
        // Delegate the controllers to the jails below.
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids +cpu");
        let enabled =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        if enabled.contains("memory") && enabled.contains("pids") {
            return Some(CgroupKind::V2);
        }
    }
    None
}

/// One jail's cgroup(s); removed on drop after killing whatever is left.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` files the child writes `0` to, to join.
    pub(crate) procs: Vec<CString>,
    memory_dir: PathBuf,
    kind: CgroupKind,
}

impl Cgroup {
    pub(crate) fn create(kind: CgroupKind, memory: u64, pids: u64) -> std::io::Result<Cgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "jail-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let root = Path::new(ROOT);
        let (dirs, memory_dir) = match kind {
            CgroupKind::V1 => {
                let dirs: Vec<PathBuf> = V1_CONTROLLERS
                    .iter()
                    .map(|c| root.join(c).join("citadel").join(&name))
                    .collect();
                for d in &dirs {
                    std::fs::create_dir_all(d)?;
                }
                std::fs::write(dirs[0].join("memory.limit_in_bytes"), memory.to_string())?;
                // Without swap accounting this file is absent; the limit above holds.
                let _ = std::fs::write(
                    dirs[0].join("memory.memsw.limit_in_bytes"),
                    memory.to_string(),
                );
                std::fs::write(dirs[1].join("pids.max"), pids.to_string())?;
                // At most one core's worth of CPU at any moment.
                std::fs::write(dirs[2].join("cpu.cfs_period_us"), "100000")?;
                std::fs::write(dirs[2].join("cpu.cfs_quota_us"), "100000")?;
                let memory_dir = dirs[0].clone();
                (dirs, memory_dir)
            }
            CgroupKind::V2 => {
                let dir = root.join("citadel").join(&name);
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("memory.max"), memory.to_string())?;
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                std::fs::write(dir.join("pids.max"), pids.to_string())?;
                let _ = std::fs::write(dir.join("cpu.max"), "100000 100000");
                (vec![dir.clone()], dir)
            }
        };
        let procs = dirs
            .iter()
            .map(|d| {
                CString::new(d.join("cgroup.procs").into_os_string().into_encoded_bytes())
                    .expect("no NUL in cgroup path")
            })
            .collect();
        Ok(Cgroup {
            dirs,
            procs,
            memory_dir,
            kind,
        })
    }

    /// True when the memory controller killed a process of this cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        let (file, key) = match self.kind {
            CgroupKind::V1 => ("memory.oom_control", "oom_kill "),
            CgroupKind::V2 => ("memory.events", "oom_kill "),
        };
        std::fs::read_to_string(self.memory_dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    }

    /// Kills every process still in the cgroup.
    pub(crate) fn kill_all(&self) {
        for dir in &self.dirs {
            for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
            {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: plain system call.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for attempt in 0..50 {
            self.kill_all();
            if self
                .dirs
                .iter()
                .all(|d| std::fs::remove_dir(d).is_ok() || !d.exists())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(if attempt < 10 { 1 } else { 10 }));
        }
    }
}
