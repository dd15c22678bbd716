//! The sandbox host: the process (`citadel sandbox-host`) that runs isolates
//! inside a jail, on requests from the supervisor over its sockets.
//!
//! A host runs its isolates on a fixed set of threads, all made at start-up:
//! once the host has locked itself down it can make no more. Each of them has
//! its own current-thread runtime, its own isolates (an isolate never leaves
//! the thread it was made on) and its own socket to the supervisor (its
//! lane), which it reads and writes itself: a run, its capability replies
//! and its cancellation reach the thread that runs it without passing
//! through another thread. The frames a thread sends are queued and written
//! together. The main thread keeps the control socket: it says when the
//! host is ready and answers the watchdog's pings, so a pong means the host
//! works even if one isolate thread is stuck.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Arc, Barrier};

use citadel_jail::{Isolation, Profile};
use citadel_sandbox::{
    CancelToken, Grants, Host, HostCall, HostError, HostFuture, LogLine, RunRequest, Sandbox,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Notify, oneshot};

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

/// Runs a sandbox host on the control socket at `fd` and one socket per
/// isolate thread at the descriptors 5, 6, … until the supervisor closes
/// the control socket, with isolates on `isolate_threads` threads.
/// Returns the process exit code.
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
    let control = unsafe { UnixStream::from_raw_fd(fd) };
    let out = match control
        .set_nonblocking(false)
        .and_then(|()| control.try_clone())
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("sandbox host: bad socket: {e}");
            return exit::SETUP;
        }
    };
    let threads = isolate_threads.clamp(1, crate::MAX_ISOLATE_THREADS);
    // SAFETY: the supervisor passes one socket per isolate thread at the
    // numbers after HOST_LANE_FD, owned by this process from here on.
    let lanes: Vec<UnixStream> = (0..threads)
        .map(|i| unsafe { UnixStream::from_raw_fd(crate::HOST_LANE_FD + i as RawFd) })
        .collect();
    // The supervisor probed the kernel already and says whether seccomp
    // filters can be applied; started otherwise, the host probes itself
    // (forking: do it while this is the only thread).
    let seccomp = match std::env::var(SECCOMP_ENV).as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => Isolation::probe().seccomp,
    };
    // One compile cache for the whole host; isolates stay per thread.
    let sandbox = Arc::new(Sandbox::default());
    // The isolate threads take no run before the filter below covers them.
    let locked_down = Arc::new(Barrier::new(lanes.len() + 1));
    if let Err(e) = start_isolate_threads(lanes, &sandbox, allow_faults, &locked_down) {
        eprintln!("sandbox host: {e}");
        return exit::SETUP;
    }
    // From here on the host only computes and uses its sockets: every thread
    // it will ever have exists, and the filter covers them all.
    if seccomp && let Err(e) = citadel_jail::restrict_self(Profile::SandboxHost) {
        eprintln!("sandbox host: cannot apply its seccomp filter: {e}");
        return exit::SETUP;
    }
    locked_down.wait();
    let mut out = out;
    if out
        .write_all(&protocol::encode(&ToSupervisor::Ready))
        .is_err()
    {
        return exit::OK;
    }
    let code = serve_control(&control, &mut out, allow_faults);
    // The process ends with this; closing the sockets first would only make
    // system calls the allow list refuses.
    std::mem::forget((control, out));
    code
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

/// Starts the isolate threads, each with its runtime, its lane registered
/// and a first isolate made (which also compiles the prelude), and waits
/// until all are ready.
fn start_isolate_threads(
    lanes: Vec<UnixStream>,
    sandbox: &Arc<Sandbox>,
    allow_faults: bool,
    locked_down: &Arc<Barrier>,
) -> Result<(), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let count = lanes.len();
    for (index, lane) in lanes.into_iter().enumerate() {
        let sandbox = Arc::clone(sandbox);
        let ready = ready_tx.clone();
        let locked_down = Arc::clone(locked_down);
        std::thread::Builder::new()
            .name(format!("isolates-{index}"))
            .stack_size(ISOLATE_THREAD_STACK)
            .spawn(move || isolate_thread(sandbox, lane, allow_faults, ready, &locked_down))
            .map_err(|e| format!("cannot start an isolate thread: {e}"))?;
    }
    drop(ready_tx);
    for _ in 0..count {
        ready_rx
            .recv()
            .map_err(|_| "an isolate thread ended while starting".to_owned())??;
    }
    Ok(())
}

