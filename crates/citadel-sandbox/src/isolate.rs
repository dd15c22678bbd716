//! One run: a fresh runtime and context, the prelude, the script, and a small
//! event loop that drives its promise while host calls are awaited.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use citadel_analyzer::PositionMap;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rquickjs::context::intrinsic;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Persistent, Promise, Runtime, Value};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::alloc::{MemoryStats, TrackingAllocator};
use crate::cache::{Compiled, Script, prelude};
use crate::compile::{self, parse_frame_position};
use crate::host::{Host, HostCall, HostError, HostFuture};
use crate::outcome::{ErrorKind, LogLevel, LogLine, RunError, RunOutcome, RunStatus};
use crate::{CancelToken, Limits, RunRequest};
use crate::{Capability, Grants};

/// The built-ins a script sees. `Eval` is left out, which also disables the
/// `Function` constructor family; so are `Performance` (a precise timer) and
/// `WeakRef` (garbage-collector timing).
type Intrinsics = (
    intrinsic::Date,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// How deep host-call arguments may nest (`serde_json`'s recursion limit).
const MAX_ARGUMENT_DEPTH: usize = 128;

/// How many jobs run between explicit deadline checks while draining.
const JOBS_PER_CHECK: u32 = 256;

pub(crate) async fn run(script: &Script, req: RunRequest<'_>) -> RunOutcome {
    let started = Instant::now();
    let (warm, memory) = match &script.compiled {
        Some(_) => match take_warm() {
            Ok(warm) => {
                let memory = Rc::clone(&warm.memory);
                (Ok(warm), memory)
            }
            Err(e) => (Err(e), Rc::default()),
        },
        None => (Err(rejected(script)), Rc::default()),
    };
    let state = Rc::new(RunState::new(&req, started, memory));
    let result = match (warm, &script.compiled) {
        (Ok(warm), Some(compiled)) => execute(compiled, &req, &state, warm).await,
        (Err(e), _) => Err(e),
        (Ok(_), None) => Err(rejected(script)),
    };
    let (status, result, error) = match result {
        Ok(json) => (RunStatus::Succeeded, Some(json), None),
        Err(e) => (e.kind.status(), None, Some(e)),
    };
    RunOutcome {
        status,
        result,
        logs: state.logs.take(),
        logs_truncated: state.logs_truncated.get(),
        error,
        duration: started.elapsed(),
        cpu: state.cpu_used.get(),
        peak_memory_bytes: state.memory.peak() as u64,
    }
}

fn rejected(script: &Script) -> RunError {
    let first = script
        .diagnostics
        .iter()
        .find(|d| d.severity == citadel_analyzer::Severity::Error);
    let mut e = RunError::new(
        ErrorKind::Rejected,
        "SyntaxError",
        first.map_or_else(
            || "the script does not compile".to_owned(),
            |d| d.message.clone(),
        ),
    );
    e.line = first.map(|d| d.line);
    e.column = first.map(|d| d.column);
    e
}

/// Frees what refers into the runtime before the runtime itself, however the
/// run ends (including when its future is dropped).
struct Teardown<'a> {
    state: &'a RunState,
    rt: &'a Runtime,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        self.state.resolvers.borrow_mut().clear();
        self.state.new_ops.borrow_mut().clear();
        // The handler holds an `Rc` of the state; break the cycle.
        self.rt.set_interrupt_handler(None);
    }
}

async fn execute(
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
    warm: Warm,
) -> Result<Box<RawValue>, RunError> {
    let result = {
        // Declared after `warm`, so dropped first even when the run's future
        // is dropped midway.
        let _teardown = Teardown {
            state,
            rt: &warm.rt,
        };
        warm.memory.set_limit(req.limits.memory_bytes);
        warm.rt.set_max_stack_size(req.limits.stack_bytes);
        let handler_state = Rc::clone(state);
        warm.rt
            .set_interrupt_handler(Some(Box::new(move || handler_state.should_interrupt())));
        drive(&warm, compiled, req, state).await
    };
    retire(warm);
    result
}

