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

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Sandbox hosts kept started while idle, so the first runs need not
    /// wait for one to start.
    pub size: usize,
    /// Hosts running at most, started on demand and retired when idle.
    /// Hosts belong to one tenant at a time and an awaiting run uses no
    /// CPU, so this is well above the core count.
    pub max_hosts: usize,
    /// Hosts one tenant may hold at once (below `max_hosts`, so one tenant
    /// never holds every host).
    pub max_hosts_per_tenant: usize,
    /// A host above `size` idle this long is stopped.
    pub idle_timeout: Duration,
    /// A host is replaced after serving this many runs.
    pub runs_per_host: u64,
    /// Runs one host takes at once (awaiting runs use no CPU).
    pub runs_per_host_at_once: usize,
    /// Threads a host runs its isolates on (at most
    /// [`MAX_ISOLATE_THREADS`]). Runs of one tenant stay on one host, so
    /// this bounds how many of them compute at once (the host's jail may
    /// still cap its CPU below that many cores).
    pub isolate_threads_per_host: usize,
    /// Let runs of different tenants share a host at the same time.
    pub share_tenants: bool,
    /// Memory of one host (address space and cgroup).
    pub host_memory_bytes: u64,
    /// How long past a run's own timeout the host may stay silent before
    /// the watchdog steps in.
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
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Each host holds its own memory: enough hosts for many tenants,
        // bounded on large machines.
        let max_hosts = (8 * cores).clamp(16, 128);
        Ok(PoolConfig {
            size: cores,
            max_hosts,
            max_hosts_per_tenant: default_hosts_per_tenant(max_hosts),
            idle_timeout: Duration::from_secs(30),
            runs_per_host: 10_000,
            runs_per_host_at_once: 1024,
            isolate_threads_per_host: cores.min(4),
            share_tenants: false,
            host_memory_bytes: 4 << 30,
            hang_grace: Duration::from_secs(2),
            jail: JailConfig::default(),
            program: std::env::current_exe()?,
            allow_faults: false,
        })
    }
}

/// A quarter of the hosts, at least one and never all of them (when there
/// is more than one).
pub fn default_hosts_per_tenant(max_hosts: usize) -> usize {
    (max_hosts / 4).clamp(1, max_hosts.saturating_sub(1).max(1))
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
    /// Names the script version, for a warm context when the limits ask
    /// for `Isolation::Version`: runs of one tenant with the same key may
    /// share one. `None`: always a fresh context.
    pub version_key: Option<String>,
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl PoolRun {
    /// The warm-context key a host gets: the tenant and the version, so two
    /// tenants never share one even where they share hosts.
    fn warm_key(&self) -> Option<String> {
        let version = self.version_key.as_deref()?;
        (self.limits.isolation == citadel_sandbox::Isolation::Version)
            .then(|| format!("{}:{}:{version}", self.tenant.len(), self.tenant))
    }
}

/// A snapshot for metrics, `/ready` and `citadel doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    /// Host processes running (taking runs or finishing their last ones).
    pub hosts: usize,
    /// Hosts taking new runs.
    pub live_hosts: usize,
    pub busy_hosts: usize,
    pub runs_in_flight: usize,
    /// Runs waiting for a host.
    pub runs_waiting: usize,
    /// Tenants holding at least one host.
    pub tenants: usize,
    pub hosts_started: u64,
    pub hosts_failed: u64,
    pub hosts_recycled: u64,
    /// Idle hosts stopped (above the pool's `size`).
    pub hosts_retired: u64,
    /// Attempts to start a host that failed (retried with backoff).
    pub host_start_failures: u64,
    /// Why the last start failed, while starts keep failing.
    pub start_error: Option<String>,
    /// Runs the watchdog ended: a run silent past its limits (reported as
    /// the limit it broke), or a host that stopped responding.
    pub watchdog_kills: u64,
}

