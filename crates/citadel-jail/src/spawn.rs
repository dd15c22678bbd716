//! Starting a process inside a jail.
//!
//! Everything the child needs is prepared in the parent ([`Plan`]) so that
//! between `fork` and `exec` the child only makes system calls: no
//! allocation, no locks (the parent is multithreaded).

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use seccompiler::BpfProgram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::cgroup::Cgroup;
use crate::seccomp::{self, Profile};
use crate::{CommandOutput, CommandSpec, Exit, Jail, JailError};

const NOBODY: libc::uid_t = 65534;
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn cstring(bytes: impl Into<Vec<u8>>) -> Result<CString, JailError> {
    CString::new(bytes).map_err(|_| JailError::Invalid("a path or name contains a NUL byte".into()))
}

fn path_c(path: &Path) -> Result<CString, JailError> {
    cstring(path.as_os_str().as_bytes())
}

/// One step of building the filesystem view under the new root.
#[derive(Debug)]
enum Entry {
    /// Bind `src` read-only at `dst`.
    Bind {
        src: CString,
        dst: CString,
    },
    /// A device node bound onto an empty file.
    Device {
        src: CString,
        dst: CString,
    },
    Symlink {
        target: CString,
        dst: CString,
    },
    Tmpfs {
        dst: CString,
    },
    Proc {
        dst: CString,
    },
}

#[derive(Debug)]
struct MountPlan {
    new_root: CString,
    old_root: CString,
    root_options: CString,
    tmpfs_options: CString,
    entries: Vec<Entry>,
}

/// Everything the child does between `fork` and `exec`, computed up front.
#[derive(Debug)]
pub(crate) struct Plan {
    root: bool,
    /// Namespaces to unshare (with `CLONE_NEWUSER` first when not root).
    ns_flags: libc::c_int,
    /// Not root: the user namespace comes with the others, mapping our uid.
    early_user_ns: bool,
    /// Root: after dropping to nobody, a user namespace of its own.
    late_user_ns: bool,
    uid_map: CString,
    gid_map: CString,
    pid_ns: bool,
    mounts: Option<MountPlan>,
    uts: bool,
    files: Vec<(CString, Vec<u8>)>,
    workdir: CString,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    cgroup_procs: Vec<CString>,
    no_new_privs: bool,
    seccomp: Option<BpfProgram>,
    /// Descriptors passed on: (descriptor in the parent, number in the child).
    inherit: Vec<(libc::c_int, libc::c_int)>,
}

