//! One run: a context in one of this thread's QuickJS runtimes, the prelude,
//! the script, and a small event loop that drives its promise while host
//! calls are awaited.
//!
//! An isolate thread keeps a few idle runtimes. A run takes one for itself
//! (runs that await host calls at the same time each hold their own), gets a
//! fresh context in it, and gives the runtime back when it ends; the context
//! is dropped. Contexts are made with only the built-in groups their script
//! can reach (the analyzer's [`Globals`]), and, while the thread is idle,
//! ahead of the next run; the garbage of dropped contexts is collected then
//! too, or else just before the runtime's next context is made, so a run
//! never starts beside another run's leftovers. The allocator charges each
//! run exactly for what its context holds (see `alloc.rs`).
//!
//! A version that asks for [`Isolation::Version`] instead keeps a warm
//! context, in a runtime of its own, that its later runs on this thread
//! reuse (globals included) until it has served its runs or its time, or a
//! run ends any other way than cleanly.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use citadel_analyzer::{Globals, PositionMap};
use citadel_domain::Isolation;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Persistent, Promise, Runtime, Value, qjs};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use crate::alloc::{MemoryStats, TrackingAllocator};
use crate::cache::{self, Compiled, Script, WEB_PARTS, prelude, web};
use crate::compile::{self, parse_frame_position};
use crate::host::{Host, HostCall, HostError, HostFuture};
use crate::outcome::{ErrorKind, LogLevel, LogLine, RunError, RunOutcome, RunStatus};
use crate::{CancelToken, Limits, RunRequest};
use crate::{Capability, Grants};

/// How deep host-call arguments may nest (`serde_json`'s recursion limit).
const MAX_ARGUMENT_DEPTH: usize = 128;

/// How many jobs run between explicit deadline checks while draining.
const JOBS_PER_CHECK: u32 = 256;

/// Creating a context and running the prelude's realm-wide part is held to
/// this limit until a run applies its own.
const CREATE_MEMORY: usize = 8 << 20;

/// Idle runtimes a thread keeps; more are freed.
const MAX_IDLE: usize = 4;

/// Contexts one runtime makes before it is replaced, far below where the
/// allocator's epoch counter wraps.
const MAX_EPOCHS: u32 = 1 << 20;

/// A runtime holding more than this of earlier contexts' blocks when it is
/// given back (a run that grew large) is freed at once rather than kept.
const MAX_OLDER_BYTES: usize = 4 << 20;

/// Warm version contexts one thread keeps; the least recently used goes.
const MAX_WARM: usize = 32;

/// A QuickJS runtime of this thread, used by one run at a time.
pub(crate) struct Engine {
    rt: Runtime,
    memory: Rc<MemoryStats>,
    /// A context was dropped since the last collection: the runtime may
    /// hold its garbage.
    dirty: bool,
}

impl Engine {
    fn new() -> Result<Engine, RunError> {
        let memory = Rc::new(MemoryStats::default());
        let rt = Runtime::new_with_alloc(TrackingAllocator {
            stats: Rc::clone(&memory),
        })
        .map_err(internal_error)?;
        Ok(Engine {
            rt,
            memory,
            dirty: false,
        })
    }

    /// Frees what dropped contexts left.
    fn collect(&mut self) {
        if self.dirty {
            self.rt.run_gc();
            self.dirty = false;
        }
    }

    /// Whether it may serve another run: nothing of the last one can still
    /// run (a stopped run may leave jobs queued), it has epochs left, and it
    /// did not grow large.
    fn reusable(&self) -> bool {
        !self.rt.is_job_pending()
            && self.memory.epochs() < MAX_EPOCHS
            && self.memory.older() <= MAX_OLDER_BYTES
    }