impl PoolStatus {
    /// Why the pool cannot take runs, if it cannot: no host runs and none
    /// can be started.
    pub fn unavailable(&self) -> Option<String> {
        match &self.start_error {
            Some(e) if self.live_hosts == 0 => Some(format!(
                "no sandbox host is running and none can be started: {e}"
            )),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostState {
    /// Takes runs.
    Live,
    /// Finishes its runs, takes no more, then is closed.
    Draining,
    Dead,
}

/// How one attempt at a run ended.
enum Finish {
    Done(RunOutcome),
    /// Its isolate thread was stopped under it before it had any effect
    /// outside the host: run it again elsewhere.
    Retry,
}

const NEIGHBOUR_STUCK: &str = "another run on the same isolate thread went past its limits in an operation that could not be interrupted; the thread was stopped";

struct RunSlot {
    done: oneshot::Sender<Finish>,
    gateway: Arc<dyn Gateway>,
    grants: Grants,
    started: Instant,
    /// The isolate thread of the host it runs on.
    thread: usize,
    /// It made a capability call or delivered log lines: running it again
    /// could repeat them.
    effects: bool,
}

/// Who a host serves and how much; changed only under the pool's state lock.
struct Slot {
    state: HostState,
    tenant: Option<String>,
    in_flight: usize,
    served: u64,
    /// Runs on each isolate thread.
    thread_load: Vec<usize>,
    idle_since: Instant,
}

struct HostProc {
    id: u64,
    pid: Option<u32>,
    /// The control socket towards the host (readiness, pings, faults);
    /// `None` once closed. Writers hold the lock for one whole frame, so
    /// frames never interleave.
    out: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    /// Each isolate thread's own socket (its runs, their replies and
    /// cancellations), locked the same way.
    lanes: Vec<tokio::sync::Mutex<Option<OwnedWriteHalf>>>,
    /// The runtime the pool was started in, for work started from sync code.
    runtime: tokio::runtime::Handle,
    runs: Mutex<HashMap<u64, RunSlot>>,
    slot: Mutex<Slot>,
    process: Mutex<Option<JailedProcess>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    /// It said it is ready (set up and locked down).
    ready: AtomicBool,
    /// The last liveness probe the host answered.
    pong: AtomicU64,
    ponged: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a poisoned lock
    // (a panic elsewhere) is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostProc {
    /// Writes one frame to the host's control socket; false when it is
    /// closed.
    async fn send(&self, frame: Vec<u8>) -> bool {
        match self.out.lock().await.as_mut() {
            Some(w) => w.write_all(&frame).await.is_ok(),
            None => false,
        }
    }

    /// Writes one frame to an isolate thread's socket; false when it is
    /// closed.
    async fn send_lane(&self, thread: usize, frame: Vec<u8>) -> bool {
        let Some(lane) = self.lanes.get(thread) else {
            return false;
        };
        match lane.lock().await.as_mut() {
            Some(w) => w.write_all(&frame).await.is_ok(),
            None => false,
        }
    }

    /// Closes the socket towards the host (from synchronous code): the host
    /// reads end of stream and exits. One that has not exited after a grace
    /// period is killed, so no closed host lingers.
    fn close(self: &Arc<Self>) {
        let host = Arc::clone(self);
        self.runtime.spawn(async move {
            for lane in &host.lanes {
                if let Some(mut w) = lane.lock().await.take() {
                    let _ = w.shutdown().await;
                }
            }
            if let Some(mut w) = host.out.lock().await.take() {
                let _ = w.shutdown().await;
            }
            tokio::time::sleep(CLOSE_GRACE).await;
            if let Some(mut process) = lock(&host.process).take() {
                process.kill();
            }
        });
    }

    /// Asks the host's reading thread for a sign of life.
    async fn responds(&self, seq: u64, within: Duration) -> bool {
        if !self.send(protocol::encode(&ToHost::Ping { seq })).await {
            return false;
        }
        let until = tokio::time::Instant::now() + within;
        loop {
            let notified = self.ponged.notified();
            if self.pong.load(Ordering::Acquire) >= seq {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return self.pong.load(Ordering::Acquire) >= seq;
            }
        }
    }
}

/// A run waiting for a host.
type Waiter = oneshot::Sender<Placement>;

/// Where a run goes: a host and one of its isolate threads.
struct Placement {
    host: Arc<HostProc>,
    thread: usize,
}

/// Which hosts exist and who waits for one; one lock, so a host's owner,
/// its load and the queues always agree.
struct State {
    /// Every host not yet closed or dead (live and draining).
    hosts: Vec<Arc<HostProc>>,
    /// Runs waiting for a host, first come first served within a tenant.
    waiting: HashMap<String, VecDeque<Waiter>>,
    /// Tenants with waiting runs, served round-robin.
    turn: VecDeque<String>,
    /// Starts failed in a row, and when the next may be tried.
    start_failures: u32,
    next_start: Option<Instant>,
    start_error: Option<String>,
}

struct Inner {
    config: PoolConfig,
    jail: Jail,
    /// The host executable, opened once; passed to each host as a descriptor.
    exe: OwnedFd,
    state: Mutex<State>,
    next_run: AtomicU64,
    next_host: AtomicU64,
    next_ping: AtomicU64,
    started: AtomicU64,
    failed: AtomicU64,
    recycled: AtomicU64,
    retired: AtomicU64,
    start_failures: AtomicU64,
    watchdog_kills: AtomicU64,
    closing: AtomicBool,
}

/// The supervisor of the sandbox hosts. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// The descriptor number a host finds its control socket at.
pub const HOST_SOCKET_FD: i32 = 3;
/// The descriptor number a host is started from (its own executable).
const HOST_EXE_FD: i32 = 4;
/// The descriptor number of isolate thread 0's socket (its lane); thread
/// `i` finds its own at `HOST_LANE_FD + i`.
const HOST_LANE_FD: i32 = 5;
/// Isolate threads a host runs at most: the jail passes eight descriptors,
/// and two are the control socket and the executable.
pub const MAX_ISOLATE_THREADS: usize = 6;

/// Backoff between failed host starts: doubles from the first to the last.
const START_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const START_BACKOFF_LAST: Duration = Duration::from_secs(5);
/// How long a closed host has to exit by itself.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How often the supervisor retires idle hosts and retries failed starts.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(100);

impl Pool {
    /// Starts the pool and its first `size` hosts. Must be called within a
    /// Tokio runtime. Fails when not even one host can be started.
    pub fn start(mut config: PoolConfig) -> Result<Pool, PoolError> {
        config.max_hosts = config.max_hosts.max(config.size).max(1);
        config.max_hosts_per_tenant = config.max_hosts_per_tenant.clamp(1, config.max_hosts);
        let jail = Jail::new(config.jail.clone())?;
        let exe = std::fs::File::open(&config.program)?;
        let inner = Arc::new(Inner {
            exe: OwnedFd::from(exe),
            jail,
            state: Mutex::new(State {
                hosts: Vec::new(),
                waiting: HashMap::new(),
                turn: VecDeque::new(),
                start_failures: 0,
                next_start: None,
                start_error: None,
            }),
            next_run: AtomicU64::new(1),
            next_host: AtomicU64::new(1),
            next_ping: AtomicU64::new(1),
            started: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            retired: AtomicU64::new(0),
            start_failures: AtomicU64::new(0),
            watchdog_kills: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            config,
        });
        {
            let mut st = lock(&inner.state);
            for _ in 0..inner.config.size {
                let host = spawn_host(&inner)?;
                st.hosts.push(host);
            }
        }
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closing.load(Ordering::SeqCst) {
                    return;
                }
                maintain(&inner);
            }
        });
        Ok(Pool { inner })
    }