/// The directory the child mounts its new root on (inside its own mount
/// namespace, so the host never sees anything mounted there).
fn root_mount_point() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join("citadel-jail-root");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl Plan {
    pub(crate) fn new(
        jail: &Jail,
        network: bool,
        profile: Profile,
        limits: &crate::CommandLimits,
    ) -> Result<Plan, JailError> {
        let iso = jail.isolation();
        let mut ns_flags = 0;
        let mut add = |on: bool, flag: libc::c_int| {
            if on {
                ns_flags |= flag;
            }
        };
        // Without root the other namespaces need a user namespace.
        let can_ns = iso.root || iso.user_ns;
        add(can_ns && iso.mount_ns, libc::CLONE_NEWNS);
        add(can_ns && iso.pid_ns, libc::CLONE_NEWPID);
        add(can_ns && iso.net_ns && !network, libc::CLONE_NEWNET);
        add(can_ns && iso.ipc_ns, libc::CLONE_NEWIPC);
        add(can_ns && iso.uts_ns, libc::CLONE_NEWUTS);
        // SAFETY: plain system calls.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (uid_map, gid_map) = if iso.root {
            (
                cstring(format!("{NOBODY} {NOBODY} 1\n"))?,
                cstring(format!("{NOBODY} {NOBODY} 1\n"))?,
            )
        } else {
            (
                cstring(format!("{uid} {uid} 1\n"))?,
                cstring(format!("{gid} {gid} 1\n"))?,
            )
        };

        let mounts = if ns_flags & libc::CLONE_NEWNS != 0 {
            let new_root = root_mount_point()?;
            let mut entries = Vec::new();
            for dir in &jail.config().read_only {
                let Ok(meta) = std::fs::symlink_metadata(dir) else {
                    continue;
                };
                let rel = dir.strip_prefix("/").unwrap_or(dir);
                let dst = path_c(&new_root.join(rel))?;
                if meta.file_type().is_symlink() {
                    entries.push(Entry::Symlink {
                        target: path_c(&std::fs::read_link(dir)?)?,
                        dst,
                    });
                } else if meta.is_dir() {
                    entries.push(Entry::Bind {
                        src: path_c(dir)?,
                        dst,
                    });
                }
            }
            entries.push(Entry::Tmpfs {
                dst: path_c(&new_root.join("dev"))?,
            });
            for dev in ["null", "zero", "random", "urandom"] {
                let src = Path::new("/dev").join(dev);
                if src.exists() {
                    entries.push(Entry::Device {
                        src: path_c(&src)?,
                        dst: path_c(&new_root.join("dev").join(dev))?,
                    });
                }
            }
            entries.push(Entry::Tmpfs {
                dst: path_c(&new_root.join("tmp"))?,
            });
            entries.push(Entry::Tmpfs {
                dst: path_c(&new_root.join("work"))?,
            });
            if ns_flags & libc::CLONE_NEWPID != 0 {
                entries.push(Entry::Proc {
                    dst: path_c(&new_root.join("proc"))?,
                });
            }
            Some(MountPlan {
                old_root: path_c(&new_root.join(".old"))?,
                new_root: path_c(&new_root)?,
                root_options: cstring("size=1m,mode=0755")?,
                tmpfs_options: cstring(format!("size={},mode=1777", jail.config().tmpfs_bytes))?,
                entries,
            })
        } else {
            None
        };

        let seccomp = if iso.seccomp {
            Some(seccomp::build(profile).map_err(JailError::Seccomp)?)
        } else {
            None
        };
        let mut rlimits = vec![
            (libc::RLIMIT_AS, limits.memory_bytes),
            (libc::RLIMIT_CPU, limits.cpu_seconds.max(1)),
            (libc::RLIMIT_FSIZE, limits.file_bytes),
            (libc::RLIMIT_NOFILE, limits.open_files),
            (libc::RLIMIT_CORE, 0),
        ];
        // RLIMIT_NPROC counts every process of the user, across all jails;
        // the pids cgroup limits one jail. Only without cgroups is the
        // per-user limit the best there is.
        if iso.cgroups.is_none() {
            rlimits.push((libc::RLIMIT_NPROC, limits.processes));
        }
        Ok(Plan {
            root: iso.root,
            ns_flags,
            early_user_ns: !iso.root && iso.user_ns,
            late_user_ns: iso.root && iso.user_ns && ns_flags != 0,
            uid_map,
            gid_map,
            pid_ns: ns_flags & libc::CLONE_NEWPID != 0,
            uts: ns_flags & libc::CLONE_NEWUTS != 0,
            mounts,
            files: Vec::new(),
            workdir: cstring("/work")?,
            rlimits,
            cgroup_procs: Vec::new(),
            no_new_privs: iso.no_new_privs,
            seccomp,
            inherit: Vec::new(),
        })
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `data` to an existing file. Async-signal-safe.
unsafe fn write_file(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: valid C string and buffer; plain system calls.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Creates a file with `data`. Async-signal-safe.
unsafe fn create_file(path: &CStr, data: &[u8], mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string and buffer; plain system calls.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            mode,
        );
        check(fd)?;
        let mut rest = data;
        while !rest.is_empty() {
            let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
            if n <= 0 {
                libc::close(fd);
                return Err(io::Error::last_os_error());
            }
            rest = &rest[n as usize..];
        }
        libc::close(fd);
        Ok(())
    }
}

unsafe fn mount(
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: valid C strings or null; plain system call.
    check(unsafe { libc::mount(ptr(src), dst.as_ptr(), ptr(fstype), flags, ptr(data).cast()) })
}

