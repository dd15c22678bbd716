//! Isolates run in a pool of jailed sandbox host processes, not in the
//! process that serves requests.
//!
//! The [`Pool`] (the supervisor) starts `citadel sandbox-host` processes in
//! jails, hands them runs over a socket pair, performs their capability
//! calls through the embedder's [`Gateway`] after checking each against the
//! run's grant, and replaces a host that crashes, hangs, breaks the protocol
//! or has served its share of runs. Only the runs inside a failed host fail,
//! with [`ErrorKind::SandboxCrashed`].
//!
//! This crate knows nothing of tenants beyond an opaque key used to keep
//! tenants apart, and nothing of HTTP or SQL.

mod host;
mod protocol;

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use citadel_analyzer::Language;
use citadel_jail::{CommandLimits, Jail, JailConfig, JailedProcess, ProcessSpec, Profile};
use citadel_sandbox::{
    CancelToken, ErrorKind, Grants, HostCall, HostError, Limits, LogLine, RunError, RunOutcome,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Notify, oneshot};

pub use host::{exit as host_exit, host_main};
pub use protocol::Fault;
use protocol::{RunJob, ToHost, ToSupervisor};

/// The future a gateway call returns.
pub type GatewayFuture = Pin<Box<dyn Future<Output = Result<Value, HostError>> + Send>>;

/// The embedder's side of capability calls (layer 4: the capability gateway).
/// The pool has already checked the call against the run's grant.
pub trait Gateway: Send + Sync {
    fn call(&self, call: HostCall) -> GatewayFuture;

    /// Log lines the run wrote since the last delivery, while it runs (they
    /// also come with its outcome). From a host process these are untrusted:
    /// an implementation keeps only what it has room for.
    fn logs(&self, _lines: Vec<LogLine>) {}
}

/// Serves `echo` and refuses everything else.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoGateway;