    /// The isolation layers every host runs under.
    pub fn isolation(&self) -> &citadel_jail::Isolation {
        self.inner.jail.isolation()
    }

    pub fn status(&self) -> PoolStatus {
        let st = lock(&self.inner.state);
        let mut live_hosts = 0;
        let mut busy_hosts = 0;
        let mut runs_in_flight = 0;
        let mut tenants = std::collections::HashSet::new();
        for host in &st.hosts {
            let slot = lock(&host.slot);
            live_hosts += usize::from(slot.state == HostState::Live);
            busy_hosts += usize::from(slot.in_flight > 0);
            runs_in_flight += slot.in_flight;
            if let Some(t) = &slot.tenant {
                tenants.insert(t.clone());
            }
        }
        PoolStatus {
            hosts: st.hosts.len(),
            live_hosts,
            busy_hosts,
            runs_in_flight,
            runs_waiting: st
                .waiting
                .values()
                .flatten()
                .filter(|w| !w.is_closed())
                .count(),
            tenants: tenants.len(),
            hosts_started: self.inner.started.load(Ordering::Relaxed),
            hosts_failed: self.inner.failed.load(Ordering::Relaxed),
            hosts_recycled: self.inner.recycled.load(Ordering::Relaxed),
            hosts_retired: self.inner.retired.load(Ordering::Relaxed),
            host_start_failures: self.inner.start_failures.load(Ordering::Relaxed),
            start_error: st.start_error.clone(),
            watchdog_kills: self.inner.watchdog_kills.load(Ordering::Relaxed),
        }
    }

    /// Process ids of the running hosts (as seen from this process).
    pub fn host_pids(&self) -> Vec<u32> {
        lock(&self.inner.state)
            .hosts
            .iter()
            .filter_map(|h| h.pid)
            .collect()
    }

    /// Runs a script in a host and returns its outcome. Never fails: host
    /// failures come back as `sandbox_crashed` outcomes.
    pub async fn run(&self, job: PoolRun, gateway: Arc<dyn Gateway>) -> RunOutcome {
        let started = Instant::now();
        // A run that could not progress through no fault of its own, and
        // had no effect outside its host yet, is run again once elsewhere.
        let mut retried = false;
        loop {
            match self.attempt(&job, &gateway, started).await {
                Finish::Done(outcome) => return outcome,
                Finish::Retry if !retried => retried = true,
                Finish::Retry => {
                    return RunOutcome::failed(
                        RunError::new(ErrorKind::SandboxCrashed, "SandboxCrashed", NEIGHBOUR_STUCK),
                        started.elapsed(),
                    );
                }
            }
        }
    }