unsafe fn write_id_maps(plan: &Plan) -> io::Result<()> {
    // SAFETY: plain file writes in the child.
    unsafe {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", plan.uid_map.as_bytes())?;
        write_file(c"/proc/self/gid_map", plan.gid_map.as_bytes())
    }
}

unsafe fn build_view(m: &MountPlan) -> io::Result<()> {
    const RO: libc::c_ulong =
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: every call is a plain system call on prepared C strings.
    unsafe {
        mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        mount(
            Some(c"tmpfs"),
            &m.new_root,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(&m.root_options),
        )?;
        for e in &m.entries {
            match e {
                Entry::Bind { src, dst } => {
                    check(libc::mkdir(dst.as_ptr(), 0o755))?;
                    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
                    mount(None, dst, None, RO, None)?;
                }
                Entry::Device { src, dst } => {
                    create_file(dst, b"", 0o666)?;
                    mount(Some(src), dst, None, libc::MS_BIND, None)?;
                }
                Entry::Symlink { target, dst } => {
                    check(libc::symlink(target.as_ptr(), dst.as_ptr()))?
                }
                Entry::Tmpfs { dst } => {
                    check(libc::mkdir(dst.as_ptr(), 0o755))?;
                    mount(
                        Some(c"tmpfs"),
                        dst,
                        Some(c"tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some(&m.tmpfs_options),
                    )?;
                }
                Entry::Proc { dst } => {
                    check(libc::mkdir(dst.as_ptr(), 0o555))?;
                    mount(
                        Some(c"proc"),
                        dst,
                        Some(c"proc"),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        None,
                    )?;
                }
            }
        }
        check(libc::mkdir(m.old_root.as_ptr(), 0o700))?;
        check(libc::syscall(
            libc::SYS_pivot_root,
            m.new_root.as_ptr(),
            m.old_root.as_ptr(),
        ) as libc::c_int)?;
        check(libc::chdir(c"/".as_ptr()))?;
        check(libc::umount2(c"/.old".as_ptr(), libc::MNT_DETACH))?;
        check(libc::rmdir(c"/.old".as_ptr()))?;
        // Nothing outside /work, /tmp and /dev is writable.
        mount(
            None,
            c"/",
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            Some(&m.root_options),
        )?;
    }
    Ok(())
}

/// The intermediate process of a pid namespace: waits for the namespace's
/// init (the command) and dies the same way. Never returns.
unsafe fn mirror_exit(child: libc::pid_t) -> ! {
    // SAFETY: plain system calls; `_exit` ends the process.
    unsafe {
        // Inherited descriptors stay with the command only. In particular the
        // spawner's exec-status pipe must close here, or `spawn` would wait
        // for the whole command.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..4096 {
                libc::close(fd);
            }
        }
        let mut status = 0;
        loop {
            if libc::waitpid(child, &mut status, 0) == child {
                break;
            }
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        libc::signal(sig, libc::SIG_DFL);
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig)
    }
}