    /// A context no script has run in, with the built-in groups `globals`
    /// and the prelude's realm-wide part done, made in a new epoch: the run
    /// that takes it is charged for it, and for nothing made before.
    fn fresh(&mut self, globals: Globals) -> Result<Fresh, RunError> {
        let globals = with_parts(globals);
        // What earlier contexts left goes first, so the new epoch starts
        // with none of it around.
        self.collect();
        self.memory.new_epoch(CREATE_MEMORY);
        let ctx = Context::base(&self.rt).map_err(internal_error)?;
        // From here the context leaves garbage when dropped.
        self.dirty = true;
        let setup = ctx.with(|ctx| -> Result<_, RunError> {
            let made = (|| -> rquickjs::Result<_> {
                add_intrinsics(&ctx, globals)?;
                // SAFETY: the prelude's bytecode was produced by `compile::compile`.
                let prelude: Function = unsafe { compile::load(&ctx, prelude())? }.get()?;
                // Captures the built-ins and hardens the realm here, off the
                // run's critical path when made ahead (and installs the web
                // globals the script can reach); what is left is the per-run
                // setup.
                // Local time in the run's zone, where there is `Date`, and
                // `Intl` where the script names it.
                let (date, date_natives) = if globals.contains(Globals::DATE) {
                    // SAFETY: the date module's bytecode was produced by `compile::compile`.
                    let date: Function = unsafe { compile::load(&ctx, cache::date())? }.get()?;
                    (Some(date), Some(crate::zone::natives(&ctx)?))
                } else {
                    (None, None)
                };
                let (intl, intl_natives) = if globals.contains(Globals::INTL) {
                    // SAFETY: the Intl module's bytecode was produced by `compile::compile`.
                    let intl: Function = unsafe { compile::load(&ctx, cache::intl())? }.get()?;
                    (Some(intl), Some(crate::intl::natives(&ctx)?))
                } else {
                    (None, None)
                };
                let (core, natives, parts) = if globals.intersects(Globals::WEB) {
                    // SAFETY: the web module's bytecode was produced by `compile::compile`.
                    let core: Function = unsafe { compile::load(&ctx, web(None))? }.get()?;
                    let mut parts = Vec::new();
                    for (i, (group, _)) in WEB_PARTS.iter().enumerate() {
                        if globals.contains(*group) {
                            // SAFETY: as above.
                            let part: Function =
                                unsafe { compile::load(&ctx, web(Some(i)))? }.get()?;
                            parts.push(part);
                        }
                    }
                    let natives = crate::web::natives(&ctx)?;
                    (Some(core), Some(natives), Some(parts))
                } else {
                    (None, None, None)
                };
                let setup: Function = if core.is_none() && date.is_none() && intl.is_none() {
                    prelude.call(())?
                } else {
                    let mut args = rquickjs::function::Args::new(ctx.clone(), 8);
                    args.push_arg(core)?;
                    args.push_arg(globals.bits())?;
                    args.push_arg(natives)?;
                    args.push_arg(parts)?;
                    args.push_arg(date)?;
                    args.push_arg(date_natives)?;
                    args.push_arg(intl)?;
                    args.push_arg(intl_natives)?;
                    prelude.call_arg(args)?
                };
                Ok(Persistent::save(&ctx, setup))
            })();
            // An exception here is a bug of the prelude's modules: say
            // what it was.
            made.map_err(|e| match e {
                rquickjs::Error::Exception => {
                    let thrown = ctx.catch();
                    let shown = thrown
                        .as_exception()
                        .and_then(|x| x.message())
                        .unwrap_or_else(|| format!("{thrown:?}"));
                    RunError::new(ErrorKind::Internal, "InternalError", shown)
                }
                other => internal_error(other),
            })
        })?;
        Ok(Fresh {
            setup,
            ctx,
            globals,
        })
    }
}

/// The groups a context for `globals` is made with: a web group brings the
/// built-in groups its code uses (typed arrays for bytes, `Map` for
/// `structuredClone`'s memory of what it copied, and what `fetch`'s
/// objects are made of).
fn with_parts(mut globals: Globals) -> Globals {
    if globals.contains(Globals::FETCH) {
        globals = globals
            .with(Globals::ENCODING)
            .with(Globals::EVENTS)
            .with(Globals::URL);
    }
    if globals.intersects(Globals::ENCODING.with(Globals::CRYPTO).with(Globals::FETCH)) {
        globals = globals.with(Globals::TYPED_ARRAYS);
    }
    if globals.contains(Globals::CLONE) {
        globals = globals.with(Globals::MAP_SET);
    }
    // `Intl.DateTimeFormat` formats dates, in the run's zone.
    if globals.contains(Globals::INTL) {
        globals = globals.with(Globals::DATE);
    }
    globals
}