    /// One attempt at a run, in whatever time the run has left.
    async fn attempt(&self, job: &PoolRun, gateway: &Arc<dyn Gateway>, started: Instant) -> Finish {
        let inner = &self.inner;
        let placement = self
            .acquire(&job.tenant, started + job.limits.timeout)
            .await;
        // The host counts the run's timeout from when it gets the run: only
        // what is left of it after waiting for a host.
        let left = job.limits.timeout.saturating_sub(started.elapsed());
        let placement = match placement {
            Some(p) if left.is_zero() => {
                give_back(inner, &p);
                None
            }
            other => other,
        };
        let Some(Placement { host, thread }) = placement else {
            let mut message = "no sandbox host became free before the run's timeout".to_owned();
            if let Some(why) = lock(&inner.state).start_error.as_ref() {
                message.push_str(&format!(" (hosts cannot be started: {why})"));
            }
            let e = RunError::new(ErrorKind::Timeout, "Timeout", message);
            return Finish::Done(RunOutcome::failed(e, started.elapsed()));
        };
        let mut limits = job.limits;
        limits.timeout = left;
        let run = inner.next_run.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&host.runs).insert(
            run,
            RunSlot {
                done: tx,
                gateway: Arc::clone(gateway),
                grants: job.grants,
                started,
                thread,
                effects: false,
            },
        );
        let frame = protocol::encode(&ToHost::Run(RunJob {
            run,
            source: job.source.clone(),
            language: job.language,
            input_json: job.input_json.clone(),
            limits,
            grants: job.grants.iter().collect(),
            scope: inner.key(&job.tenant).to_owned(),
            warm: job.warm_key(),
            fault: job.fault,
        }));
        // Faults of the whole host go to its control socket; runs to the
        // socket of the isolate thread that runs them.
        let whole_host = matches!(job.fault, Some(Fault::Garbage | Fault::Hang | Fault::Abort));
        let sent = if whole_host {
            host.send(frame).await
        } else {
            host.send_lane(thread, frame).await
        };
        if !sent {
            host_failed(inner, &host, "the sandbox host's socket is closed");
        }

        let deadline = tokio::time::Instant::now() + left + inner.config.hang_grace;
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
        let finish = loop {
            tokio::select! {
                done = &mut rx => break done.ok(),
                () = tokio::time::sleep_until(deadline) => {
                    // The host enforces the run's limits itself; silence past
                    // them means the run is stuck where its interrupt handler
                    // cannot reach (a non-interruptible native operation), or
                    // the whole host hung.
                    inner.watchdog_kills.fetch_add(1, Ordering::Relaxed);
                    watchdog(inner, &host, run, &job.limits).await;
                    break (&mut rx).await.ok();
                }
                () = &mut cancelled, if !cancel_sent => {
                    cancel_sent = true;
                    host.send_lane(thread, protocol::encode(&ToHost::Cancel { run })).await;
                }
            }
        };
        release(inner, &host, thread);
        finish.unwrap_or_else(|| {
            Finish::Done(RunOutcome::failed(
                RunError::new(
                    ErrorKind::SandboxCrashed,
                    "SandboxCrashed",
                    "the sandbox host failed",
                ),
                started.elapsed(),
            ))
        })
    }

    /// A host (and isolate thread) for a tenant's run: at once when one is
    /// free, else in the tenant's queue until `until`.
    async fn acquire(&self, tenant: &str, until: Instant) -> Option<Placement> {
        let inner = &self.inner;
        let key = inner.key(tenant);
        let rx = {
            let mut st = lock(&inner.state);
            let queued = st.waiting.get(key).is_some_and(|q| !q.is_empty());
            // Runs already waiting in this tenant's queue go first.
            if !queued && let Some(placement) = place(inner, &mut st, key) {
                return Some(placement);
            }
            let (tx, rx) = oneshot::channel();
            let queue = st.waiting.entry(key.to_owned()).or_default();
            queue.push_back(tx);
            if queue.len() == 1 && !st.turn.iter().any(|t| t == key) {
                st.turn.push_back(key.to_owned());
            }
            rx
        };
        let now = Instant::now();
        let left = until.saturating_duration_since(now);
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(placement)) => Some(placement),
            // Timed out: the waiter is dropped; the queue skips closed
            // waiters (and one placed at this very moment is handed back).
            _ => None,
        }
    }

    /// Stops taking runs and lets every host finish and exit.
    pub fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let mut st = lock(&self.inner.state);
        st.waiting.clear();
        st.turn.clear();
        for host in std::mem::take(&mut st.hosts) {
            lock(&host.slot).state = HostState::Draining;
            host.close();
        }
    }
}

impl Inner {
    /// The key hosts are assigned by: the tenant, or one for all when
    /// tenants may share hosts.
    fn key<'a>(&self, tenant: &'a str) -> &'a str {
        if self.config.share_tenants {
            ""
        } else {
            tenant
        }
    }
}

