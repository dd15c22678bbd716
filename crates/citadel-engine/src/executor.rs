//! Where isolates run: in the jailed sandbox-host pool (the default and the
//! only choice for production), or on threads of this process (tests, and
//! embedders that accept one less layer of isolation).

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use citadel_pool::{Gateway, Pool, PoolRun};
use citadel_sandbox::{
    ErrorKind, Host, HostCall, HostFuture, Isolation, LogLine, RunError, RunOutcome, RunRequest,
    Sandbox,
};
use tokio::sync::{mpsc, oneshot};

/// Runs a script and returns its outcome; never fails (failures are
/// outcomes).
#[derive(Clone)]
pub enum Executor {
    Pool(Pool),
    InProcess(InProcess),
}

impl Executor {
    pub async fn run(&self, run: PoolRun, gateway: Arc<dyn Gateway>) -> RunOutcome {
        match self {
            Executor::Pool(pool) => pool.run(run, gateway).await,
            Executor::InProcess(local) => local.run(run, gateway).await,
        }
    }

    pub fn pool(&self) -> Option<&Pool> {
        match self {
            Executor::Pool(p) => Some(p),
            Executor::InProcess(_) => None,
        }
    }
}

struct Job {
    run: PoolRun,
    gateway: Arc<dyn Gateway>,
    done: oneshot::Sender<RunOutcome>,
}

/// Isolates on dedicated threads of this process, each thread with its own
/// compile cache and a current-thread runtime (an isolate never moves
/// between threads).
#[derive(Clone)]
pub struct InProcess {
    threads: Arc<Vec<mpsc::UnboundedSender<Job>>>,
    next: Arc<AtomicUsize>,
}

impl InProcess {
    pub fn start(threads: usize) -> std::io::Result<InProcess> {
        let mut senders = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            std::thread::Builder::new()
                .name(format!("citadel-isolate-{i}"))
                .spawn(move || isolate_thread(rx))?;
            senders.push(tx);
        }
        Ok(InProcess {
            threads: Arc::new(senders),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    async fn run(&self, run: PoolRun, gateway: Arc<dyn Gateway>) -> RunOutcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let (done, rx) = oneshot::channel();
        let sent = self.threads[i].send(Job { run, gateway, done }).is_ok();
        match (sent, rx.await) {
            (true, Ok(outcome)) => outcome,
            _ => RunOutcome::failed(
                RunError::new(
                    ErrorKind::Internal,
                    "Internal",
                    "the isolate thread stopped",
                ),
                std::time::Duration::ZERO,
            ),
        }
    }
}

fn isolate_thread(mut rx: mpsc::UnboundedReceiver<Job>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let local = tokio::task::LocalSet::new();
    let sandbox = Rc::new(Sandbox::default());
    local.block_on(&rt, async move {
        while let Some(job) = rx.recv().await {
            let sandbox = Rc::clone(&sandbox);
            tokio::task::spawn_local(async move {
                let script = sandbox.load(&job.run.source, job.run.language);
                let host: Rc<dyn Host> = Rc::new(GatewayHost(job.gateway));
                let request = RunRequest {
                    input_json: &job.run.input_json,
                    limits: job.run.limits,
                    grants: job.run.grants,
                    host,
                    cancel: job.run.cancel.clone(),
                };
                // A warm context is per version of one tenant.
                let outcome = match &job.run.version_key {
                    Some(version) if job.run.limits.isolation == Isolation::Version => {
                        let tenant = &job.run.tenant;
                        let key = format!("{}:{tenant}:{version}", tenant.len());
                        sandbox.run_as_version(&script, request, &key).await
                    }
                    _ => sandbox.run(&script, request).await,
                };
                let _ = job.done.send(outcome);
            });
        }
    });
}

/// The sandbox's `Host` over the embedder's `Gateway`. The sandbox only
/// forwards calls the run was granted.
struct GatewayHost(Arc<dyn Gateway>);

impl Host for GatewayHost {
    fn call(&self, call: HostCall) -> HostFuture {
        self.0.call(call)
    }

    fn logs(&self, lines: &[LogLine]) {
        self.0.logs(lines.to_vec());
    }
}