/// For benchmarks: the median time to make a fresh context with `globals`
/// (the built-in groups, the prelude's realm-wide part and the web
/// globals), over `samples` contexts in one runtime, each made after the
/// last one's garbage was collected.
pub(crate) fn context_creation(globals: Globals, samples: usize) -> Result<Duration, RunError> {
    let mut engine = Engine::new()?;
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples.max(1) {
        engine.collect();
        let started = Instant::now();
        let fresh = engine.fresh(globals)?;
        times.push(started.elapsed());
        drop(fresh);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Adds the built-ins beyond the base objects: the groups in `globals`,
/// and `JSON`, `Proxy` and `Promise`, which the prelude needs. `Eval` is
/// never added, which also disables the `Function` constructor family; nor
/// are `Performance` (a precise timer) and `WeakRef` (garbage-collector
/// timing). The order is the one QuickJS's own full context uses.
fn add_intrinsics(ctx: &Ctx<'_>, globals: Globals) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    let ok = |rc: i32| {
        if rc < 0 {
            Err(rquickjs::Error::Allocation)
        } else {
            Ok(())
        }
    };
    // SAFETY: `raw` is the live context `ctx` wraps, its runtime locked by
    // `Context::with`; each call adds one intrinsic to a fresh context.
    unsafe {
        if globals.contains(Globals::DATE) {
            ok(qjs::JS_AddIntrinsicDate(raw))?;
        }
        if globals.contains(Globals::REGEXP) {
            qjs::JS_AddIntrinsicRegExpCompiler(raw);
            ok(qjs::JS_AddIntrinsicRegExp(raw))?;
        }
        ok(qjs::JS_AddIntrinsicJSON(raw))?;
        ok(qjs::JS_AddIntrinsicProxy(raw))?;
        if globals.contains(Globals::MAP_SET) {
            ok(qjs::JS_AddIntrinsicMapSet(raw))?;
        }
        if globals.contains(Globals::TYPED_ARRAYS) {
            ok(qjs::JS_AddIntrinsicTypedArrays(raw))?;
        }
        ok(qjs::JS_AddIntrinsicPromise(raw))
    }
}

/// A context no script has run in, with the prelude's realm-wide part done
/// and its per-run setup not yet called. Fields drop in order: JS handles
/// before the context.
pub(crate) struct Fresh {
    setup: Persistent<Function<'static>>,
    ctx: Context,
    globals: Globals,
}

/// An idle runtime, with a context made ahead for the next run or none.
/// The context drops before its runtime.
struct Idle {
    fresh: Option<Fresh>,
    engine: Engine,
}

/// The warm context of one script version (`Isolation::Version`), in a
/// runtime of its own. Fields drop in order: JS handles, the context, the
/// runtime.
struct Warm {
    /// The script's function, loaded by its first run.
    script: RefCell<Option<Persistent<Function<'static>>>>,
    setup: Persistent<Function<'static>>,
    ctx: Context,
    engine: Engine,
    /// What the context was set up for; a run that differs in any of these
    /// does not reuse it.
    hash: [u8; 32],
    grants: Grants,
    budgets: [usize; 3],
    runs: u32,
    created: Instant,
    ttl: Duration,
    last_used: Instant,
}

impl Warm {
    fn new(fresh: Fresh, engine: Engine, script: &Script, limits: &Limits, grants: Grants) -> Warm {
        let now = Instant::now();
        Warm {
            script: RefCell::new(None),
            setup: fresh.setup,
            ctx: fresh.ctx,
            engine,
            hash: script.hash,
            grants,
            budgets: budgets(limits),
            runs: 0,
            created: now,
            ttl: limits.warm_ttl,
            last_used: now,
        }
    }

    /// Whether a run of `script` with these limits and grants may use it.
    fn fits(&self, script: &Script, limits: &Limits, grants: Grants, now: Instant) -> bool {
        self.hash == script.hash
            && self.grants == grants
            && self.budgets == budgets(limits)
            && self.runs < limits.warm_runs
            && now < self.created + limits.warm_ttl.min(self.ttl)
    }

    /// Drops the context and hands the runtime back.
    fn retire(self) {
        let Warm {
            script,
            setup,
            ctx,
            mut engine,
            ..
        } = self;
        drop((script, setup, ctx));
        engine.dirty = true;
        give_back(engine);
    }
}

/// The serialisation budgets a context's prelude was set up with.
fn budgets(limits: &Limits) -> [usize; 3] {
    [
        limits.result_bytes,
        limits.host_call_bytes,
        limits.log_bytes,
    ]
}

/// This thread's runtimes and warm contexts (isolates are `!Send`).
#[derive(Default)]
struct Isolates {
    idle: Vec<Idle>,
    warm: HashMap<String, Warm>,
    /// Keys of warm contexts a run holds now.
    busy: HashSet<String>,
    /// The groups the last run's script reached: what a context made ahead
    /// gets.
    last_globals: Globals,
}

thread_local! {
    static ISOLATES: RefCell<Isolates> = RefCell::new(Isolates::default());
}

/// Runs `f` on this thread's isolates; `None` while the thread is ending.
fn with_isolates<T>(f: impl FnOnce(&mut Isolates) -> T) -> Option<T> {
    ISOLATES
        .try_with(|i| i.try_borrow_mut().ok().map(|mut i| f(&mut i)))
        .ok()
        .flatten()
}

/// Keeps a runtime for later runs, or frees it.
fn give_back(engine: Engine) {
    if !engine.reusable() {
        return;
    }
    let overflow = with_isolates(|i| {
        if i.idle.len() < MAX_IDLE {
            i.idle.push(Idle {
                fresh: None,
                engine,
            });
            None
        } else {
            Some(engine)
        }
    });
    // Freed outside the borrow.
    drop(overflow);
}

/// A fresh context with at least `globals`, and its runtime: the one made
/// ahead if it has them, else a new one in an idle runtime, else in a new
/// runtime.
fn take_fresh(globals: Globals) -> Result<(Fresh, Engine), RunError> {
    let idle = with_isolates(|i| i.idle.pop()).flatten();
    let Idle { fresh, mut engine } = match idle {
        Some(idle) => idle,
        None => Idle {
            fresh: None,
            engine: Engine::new()?,
        },
    };
    match fresh {
        // More groups than the script needs do no harm: it cannot reach
        // what it does not name, and this context is already made.
        Some(fresh) if fresh.globals.contains(globals) => Ok((fresh, engine)),
        stale => {
            drop(stale);
            let fresh = engine.fresh(globals)?;
            Ok((fresh, engine))
        }
    }
}

/// Marks a warm context's key free again, however its run ends.
struct BusyKey(String);

impl Drop for BusyKey {
    fn drop(&mut self) {
        with_isolates(|i| i.busy.remove(&self.0));
    }
}

/// The context a run holds, and its runtime.
enum Lease {
    Fresh {
        fresh: Fresh,
        engine: Engine,
    },
    Warm {
        warm: Warm,
        /// Declared after `warm`: the key is freed once the context is
        /// back or gone.
        key: BusyKey,
    },
}

impl Lease {
    fn rt(&self) -> &Runtime {
        match self {
            Lease::Fresh { engine, .. } => &engine.rt,
            Lease::Warm { warm, .. } => &warm.engine.rt,
        }
    }

    fn ctx(&self) -> &Context {
        match self {
            Lease::Fresh { fresh, .. } => &fresh.ctx,
            Lease::Warm { warm, .. } => &warm.ctx,
        }
    }

    fn memory(&self) -> &Rc<MemoryStats> {
        match self {
            Lease::Fresh { engine, .. } => &engine.memory,
            Lease::Warm { warm, .. } => &warm.engine.memory,
        }
    }

    fn setup(&self) -> &Persistent<Function<'static>> {
        match self {
            Lease::Fresh { fresh, .. } => &fresh.setup,
            Lease::Warm { warm, .. } => &warm.setup,
        }
    }

    /// The script's function, where an earlier run of a warm context
    /// loaded it.
    fn loaded(&self) -> Option<Persistent<Function<'static>>> {
        match self {
            Lease::Fresh { .. } => None,
            Lease::Warm { warm, .. } => warm.script.borrow().clone(),
        }
    }

    /// Keeps the script's function for the warm context's later runs.
    fn keep_loaded<'js>(&self, ctx: &Ctx<'js>, script: &Function<'js>) {
        if let Lease::Warm { warm, .. } = self {
            *warm.script.borrow_mut() = Some(Persistent::save(ctx, script.clone()));
        }
    }
}