/// Takes a slot on a host for `key`, if its share allows one now: a host it
/// already holds with room (runs of one tenant stay together: a host that
/// stays busy stays warm), else an idle host, else a new one — never more
/// hosts than the tenant's cap or the pool's maximum.
fn place(inner: &Arc<Inner>, st: &mut State, key: &str) -> Option<Placement> {
    let config = &inner.config;
    let mut held = 0;
    let mut best: Option<(usize, usize)> = None;
    let mut idle = None;
    for (i, host) in st.hosts.iter().enumerate() {
        let slot = lock(&host.slot);
        match slot.tenant.as_deref() {
            Some(t) if t == key => {
                held += 1;
                if slot.state == HostState::Live
                    && slot.in_flight < config.runs_per_host_at_once
                    && best.is_none_or(|(_, n)| slot.in_flight < n)
                {
                    best = Some((i, slot.in_flight));
                }
            }
            None if slot.state == HostState::Live && idle.is_none() => idle = Some(i),
            _ => {}
        }
    }
    let host = if let Some((i, _)) = best {
        Arc::clone(&st.hosts[i])
    } else if held >= config.max_hosts_per_tenant && !config.share_tenants {
        return None;
    } else if let Some(i) = idle {
        Arc::clone(&st.hosts[i])
    } else if st.hosts.len() < config.max_hosts {
        let host = start_host(inner, st)?;
        st.hosts.push(Arc::clone(&host));
        host
    } else {
        return None;
    };
    let mut slot = lock(&host.slot);
    slot.tenant = Some(key.to_owned());
    slot.in_flight += 1;
    // The least loaded isolate thread, the first among equals: a thread
    // that stays busy stays warm.
    let thread = (0..slot.thread_load.len())
        .min_by_key(|&t| slot.thread_load[t])
        .unwrap_or(0);
    if let Some(load) = slot.thread_load.get_mut(thread) {
        *load += 1;
    }
    drop(slot);
    Some(Placement { host, thread })
}

/// Starts a host unless starts are backing off after failures; a failure is
/// counted, kept for `/ready`, and pushes the next attempt back.
fn start_host(inner: &Arc<Inner>, st: &mut State) -> Option<Arc<HostProc>> {
    if inner.closing.load(Ordering::SeqCst) {
        return None;
    }
    if st.next_start.is_some_and(|at| Instant::now() < at) {
        return None;
    }
    match spawn_host(inner) {
        Ok(host) => Some(host),
        Err(e) => {
            start_failed(inner, st, &e.to_string());
            None
        }
    }
}

/// A host could not be started (or died before it was ready): count it,
/// keep the reason for `/ready`, and back off before the next attempt.
fn start_failed(inner: &Inner, st: &mut State, why: &str) {
    inner.start_failures.fetch_add(1, Ordering::Relaxed);
    let backoff = START_BACKOFF_FIRST
        .saturating_mul(1 << st.start_failures.min(10))
        .min(START_BACKOFF_LAST);
    st.start_failures += 1;
    st.next_start = Some(Instant::now() + backoff);
    if st.start_error.is_none() {
        eprintln!("citadel: cannot start a sandbox host (retrying with backoff): {why}");
    }
    st.start_error = Some(why.to_owned());
}

/// A host said it is ready: starts work (again).
fn host_ready(inner: &Inner, host: &HostProc) {
    host.ready.store(true, Ordering::Release);
    let mut st = lock(&inner.state);
    if st.start_error.take().is_some() {
        eprintln!("citadel: sandbox hosts start again");
    }
    st.start_failures = 0;
    st.next_start = None;
}

/// Hands free host slots to waiting runs, one run per tenant in turn, until
/// no waiting tenant can be placed.
fn dispatch(inner: &Arc<Inner>, st: &mut State) {
    let mut stuck = 0;
    while stuck < st.turn.len() {
        let Some(key) = st.turn.pop_front() else {
            break;
        };
        let Some(mut queue) = st.waiting.remove(&key) else {
            continue;
        };
        while queue.front().is_some_and(oneshot::Sender::is_closed) {
            queue.pop_front();
        }
        if queue.is_empty() {
            continue;
        }
        match place(inner, st, &key) {
            Some(placement) => {
                stuck = 0;
                if let Some(waiter) = queue.pop_front()
                    && let Err(placement) = waiter.send(placement)
                {
                    // It stopped waiting just now: give the slot back.
                    unplace(st, &placement);
                }
            }
            None => stuck += 1,
        }
        if !queue.is_empty() {
            st.waiting.insert(key.clone(), queue);
            st.turn.push_back(key);
        }
    }
}

/// Returns a placement that will not be used (under the state lock) and
/// hands the slot on.
fn give_back(inner: &Arc<Inner>, placement: &Placement) {
    let mut st = lock(&inner.state);
    unplace(&mut st, placement);
    dispatch(inner, &mut st);
}

/// Undoes a placement that was never used (under the state lock).
fn unplace(st: &mut State, placement: &Placement) {
    free_slot(st, &placement.host, placement.thread, false, 0);
}