/// A runtime and context that no script has run in, with the prelude's
/// realm-wide part done and its per-run setup not yet called. Fields drop in
/// order: JS handles before the context, the context before the runtime.
pub(crate) struct Warm {
    setup: Persistent<Function<'static>>,
    ctx: Context,
    rt: Runtime,
    memory: Rc<MemoryStats>,
}

/// Creating a context costs most of a run; it is held to this limit until a
/// run applies its own.
const CREATE_MEMORY: usize = 8 << 20;

fn create_warm() -> Result<Warm, RunError> {
    let memory = Rc::new(MemoryStats::default());
    let rt = Runtime::new_with_alloc(TrackingAllocator {
        stats: Rc::clone(&memory),
    })
    .map_err(internal_error)?;
    memory.set_limit(CREATE_MEMORY);
    let ctx = Context::custom::<Intrinsics>(&rt).map_err(internal_error)?;
    let setup = ctx
        .with(|ctx| -> rquickjs::Result<_> {
            // SAFETY: the prelude's bytecode was produced by `compile::compile`.
            let prelude: Function = unsafe { compile::load(&ctx, prelude())? }.get()?;
            // Captures the built-ins and hardens the realm here, off the
            // run's critical path; what is left is the per-run setup.
            let setup: Function = prelude.call(())?;
            Ok(Persistent::save(&ctx, setup))
        })
        .map_err(internal_error)?;
    Ok(Warm {
        setup,
        ctx,
        rt,
        memory,
    })
}

thread_local! {
    /// Fresh isolates made ahead of time on this thread (isolates are `!Send`).
    static WARM: RefCell<Vec<Warm>> = const { RefCell::new(Vec::new()) };
    /// Used isolates waiting to be freed off the critical path.
    static RETIRED: RefCell<Vec<Warm>> = const { RefCell::new(Vec::new()) };
}

/// Used isolates kept for freeing later; beyond this, or when one grew large,
/// they are freed at once.
const MAX_RETIRED: usize = 4;
const RETIRE_BELOW_BYTES: usize = 4 << 20;

fn take_warm() -> Result<Warm, RunError> {
    match WARM.with(|w| w.borrow_mut().pop()) {
        Some(warm) => Ok(warm),
        None => create_warm(),
    }
}

fn retire(warm: Warm) {
    if warm.memory.peak() > RETIRE_BELOW_BYTES {
        drop(warm);
        return;
    }
    let overflow = RETIRED.with(|r| {
        let mut r = r.borrow_mut();
        r.push(warm);
        if r.len() > MAX_RETIRED {
            std::mem::take(&mut *r)
        } else {
            Vec::new()
        }
    });
    drop(overflow);
}

/// Frees retired isolates and makes fresh ones until `count` wait on this
/// thread. Call it when the thread is idle.
pub(crate) fn prewarm(count: usize) -> Result<(), RunError> {
    let retired = RETIRED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    drop(retired);
    while WARM.with(|w| w.borrow().len()) < count {
        let warm = create_warm()?;
        WARM.with(|w| w.borrow_mut().push(warm));
    }
    Ok(())
}