/// The context for a run: the version's warm context when `warm` names
/// one and it fits, a new warm context for it when there is none, else a
/// fresh context.
fn checkout(
    script: &Script,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    warm: Option<&str>,
) -> Result<Lease, RunError> {
    // A run granted `http` gets the standard `fetch`, and its `Response`.
    let globals = if req.grants.allows(Capability::Http) {
        compiled.globals.with(Globals::FETCH)
    } else {
        compiled.globals
    };
    with_isolates(|i| i.last_globals = globals);
    let Some(key) = warm else {
        let (fresh, engine) = take_fresh(globals)?;
        return Ok(Lease::Fresh { fresh, engine });
    };
    let now = Instant::now();
    // A run of the version is already using its warm context on this
    // thread: this one gets a fresh context.
    let taken = with_isolates(|i| {
        if !i.busy.insert(key.to_owned()) {
            return None;
        }
        Some(i.warm.remove(key))
    })
    .flatten();
    let Some(found) = taken else {
        let (fresh, engine) = take_fresh(globals)?;
        return Ok(Lease::Fresh { fresh, engine });
    };
    let key = BusyKey(key.to_owned());
    let warm = match found {
        Some(warm) if warm.fits(script, &req.limits, req.grants, now) => warm,
        other => {
            if let Some(stale) = other {
                stale.retire();
            }
            let (fresh, engine) = take_fresh(globals)?;
            Warm::new(fresh, engine, script, &req.limits, req.grants)
        }
    };
    Ok(Lease::Warm { warm, key })
}

