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

/// Starts, on a thread of its own, a write of this process into the
/// cgroup it is already in: a no-op move that takes the kernel's global
/// cgroup-migration lock. That lock's first writer waits out an RCU grace
/// period (5–15 ms measured here) holding the cgroup mutex, which every
/// cgroup `mkdir` waits for too; writers soon after it do not wait. Done
/// once, early, the wait overlaps the process's start-up instead of
/// sitting between a jail's cgroup set-up and its child's join. Anything
/// that fails here is ignored: the join itself still works.
pub(crate) fn warm_attach() {
    let _ = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(|| {
            let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
                return;
            };
            let Some(procs) = own_procs_file(&own) else {
                return;
            };
            let _ = std::fs::write(procs, "0");
        });
}

/// The `cgroup.procs` of the cgroup `/proc/self/cgroup` puts this process
/// in: its v1 memory controller's, else its v2 unified hierarchy's.
fn own_procs_file(own: &str) -> Option<PathBuf> {
    let mut unified = None;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(
                Path::new(ROOT)
                    .join("memory")
                    .join(path)
                    .join("cgroup.procs"),
            );
        }
        if controllers.is_empty() {
            unified = Some(Path::new(ROOT).join(path).join("cgroup.procs"));
        }
    }
    unified
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_cgroup_is_the_v1_memory_controllers_else_the_unified_one() {
        let v1 = "9:name=systemd:/\n4:memory:/ci/job\n0::/ignored\n";
        assert_eq!(
            own_procs_file(v1),
            Some(PathBuf::from("/sys/fs/cgroup/memory/ci/job/cgroup.procs"))
        );
        let v1_joined = "3:cpu,memory:/\n";
        assert_eq!(
            own_procs_file(v1_joined),
            Some(PathBuf::from("/sys/fs/cgroup/memory/cgroup.procs"))
        );
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            own_procs_file(v2),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/session-1.scope/cgroup.procs"
            ))
        );
        assert_eq!(own_procs_file("garbage"), None);
        assert_eq!(own_procs_file(""), None);
    }
}