async fn drive(
    warm: &Warm,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
) -> Result<Box<RawValue>, RunError> {
    let (rt, ctx) = (&warm.rt, &warm.ctx);
    let positions = &compiled.positions;
    state.begin_slice();
    let started = ctx.with(|ctx| {
        start(&ctx, &warm.setup, compiled, req, state)
            .map_err(|e| state.error_from(&ctx, e, positions))
    });
    state.end_slice();
    let promise = started?;

    let mut inflight: FuturesUnordered<Completion> = FuturesUnordered::new();
    let deadline = tokio::time::Instant::from_std(state.wall_deadline);
    loop {
        state.begin_slice();
        let drained = drain_jobs(rt, state);
        state.end_slice();
        if let Some(kind) = state.stopped() {
            return Err(limit_error(kind, &req.limits));
        }
        if let Err(job) = drained {
            return Err(job.with(|ctx| {
                let e = ctx.catch();
                state.classify(&ctx, e, positions)
            }));
        }

        for (id, reply) in state.new_ops.borrow_mut().drain(..) {
            inflight.push(Box::pin(async move { (id, reply.await) }));
        }

        let settled = ctx.with(|ctx| -> Option<Result<Box<RawValue>, RunError>> {
            let p = match promise.clone().restore(&ctx) {
                Ok(p) => p,
                Err(e) => return Some(Err(internal_error(e))),
            };
            match p.state() {
                PromiseState::Pending => None,
                PromiseState::Resolved => Some(match p.result::<String>() {
                    Some(Ok(json)) => state.finish_result(json),
                    _ => Err(RunError::new(
                        ErrorKind::Internal,
                        "InternalError",
                        "the prelude returned no JSON",
                    )),
                }),
                PromiseState::Rejected => {
                    let reason = match p.result::<Value>() {
                        Some(Err(rquickjs::Error::Exception)) => ctx.catch(),
                        Some(Ok(v)) => v,
                        _ => Value::new_undefined(ctx.clone()),
                    };
                    Some(Err(state.classify(&ctx, reason, positions)))
                }
            }
        });
        if let Some(done) = settled {
            return done;
        }
        if inflight.is_empty() {
            return Err(RunError::new(
                ErrorKind::NeverSettles,
                "NeverSettles",
                "the script awaits a promise that nothing can settle",
            ));
        }

        // The run waits for the host now: a moment to show its logs.
        state.show_logs();
        let cancel = state.cancel.clone();
        let cancelled = async move {
            match cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let (id, reply) = tokio::select! {
            biased;
            () = cancelled => return Err(limit_error(ErrorKind::Cancelled, &req.limits)),
            () = tokio::time::sleep_until(deadline) => return Err(limit_error(ErrorKind::Timeout, &req.limits)),
            Some(done) = inflight.next() => done,
        };
        state.begin_slice();
        let resolved = ctx.with(|ctx| -> rquickjs::Result<()> {
            let resolve = state.resolvers.borrow_mut().remove(&id);
            if let Some(resolve) = resolve {
                resolve.restore(&ctx)?.call::<_, ()>((reply,))?;
            }
            Ok(())
        });
        state.end_slice();
        if let Err(e) = resolved {
            return Err(ctx.with(|ctx| state.error_from(&ctx, e, positions)));
        }
    }
}

/// Loads the prelude and the script and calls the script; returns the promise
/// of its JSON result.
fn start<'js>(
    ctx: &Ctx<'js>,
    setup: &Persistent<Function<'static>>,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
) -> rquickjs::Result<Persistent<Promise<'static>>> {
    let setup = setup.clone().restore(ctx)?;
    let log_state = Rc::clone(state);
    let log = Function::new(
        ctx.clone(),
        move |level: i32, message: rquickjs::String<'js>, shortened: bool| {
            log_state.log(level, message, shortened);
        },
    )?;
    let op_state = Rc::clone(state);
    let op = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, name: String, args: String| op_state.start_op(&ctx, &name, &args),
    )?;
    let limit_state = Rc::clone(state);
    let limit = Function::new(ctx.clone(), move |code: String| {
        limit_state.limit_hit_in_prelude(&code);
    })?;
    let granted: Vec<&str> = req.grants.iter().map(Capability::name).collect();
    // The budgets the prelude serialises results, host-call arguments and log
    // lines within.
    let budgets = vec![
        req.limits.result_bytes as f64,
        req.limits.host_call_bytes as f64,
        req.limits.log_bytes as f64,
    ];
    let runner: Function = setup.call((log, op, limit, granted, budgets))?;
    // SAFETY: the bytecode was produced by `compile::compile` in this process.
    let script: Function = unsafe { compile::load(ctx, &compiled.bytecode)? }.get()?;
    let promise: Promise = runner.call((script, req.input_json))?;
    Ok(Persistent::save(ctx, promise))
}

