//! The sandbox host: the process (`citadel sandbox-host`) that runs isolates
//! inside a jail, on requests from the supervisor over its socket.
//!
//! A host runs its isolates on a fixed set of threads, all made at start-up:
//! once the host has locked itself down it can make no more. Each of them has
//! its own current-thread runtime and its own warm isolates, and an isolate
//! never leaves the thread it was made on. The main thread reads the
//! supervisor's frames: it hands each run to the least loaded isolate
//! thread, and delivers capability replies and cancellations to the run
//! itself. Whichever thread has a frame to send writes it whole under one
//! lock.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use citadel_jail::{Isolation, Profile};
use citadel_sandbox::{
    CancelToken, Grants, Host, HostCall, HostError, HostFuture, LogLine, RunRequest, Sandbox,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::lock;
use crate::protocol::{self, Fault, RunJob, ToHost, ToSupervisor};

/// The variable the supervisor tells a host through whether the kernel
/// allows seccomp filters (`1` or `0`), so the host need not probe again.
pub(crate) const SECCOMP_ENV: &str = "CITADEL_HOST_SECCOMP";

/// Exit codes of a sandbox host.
pub mod exit {
    pub const OK: i32 = 0;
    pub const SETUP: i32 = 70;
    pub const PROTOCOL: i32 = 71;
}

/// Stack of an isolate thread: what the main thread gets by default, so a
/// run's `stack_bytes` limit means the same on every thread.
const ISOLATE_THREAD_STACK: usize = 8 << 20;

/// Where the supervisor's reply to one capability call goes.
type ReplySlot = oneshot::Sender<Result<Value, HostError>>;

/// What the main thread and the isolate threads share.
struct Shared {
    /// The socket towards the supervisor, in blocking mode; a writer holds
    /// the lock for one whole frame, so frames never interleave.
    out: Mutex<UnixStream>,
    /// Capability calls awaiting the supervisor, by (run, call).
    calls: Mutex<HashMap<(u64, u32), ReplySlot>>,
    /// Runs in progress, to cancel them from the reading thread.
    cancels: Mutex<HashMap<u64, CancelToken>>,
    next_call: AtomicU32,
}

impl Shared {
    fn send(&self, msg: &ToSupervisor) {
        self.send_raw(&protocol::encode(msg));
    }

    fn send_raw(&self, frame: &[u8]) {
        // A write error means the supervisor is gone; reading ends then too.
        // The supervisor reads all the time, so a full socket only waits for
        // it to catch up.
        let _ = lock(&self.out).write_all(frame);
    }
}

/// Forwards a run's capability calls to the supervisor.
struct RemoteHost {
    shared: Arc<Shared>,
    run: u64,
}

impl Host for RemoteHost {
    fn call(&self, request: HostCall) -> HostFuture {
        let call = self.shared.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.calls).insert((self.run, call), tx);
        let shared = Arc::clone(&self.shared);
        let run = self.run;
        Box::pin(async move {
            shared.send(&ToSupervisor::Call { run, call, request });
            rx.await
                .unwrap_or_else(|_| Err(HostError::new("unavailable", "the supervisor went away")))
        })
    }

    fn logs(&self, lines: &[LogLine]) {
        self.shared.send(&ToSupervisor::Logs {
            run: self.run,
            lines: lines.to_vec(),
        });
    }
}

/// A run handed to an isolate thread.
struct Dispatched {
    job: RunJob,
    cancel: CancelToken,
}

/// What the main thread hands an isolate thread.
enum ToThread {
    Run(Box<Dispatched>),
    /// The host serves someone else from now on: drop the warm contexts.
    ForgetWarm,
}

/// The main thread's handle on an isolate thread.
struct IsolateThread {
    jobs: mpsc::UnboundedSender<ToThread>,
    /// Runs handed to the thread and not yet done.
    load: Arc<AtomicUsize>,
}