/// Ends a run's hold on its context. A fresh context is dropped; a warm
/// one is kept for the version's next run only after a clean run: it
/// succeeded, hit no limit, was not cancelled, met no capability denial
/// and left nothing running.
fn checkin(lease: Lease, clean: bool) {
    match lease {
        Lease::Fresh { fresh, mut engine } => {
            drop(fresh);
            engine.dirty = true;
            give_back(engine);
        }
        Lease::Warm { mut warm, key } => {
            if !clean || warm.engine.rt.is_job_pending() {
                warm.retire();
                return;
            }
            warm.runs += 1;
            warm.last_used = Instant::now();
            // Garbage of its runs is its own; collected when the thread
            // is idle.
            warm.engine.dirty = true;
            let evicted = with_isolates(|i| {
                let mut evicted = Vec::new();
                while i.warm.len() >= MAX_WARM {
                    let Some(oldest) = i
                        .warm
                        .iter()
                        .min_by_key(|(_, w)| w.last_used)
                        .map(|(k, _)| k.clone())
                    else {
                        break;
                    };
                    evicted.extend(i.warm.remove(&oldest));
                }
                i.warm.insert(key.0.clone(), warm);
                evicted
            });
            for old in evicted.into_iter().flatten() {
                old.retire();
            }
            drop(key);
        }
    }
}