/// Reads the control socket until the supervisor closes it: pings, and
/// (with `--allow-faults`) the faults that concern the whole host.
fn serve_control(control: &UnixStream, out: &mut UnixStream, allow_faults: bool) -> i32 {
    let mut reader = BufReader::with_capacity(4 << 10, control);
    let mut buf = Vec::new();
    loop {
        match protocol::read_blocking::<_, ToHost>(&mut reader, &mut buf) {
            Ok(None) => return exit::OK,
            Err(e) => {
                eprintln!("sandbox host: {e}");
                return exit::PROTOCOL;
            }
            Ok(Some(ToHost::Ping { seq })) => {
                // A write error means the supervisor is gone; reading ends
                // then too.
                let _ = out.write_all(&protocol::encode(&ToSupervisor::Pong { seq }));
            }
            Ok(Some(ToHost::Run(job))) if allow_faults && job.fault.is_some() => {
                if let Some(fault) = job.fault {
                    inject(fault, out);
                }
            }
            Ok(Some(other)) => {
                eprintln!("sandbox host: unexpected frame on the control socket: {other:?}");
                return exit::PROTOCOL;
            }
        }
    }
}

fn inject(fault: Fault, out: &mut UnixStream) {
    match fault {
        Fault::Garbage => {
            let _ = out.write_all(b"\x10\x00\x00\x00this is not json");
        }
        Fault::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Fault::Abort => std::process::abort(),
        // Happens on the run's isolate thread (see `run_job`).
        Fault::Block => {}
    }
}

/// One isolate thread's side of its lane, shared by its runs (one thread:
/// no locks).
struct Lane {
    /// Frames waiting to be written, in order.
    outbox: RefCell<Vec<u8>>,
    /// The socket's writing half while no write is under way.
    writer: RefCell<Option<OwnedWriteHalf>>,
    /// Wakes the writing task.
    queued: Notify,
    /// Capability calls awaiting the supervisor, by (run, call).
    calls: RefCell<HashMap<(u64, u32), ReplySlot>>,
    /// Runs in progress, to cancel them.
    cancels: RefCell<HashMap<u64, CancelToken>>,
    next_call: Cell<u32>,
    /// Runs on this thread not yet done.
    load: Cell<usize>,
    /// Whom the warm contexts on this thread were made for.
    scope: RefCell<Option<String>>,
}

impl Lane {
    /// Queues a frame; the writing task sends what is queued once the
    /// thread's current task yields, so frames made together leave together.
    fn send(&self, msg: &ToSupervisor) {
        self.outbox.borrow_mut().extend(protocol::encode(msg));
        self.queued.notify_one();
    }

