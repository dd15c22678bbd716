//! The sandbox host: the process (`citadel sandbox-host`) that runs isolates
//! inside a jail, on requests from the supervisor over its socket.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;

use citadel_jail::{Isolation, Profile};
use citadel_sandbox::{
    CancelToken, Grants, Host, HostCall, HostError, HostFuture, RunRequest, Sandbox,
};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;

use crate::protocol::{self, Fault, RunJob, ToHost, ToSupervisor};

/// Exit codes of a sandbox host.
pub mod exit {
    pub const OK: i32 = 0;
    pub const SETUP: i32 = 70;
    pub const PROTOCOL: i32 = 71;
}

/// Where the supervisor's reply to one capability call goes.
type ReplySlot = oneshot::Sender<Result<Value, HostError>>;

struct HostState {
    /// The socket towards the supervisor; a writer holds the lock for one
    /// whole frame.
    out: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Capability calls awaiting the supervisor, by (run, call).
    calls: RefCell<HashMap<(u64, u32), ReplySlot>>,
    cancels: RefCell<HashMap<u64, CancelToken>>,
    next_call: Cell<u32>,
    in_flight: Cell<usize>,
}

impl HostState {
    async fn send(&self, msg: &ToSupervisor) {
        self.send_raw(&protocol::encode(msg)).await;
    }

    async fn send_raw(&self, frame: &[u8]) {
        // A write error means the supervisor is gone; reading ends then too.
        let _ = self.out.lock().await.write_all(frame).await;
    }
}

/// Forwards a run's capability calls to the supervisor.
struct RemoteHost {
    state: Rc<HostState>,
    run: u64,
}

impl Host for RemoteHost {
    fn call(&self, request: HostCall) -> HostFuture {
        let call = self.state.next_call.get();
        self.state.next_call.set(call.wrapping_add(1));
        let (tx, rx) = oneshot::channel();
        self.state.calls.borrow_mut().insert((self.run, call), tx);
        let state = Rc::clone(&self.state);
        let run = self.run;
        Box::pin(async move {
            state.send(&ToSupervisor::Call { run, call, request }).await;
            rx.await
                .unwrap_or_else(|_| Err(HostError::new("unavailable", "the supervisor went away")))
        })
    }
}

/// Runs a sandbox host on the socket at `fd` until the supervisor closes it.
/// Returns the process exit code.
pub fn host_main(fd: RawFd, allow_faults: bool) -> i32 {
    // The supervisor passed our own executable as a descriptor to start us;
    // nothing needs it any more.
    // SAFETY: closing a descriptor number this process owns, if open.
    unsafe { libc::close(crate::HOST_EXE_FD) };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandbox host: cannot start its runtime: {e}");
            return exit::SETUP;
        }
    };
    // SAFETY: the supervisor passes the host's end of a socket pair as `fd`,
    // owned by this process from here on.
    let socket = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    if let Err(e) = socket.set_nonblocking(true) {
        eprintln!("sandbox host: bad socket: {e}");
        return exit::SETUP;
    }
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(serve(socket, allow_faults)))
}

async fn serve(socket: std::os::unix::net::UnixStream, allow_faults: bool) -> i32 {
    let socket = match UnixStream::from_std(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox host: bad socket: {e}");
            return exit::SETUP;
        }
    };
    let sandbox = Rc::new(Sandbox::default());
    // Compile the prelude and make the first isolate before locking down.
    if let Err(e) = sandbox.prewarm(1) {
        eprintln!("sandbox host: cannot create an isolate: {e:?}");
        return exit::SETUP;
    }
    // From here on the host only computes and uses its socket.
    if Isolation::probe().seccomp
        && let Err(e) = citadel_jail::restrict_self(Profile::SandboxHost)
    {
        eprintln!("sandbox host: cannot apply its seccomp filter: {e}");
        return exit::SETUP;
    }

    let (mut reader, writer) = socket.into_split();
    let state = Rc::new(HostState {
        out: tokio::sync::Mutex::new(writer),
        calls: RefCell::new(HashMap::new()),
        cancels: RefCell::new(HashMap::new()),
        next_call: Cell::new(0),
        in_flight: Cell::new(0),
    });
    state.send(&ToSupervisor::Ready).await;

    let mut buf = Vec::new();
    loop {
        match protocol::read::<_, ToHost>(&mut reader, &mut buf).await {
            Ok(None) => return exit::OK,
            Err(e) => {
                eprintln!("sandbox host: {e}");
                return exit::PROTOCOL;
            }
            Ok(Some(ToHost::Run(job))) => {
                if let Some(fault) = job.fault.filter(|_| allow_faults) {
                    inject(fault, &state).await;
                    continue;
                }
                tokio::task::spawn_local(run_job(Rc::clone(&sandbox), Rc::clone(&state), job));
            }
            Ok(Some(ToHost::Reply { run, call, result })) => {
                if let Some(tx) = state.calls.borrow_mut().remove(&(run, call)) {
                    let _ = tx.send(result);
                }
            }
            Ok(Some(ToHost::Cancel { run })) => {
                if let Some(token) = state.cancels.borrow().get(&run) {
                    token.cancel();
                }
            }
        }
    }
}

async fn inject(fault: Fault, state: &HostState) {
    match fault {
        Fault::Garbage => state.send_raw(b"\x10\x00\x00\x00this is not json").await,
        Fault::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Fault::Abort => std::process::abort(),
    }
}

async fn run_job(sandbox: Rc<Sandbox>, state: Rc<HostState>, job: RunJob) {
    state.in_flight.set(state.in_flight.get() + 1);
    let cancel = CancelToken::new();
    state.cancels.borrow_mut().insert(job.run, cancel.clone());
    let script = sandbox.load(&job.source, job.language);
    let request = RunRequest {
        input_json: &job.input_json,
        limits: job.limits,
        grants: job.grants.iter().copied().collect::<Grants>(),
        host: Rc::new(RemoteHost {
            state: Rc::clone(&state),
            run: job.run,
        }),
        cancel: Some(cancel),
    };
    let outcome = sandbox.run(&script, request).await;
    state.cancels.borrow_mut().remove(&job.run);
    state
        .calls
        .borrow_mut()
        .retain(|(run, _), _| *run != job.run);
    state
        .send(&ToSupervisor::Done {
            run: job.run,
            outcome,
        })
        .await;
    state.in_flight.set(state.in_flight.get() - 1);
    if state.in_flight.get() == 0 {
        // Idle: make the next run's isolate now, off its critical path.
        let _ = sandbox.prewarm(1);
    }
}