/// Work for an idle thread: frees warm contexts past their time, collects
/// the garbage runs left, and makes fresh contexts ahead until `count` idle
/// runtimes hold one.
pub(crate) fn prewarm(count: usize) -> Result<(), RunError> {
    let now = Instant::now();
    let expired = with_isolates(|i| {
        let old: Vec<String> = i
            .warm
            .iter()
            .filter(|(_, w)| now >= w.created + w.ttl)
            .map(|(k, _)| k.clone())
            .collect();
        old.iter()
            .filter_map(|k| i.warm.remove(k))
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    for warm in expired {
        warm.retire();
    }
    with_isolates(|i| {
        for warm in i.warm.values_mut() {
            warm.engine.collect();
        }
    });
    let Some((mut idle, globals)) =
        with_isolates(|i| (std::mem::take(&mut i.idle), i.last_globals))
    else {
        return Ok(());
    };
    let mut made = Ok(());
    for (n, entry) in idle.iter_mut().enumerate() {
        if entry.fresh.is_none() {
            entry.engine.collect();
            if n < count && made.is_ok() {
                match entry.engine.fresh(globals) {
                    Ok(fresh) => entry.fresh = Some(fresh),
                    Err(e) => made = Err(e),
                }
            }
        }
    }
    while idle.len() < count && made.is_ok() {
        match Engine::new().and_then(|mut engine| {
            engine.fresh(globals).map(|fresh| Idle {
                fresh: Some(fresh),
                engine,
            })
        }) {
            Ok(entry) => idle.push(entry),
            Err(e) => made = Err(e),
        }
    }
    let overflow = with_isolates(|i| {
        // Runs give runtimes back only while a run is on the thread, and
        // none is while this runs; keep what there is, within the bound.
        idle.append(&mut i.idle);
        i.idle = idle;
        let excess = i.idle.len().saturating_sub(MAX_IDLE);
        i.idle.drain(..excess).collect::<Vec<_>>()
    });
    drop(overflow);
    made
}

/// Drops every warm context of this thread (their runtimes are kept).
pub(crate) fn forget_warm() {
    let warm = with_isolates(|i| std::mem::take(&mut i.warm)).unwrap_or_default();
    for (_, warm) in warm {
        warm.retire();
    }
}

pub(crate) async fn run(script: &Script, req: RunRequest<'_>, warm: Option<&str>) -> RunOutcome {
    let started = Instant::now();
    let warm = warm.filter(|_| req.limits.isolation == Isolation::Version);
    let lease = match &script.compiled {
        Some(compiled) => checkout(script, compiled, &req, warm),
        None => Err(rejected(script)),
    };
    let memory = match &lease {
        Ok(lease) => Rc::clone(lease.memory()),
        Err(_) => Rc::default(),
    };
    let state = Rc::new(RunState::new(&req, started, memory));
    let (result, lease) = match (lease, &script.compiled) {
        (Ok(lease), Some(compiled)) => {
            let result = execute(&lease, compiled, &req, &state).await;
            (result, Some(lease))
        }
        (Err(e), _) => (Err(e), None),
        (Ok(_), None) => (Err(rejected(script)), None),
    };
    if let Some(lease) = lease {
        checkin(lease, result.is_ok() && state.clean());
    }
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

/// Frees what refers into the runtime before the context goes back or
/// away, however the run ends (including when its future is dropped).
struct Teardown<'a> {
    state: &'a RunState,
    rt: &'a Runtime,
    ctx: &'a Context,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        let calls_open = {
            let mut resolvers = self.state.resolvers.borrow_mut();
            let open = !resolvers.is_empty();
            resolvers.clear();
            open
        };
        if calls_open {
            self.state.calls_left_open.set(true);
        }
        self.state.new_ops.borrow_mut().clear();
        // The handler holds an `Rc` of the state; break the cycle.
        self.rt.set_interrupt_handler(None);
        // An exception left pending (a run stopped mid-way) must not reach
        // the runtime's next run.
        self.ctx.with(|ctx| drop(ctx.catch()));
    }
}

async fn execute(
    lease: &Lease,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
) -> Result<Box<RawValue>, RunError> {
    let rt = lease.rt();
    let _teardown = Teardown {
        state,
        rt,
        ctx: lease.ctx(),
    };
    lease.memory().begin(req.limits.memory_bytes);
    rt.set_max_stack_size(req.limits.stack_bytes);
    let handler_state = Rc::clone(state);
    rt.set_interrupt_handler(Some(Box::new(move || handler_state.should_interrupt())));
    drive(lease, compiled, req, state).await
}