/// Frees a run's slot on a host (under the state lock). A `served` run
/// counts towards the host's share of `share` runs; true when that recycles
/// the host. A draining host with nothing left in it is closed.
fn free_slot(
    st: &mut State,
    host: &Arc<HostProc>,
    thread: usize,
    served: bool,
    share: u64,
) -> bool {
    let mut slot = lock(&host.slot);
    slot.in_flight -= 1;
    if let Some(load) = slot.thread_load.get_mut(thread) {
        *load = load.saturating_sub(1);
    }
    let mut recycled = false;
    if served {
        slot.served += 1;
        if slot.state == HostState::Live && slot.served >= share {
            slot.state = HostState::Draining;
            recycled = true;
        }
    }
    if slot.in_flight == 0 {
        match slot.state {
            HostState::Live => {
                slot.tenant = None;
                slot.idle_since = Instant::now();
            }
            HostState::Draining => {
                // Closing the socket ends the host; its reader then drops
                // the process handle (killing what is left of the jail).
                drop(slot);
                st.hosts.retain(|h| h.id != host.id);
                host.close();
            }
            HostState::Dead => {}
        }
    }
    recycled
}

/// Keeps `size` hosts started, stops hosts idle too long above that, retries
/// failed starts and serves waiting runs.
fn maintain(inner: &Arc<Inner>) {
    let mut st = lock(&inner.state);
    let now = Instant::now();
    let mut live = st
        .hosts
        .iter()
        .filter(|h| lock(&h.slot).state == HostState::Live)
        .count();
    let mut retire = Vec::new();
    for host in &st.hosts {
        if live <= inner.config.size {
            break;
        }
        let mut slot = lock(&host.slot);
        if slot.state == HostState::Live
            && slot.in_flight == 0
            && now.duration_since(slot.idle_since) >= inner.config.idle_timeout
        {
            slot.state = HostState::Draining;
            live -= 1;
            retire.push(Arc::clone(host));
        }
    }
    if !retire.is_empty() {
        st.hosts.retain(|h| !retire.iter().any(|r| r.id == h.id));
        inner
            .retired
            .fetch_add(retire.len() as u64, Ordering::Relaxed);
        for host in &retire {
            host.close();
        }
    }
    while live < inner.config.size && st.hosts.len() < inner.config.max_hosts {
        match start_host(inner, &mut st) {
            Some(host) => {
                st.hosts.push(host);
                live += 1;
            }
            None => break,
        }
    }
    dispatch(inner, &mut st);
}

/// A run finished (or failed): free its slot, recycle the host when it has
/// served its share, and hand the slot on.
fn release(inner: &Arc<Inner>, host: &Arc<HostProc>, thread: usize) {
    let mut st = lock(&inner.state);
    if free_slot(&mut st, host, thread, true, inner.config.runs_per_host) {
        inner.recycled.fetch_add(1, Ordering::Relaxed);
    }
    if !inner.closing.load(Ordering::SeqCst) {
        let live = st
            .hosts
            .iter()
            .filter(|h| lock(&h.slot).state == HostState::Live)
            .count();
        if live < inner.config.size
            && st.hosts.len() < inner.config.max_hosts
            && let Some(new) = start_host(inner, &mut st)
        {
            st.hosts.push(new);
        }
    }
    dispatch(inner, &mut st);
}

/// A run went silent past its limits. If the host still answers, only that
/// run's isolate thread is stuck: the run ends with the limit it broke; the
/// runs sharing its thread cannot progress, so those that had no effect
/// outside the host yet are run again elsewhere and the others fail; the
/// host takes no more runs and is closed once its other runs are done. If the host does
/// not answer, it hung: it is killed and its runs fail.
async fn watchdog(inner: &Arc<Inner>, host: &Arc<HostProc>, run: u64, limits: &Limits) {
    let seq = inner.next_ping.fetch_add(1, Ordering::Relaxed);
    if !host.responds(seq, inner.config.hang_grace).await {
        host_failed(
            inner,
            host,
            "the sandbox host stopped responding and was killed",
        );
        return;
    }
    let (offender, neighbours) = {
        let mut runs = lock(&host.runs);
        let Some(offender) = runs.remove(&run) else {
            return; // It finished meanwhile.
        };
        let same_thread: Vec<u64> = runs
            .iter()
            .filter(|(_, s)| s.thread == offender.thread)
            .map(|(id, _)| *id)
            .collect();
        let neighbours: Vec<RunSlot> = same_thread
            .into_iter()
            .filter_map(|id| runs.remove(&id))
            .collect();
        (offender, neighbours)
    };
    {
        let st = lock(&inner.state);
        let mut slot = lock(&host.slot);
        if slot.state == HostState::Live {
            slot.state = HostState::Draining;
        }
        drop(slot);
        drop(st);
    }
    let error = RunError::new(
        ErrorKind::Timeout,
        "Timeout",
        format!(
            "the run exceeded its timeout of {} ms in an operation that could not be interrupted, and was stopped",
            limits.timeout.as_millis()
        ),
    );
    let _ = offender.done.send(Finish::Done(RunOutcome::failed(
        error,
        offender.started.elapsed(),
    )));
    for slot in neighbours {
        let finish = if slot.effects {
            let error = RunError::new(ErrorKind::SandboxCrashed, "SandboxCrashed", NEIGHBOUR_STUCK);
            Finish::Done(RunOutcome::failed(error, slot.started.elapsed()))
        } else {
            Finish::Retry
        };
        let _ = slot.done.send(finish);
    }
}