/// Runs in the child between `fork` and `exec`.
///
/// # Safety
/// Must only be called in a freshly forked child; it only makes system calls.
pub(crate) unsafe fn enter(plan: &Plan) -> io::Result<()> {
    // SAFETY: see the function's contract.
    unsafe {
        // Move every passed descriptor out of the way first, so a target
        // number never overwrites a source that is still to be moved.
        let mut moved = [0 as libc::c_int; 8];
        if plan.inherit.len() > moved.len() {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        for (i, (from, _)) in plan.inherit.iter().enumerate() {
            moved[i] = libc::fcntl(*from, libc::F_DUPFD_CLOEXEC, 512);
            check(moved[i])?;
        }
        for (i, (_, to)) in plan.inherit.iter().enumerate() {
            // `dup2` leaves the new descriptor without close-on-exec.
            check(libc::dup2(moved[i], *to))?;
        }
        check(libc::setpgid(0, 0))?;
        // The jail dies with its supervisor.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        for procs in &plan.cgroup_procs {
            write_file(procs, b"0")?;
        }
        if plan.early_user_ns {
            check(libc::unshare(libc::CLONE_NEWUSER | plan.ns_flags))?;
            write_id_maps(plan)?;
        } else if plan.ns_flags != 0 {
            check(libc::unshare(plan.ns_flags))?;
        }
        if plan.pid_ns {
            let pid = libc::fork();
            check(pid)?;
            if pid > 0 {
                mirror_exit(pid);
            }
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
        }
        if let Some(m) = &plan.mounts {
            build_view(m)?;
        }
        if plan.uts {
            check(libc::sethostname(c"citadel".as_ptr(), 7))?;
        }
        for (path, data) in &plan.files {
            create_file(path, data, 0o644)?;
        }
        for (resource, value) in &plan.rlimits {
            // The hard CPU limit comes a second after the soft one, so
            // SIGXCPU is followed by SIGKILL even for a handler that ignores it.
            let hard = if *resource == libc::RLIMIT_CPU {
                value + 1
            } else {
                *value
            };
            let limit = libc::rlimit {
                rlim_cur: *value,
                rlim_max: hard,
            };
            check(libc::setrlimit(*resource, &limit))?;
        }
        if plan.root {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(NOBODY, NOBODY, NOBODY))?;
            check(libc::setresuid(NOBODY, NOBODY, NOBODY))?;
            // Dropping root made the process non-dumpable, which would lock
            // it out of its own /proc/self files.
            check(libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0))?;
        }
        if plan.late_user_ns {
            check(libc::unshare(libc::CLONE_NEWUSER))?;
            write_id_maps(plan)?;
        }
        check(libc::chdir(plan.workdir.as_ptr()))?;
        if plan.no_new_privs {
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        if let Some(program) = &plan.seccomp {
            seccompiler::apply_filter(program)
                .map_err(|_| io::Error::from_raw_os_error(libc::EPERM))?;
        }
    }
    Ok(())
}

/// Reads a pipe to its end, keeping at most `cap` bytes.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, truncated),
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
}

/// A process started in a jail. Dropping it kills everything in the jail.
#[derive(Debug)]
pub struct JailedProcess {
    pub child: tokio::process::Child,
    pgid: Option<libc::pid_t>,
    cgroup: Option<Cgroup>,
    host_workdir: Option<PathBuf>,
}

impl JailedProcess {
    /// The process id (in the caller's pid namespace) of the jail's outer process.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills every process of the jail at once.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
        if let Some(pgid) = self.pgid {
            // SAFETY: plain system call.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }

    /// True when the memory cgroup killed something in the jail.
    pub fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(Cgroup::oom_killed)
    }
}

