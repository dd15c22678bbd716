//! What this kernel lets us use, found by trying each layer in a throwaway
//! child process.

use std::sync::OnceLock;

use serde::Serialize;

use crate::cgroup::{self, CgroupKind};

/// The isolation layers available to jails in this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Isolation {
    /// Running as root: jails drop to `nobody` after setting up.
    pub root: bool,
    pub user_ns: bool,
    pub mount_ns: bool,
    pub pid_ns: bool,
    pub net_ns: bool,
    pub ipc_ns: bool,
    pub uts_ns: bool,
    pub seccomp: bool,
    pub no_new_privs: bool,
    /// Cgroup memory, pids and CPU limits (`v1` or `v2`), when writable.
    pub cgroups: Option<CgroupKind>,
    /// Always available.
    pub rlimits: bool,
}

impl Isolation {
    /// Probes once per process.
    pub fn probe() -> Isolation {
        static PROBED: OnceLock<Isolation> = OnceLock::new();
        PROBED.get_or_init(probe).clone()
    }

    /// True when the namespaces that make the filesystem view and pid
    /// isolation work are all there.
    pub fn namespaces(&self) -> bool {
        self.mount_ns
            && self.pid_ns
            && self.net_ns
            && self.ipc_ns
            && self.uts_ns
            && (self.root || self.user_ns)
    }

    /// One line per layer: `name: active` or `name: unavailable`.
    pub fn layers(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("user namespace", self.user_ns),
            ("mount namespace + read-only view", self.mount_ns),
            ("pid namespace", self.pid_ns),
            ("network namespace", self.net_ns),
            ("ipc namespace", self.ipc_ns),
            ("uts namespace", self.uts_ns),
            ("seccomp-bpf", self.seccomp),
            ("no_new_privs", self.no_new_privs),
            ("cgroup limits", self.cgroups.is_some()),
            ("rlimits", self.rlimits),
        ]
    }

    pub fn summary(&self) -> String {
        self.layers()
            .iter()
            .map(|(name, on)| format!("{name}: {}", if *on { "active" } else { "unavailable" }))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs each test in a forked child of its own, all at once, and reports
/// which exited 0 (the children are independent, so their set-up and exit
/// overlap instead of queuing one after another on the caller's path).
///
/// The children only make system calls, so forking a multithreaded process
/// is safe here.
fn in_children<const N: usize>(tests: [fn() -> bool; N]) -> [bool; N] {
    let mut pids = [-1 as libc::pid_t; N];
    for (pid, test) in pids.iter_mut().zip(tests) {
        // SAFETY: the child calls only async-signal-safe functions and `_exit`s.
        unsafe {
            *pid = libc::fork();
            if *pid == 0 {
                libc::_exit(if test() { 0 } else { 1 });
            }
        }
    }
    pids.map(|pid| {
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        // SAFETY: waiting for a child of ours.
        unsafe {
            while libc::waitpid(pid, &mut status, 0) < 0 {
                if *libc::__errno_location() != libc::EINTR {
                    return false;
                }
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    })
}

fn unshare(flags: libc::c_int) -> bool {
    // SAFETY: plain system call.
    unsafe { libc::unshare(flags) == 0 }
}

/// Enters a user namespace first when not root, as an unprivileged jail does.
fn prepare() -> bool {
    // SAFETY: plain system calls.
    unsafe { libc::geteuid() == 0 || libc::unshare(libc::CLONE_NEWUSER) == 0 }
}

fn probe() -> Isolation {
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    let user_ns: fn() -> bool = if root {
        || {
            // As a jail does it: drop to nobody, then a user namespace.
            // SAFETY: plain system calls in a throwaway child.
            unsafe {
                libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setresgid(65534, 65534, 65534) == 0
                    && libc::setresuid(65534, 65534, 65534) == 0
                    && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0
                    && libc::unshare(libc::CLONE_NEWUSER) == 0
            }
        }
    } else {
        || unshare(libc::CLONE_NEWUSER)
    };
    let mount_ns = || {
        prepare()
            && unshare(libc::CLONE_NEWNS)
            // SAFETY: plain system call; the mount namespace is the child's own.
            && unsafe {
                libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) == 0
            }
    };
    let pid_ns = || {
        if !(prepare() && unshare(libc::CLONE_NEWPID)) {
            return false;
        }
        // SAFETY: fork in a single-threaded child; the grandchild exits at once.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(if libc::getpid() == 1 { 0 } else { 1 });
            }
            let mut status = 0;
            pid > 0
                && libc::waitpid(pid, &mut status, 0) == pid
                && libc::WIFEXITED(status)
                && libc::WEXITSTATUS(status) == 0
        }
    };
    let [
        user_ns,
        mount_ns,
        pid_ns,
        net_ns,
        ipc_ns,
        uts_ns,
        no_new_privs,
        seccomp,
    ] = in_children([
        user_ns,
        mount_ns,
        pid_ns,
        || prepare() && unshare(libc::CLONE_NEWNET),
        || prepare() && unshare(libc::CLONE_NEWIPC),
        || prepare() && unshare(libc::CLONE_NEWUTS),
        // SAFETY: plain system call in a throwaway child.
        || unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 },
        crate::seccomp::probe,
    ]);
    Isolation {
        root,
        user_ns,
        mount_ns,
        pid_ns,
        net_ns,
        ipc_ns,
        uts_ns,
        seccomp,
        no_new_privs,
        cgroups: cgroup::probe(),
        rlimits: true,
    }
}