/// A host crashed, hung or broke the protocol: kill it and fail its runs.
fn host_failed(inner: &Arc<Inner>, host: &Arc<HostProc>, why: &str) {
    {
        let mut st = lock(&inner.state);
        let mut slot = lock(&host.slot);
        if slot.state == HostState::Dead {
            return;
        }
        let was_live = slot.state == HostState::Live;
        slot.state = HostState::Dead;
        drop(slot);
        if !host.ready.load(Ordering::Acquire) && !inner.closing.load(Ordering::SeqCst) {
            // It never got going: a failed start, retried with backoff
            // rather than at once and forever.
            start_failed(inner, &mut st, why);
        } else if was_live || !inner.closing.load(Ordering::SeqCst) {
            inner.failed.fetch_add(1, Ordering::Relaxed);
        }
        st.hosts.retain(|h| h.id != host.id);
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
        let _ = slot.done.send(Finish::Done(RunOutcome::failed(
            error,
            slot.started.elapsed(),
        )));
    }
    // Its runs release their slots as they return; waiting runs may now get
    // a new host.
    maintain(inner);
}

fn spawn_host(inner: &Arc<Inner>) -> Result<Arc<HostProc>, PoolError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let isolate_threads = inner
        .config
        .isolate_threads_per_host
        .clamp(1, MAX_ISOLATE_THREADS);
    let lane_pairs = (0..isolate_threads)
        .map(|_| std::os::unix::net::UnixStream::pair())
        .collect::<Result<Vec<_>, _>>()?;
    let mut args = vec!["sandbox-host".to_owned()];
    if inner.config.allow_faults {
        args.push("--allow-faults".into());
    }
    args.push("--isolate-threads".into());
    args.push(isolate_threads.to_string());
    let mut fds = vec![
        (theirs.as_raw_fd(), HOST_SOCKET_FD),
        (inner.exe.as_raw_fd(), HOST_EXE_FD),
    ];
    fds.extend(
        lane_pairs
            .iter()
            .enumerate()
            .map(|(i, (_, theirs))| (theirs.as_raw_fd(), HOST_LANE_FD + i as i32)),
    );
    let spec = ProcessSpec {
        program: format!("/proc/self/fd/{HOST_EXE_FD}"),
        args,
        env: vec![(
            host::SECCOMP_ENV.to_owned(),
            if inner.jail.isolation().seccomp {
                "1"
            } else {
                "0"
            }
            .to_owned(),
        )],
        fds,
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
    let split = |ours: std::os::unix::net::UnixStream| -> std::io::Result<_> {
        ours.set_nonblocking(true)?;
        Ok(tokio::net::UnixStream::from_std(ours)?.into_split())
    };
    let (reader, writer) = split(ours)?;
    let mut lane_readers = Vec::with_capacity(isolate_threads);
    let mut lanes = Vec::with_capacity(isolate_threads);
    for (ours, theirs) in lane_pairs {
        drop(theirs);
        let (r, w) = split(ours)?;
        lane_readers.push(r);
        lanes.push(tokio::sync::Mutex::new(Some(w)));
    }
    let stderr = process.child.stderr.take();
    let id = inner.next_host.fetch_add(1, Ordering::Relaxed);
    let host = Arc::new(HostProc {
        id,
        pid: process.id(),
        out: tokio::sync::Mutex::new(Some(writer)),
        lanes,
        runtime: tokio::runtime::Handle::current(),
        runs: Mutex::new(HashMap::new()),
        slot: Mutex::new(Slot {
            state: HostState::Live,
            tenant: None,
            in_flight: 0,
            served: 0,
            thread_load: vec![0; isolate_threads],
            idle_since: Instant::now(),
        }),
        process: Mutex::new(Some(process)),
        stderr_tail: Arc::new(Mutex::new(Vec::new())),
        ready: AtomicBool::new(false),
        pong: AtomicU64::new(0),
        ponged: Notify::new(),
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
    // Each isolate thread's socket: its runs' frames. The host leaving is
    // seen on the control socket; a lane only reports a broken protocol.
    for (thread, reader) in lane_readers.into_iter().enumerate() {
        let weak_inner = Arc::downgrade(inner);
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            // Frames are read through a buffer: one read takes every frame
            // the thread has written meanwhile.
            let mut reader = tokio::io::BufReader::with_capacity(64 << 10, reader);
            let mut buf = Vec::new();
            loop {
                match protocol::read::<_, ToSupervisor>(&mut reader, &mut buf).await {
                    Ok(Some(msg)) => {
                        // The host says it is ready on its control socket
                        // before any thread takes a run; a thread's frame
                        // read first (the two sockets are read apart) proves
                        // it just as well.
                        if !host.ready.load(Ordering::Acquire)
                            && let Some(inner) = weak_inner.upgrade()
                        {
                            host_ready(&inner, &host);
                        }
                        if let Err(why) = from_lane(&host, thread, msg) {
                            eprintln!("citadel: sandbox host {id} broke the protocol: {why}");
                            if let Some(inner) = weak_inner.upgrade() {
                                host_failed(&inner, &host, BROKE_PROTOCOL);
                            }
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        eprintln!("citadel: sandbox host {id} broke the protocol: {e}");
                        if let Some(inner) = weak_inner.upgrade() {
                            host_failed(&inner, &host, BROKE_PROTOCOL);
                        }
                        return;
                    }
                }
            }
        });
    }
    let weak_inner = Arc::downgrade(inner);
    let reader_host = Arc::clone(&host);
    tokio::spawn(async move {
        let mut reader = tokio::io::BufReader::with_capacity(4 << 10, reader);
        let mut buf = Vec::new();
        let why = loop {
            match protocol::read::<_, ToSupervisor>(&mut reader, &mut buf).await {
                Ok(Some(ToSupervisor::Ready)) => {
                    if let Some(inner) = weak_inner.upgrade() {
                        host_ready(&inner, &reader_host);
                    }
                }
                Ok(Some(ToSupervisor::Pong { seq })) => {
                    reader_host.pong.fetch_max(seq, Ordering::AcqRel);
                    reader_host.ponged.notify_waiters();
                }
                Ok(Some(other)) => {
                    eprintln!(
                        "citadel: sandbox host {id} broke the protocol: {} on its control socket",
                        kind_of(&other)
                    );
                    break BROKE_PROTOCOL;
                }
                Ok(None) => break "the sandbox host exited",
                Err(e) => {
                    eprintln!("citadel: sandbox host {id} broke the protocol: {e}");
                    break BROKE_PROTOCOL;
                }
            }
        };
        // The reading half goes now, whatever follows.
        drop(reader);
        let orderly = lock(&reader_host.slot).state == HostState::Draining
            && lock(&reader_host.runs).is_empty();
        let inner = weak_inner.upgrade();
        if orderly || inner.is_none() {
            lock(&reader_host.slot).state = HostState::Dead;
            // Dropping the handle kills what is left of the jail and
            // removes its cgroup.
            drop(lock(&reader_host.process).take());
            reader_host.out.lock().await.take();
            for lane in &reader_host.lanes {
                lane.lock().await.take();
            }
            return;
        }
        let Some(inner) = inner else { return };
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
    });
    Ok(host)
}

const BROKE_PROTOCOL: &str = "the sandbox host broke the protocol and was killed";

fn kind_of(msg: &ToSupervisor) -> &'static str {
    match msg {
        ToSupervisor::Ready => "ready",
        ToSupervisor::Pong { .. } => "pong",
        ToSupervisor::Call { .. } => "a capability call",
        ToSupervisor::Logs { .. } => "log lines",
        ToSupervisor::Done { .. } => "an outcome",
    }
}