/// Runs queued jobs until none is left; on an uncaught job exception returns
/// the context holding it.
fn drain_jobs(rt: &Runtime, state: &RunState) -> Result<(), Context> {
    let mut since_check = 0;
    loop {
        match rt.execute_pending_job() {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(e.0),
        }
        since_check += 1;
        if since_check == JOBS_PER_CHECK {
            since_check = 0;
            if state.should_interrupt() {
                return Ok(());
            }
        }
    }
}

fn internal_error(e: rquickjs::Error) -> RunError {
    RunError::new(ErrorKind::Internal, "InternalError", e.to_string())
}

fn limit_error(kind: ErrorKind, limits: &Limits) -> RunError {
    let (name, message) = match kind {
        ErrorKind::Timeout => (
            "Timeout",
            format!(
                "the run exceeded its timeout of {} ms",
                limits.timeout.as_millis()
            ),
        ),
        ErrorKind::CpuLimit => (
            "CpuLimit",
            format!(
                "the run exceeded its CPU limit of {} ms",
                limits.cpu.as_millis()
            ),
        ),
        ErrorKind::MemoryLimit => (
            "MemoryLimit",
            format!(
                "the run exceeded its memory limit of {} bytes",
                limits.memory_bytes
            ),
        ),
        ErrorKind::StackOverflow => (
            "StackOverflow",
            format!(
                "the run exceeded its stack limit of {} bytes",
                limits.stack_bytes
            ),
        ),
        ErrorKind::Cancelled => ("Cancelled", "the run was cancelled".to_owned()),
        ErrorKind::HostCallLimit => (
            "HostCallLimit",
            format!(
                "the run exceeded its host-call limits ({} awaiting at once, {} bytes of arguments)",
                limits.pending_host_calls, limits.host_call_bytes
            ),
        ),
        ErrorKind::ResultTooLarge => (
            "ResultTooLarge",
            format!("the result is larger than {} bytes", limits.result_bytes),
        ),
        _ => ("InternalError", "the run was stopped".to_owned()),
    };
    RunError::new(kind, name, message)
}

/// A host call's JSON reply, once it arrives.
type Reply = Pin<Box<dyn Future<Output = String>>>;
/// A reply tagged with its call id.
type Completion = Pin<Box<dyn Future<Output = (u32, String)>>>;

/// Everything the run's native functions and interrupt handler share.
struct RunState {
    limits: Limits,
    memory: Rc<MemoryStats>,
    grants: Grants,
    host: Rc<dyn Host>,
    cancel: Option<CancelToken>,
    wall_deadline: Instant,
    /// CPU time of finished slices of JavaScript execution.
    cpu_used: Cell<Duration>,
    /// Thread CPU clock when the current slice began.
    slice_start: Cell<Duration>,
    /// Why the interrupt handler stopped the run, once it has.
    stop: Cell<Option<ErrorKind>>,
    logs: RefCell<Vec<LogLine>>,
    /// Lines handed to the host live so far.
    logs_shown: Cell<usize>,
    log_bytes: Cell<usize>,
    logs_truncated: Cell<bool>,
    next_op: Cell<u32>,
    new_ops: RefCell<Vec<(u32, Reply)>>,
    resolvers: RefCell<HashMap<u32, Persistent<Function<'static>>>>,
}

impl RunState {
    fn new(req: &RunRequest<'_>, started: Instant, memory: Rc<MemoryStats>) -> Self {
        RunState {
            limits: req.limits,
            memory,
            grants: req.grants,
            host: Rc::clone(&req.host),
            cancel: req.cancel.clone(),
            wall_deadline: started + req.limits.timeout,
            cpu_used: Cell::new(Duration::ZERO),
            slice_start: Cell::new(Duration::ZERO),
            stop: Cell::new(None),
            logs: RefCell::new(Vec::new()),
            logs_shown: Cell::new(0),
            log_bytes: Cell::new(0),
            logs_truncated: Cell::new(false),
            next_op: Cell::new(0),
            new_ops: RefCell::new(Vec::new()),
            resolvers: RefCell::new(HashMap::new()),
        }
    }

