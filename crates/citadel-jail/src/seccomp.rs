//! Seccomp filters. Commands get a deny list of the calls that reach into the
//! kernel's attack surface or out of the jail; sandbox hosts, which only
//! compute and talk over their socket, get an allow list.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Which filter a jailed process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Arbitrary commands (`sh`, `python3`): everything but a deny list.
    Command { network: bool },
    /// A sandbox host after start-up: only what running isolates needs.
    SandboxHost,
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// Calls no jailed command needs and that widen the kernel's attack surface
/// or could undo the jail.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_fanotify_init,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// What a sandbox host may call once it has started: memory, its socket,
/// time, threads' futexes, signals' return and exit. No `open`, `socket`,
/// `execve`, `ptrace`, `fork`.
const HOST_ALLOWED: &[libc::c_long] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_close,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_ctl,
    libc::SYS_sched_yield,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).expect("valid seccomp condition")
}

/// Builds the BPF program of a profile.
pub(crate) fn build(profile: Profile) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let filter = match profile {
        Profile::Command { network } => {
            for call in DENIED {
                rules.insert(*call, Vec::new());
            }
            // New namespaces through clone: each flag is its own rule (rules
            // are OR'ed, conditions AND'ed).
            let ns_flags = [
                libc::CLONE_NEWUSER,
                libc::CLONE_NEWNS,
                libc::CLONE_NEWPID,
                libc::CLONE_NEWNET,
                libc::CLONE_NEWIPC,
                libc::CLONE_NEWUTS,
                libc::CLONE_NEWCGROUP,
            ];
            let clone_rules = ns_flags
                .iter()
                .map(|f| {
                    SeccompRule::new(vec![condition(
                        0,
                        SeccompCmpOp::MaskedEq(*f as u64),
                        *f as u64,
                    )])
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            rules.insert(libc::SYS_clone, clone_rules);
            if !network {
                // Only local (unix) sockets without network access.
                let not_unix =
                    SeccompRule::new(vec![condition(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)])
                        .map_err(|e| e.to_string())?;
                rules.insert(libc::SYS_socket, vec![not_unix]);
            }
            SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                ARCH,
            )
        }
        Profile::SandboxHost => {
            for call in HOST_ALLOWED {
                rules.insert(*call, Vec::new());
            }
            SeccompFilter::new(
                rules,
                SeccompAction::KillProcess,
                SeccompAction::Allow,
                ARCH,
            )
        }
    };
    let filter = filter.map_err(|e| e.to_string())?;
    let mut program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    // `clone3` takes its flags in memory, out of seccomp's reach: answer
    // ENOSYS so libc falls back to `clone`, whose flags are checked. The
    // deny-list filter is prefixed with this check.
    if matches!(profile, Profile::Command { .. }) {
        program = prefix_enosys(libc::SYS_clone3, program);
    }
    Ok(program)
}

/// Prepends "if nr == `call` return ENOSYS" to a filter. The program starts
/// with seccompiler's architecture check, which is kept first.
fn prefix_enosys(call: libc::c_long, program: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    // seccompiler's program begins with three instructions validating the
    // architecture (load arch, compare, kill on mismatch).
    let (head, tail) = program.split_at(3.min(program.len()));
    let mut out = head.to_vec();
    out.push(sock_filter {
        code: BPF_LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0,
    }); // seccomp_data.nr
    out.push(sock_filter {
        code: BPF_JEQ_K,
        jt: 0,
        jf: 1,
        k: call as u32,
    });
    out.push(sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    });
    out.extend_from_slice(tail);
    out
}

/// Installs a permissive filter in a throwaway child to see that seccomp works.
pub(crate) fn probe() -> bool {
    let Ok(program) = build(Profile::Command { network: true }) else {
        return false;
    };
    seccompiler::apply_filter(&program).is_ok()
}