/// Runs a sandbox host on the socket at `fd` until the supervisor closes it,
/// with isolates on `isolate_threads` threads. Returns the process exit code.
pub fn host_main(fd: RawFd, allow_faults: bool, isolate_threads: usize) -> i32 {
    // The supervisor passed our own executable as a descriptor to start us;
    // nothing needs it any more.
    // SAFETY: closing a descriptor number this process owns, if open.
    unsafe { libc::close(crate::HOST_EXE_FD) };
    // One malloc arena for every thread. glibc shrinks the heaps of its
    // per-thread arenas after reading /proc/sys/vm/overcommit_memory, an
    // `openat` the seccomp allow list kills the host for (seen under
    // thousands of awaiting runs); the main arena never does that.
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    fix_time_zone();
    // SAFETY: the supervisor passes the host's end of a socket pair as `fd`,
    // owned by this process from here on.
    let socket = unsafe { UnixStream::from_raw_fd(fd) };
    let out = match socket
        .set_nonblocking(false)
        .and_then(|()| socket.try_clone())
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("sandbox host: bad socket: {e}");
            return exit::SETUP;
        }
    };
    // The supervisor probed the kernel already and says whether seccomp
    // filters can be applied; started otherwise, the host probes itself
    // (forking: do it while this is the only thread).
    let seccomp = match std::env::var(SECCOMP_ENV).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => Isolation::probe().seccomp,
    };
    let shared = Arc::new(Shared {
        out: Mutex::new(out),
        calls: Mutex::new(HashMap::new()),
        cancels: Mutex::new(HashMap::new()),
        next_call: AtomicU32::new(0),
    });
    // One compile cache for the whole host; isolates stay per thread.
    let sandbox = Arc::new(Sandbox::default());
    let threads = match start_isolate_threads(isolate_threads.max(1), &sandbox, &shared) {
        Ok(threads) => threads,
        Err(e) => {
            eprintln!("sandbox host: {e}");
            return exit::SETUP;
        }
    };
    // From here on the host only computes and uses its socket: every thread
    // it will ever have exists, and the filter covers them all.
    if seccomp && let Err(e) = citadel_jail::restrict_self(Profile::SandboxHost) {
        eprintln!("sandbox host: cannot apply its seccomp filter: {e}");
        return exit::SETUP;
    }
    shared.send(&ToSupervisor::Ready);
    serve(socket, &shared, &threads, allow_faults)
}

/// The zone every host keeps local time in: UTC, in POSIX form so no zone
/// file is needed to read it.
pub const HOST_TIME_ZONE: &str = "UTC0";

unsafe extern "C" {
    /// glibc's; the `libc` crate does not declare it on Unix.
    fn tzset();
}

/// Local time in a host is UTC, settled before the seccomp allow list.
///
/// With `TZ` unset, glibc reopens (and stats) `/etc/localtime` on every
/// `mktime` and on the first `localtime_r`: after the allow list that is a
/// forbidden `openat`, and the kernel kills the host (and every run on it)
/// for `new Date(2020, 0, 1)`. A fixed `TZ` that `tzset` has read is never
/// read again. UTC rather than the server's zone: a script's output does not
/// depend on which node ran it, and the host needs no zone data at all.
fn fix_time_zone() {
    // SAFETY: called from `host_main` before any thread is started, so
    // nothing reads the environment concurrently; `tzset` and `localtime_r`
    // only read it and fill the buffer given.
    unsafe {
        std::env::set_var("TZ", HOST_TIME_ZONE);
        tzset();
        let now: libc::time_t = 0;
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
    }
}

/// Starts the isolate threads, each with its runtime and a first isolate
/// made (which also compiles the prelude), and waits until all are ready.
fn start_isolate_threads(
    count: usize,
    sandbox: &Arc<Sandbox>,
    shared: &Arc<Shared>,
) -> Result<Vec<IsolateThread>, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::with_capacity(count);
    for index in 0..count {
        let (jobs, rx) = mpsc::unbounded_channel();
        let load = Arc::new(AtomicUsize::new(0));
        let ctx = ThreadContext {
            sandbox: Arc::clone(sandbox),
            shared: Arc::clone(shared),
            load: Arc::clone(&load),
        };
        let ready = ready_tx.clone();
        std::thread::Builder::new()
            .name(format!("isolates-{index}"))
            .stack_size(ISOLATE_THREAD_STACK)
            .spawn(move || isolate_thread(ctx, rx, ready))
            .map_err(|e| format!("cannot start an isolate thread: {e}"))?;
        threads.push(IsolateThread { jobs, load });
    }
    drop(ready_tx);
    for _ in 0..count {
        ready_rx
            .recv()
            .map_err(|_| "an isolate thread ended while starting".to_owned())??;
    }
    Ok(threads)
}

/// What an isolate thread's runs share.
#[derive(Clone)]
struct ThreadContext {
    sandbox: Arc<Sandbox>,
    shared: Arc<Shared>,
    load: Arc<AtomicUsize>,
}