/// A frame from isolate thread `thread`: about one of its runs only (a run
/// of another thread is as unknown as one that is over).
fn from_lane(host: &Arc<HostProc>, thread: usize, msg: ToSupervisor) -> Result<(), String> {
    let mine = |s: &RunSlot| s.thread == thread;
    match msg {
        ToSupervisor::Done { run, outcome } => {
            let slot = {
                let mut runs = lock(&host.runs);
                match runs.get(&run) {
                    Some(s) if mine(s) => runs.remove(&run),
                    _ => None,
                }
            };
            if let Some(slot) = slot {
                let _ = slot.done.send(Finish::Done(outcome));
            }
        }
        ToSupervisor::Logs { run, lines } => {
            let gateway = lock(&host.runs).get_mut(&run).filter(|s| mine(s)).map(|s| {
                s.effects = true;
                Arc::clone(&s.gateway)
            });
            if let Some(gateway) = gateway {
                gateway.logs(lines);
            }
        }
        ToSupervisor::Call { run, call, request } => {
            let slot = lock(&host.runs).get_mut(&run).filter(|s| mine(s)).map(|s| {
                s.effects = true;
                (Arc::clone(&s.gateway), s.grants)
            });
            let host = Arc::clone(host);
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
                host.send_lane(
                    thread,
                    protocol::encode(&ToHost::Reply { run, call, result }),
                )
                .await;
            });
        }
        other @ (ToSupervisor::Ready | ToSupervisor::Pong { .. }) => {
            return Err(format!("{} on an isolate thread's socket", kind_of(&other)));
        }
    }
    Ok(())
}