impl Drop for JailedProcess {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.host_workdir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A long-running process to start in a jail (see [`Jail::spawn`]).
#[derive(Debug)]
pub struct ProcessSpec {
    /// The program; `/proc/self/fd/N` runs an executable passed as descriptor N.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Descriptors passed on: (descriptor in the caller, number in the jail).
    pub fds: Vec<(i32, i32)>,
    pub limits: crate::CommandLimits,
    pub network: bool,
    pub profile: Profile,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// Starts a process in a fresh jail.
pub(crate) fn start(
    jail: &Jail,
    spec: ProcessSpec,
    files: &[(String, Vec<u8>)],
) -> Result<JailedProcess, JailError> {
    if spec.program.is_empty() {
        return Err(JailError::Invalid("no program".into()));
    }
    let limits = spec.limits;
    let mut plan = Plan::new(jail, spec.network, spec.profile, &limits)?;
    plan.inherit = spec.fds.clone();
    // Without a private /work, a private directory on the host stands in.
    let mut host_workdir = None;
    for (name, data) in files {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(JailError::Invalid(format!(
                "file name `{name}` must be a plain name"
            )));
        }
        plan.files
            .push((cstring(format!("/work/{name}"))?, data.clone()));
    }
    if plan.mounts.is_none() {
        let dir =
            std::env::temp_dir().join(format!("citadel-work-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir)?;
        if plan.root {
            // SAFETY: plain system call on a valid path.
            unsafe { libc::chown(path_c(&dir)?.as_ptr(), NOBODY, NOBODY) };
        }
        plan.workdir = path_c(&dir)?;
        for (path, _) in &mut plan.files {
            let name = &path.as_bytes()["/work/".len()..];
            *path = path_c(&dir.join(std::ffi::OsStr::from_bytes(name)))?;
        }
        host_workdir = Some(dir);
    }
    let cgroup = match jail.isolation().cgroups {
        Some(kind) => Some(Cgroup::create(kind, limits.memory_bytes, limits.processes)?),
        None => None,
    };
    if let Some(cg) = &cgroup {
        plan.cgroup_procs = cg.procs.clone();
    }

    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("HOME", "/work")
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(spec.stdin)
        .stdout(spec.stdout)
        .stderr(spec.stderr)
        .kill_on_drop(true);
    // SAFETY: `enter` only makes async-signal-safe system calls on data
    // prepared before the fork.
    unsafe {
        cmd.pre_exec(move || enter(&plan));
    }
    let child = cmd.spawn()?;
    let pgid = child.id().map(|p| p as libc::pid_t);
    Ok(JailedProcess {
        child,
        pgid,
        cgroup,
        host_workdir,
    })
}

/// Runs a command to completion in a fresh jail.
pub(crate) async fn run_command(
    jail: &Jail,
    spec: &CommandSpec,
) -> Result<CommandOutput, JailError> {
    let limits = spec.limits;
    let process = ProcessSpec {
        program: spec.program.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        fds: Vec::new(),
        limits,
        network: spec.network,
        profile: Profile::Command {
            network: spec.network,
        },
        stdin: Stdio::piped(),
        stdout: Stdio::piped(),
        stderr: Stdio::piped(),
    };
    let started = Instant::now();
    let mut jailed = start(jail, process, &spec.files)?;

    // Pipes are drained while the command runs so it never blocks on them.
    let stdin = jailed.child.stdin.take();
    let input = spec.stdin.clone();
    let feed = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input).await;
        }
    });
    let stdout = tokio::spawn(read_capped(
        jailed.child.stdout.take().expect("piped"),
        limits.output_bytes,
    ));
    let stderr = tokio::spawn(read_capped(
        jailed.child.stderr.take().expect("piped"),
        limits.output_bytes,
    ));

    let deadline = tokio::time::Instant::from_std(started + limits.wall);
    let exited = tokio::select! {
        status = jailed.child.wait() => Some(status?),
        () = tokio::time::sleep_until(deadline) => None,
    };
    let timed_out = exited.is_none();
    let status = match exited {
        Some(s) => s,
        None => {
            jailed.kill();
            jailed.child.wait().await?
        }
    };
    let duration = started.elapsed();
    // Whatever is left in the jail dies with it; output still buffered in the
    // pipes is read within a short grace period.
    jailed.kill();
    feed.abort();
    let grace = Duration::from_millis(500);
    let (stdout, stdout_truncated) = match tokio::time::timeout(grace, stdout).await {
        Ok(Ok(v)) => v,
        _ => (Vec::new(), true),
    };
    let (stderr, stderr_truncated) = match tokio::time::timeout(grace, stderr).await {
        Ok(Ok(v)) => v,
        _ => (Vec::new(), true),
    };
    let oom_killed = jailed.oom_killed();
    drop(jailed);
    let exit = if timed_out {
        Exit::TimedOut
    } else if let Some(code) = status.code() {
        Exit::Code(code)
    } else {
        Exit::Signal(status.signal().unwrap_or(0))
    };
    Ok(CommandOutput {
        exit,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration,
        oom_killed,
    })
}

/// Applies a seccomp profile to every thread of the calling process, for a
/// process that jails itself further after its start-up.
pub fn restrict_self(profile: Profile) -> Result<(), JailError> {
    let program = seccomp::build(profile).map_err(JailError::Seccomp)?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| JailError::Seccomp(e.to_string()))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