fn isolate_thread(
    ctx: ThreadContext,
    mut jobs: mpsc::UnboundedReceiver<ToThread>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start a runtime: {e}")));
            return;
        }
    };
    // The first isolate is made before the host locks itself down.
    if let Err(e) = ctx.sandbox.prewarm(1) {
        let _ = ready.send(Err(format!("cannot create an isolate: {e:?}")));
        return;
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        while let Some(message) = jobs.recv().await {
            match message {
                ToThread::Run(run) => {
                    tokio::task::spawn_local(run_job(ctx.clone(), *run));
                }
                ToThread::ForgetWarm => ctx.sandbox.forget_warm(),
            }
        }
    });
}

/// Reads the supervisor's frames until it closes the socket.
fn serve(
    socket: UnixStream,
    shared: &Shared,
    threads: &[IsolateThread],
    allow_faults: bool,
) -> i32 {
    let mut reader = BufReader::with_capacity(64 << 10, socket);
    let mut buf = Vec::new();
    // Whom the warm contexts on the isolate threads were made for.
    let mut scope: Option<String> = None;
    loop {
        match protocol::read_blocking::<_, ToHost>(&mut reader, &mut buf) {
            Ok(None) => return exit::OK,
            Err(e) => {
                eprintln!("sandbox host: {e}");
                return exit::PROTOCOL;
            }
            Ok(Some(ToHost::Run(mut job))) => {
                if !allow_faults {
                    job.fault = None;
                }
                if let Some(fault) = job.fault.filter(|f| *f != Fault::Block) {
                    inject(fault, shared);
                    continue;
                }
                if scope.as_deref() != Some(job.scope.as_str()) {
                    // The supervisor hands a host to another tenant only
                    // once its runs are done: no warm context of the one
                    // before stays in its memory.
                    if scope.is_some() {
                        for thread in threads {
                            let _ = thread.jobs.send(ToThread::ForgetWarm);
                        }
                    }
                    scope = Some(job.scope.clone());
                }
                let cancel = CancelToken::new();
                lock(&shared.cancels).insert(job.run, cancel.clone());
                // The thread the supervisor chose, else the least loaded
                // one, the first among equals: a thread that stays busy
                // stays warm.
                let chosen = job.thread.and_then(|t| threads.get(t));
                let Some(thread) = chosen.or_else(|| {
                    threads
                        .iter()
                        .min_by_key(|t| t.load.load(Ordering::Acquire))
                }) else {
                    return exit::SETUP;
                };
                thread.load.fetch_add(1, Ordering::AcqRel);
                if thread
                    .jobs
                    .send(ToThread::Run(Box::new(Dispatched { job, cancel })))
                    .is_err()
                {
                    eprintln!("sandbox host: an isolate thread has ended");
                    return exit::SETUP;
                }
            }
            Ok(Some(ToHost::Reply { run, call, result })) => {
                if let Some(tx) = lock(&shared.calls).remove(&(run, call)) {
                    let _ = tx.send(result);
                }
            }
            Ok(Some(ToHost::Ping { seq })) => shared.send(&ToSupervisor::Pong { seq }),
            Ok(Some(ToHost::Cancel { run })) => {
                if let Some(token) = lock(&shared.cancels).get(&run) {
                    token.cancel();
                }
            }
        }
    }
}

fn inject(fault: Fault, shared: &Shared) {
    match fault {
        Fault::Garbage => shared.send_raw(b"\x10\x00\x00\x00this is not json"),
        Fault::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Fault::Abort => std::process::abort(),
        // Happens on the run's isolate thread (see `run_job`).
        Fault::Block => {}
    }
}

async fn run_job(ctx: ThreadContext, Dispatched { job, cancel }: Dispatched) {
    if job.fault == Some(Fault::Block) {
        // Only with `--allow-faults` (the reading thread drops faults
        // otherwise).
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let script = ctx.sandbox.load(&job.source, job.language);
    let request = RunRequest {
        input_json: &job.input_json,
        limits: job.limits,
        grants: job.grants.iter().copied().collect::<Grants>(),
        host: Rc::new(RemoteHost {
            shared: Arc::clone(&ctx.shared),
            run: job.run,
        }),
        cancel: Some(cancel),
    };
    let outcome = match &job.warm {
        Some(key) => ctx.sandbox.run_as_version(&script, request, key).await,
        None => ctx.sandbox.run(&script, request).await,
    };
    lock(&ctx.shared.cancels).remove(&job.run);
    lock(&ctx.shared.calls).retain(|(run, _), _| *run != job.run);
    ctx.shared.send(&ToSupervisor::Done {
        run: job.run,
        outcome,
    });
    if ctx.load.fetch_sub(1, Ordering::AcqRel) == 1 {
        // Idle: make this thread's next isolate now, off its critical path.
        let _ = ctx.sandbox.prewarm(1);
    }
}