    /// Writes what is queued now, as far as the socket takes it without
    /// waiting; the writing task sends the rest.
    fn flush(&self) {
        let Some(writer) = self.writer.borrow_mut().take() else {
            return; // The writing task is at it.
        };
        {
            let mut outbox = self.outbox.borrow_mut();
            let mut sent = 0;
            while sent < outbox.len() {
                match writer.try_write(&outbox[sent..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            outbox.drain(..sent);
        }
        *self.writer.borrow_mut() = Some(writer);
    }
}

/// Writes the lane's queued frames, a batch per write, until the socket
/// closes.
async fn write_lane(lane: Rc<Lane>) {
    let mut batch = Vec::new();
    loop {
        if lane.outbox.borrow().is_empty() {
            lane.queued.notified().await;
            continue;
        }
        let Some(mut writer) = lane.writer.borrow_mut().take() else {
            return;
        };
        std::mem::swap(&mut batch, &mut *lane.outbox.borrow_mut());
        // A write error means the supervisor is gone; reading ends then too.
        let written = writer.write_all(&batch).await;
        batch.clear();
        *lane.writer.borrow_mut() = Some(writer);
        if written.is_err() {
            return;
        }
    }
}

fn isolate_thread(
    sandbox: Arc<Sandbox>,
    lane: UnixStream,
    allow_faults: bool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    locked_down: &Barrier,
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
    // The socket is made non-blocking and registered now: the host's
    // allow list has no `fcntl`.
    let socket = {
        let _entered = runtime.enter();
        lane.set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(lane))
    };
    let socket = match socket {
        Ok(socket) => socket,
        Err(e) => {
            let _ = ready.send(Err(format!("bad lane socket: {e}")));
            return;
        }
    };
    // The first isolate is made before the host locks itself down.
    if let Err(e) = sandbox.prewarm(1) {
        let _ = ready.send(Err(format!("cannot create an isolate: {e:?}")));
        return;
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    // No frame is read before the host's allow list is in place.
    locked_down.wait();
    let (reader, writer) = socket.into_split();
    let lane = Rc::new(Lane {
        outbox: RefCell::new(Vec::new()),
        writer: RefCell::new(Some(writer)),
        queued: Notify::new(),
        calls: RefCell::new(HashMap::new()),
        cancels: RefCell::new(HashMap::new()),
        next_call: Cell::new(0),
        load: Cell::new(0),
        scope: RefCell::new(None),
    });
    let local = tokio::task::LocalSet::new();
    let code: i32 = local.block_on(&runtime, async move {
        tokio::task::spawn_local(write_lane(Rc::clone(&lane)));
        let mut reader = tokio::io::BufReader::with_capacity(64 << 10, reader);
        let mut buf = Vec::new();
        loop {
            match protocol::read::<_, ToHost>(&mut reader, &mut buf).await {
                Ok(None) => {
                    // The supervisor closed the lane: it is closing the
                    // host, which ends when the control socket closes. The
                    // thread waits for that here, holding what it has:
                    // ending the thread, or closing its socket, makes
                    // system calls the allow list refuses (and the kernel
                    // kills the host for them).
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    eprintln!("sandbox host: {e}");
                    return exit::PROTOCOL;
                }
                Ok(Some(ToHost::Run(mut job))) => {
                    if !allow_faults || job.fault != Some(Fault::Block) {
                        job.fault = None;
                    }
                    accept(&sandbox, &lane, job);
                }
                Ok(Some(ToHost::Reply { run, call, result })) => {
                    let slot = lane.calls.borrow_mut().remove(&(run, call));
                    if let Some(tx) = slot {
                        let _ = tx.send(result);
                    }
                }
                Ok(Some(ToHost::Cancel { run })) => {
                    if let Some(token) = lane.cancels.borrow().get(&run) {
                        token.cancel();
                    }
                }
                Ok(Some(ToHost::Ping { .. })) => {
                    eprintln!("sandbox host: a ping on an isolate thread's socket");
                    return exit::PROTOCOL;
                }
            }
        }
    });
    // The supervisor broke the protocol: the host goes, as it would for the
    // control socket.
    std::process::exit(code);
}

/// Takes a run on this thread.
fn accept(sandbox: &Arc<Sandbox>, lane: &Rc<Lane>, job: RunJob) {
    {
        let mut scope = lane.scope.borrow_mut();
        if scope.as_deref() != Some(job.scope.as_str()) {
            // The supervisor hands a host to another tenant only once its
            // runs are done: no warm context of the one before stays here.
            if scope.is_some() {
                sandbox.forget_warm();
            }
            *scope = Some(job.scope.clone());
        }
    }
    let cancel = CancelToken::new();
    lane.cancels.borrow_mut().insert(job.run, cancel.clone());
    lane.load.set(lane.load.get() + 1);
    tokio::task::spawn_local(run_job(Arc::clone(sandbox), Rc::clone(lane), job, cancel));
}

/// Forwards a run's capability calls to the supervisor.
struct RemoteHost {
    lane: Rc<Lane>,
    run: u64,
}

impl Host for RemoteHost {
    fn call(&self, request: HostCall) -> HostFuture {
        let call = self.lane.next_call.get();
        self.lane.next_call.set(call.wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        self.lane.calls.borrow_mut().insert((self.run, call), tx);
        let lane = Rc::clone(&self.lane);
        let run = self.run;
        Box::pin(async move {
            lane.send(&ToSupervisor::Call { run, call, request });
            rx.await
                .unwrap_or_else(|_| Err(HostError::new("unavailable", "the supervisor went away")))
        })
    }

    fn logs(&self, lines: &[LogLine]) {
        self.lane.send(&ToSupervisor::Logs {
            run: self.run,
            lines: lines.to_vec(),
        });
    }
}

async fn run_job(sandbox: Arc<Sandbox>, lane: Rc<Lane>, job: RunJob, cancel: CancelToken) {
    if job.fault == Some(Fault::Block) {
        // Only with `--allow-faults` (the lane drops faults otherwise).
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let script = sandbox.load(&job.source, job.language);
    let request = RunRequest {
        input_json: &job.input_json,
        limits: job.limits,
        grants: job.grants.iter().copied().collect::<Grants>(),
        host: Rc::new(RemoteHost {
            lane: Rc::clone(&lane),
            run: job.run,
        }),
        cancel: Some(cancel),
    };
    let outcome = match &job.warm {
        Some(key) => sandbox.run_as_version(&script, request, key).await,
        None => sandbox.run(&script, request).await,
    };
    lane.cancels.borrow_mut().remove(&job.run);
    lane.calls
        .borrow_mut()
        .retain(|(run, _), _| *run != job.run);
    lane.send(&ToSupervisor::Done {
        run: job.run,
        outcome,
    });
    let load = lane.load.get() - 1;
    lane.load.set(load);
    if load == 0 {
        // Idle: the outcome leaves first, then the thread makes its next
        // isolate, off the next run's critical path.
        lane.flush();
        let _ = sandbox.prewarm(1);
    }
}