    fn begin_slice(&self) {
        self.slice_start.set(thread_cpu_time());
    }

    fn end_slice(&self) {
        let spent = thread_cpu_time().saturating_sub(self.slice_start.get());
        self.cpu_used.set(self.cpu_used.get() + spent);
    }

    /// Why the run must stop, if a limit was hit. A refused allocation is
    /// one: the script may have caught the error QuickJS made of it, or
    /// QuickJS may have dropped a job it could not queue.
    fn stopped(&self) -> Option<ErrorKind> {
        if self.stop.get().is_none() && self.memory.limit_hit() {
            self.stop.set(Some(ErrorKind::MemoryLimit));
        }
        self.stop.get()
    }

    /// Called by QuickJS every few thousand operations, and between jobs.
    fn should_interrupt(&self) -> bool {
        if self.stopped().is_some() {
            return true;
        }
        let reason = if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            ErrorKind::Cancelled
        } else if Instant::now() >= self.wall_deadline {
            ErrorKind::Timeout
        } else if self.cpu_used.get() + thread_cpu_time().saturating_sub(self.slice_start.get())
            >= self.limits.cpu
        {
            ErrorKind::CpuLimit
        } else {
            return false;
        };
        self.stop.set(Some(reason));
        true
    }

    /// Hands the lines logged since the last call to the host.
    fn show_logs(&self) {
        let logs = self.logs.borrow();
        let shown = self.logs_shown.get();
        if logs.len() > shown {
            self.host.logs(&logs[shown..]);
            self.logs_shown.set(logs.len());
        }
    }

    /// Sets the stop reason the prelude found: a result or host-call
    /// arguments over their limit, seen while serialising them.
    fn limit_hit_in_prelude(&self, code: &str) {
        let kind = match code {
            "result_too_large" => ErrorKind::ResultTooLarge,
            "host_call_limit" => ErrorKind::HostCallLimit,
            _ => return,
        };
        if self.stop.get().is_none() {
            self.stop.set(Some(kind));
        }
    }

    /// Keeps a log line within the log limit. `shortened` says the prelude
    /// already cut it (or left out a value too large to format) at the limit.
    fn log(&self, level: i32, message: rquickjs::String<'_>, shortened: bool) {
        if self.logs_truncated.get() {
            return;
        }
        if shortened {
            self.logs_truncated.set(true);
        }
        let Ok(mut message) = message.to_string() else {
            return;
        };
        let room = self.limits.log_bytes.saturating_sub(self.log_bytes.get());
        if message.len() > room {
            let mut cut = room;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            self.logs_truncated.set(true);
            if message.is_empty() {
                return;
            }
        }
        self.log_bytes.set(self.log_bytes.get() + message.len());
        let level = match level {
            0 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Log,
        };
        self.logs.borrow_mut().push(LogLine { level, message });
    }

    /// `api.*` → a promise of the JSON reply `{"ok": value}` or `{"err": {…}}`.
    fn start_op<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
        args: &str,
    ) -> rquickjs::Result<Promise<'js>> {
        let (promise, resolve, _reject) = ctx.promise()?;
        if self.resolvers.borrow().len() >= self.limits.pending_host_calls
            || args.len() > self.limits.host_call_bytes
        {
            // A hard stop: the interrupt handler ends the run at its next poll
            // and the event loop checks before running anything else.
            self.stop.set(Some(ErrorKind::HostCallLimit));
            return Err(rquickjs::Exception::throw_internal(
                ctx,
                "host-call limit exceeded",
            ));
        }
        let reply: Reply = match self.host_future(name, args) {
            Ok(fut) => Box::pin(async move {
                let outcome = match fut.await {
                    Ok(value) => serde_json::json!({ "ok": value }),
                    Err(e) => serde_json::json!({ "err": e }),
                };
                outcome.to_string()
            }),
            Err(e) => {
                let text = serde_json::json!({ "err": e }).to_string();
                Box::pin(async move { text })
            }
        };
        let id = self.next_op.get();
        self.next_op.set(id.wrapping_add(1));
        self.resolvers
            .borrow_mut()
            .insert(id, Persistent::save(ctx, resolve));
        self.new_ops.borrow_mut().push((id, reply));
        Ok(promise)
    }

    fn host_future(&self, name: &str, args: &str) -> Result<HostFuture, HostError> {
        let args: Vec<Json> = serde_json::from_str(args).map_err(|e| {
            // The prelude only sends JSON; what serde refuses is nesting
            // past its recursion limit.
            HostError::invalid_argument(if e.to_string().contains("recursion limit") {
                format!("the arguments of `{name}` nest deeper than {MAX_ARGUMENT_DEPTH} levels")
            } else {
                format!("arguments are not JSON: {e}")
            })
        })?;
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Json::Null);
        let text = |i: usize, what: &str| match args.get(i) {
            Some(Json::String(s)) => Ok(s.clone()),
            _ => Err(HostError::invalid_argument(format!(
                "`{name}` expects {what} as a string"
            ))),
        };
        if name == "sleep" {
            if !self.grants.allows(Capability::Sleep) {
                return Err(HostError::denied("sleep"));
            }
            let ms = match args.first().and_then(Json::as_f64) {
                Some(ms) if ms.is_finite() && ms >= 0.0 => ms,
                _ => {
                    return Err(HostError::invalid_argument(
                        "`sleep` expects a non-negative number of milliseconds",
                    ));
                }
            };
            // Never past the run's own deadline, which ends the run anyway.
            let until = (Instant::now()
                + Duration::from_secs_f64(ms / 1000.0).min(self.limits.timeout))
            .min(self.wall_deadline);
            return Ok(Box::pin(async move {
                tokio::time::sleep_until(until.into()).await;
                Ok(Json::Null)
            }));
        }
        let call = match name {
            "http.fetch" => HostCall::HttpFetch {
                url: text(0, "a URL")?,
                options: arg(1),
            },
            "secrets.get" => HostCall::SecretGet {
                name: text(0, "a secret name")?,
            },
            "kv.get" => HostCall::KvGet {
                key: text(0, "a key")?,
            },
            "kv.set" => HostCall::KvSet {
                key: text(0, "a key")?,
                value: arg(1),
            },
            "kv.delete" => HostCall::KvDelete {
                key: text(0, "a key")?,
            },
            "db.query" => HostCall::DbQuery {
                sql: text(0, "SQL")?,
                params: arg(1),
                options: arg(2),
            },
            "events.emit" => HostCall::EventEmit {
                event_type: text(0, "an event type")?,
                data: arg(1),
            },
            "echo" => HostCall::Echo { value: arg(0) },
            other => {
                return Err(HostError::invalid_argument(format!(
                    "unknown host call `{other}`"
                )));
            }
        };
        // The prelude only exposes granted capabilities; check again here so a
        // bug there cannot widen a grant.
        let capability = call.capability();
        if !self.grants.allows(capability) {
            return Err(HostError::denied(capability.name()));
        }
        Ok(self.host.call(call))
    }

    fn finish_result(&self, json: String) -> Result<Box<RawValue>, RunError> {
        if json.len() > self.limits.result_bytes {
            return Err(limit_error(ErrorKind::ResultTooLarge, &self.limits));
        }
        RawValue::from_string(json)
            .map_err(|e| RunError::new(ErrorKind::Internal, "InternalError", e.to_string()))
    }

    fn error_from(&self, ctx: &Ctx<'_>, e: rquickjs::Error, positions: &PositionMap) -> RunError {
        match e {
            rquickjs::Error::Exception => {
                let v = ctx.catch();
                self.classify(ctx, v, positions)
            }
            other => {
                if let Some(kind) = self.stopped() {
                    return limit_error(kind, &self.limits);
                }
                internal_error(other)
            }
        }
    }

    /// Turns a thrown value into a typed error located in the user's source.
    fn classify<'js>(
        &self,
        ctx: &Ctx<'js>,
        thrown: Value<'js>,
        positions: &PositionMap,
    ) -> RunError {
        if let Some(kind) = self.stopped() {
            return limit_error(kind, &self.limits);
        }
        let Some(obj) = thrown.as_object() else {
            let shown = describe_primitive(&thrown);
            return RunError::new(
                ErrorKind::ScriptError,
                "Error",
                format!("the script threw a non-Error value: {shown}"),
            );
        };
        let name: String = obj
            .get::<_, Option<String>>("name")
            .ok()
            .flatten()
            .unwrap_or_else(|| "Error".into());
        let message: String = obj
            .get::<_, Option<String>>("message")
            .ok()
            .flatten()
            .unwrap_or_default();
        let stack: Option<String> = obj.get::<_, Option<String>>("stack").ok().flatten();
        let code: Option<String> = obj.get::<_, Option<String>>("code").ok().flatten();
        let is_error = obj
            .get::<_, Option<String>>("stack")
            .ok()
            .flatten()
            .is_some()
            || obj.is_error();
        if !is_error {
            let shown = ctx
                .json_stringify(thrown.clone())
                .ok()
                .flatten()
                .and_then(|s| s.to_string().ok());
            return RunError::new(
                ErrorKind::ScriptError,
                "Error",
                format!(
                    "the script threw a non-Error value: {}",
                    shown.unwrap_or_else(|| "[object]".into())
                ),
            );
        }
        let kind = match (name.as_str(), code.as_deref()) {
            ("InternalError", _) if message.contains("out of memory") => ErrorKind::MemoryLimit,
            ("InternalError" | "RangeError", _)
                if message.contains("stack overflow") || message.contains("call stack size") =>
            {
                ErrorKind::StackOverflow
            }
            ("InvalidResult", Some("invalid_result")) => ErrorKind::InvalidResult,
            ("CapabilityDenied", Some("capability_denied")) => ErrorKind::CapabilityDenied,
            ("Unavailable", Some("unavailable")) => ErrorKind::Unavailable,
            _ => ErrorKind::ScriptError,
        };
        if kind == ErrorKind::MemoryLimit || kind == ErrorKind::StackOverflow {
            let mut e = limit_error(kind, &self.limits);
            e.message = format!("{}: {message}", e.message);
            return e;
        }
        let mut e = RunError::new(kind, &name, message);
        if let Some(stack) = stack {
            let (text, first) = user_stack(&stack, positions);
            e.line = first.map(|p| p.0);
            e.column = first.map(|p| p.1);
            e.stack = Some(text);
        }
        e
    }
}