async fn drive(
    lease: &Lease,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
) -> Result<Box<RawValue>, RunError> {
    let (rt, ctx) = (lease.rt(), lease.ctx());
    let positions = &compiled.positions;
    state.begin_slice();
    let started = ctx.with(|ctx| {
        start(&ctx, lease, compiled, req, state).map_err(|e| state.error_from(&ctx, e, positions))
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

/// Thrown by a native hook of a run that has ended, when a warm context's
/// later run calls something an earlier run kept (its `api`, its `console`).
fn run_ended(ctx: &Ctx<'_>) -> rquickjs::Error {
    rquickjs::Exception::throw_message(
        ctx,
        "this object belongs to an earlier run, which has ended",
    )
}

/// Sets up the run's `console` and `api`, loads the script (or takes the
/// warm context's) and calls it; returns the promise of its JSON result.
fn start<'js>(
    ctx: &Ctx<'js>,
    lease: &Lease,
    compiled: &Compiled,
    req: &RunRequest<'_>,
    state: &Rc<RunState>,
) -> rquickjs::Result<Persistent<Promise<'static>>> {
    let setup = lease.setup().clone().restore(ctx)?;
    // The hooks only reach the run while it lasts: a warm context's script
    // may keep this run's `api` for a later run, which must not act for
    // this one.
    let log_state = Rc::downgrade(state);
    let log = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>,
              level: i32,
              message: rquickjs::String<'js>,
              shortened: bool|
              -> rquickjs::Result<()> {
            let state = log_state.upgrade().ok_or_else(|| run_ended(&ctx))?;
            state.log(level, message, shortened);
            Ok(())
        },
    )?;
    let op_state = Rc::downgrade(state);
    let op = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, name: String, args: String| {
            let state = op_state.upgrade().ok_or_else(|| run_ended(&ctx))?;
            state.start_op(&ctx, &name, &args)
        },
    )?;
    let limit_state: Weak<RunState> = Rc::downgrade(state);
    let limit = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, code: String| -> rquickjs::Result<()> {
            let state = limit_state.upgrade().ok_or_else(|| run_ended(&ctx))?;
            state.limit_hit_in_prelude(&code);
            Ok(())
        },
    )?;
    let granted: Vec<&str> = req.grants.iter().map(Capability::name).collect();
    // The budgets the prelude serialises results, host-call arguments and log
    // lines within.
    let budgets: Vec<f64> = budgets(&req.limits).iter().map(|&b| b as f64).collect();
    // The run's time zone, for local time.
    let zone = req.limits.time_zone.as_str();
    let runner: Function = setup.call((log, op, limit, granted, budgets, zone))?;
    let script: Function = match lease.loaded() {
        Some(loaded) => loaded.restore(ctx)?,
        None => {
            // SAFETY: the bytecode was produced by `compile::compile` in this process.
            let script: Function = unsafe { compile::load(ctx, &compiled.bytecode)? }.get()?;
            lease.keep_loaded(ctx, &script);
            script
        }
    };
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
    /// A capability was denied to the run (caught or not).
    denied: Rc<Cell<bool>>,
    /// Host calls were still awaited when the run ended.
    calls_left_open: Cell<bool>,
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
            denied: Rc::new(Cell::new(false)),
            calls_left_open: Cell::new(false),
        }
    }

    /// The run ended without a trace a warm context must not carry on:
    /// no limit, no cancellation, no capability denial, no host call left
    /// awaiting.
    fn clean(&self) -> bool {
        self.stopped().is_none() && !self.denied.get() && !self.calls_left_open.get()
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
            // The script touched an ungranted capability; it may catch the
            // error, and the run goes on.
            "capability_denied" => {
                self.denied.set(true);
                return;
            }
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
        let denied = Rc::clone(&self.denied);
        let reply: Reply = match self.host_future(name, args) {
            Ok(fut) => Box::pin(async move {
                let outcome = match fut.await {
                    Ok(value) => serde_json::json!({ "ok": value }),
                    Err(e) => {
                        if e.code == "capability_denied" {
                            denied.set(true);
                        }
                        serde_json::json!({ "err": e })
                    }
                };
                outcome.to_string()
            }),
            Err(e) => {
                if e.code == "capability_denied" {
                    denied.set(true);
                }
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
        // `timer` serves the web timers (`setTimeout`, `AbortSignal.timeout`):
        // a sleep that needs no grant, being bounded like any run's wait.
        if name == "sleep" || name == "timer" {
            if name == "sleep" && !self.grants.allows(Capability::Sleep) {
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
                options: arg(2),
            },
            "kv.delete" => HostCall::KvDelete {
                key: text(0, "a key")?,
                options: arg(1),
            },
            "kv.list" => HostCall::KvList { options: arg(0) },
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
