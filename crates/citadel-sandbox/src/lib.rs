//! Runs one script version in a fresh QuickJS context with hard limits, and
//! returns a typed [`RunOutcome`].
//!
//! The sandbox knows nothing of tenants, HTTP or SQL. Host capabilities reach
//! a script only through the [`Host`] trait the embedder implements, and only
//! those the run is [granted](Grants) appear in the script's `api`.
//!
//! Scripts are prepared (analysed, TypeScript stripped) and compiled to QuickJS
//! bytecode once per content hash and kept in a bounded LRU [`Sandbox`] cache.
//! Bytecode is only ever produced here, never accepted from outside. The
//! analysis also says which optional built-in groups ([`Globals`]) the
//! script can reach, and its contexts get only those.
//!
//! Each isolate thread reuses its QuickJS runtimes; every run gets a fresh
//! context in one, charged exactly for what that context holds. A version
//! whose limits ask for [`Isolation::Version`] reuses a warm context of its
//! own instead (see [`Sandbox::run_as_version`]).

mod alloc;
mod cache;
mod compile;
mod host;
mod intl;
mod isolate;
mod outcome;
mod web;
mod zone;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use citadel_analyzer::{Diagnostic, Globals, Language, Policy, Severity};
// Grants and limits are domain data, shared with the rules that validate
// them; re-exported so users keep their paths.
pub use citadel_domain::{Capability, Grants, Isolation, Limits, TimeZoneName};
pub use host::{Host, HostCall, HostError, HostFuture, NoHost};
pub use outcome::{ErrorKind, LogLevel, LogLine, RunError, RunOutcome, RunStatus};

use cache::CompileCache;
pub use cache::Script;
pub use zone::time_zone_known;

/// Lets another thread or task stop a run: the isolate is interrupted at its
/// next poll and any awaited host call is abandoned.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// Resolves once the run is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Configuration of a [`Sandbox`].
#[derive(Debug, Clone, Copy)]
pub struct SandboxConfig {
    /// Prepared and compiled scripts kept, by content hash.
    pub cache_entries: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_entries: 1024,
        }
    }
}

/// Everything one run needs besides the script.
pub struct RunRequest<'a> {
    /// The script's `input`, as JSON text.
    pub input_json: &'a str,
    pub limits: Limits,
    pub grants: Grants,
    pub host: Rc<dyn Host>,
    pub cancel: Option<CancelToken>,
}

/// The entry point: a compile cache plus the machinery to run scripts.
///
/// A `Sandbox` is shared by all runs of a process; each run still gets its own
/// fresh context.
pub struct Sandbox {
    cache: CompileCache,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        Sandbox {
            cache: CompileCache::new(config.cache_entries),
        }
    }

    /// Prepares and compiles a script, or returns the cached result for the
    /// same source and language. Never fails: problems are in
    /// [`Script::diagnostics`] and a script that cannot run has no bytecode.
    pub fn load(&self, source: &str, language: Language) -> Arc<Script> {
        self.cache.get_or_compile(source, language)
    }

    /// Number of scripts compiled (cache misses) since start.
    pub fn compilations(&self) -> u64 {
        self.cache.compilations()
    }

    /// Work for an idle thread: collects what earlier runs on the calling
    /// thread left, frees warm contexts past their time, and makes fresh
    /// contexts ahead until `count` wait. Each context is still used by
    /// exactly one run; this only moves the cost of making and freeing it
    /// off the run's critical path. Call it when the thread is idle.
    pub fn prewarm(&self, count: usize) -> Result<(), RunError> {
        isolate::prewarm(count)
    }

    /// Drops every warm version context of the calling thread, e.g. when
    /// the thread goes on to serve someone else.
    pub fn forget_warm(&self) {
        isolate::forget_warm();
    }

    /// Runs a loaded script in a fresh context.
    ///
    /// The future is not `Send`: an isolate lives on one thread. Drive it with
    /// a current-thread runtime or a `LocalSet`. A script whose diagnostics
    /// contain a syntax error yields a `rejected` outcome.
    pub async fn run(&self, script: &Script, request: RunRequest<'_>) -> RunOutcome {
        isolate::run(script, request, None).await
    }

    /// Runs a loaded script of the version `key` names. With
    /// [`Isolation::Version`] in its limits the run reuses this thread's
    /// warm context of `key` (made by the first such run), so globals an
    /// earlier run of `key` set may be there; otherwise, and whenever that
    /// context is in use or does not fit (other source, grants or budgets,
    /// its runs or time spent), it runs as [`Sandbox::run`] does.
    ///
    /// `key` must name one version of one tenant: runs with equal keys share
    /// a context. A warm context is dropped after any run that does not end
    /// cleanly (an error, a limit, a cancellation, a capability denied even
    /// if caught, host calls still awaited).
    pub async fn run_as_version(
        &self,
        script: &Script,
        request: RunRequest<'_>,
        key: &str,
    ) -> RunOutcome {
        isolate::run(script, request, Some(key)).await
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(SandboxConfig::default())
    }
}

/// For benchmarks: the yardstick the sandbox's own overhead is measured
/// against.
#[doc(hidden)]
pub mod yardstick {
    use std::time::{Duration, Instant};

    use rquickjs::{Context, Function, Runtime, Value};

    use crate::Language;

    /// The median time to make a context with `globals` (see
    /// `examples/context_cost.rs`).
    pub fn context_creation(
        globals: citadel_analyzer::Globals,
        samples: usize,
    ) -> Result<Duration, String> {
        crate::isolate::context_creation(globals, samples).map_err(|e| e.message)
    }

    /// Runs a script body as the sandbox would (the same preparation and
    /// bytecode), but in a plain QuickJS runtime: every intrinsic, QuickJS's
    /// own allocator, no limits, no interrupt handler, no prelude. Returns
    /// how long the call and its jobs took, or why it could not run.
    pub fn plain_quickjs(source: &str, language: Language) -> Result<Duration, String> {
        let prepared = citadel_analyzer::prepare(source, language);
        let program = prepared
            .program
            .ok_or_else(|| format!("the script does not parse: {:?}", prepared.diagnostics))?;
        let bytecode = crate::compile::compile(&program.js, c"script").map_err(|e| e.message)?;
        let rt = Runtime::new().map_err(|e| e.to_string())?;
        let ctx = Context::full(&rt).map_err(|e| e.to_string())?;
        let started = Instant::now();
        ctx.with(|ctx| -> rquickjs::Result<()> {
            // SAFETY: the bytecode was just produced by `compile::compile`.
            let script: Function = unsafe { crate::compile::load(&ctx, &bytecode)? }.get()?;
            let _: Value =
                script.call((Value::new_null(ctx.clone()), Value::new_null(ctx.clone())))?;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        while rt
            .execute_pending_job()
            .map_err(|_| "a job threw".to_owned())?
        {}
        Ok(started.elapsed())
    }
}