fn describe_primitive(v: &Value<'_>) -> String {
    if let Some(s) = v.as_string() {
        return format!("{:?}", s.to_string().unwrap_or_default());
    }
    if let Some(n) = v.as_number() {
        return n.to_string();
    }
    if let Some(b) = v.as_bool() {
        return b.to_string();
    }
    if v.is_null() {
        return "null".into();
    }
    if v.is_undefined() {
        return "undefined".into();
    }
    v.type_name().to_owned()
}

/// Rewrites a QuickJS stack to the user's positions and drops prelude
/// frames. Returns the stack and the position of its first script frame.
fn user_stack(stack: &str, positions: &PositionMap) -> (String, Option<(u32, u32)>) {
    let mut out = String::new();
    let mut first = None;
    for frame in stack.lines() {
        if frame.contains("prelude:") {
            continue;
        }
        let rewritten = match frame.find("script:") {
            Some(at) => match parse_frame_position(&frame[at..]) {
                Some((line, column)) => {
                    let (line, column) = positions.map(line, column);
                    first.get_or_insert((line, column));
                    let closing = if frame.trim_end().ends_with(')') {
                        ")"
                    } else {
                        ""
                    };
                    format!("{}script:{line}:{column}{closing}", &frame[..at])
                }
                None => frame.to_owned(),
            },
            None => frame.to_owned(),
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&rewritten);
    }
    (out, first)
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