impl Gateway for EchoGateway {
    fn call(&self, call: HostCall) -> GatewayFuture {
        Box::pin(async move {
            match call {
                HostCall::Echo { value } => Ok(value),
                other => Err(HostError::new(
                    "unavailable",
                    format!("`{}` is not available here", other.capability().name()),
                )),
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("jail: {0}")]
    Jail(#[from] citadel_jail::JailError),
    #[error("cannot start a sandbox host: {0}")]
    Io(#[from] std::io::Error),
}

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Sandbox hosts kept running.
    pub size: usize,
    /// A host is replaced after serving this many runs.
    pub runs_per_host: u64,
    /// Runs one host takes at once (awaiting runs use no CPU).
    pub runs_per_host_at_once: usize,
    /// Threads a host runs its isolates on. Runs of one tenant stay on one
    /// host, so this bounds how many of them compute at once (the host's
    /// jail may still cap its CPU below that many cores).
    pub isolate_threads_per_host: usize,
    /// Let runs of different tenants share a host at the same time.
    pub share_tenants: bool,
    /// Memory of one host (address space and cgroup).
    pub host_memory_bytes: u64,
    /// How long past a run's own timeout the host may stay silent before it
    /// is declared hung and killed.
    pub hang_grace: Duration,
    pub jail: JailConfig,
    /// The `citadel` executable; hosts run `PROGRAM sandbox-host`.
    pub program: PathBuf,
    /// Test only: hosts honour injected faults.
    pub allow_faults: bool,
}

impl PoolConfig {
    /// The defaults, with this process's own executable as the host program.
    pub fn new() -> std::io::Result<PoolConfig> {
        Ok(PoolConfig {
            size: std::thread::available_parallelism().map_or(2, |n| n.get()),
            runs_per_host: 10_000,
            runs_per_host_at_once: 1024,
            isolate_threads_per_host: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(4),
            share_tenants: false,
            host_memory_bytes: 4 << 30,
            hang_grace: Duration::from_secs(2),
            jail: JailConfig::default(),
            program: std::env::current_exe()?,
            allow_faults: false,
        })
    }
}

/// One run for the pool.
#[derive(Debug, Clone)]
pub struct PoolRun {
    /// Runs of different tenants never share a host at once unless
    /// [`PoolConfig::share_tenants`] is set.
    pub tenant: String,
    pub source: String,
    pub language: Language,
    pub input_json: String,
    pub limits: Limits,
    pub grants: Grants,
    pub cancel: Option<CancelToken>,
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

/// A snapshot for metrics and `citadel doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    pub hosts: usize,
    pub busy_hosts: usize,
    pub runs_in_flight: usize,
    pub hosts_started: u64,
    pub hosts_failed: u64,
    pub hosts_recycled: u64,
    /// Runs whose host stayed silent past the run's limits and was killed
    /// by the watchdog.
    pub watchdog_kills: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    Live,
    Draining,
    Dead,
}

struct RunSlot {
    done: oneshot::Sender<RunOutcome>,
    gateway: Arc<dyn Gateway>,
    grants: Grants,
    started: Instant,
}

struct HostProc {
    id: u64,
    pid: Option<u32>,
    /// The socket towards the host; `None` once closed. Writers hold the
    /// lock for one whole frame, so frames never interleave.
    out: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    /// The runtime the pool was started in, for work started from sync code.
    runtime: tokio::runtime::Handle,
    runs: Mutex<HashMap<u64, RunSlot>>,
    tenant: Mutex<Option<String>>,
    in_flight: AtomicUsize,
    served: AtomicU64,
    state: Mutex<HostState>,
    process: Mutex<Option<JailedProcess>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a poisoned lock
    // (a panic elsewhere) is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostProc {
    /// Writes one frame to the host; false when its socket is closed.
    async fn send(&self, frame: Vec<u8>) -> bool {
        match self.out.lock().await.as_mut() {
            Some(w) => w.write_all(&frame).await.is_ok(),
            None => false,
        }
    }

    /// Closes the socket towards the host (from synchronous code): the host
    /// reads end of stream and exits.
    fn close(self: &Arc<Self>) {
        let host = Arc::clone(self);
        self.runtime.spawn(async move {
            if let Some(mut w) = host.out.lock().await.take() {
                let _ = w.shutdown().await;
            }
        });
    }
}

struct Inner {
    config: PoolConfig,
    jail: Jail,
    /// The host executable, opened once; passed to each host as a descriptor.
    exe: OwnedFd,
    hosts: Mutex<Vec<Arc<HostProc>>>,
    freed: Notify,
    next_run: AtomicU64,
    next_host: AtomicU64,
    started: AtomicU64,
    failed: AtomicU64,
    recycled: AtomicU64,
    watchdog_kills: AtomicU64,
    closing: AtomicBool,
}

/// The supervisor of the sandbox hosts. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// The descriptor number a host finds its socket at.
pub const HOST_SOCKET_FD: i32 = 3;
/// The descriptor number a host is started from (its own executable).
const HOST_EXE_FD: i32 = 4;

impl Pool {
    /// Starts the hosts. Must be called within a Tokio runtime.
    pub fn start(config: PoolConfig) -> Result<Pool, PoolError> {
        let jail = Jail::new(config.jail.clone())?;
        let exe = std::fs::File::open(&config.program)?;
        let inner = Arc::new(Inner {
            exe: OwnedFd::from(exe),
            jail,
            hosts: Mutex::new(Vec::new()),
            freed: Notify::new(),
            next_run: AtomicU64::new(1),
            next_host: AtomicU64::new(1),
            started: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            watchdog_kills: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            config,
        });
        for _ in 0..inner.config.size.max(1) {
            let host = spawn_host(&inner)?;
            lock(&inner.hosts).push(host);
        }
        Ok(Pool { inner })
    }

    /// The isolation layers every host runs under.
    pub fn isolation(&self) -> &citadel_jail::Isolation {
        self.inner.jail.isolation()
    }

    pub fn status(&self) -> PoolStatus {
        let hosts = lock(&self.inner.hosts);
        PoolStatus {
            hosts: hosts.len(),
            busy_hosts: hosts
                .iter()
                .filter(|h| h.in_flight.load(Ordering::Relaxed) > 0)
                .count(),
            runs_in_flight: hosts
                .iter()
                .map(|h| h.in_flight.load(Ordering::Relaxed))
                .sum(),
            hosts_started: self.inner.started.load(Ordering::Relaxed),
            hosts_failed: self.inner.failed.load(Ordering::Relaxed),
            hosts_recycled: self.inner.recycled.load(Ordering::Relaxed),
            watchdog_kills: self.inner.watchdog_kills.load(Ordering::Relaxed),
        }
    }

    /// Process ids of the live hosts (as seen from this process).
    pub fn host_pids(&self) -> Vec<u32> {
        lock(&self.inner.hosts)
            .iter()
            .filter_map(|h| h.pid)
            .collect()
    }

    /// Runs a script in a host and returns its outcome. Never fails: host
    /// failures come back as `sandbox_crashed` outcomes.
    pub async fn run(&self, job: PoolRun, gateway: Arc<dyn Gateway>) -> RunOutcome {
        let started = Instant::now();
        let inner = &self.inner;
        let Some(host) = self
            .acquire(&job.tenant, started + job.limits.timeout)
            .await
        else {
            let e = RunError::new(
                ErrorKind::Timeout,
                "Timeout",
                "no sandbox host became free before the run's timeout",
            );
            return RunOutcome::failed(e, started.elapsed());
        };
        let run = inner.next_run.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&host.runs).insert(
            run,
            RunSlot {
                done: tx,
                gateway,
                grants: job.grants,
                started,
            },
        );
        let frame = protocol::encode(&ToHost::Run(RunJob {
            run,
            source: job.source,
            language: job.language,
            input_json: job.input_json,
            limits: job.limits,
            grants: job.grants.iter().collect(),
            fault: job.fault,
        }));
        if !host.send(frame).await {
            host_failed(inner, &host, "the sandbox host's socket is closed");
        }

        let deadline =
            tokio::time::Instant::from_std(started + job.limits.timeout + inner.config.hang_grace);
        let cancel = job.cancel.clone();
        let cancelled = async move {
            match cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(rx);
        tokio::pin!(cancelled);
        let mut cancel_sent = false;
        let outcome = loop {
            tokio::select! {
                done = &mut rx => break done.ok(),
                () = tokio::time::sleep_until(deadline) => {
                    // The host itself enforces the run's limits; silence past
                    // them means it hung. Kill it; its runs fail.
                    inner.watchdog_kills.fetch_add(1, Ordering::Relaxed);
                    host_failed(inner, &host, "the sandbox host stopped responding and was killed");
                    break (&mut rx).await.ok();
                }
                () = &mut cancelled, if !cancel_sent => {
                    cancel_sent = true;
                    host.send(protocol::encode(&ToHost::Cancel { run })).await;
                }
            }
        };
        release(inner, &host);
        outcome.unwrap_or_else(|| {
            RunOutcome::failed(
                RunError::new(
                    ErrorKind::SandboxCrashed,
                    "SandboxCrashed",
                    "the sandbox host failed",
                ),
                started.elapsed(),
            )
        })
    }

    /// Picks a host for a tenant, waiting for one to free up until `until`.
    async fn acquire(&self, tenant: &str, until: Instant) -> Option<Arc<HostProc>> {
        let inner = &self.inner;
        loop {
            let notified = inner.freed.notified();
            {
                let hosts = lock(&inner.hosts);
                let usable = hosts.iter().filter(|h| {
                    *lock(&h.state) == HostState::Live
                        && h.in_flight.load(Ordering::Relaxed) < inner.config.runs_per_host_at_once
                        && (inner.config.share_tenants
                            || lock(&h.tenant).as_deref().is_none_or(|t| t == tenant))
                });
                // A host already serving this tenant keeps its runs together;
                // otherwise the least busy host, the first in the list among
                // equals: a host that stays busy stays warm (measured: spreading
                // sequential runs over idle hosts costs more in wake-ups than
                // it saves).
                let best = usable.min_by_key(|h| {
                    let same = lock(&h.tenant).as_deref() == Some(tenant);
                    (!same, h.in_flight.load(Ordering::Relaxed))
                });
                if let Some(host) = best {
                    host.in_flight.fetch_add(1, Ordering::Relaxed);
                    *lock(&host.tenant) = Some(tenant.to_owned());
                    return Some(Arc::clone(host));
                }
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            let _ = tokio::time::timeout(until - now, notified).await;
        }
    }

    /// Stops taking runs and lets every host finish and exit.
    pub fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        for host in lock(&self.inner.hosts).drain(..) {
            *lock(&host.state) = HostState::Draining;
            host.close();
        }
    }
}

/// A run finished (or failed): free the host's slot, recycle it when it has
/// served its share.
fn release(inner: &Arc<Inner>, host: &Arc<HostProc>) {
    let served = host.served.fetch_add(1, Ordering::Relaxed) + 1;
    let left = host.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
    if left == 0 {
        *lock(&host.tenant) = None;
    }
    let recycle = {
        let mut state = lock(&host.state);
        if *state == HostState::Live && served >= inner.config.runs_per_host {
            *state = HostState::Draining;
            replace(inner, host);
            inner.recycled.fetch_add(1, Ordering::Relaxed);
        }
        *state == HostState::Draining && left == 0
    };
    if recycle {
        // Closing the socket ends the host; its process handle goes with it.
        host.close();
    }
    inner.freed.notify_waiters();
}

/// Removes a host from the rotation and starts its replacement.
fn replace(inner: &Arc<Inner>, host: &Arc<HostProc>) {
    let mut hosts = lock(&inner.hosts);
    hosts.retain(|h| h.id != host.id);
    if inner.closing.load(Ordering::SeqCst) {
        return;
    }
    match spawn_host(inner) {
        Ok(new) => hosts.push(new),
        Err(e) => eprintln!("citadel: cannot replace a sandbox host: {e}"),
    }
}

/// A host crashed, hung or broke the protocol: kill it, fail its runs, replace it.
fn host_failed(inner: &Arc<Inner>, host: &Arc<HostProc>, why: &str) {
    {
        let mut state = lock(&host.state);
        if *state == HostState::Dead {
            return;
        }
        let was_live = *state == HostState::Live;
        *state = HostState::Dead;
        if was_live || !inner.closing.load(Ordering::SeqCst) {
            inner.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(mut process) = lock(&host.process).take() {
        process.kill();
    }
    host.close();
    let tail = String::from_utf8_lossy(&lock(&host.stderr_tail))
        .trim()
        .to_owned();
    let message = if tail.is_empty() {
        why.to_owned()
    } else {
        format!("{why} ({tail})")
    };
    for (_, slot) in lock(&host.runs).drain() {
        let error = RunError::new(ErrorKind::SandboxCrashed, "SandboxCrashed", message.clone());
        let _ = slot
            .done
            .send(RunOutcome::failed(error, slot.started.elapsed()));
    }
    replace(inner, host);
    inner.freed.notify_waiters();
}

fn spawn_host(inner: &Arc<Inner>) -> Result<Arc<HostProc>, PoolError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let mut args = vec!["sandbox-host".to_owned()];
    if inner.config.allow_faults {
        args.push("--allow-faults".into());
    }
    let isolate_threads = inner.config.isolate_threads_per_host.max(1);
    args.push("--isolate-threads".into());
    args.push(isolate_threads.to_string());
    let spec = ProcessSpec {
        program: format!("/proc/self/fd/{HOST_EXE_FD}"),
        args,
        env: Vec::new(),
        fds: vec![
            (theirs.as_raw_fd(), HOST_SOCKET_FD),
            (inner.exe.as_raw_fd(), HOST_EXE_FD),
        ],
        limits: CommandLimits {
            wall: Duration::MAX,
            // A host is recycled long before this much CPU.
            cpu_seconds: 24 * 3600,
            memory_bytes: inner.config.host_memory_bytes,
            file_bytes: 0,
            open_files: 64,
            // The host's threads besides what start-up needs; it can make
            // none once it has locked itself down.
            processes: 8 + isolate_threads as u64,
            output_bytes: 0,
        },
        network: false,
        profile: Profile::Command { network: false },
        stdin: Stdio::null(),
        stdout: Stdio::null(),
        stderr: Stdio::piped(),
    };
    let mut process = inner.jail.spawn(spec)?;
    drop(theirs);
    ours.set_nonblocking(true)?;
    let socket = tokio::net::UnixStream::from_std(ours)?;
    let (mut reader, writer) = socket.into_split();
    let stderr = process.child.stderr.take();
    let id = inner.next_host.fetch_add(1, Ordering::Relaxed);
    let host = Arc::new(HostProc {
        id,
        pid: process.id(),
        out: tokio::sync::Mutex::new(Some(writer)),
        runtime: tokio::runtime::Handle::current(),
        runs: Mutex::new(HashMap::new()),
        tenant: Mutex::new(None),
        in_flight: AtomicUsize::new(0),
        served: AtomicU64::new(0),
        state: Mutex::new(HostState::Live),
        process: Mutex::new(Some(process)),
        stderr_tail: Arc::new(Mutex::new(Vec::new())),
    });
    inner.started.fetch_add(1, Ordering::Relaxed);

    if let Some(mut stderr) = stderr {
        let tail = Arc::clone(&host.stderr_tail);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut t = lock(&tail);
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(2048);
                t.drain(..excess);
            }
        });
    }
    let weak_inner = Arc::downgrade(inner);
    let reader_host = Arc::clone(&host);
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let why = loop {
            match protocol::read::<_, ToSupervisor>(&mut reader, &mut buf).await {
                Ok(Some(ToSupervisor::Ready)) => {}
                Ok(Some(ToSupervisor::Done { run, outcome })) => {
                    if let Some(slot) = lock(&reader_host.runs).remove(&run) {
                        let _ = slot.done.send(outcome);
                    }
                }
                Ok(Some(ToSupervisor::Logs { run, lines })) => {
                    let gateway = lock(&reader_host.runs)
                        .get(&run)
                        .map(|s| Arc::clone(&s.gateway));
                    if let Some(gateway) = gateway {
                        gateway.logs(lines);
                    }
                }
                Ok(Some(ToSupervisor::Call { run, call, request })) => {
                    let slot = lock(&reader_host.runs)
                        .get(&run)
                        .map(|s| (Arc::clone(&s.gateway), s.grants));
                    let host = Arc::clone(&reader_host);
                    tokio::spawn(async move {
                        let result = match slot {
                            // Checked here as well: a compromised host must not
                            // widen its run's grant.
                            Some((_, grants)) if !grants.allows(request.capability()) => {
                                Err(HostError::denied(request.capability().name()))
                            }
                            Some((gateway, _)) => gateway.call(request).await,
                            None => Err(HostError::new("unavailable", "the run is over")),
                        };
                        host.send(protocol::encode(&ToHost::Reply { run, call, result }))
                            .await;
                    });
                }
                Ok(None) => break "the sandbox host exited",
                Err(e) => {
                    eprintln!("citadel: sandbox host {id} broke the protocol: {e}");
                    break "the sandbox host broke the protocol and was killed";
                }
            }
        };
        let Some(inner) = weak_inner.upgrade() else {
            return;
        };
        let orderly =
            *lock(&reader_host.state) == HostState::Draining && lock(&reader_host.runs).is_empty();
        if orderly {
            *lock(&reader_host.state) = HostState::Dead;
            drop(lock(&reader_host.process).take());
        } else {
            // Give the kernel a moment to report the exit status.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let status = match lock(&reader_host.process)
                .as_mut()
                .map(|p| p.child.try_wait())
            {
                Some(Ok(Some(status))) => format!(" ({status})"),
                _ => String::new(),
            };
            host_failed(&inner, &reader_host, &format!("{why}{status}"));
        }
    });
    Ok(host)
}
