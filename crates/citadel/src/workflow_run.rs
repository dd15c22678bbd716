//! `citadel workflow run FILE`: a workflow run locally, without a server.
//!
//! [`citadel_workflow::Progress`] decides what runs next; this module runs
//! each step the way the platform does — `script` steps in a jailed
//! sandbox host, `shell` steps in the process jail, `http` steps through
//! the same egress guard as the server's — and reports step by step: a
//! live display on a terminal, plain lines when piped. Nothing is durable
//! here; a server's run is (`/v1/workflows`, a later part of the product).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_analyzer::Language;
use citadel_engine::steps::{
    self, At, DecisionFuture, Driven, HookFuture, HttpFuture, StepEffects, StepFuture, failure,
    success,
};
use citadel_jail::{Jail, JailConfig};
use citadel_pool::{Gateway, Pool, PoolRun};
use citadel_sandbox::{ErrorKind, Grants, HostCall, Limits, RunStatus};
use citadel_workflow::{
    Outcome, Profile, Progress, ScriptSource, Step, StepResult, StepStatus, Workflow,
};
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::run::NetGateway;
use crate::{CliError, ResultExt};

#[derive(Args)]
pub(crate) struct WorkflowRunArgs {
    /// The workflow, YAML.
    file: PathBuf,
    /// The run's inputs, as a JSON object.
    #[arg(long, default_value = "{}")]
    input: String,
    /// The highest security profile allowed (the workflow may ask for a
    /// lower one): restricted, standard or elevated; plan_only never
    /// executes. Default: `[workflows] profile` of the configuration,
    /// CITADEL_SECURITY_PROFILE, else standard.
    #[arg(long)]
    profile: Option<String>,
    /// A TOML configuration file (else $CITADEL_CONFIG; a ./citadel.toml is
    /// not read implicitly here): its `[workflows]` section and
    /// `jail_required`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Hosts `http` steps may reach, comma-separated (as `citadel run
    /// --allow-net`), besides `[workflows] allowed_domains`.
    #[arg(long, value_delimiter = ',')]
    allow_net: Vec<String>,
    /// Environment variables templates may read as `env.NAME`,
    /// comma-separated; none by default.
    #[arg(long, value_delimiter = ',')]
    allow_env: Vec<String>,
    /// Approve every `approval` step (otherwise each is asked on a
    /// terminal, and rejected when there is none).
    #[arg(long)]
    approve: bool,
    /// Print one JSON object with the status, every step's result and the
    /// outputs, instead of the step-by-step display.
    #[arg(long)]
    json: bool,
    /// Refuse to run when the kernel allows no namespaces for the jail.
    #[arg(long, env = "CITADEL_JAIL_REQUIRED")]
    require_jail: bool,
}

/// What every step of one local run shares.
struct Local {
    /// Itself, for the sub-workflows its steps run.
    this: std::sync::Weak<Local>,
    /// The environment variables templates may read.
    env: BTreeMap<String, String>,
    dir: PathBuf,
    approve: bool,
    /// Ask approvals on the terminal.
    interactive: bool,
    require_jail: bool,
    net: Option<Arc<NetGateway>>,
    /// Started on the first step that needs it.
    pool: Mutex<Option<Arc<Pool>>>,
    jail: Mutex<Option<Arc<Jail>>>,
    report: Report,
    /// A step's timeout when it sets none.
    default_timeout: Duration,
    /// Steps of one run running at once at most.
    max_parallel: usize,
}

/// How progress is shown.
#[derive(Clone, Copy)]
enum Report {
    /// Symbols and durations, for a person at a terminal.
    Terminal,
    /// One plain line per event, for a pipe or a log.
    Plain,
    /// Nothing until the final JSON.
    Quiet,
}

impl Report {
    fn line(self, depth: usize, symbol: &str, word: &str, text: &str) {
        let indent = "  ".repeat(depth);
        match self {
            Report::Terminal => eprintln!("{indent}{symbol} {text}"),
            Report::Plain => eprintln!("{indent}{word} {text}"),
            Report::Quiet => {}
        }
    }
}

pub(crate) fn run(args: WorkflowRunArgs) -> Result<(), CliError> {
    let full = crate::extensions::workflow_config(args.config.as_deref())?;
    let require_jail = args.require_jail || full.jail_required;
    let config = full.workflows;
    let max = crate::extensions::profile(args.profile.as_deref(), &config)?;
    let dir = match &config.workspace_root {
        Some(root) => root.clone(),
        None => args
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let workflow = load(&args.file, &dir, max)?;
    let profile = Profile::effective(max, workflow.profile);
    if !profile.executes() {
        return Err(CliError::usage(format!(
            "the `{profile}` profile never executes a workflow: `citadel workflow plan` shows what would run"
        )));
    }
    let given: Value = serde_json::from_str(&args.input).usage("--input is not valid JSON")?;
    let inputs = citadel_workflow::check_inputs(&workflow, &given)
        .map_err(|errors| crate::extensions::input_errors(&errors))?;
    let hosts: Vec<String> = config
        .allowed_domains
        .iter()
        .chain(&args.allow_net)
        .cloned()
        .collect();
    let net = if hosts.is_empty() {
        None
    } else {
        Some(Arc::new(NetGateway::new(&hosts)?))
    };
    let env: BTreeMap<String, String> = args
        .allow_env
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    let report = if args.json {
        Report::Quiet
    } else if std::io::stderr().is_terminal() {
        Report::Terminal
    } else {
        Report::Plain
    };
    let local = Arc::new_cyclic(|this| Local {
        this: this.clone(),
        env,
        dir,
        approve: args.approve,
        interactive: std::io::stdin().is_terminal() && !args.json,
        require_jail,
        net,
        pool: Mutex::new(None),
        jail: Mutex::new(None),
        report,
        default_timeout: Duration::from_secs(config.default_timeout_s),
        max_parallel: config.max_parallel_steps.max(1),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .failed("cannot start the runtime")?;
    report.line(
        0,
        "▶",
        "workflow",
        &format!(
            "{} {} under the `{profile}` profile",
            workflow.name, workflow.version
        ),
    );
    let started = Instant::now();
    let (outcome, results) = runtime.block_on(run_workflow(
        Arc::clone(&local),
        workflow,
        inputs,
        local.env.clone(),
        At { depth: 0, profile },
    ));
    if let Some(pool) = runtime.block_on(local.pool.lock()).take() {
        pool.shutdown();
    }
    // An approval's question may still wait for a line on stdin (its step
    // ended without an answer): the process does not wait for it.
    runtime.shutdown_background();
    let elapsed = started.elapsed();
    if args.json {
        let steps: serde_json::Map<String, Value> = results
            .iter()
            .map(|(id, r)| (id.clone(), serde_json::to_value(r).unwrap_or(Value::Null)))
            .collect();
        let out = json!({
            "status": outcome.status,
            "failed_step": outcome.failed_step,
            "steps": steps,
            "outputs": outcome.outputs,
            "output_errors": outcome.output_errors,
            "duration_ms": elapsed.as_millis() as u64,
        });
        println!("{out}");
    } else {
        for (name, error) in &outcome.output_errors {
            eprintln!("output `{name}`: {error}");
        }
        if !outcome.outputs.is_empty() {
            println!("{}", Value::Object(outcome.outputs.clone()));
        }
        let how = match &outcome.failed_step {
            _ if outcome.status == StepStatus::Succeeded => outcome.status.as_str().to_owned(),
            Some(step) => format!("failed at step `{step}`"),
            None => "failed: its outputs could not be rendered".to_owned(),
        };
        let symbol = if outcome.status == StepStatus::Succeeded {
            "✓"
        } else {
            "✗"
        };
        report.line(
            0,
            symbol,
            "workflow",
            &format!("{how} in {}", millis(elapsed)),
        );
    }
    if outcome.status == StepStatus::Succeeded {
        Ok(())
    } else if outcome
        .failed_step
        .as_ref()
        .and_then(|id| results.get(id))
        .is_some_and(|r| r.status == StepStatus::TimedOut)
    {
        Err(CliError::Limit)
    } else {
        Err(CliError::Threw)
    }
}

/// Validates `file` under `max`, following its sub-workflows in `dir`.
fn load(file: &Path, dir: &Path, max: Profile) -> Result<Workflow, CliError> {
    let text = std::fs::read_to_string(file).usage(format!("cannot read {}", file.display()))?;
    let dir = dir.to_path_buf();
    let resolve = move |name: &str| -> Option<Workflow> {
        let text = std::fs::read_to_string(sub_workflow_path(&dir, name)?).ok()?;
        citadel_workflow::validate(&text, max).ok()
    };
    citadel_workflow::validate_with(&text, max, Some(&resolve)).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{}:{d}", file.display());
        }
        eprintln!("{}: {} problem(s)", file.display(), diagnostics.len());
        CliError::Threw
    })
}

/// Where a sub-workflow named `name` is: `NAME.yaml` (or `.yml`) beside
/// the workflow that names it. Names with path separators or dots are not
/// looked up, so a workflow cannot reach files outside its directory.
fn sub_workflow_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return None;
    }
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// Runs a workflow to its end: as many steps at once as the DAG allows.
async fn run_workflow(
    local: Arc<Local>,
    workflow: Workflow,
    inputs: serde_json::Map<String, Value>,
    env: BTreeMap<String, String>,
    at: At,
) -> (Outcome, BTreeMap<String, StepResult>) {
    let mut progress = Progress::new(&workflow, inputs, at.profile);
    progress.grant(env, BTreeMap::new());
    let (max_parallel, default_timeout) = (local.max_parallel, local.default_timeout);
    let driven = steps::drive(
        &local,
        &mut progress,
        at,
        max_parallel,
        default_timeout,
        std::future::pending(),
    )
    .await;
    let outcome = match driven {
        Driven::Finished(outcome) => outcome,
        // Approvals are decided at once here and nothing stops the run,
        // so neither happens; never a success if it did.
        Driven::Waiting | Driven::Stopped => Outcome {
            status: StepStatus::Failed,
            ..progress.outcome()
        },
    };
    (outcome, progress.results().clone())
}

impl StepEffects for Local {
    fn script<'a>(
        &'a self,
        source: &'a ScriptSource,
        input: Value,
        timeout: Duration,
    ) -> StepFuture<'a> {
        Box::pin(run_script(self, source, input, timeout))
    }

    fn shell<'a>(&'a self, command: String, timeout: Duration) -> StepFuture<'a> {
        Box::pin(async move {
            let jail = match jail(self).await {
                Ok(jail) => jail,
                Err(e) => return failure(StepStatus::Failed, e.to_string()),
            };
            let result = steps::shell_in_jail(&jail, command, timeout).await;
            if !matches!(self.report, Report::Quiet) {
                let text = |k: &str| {
                    result
                        .output
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                print!("{}", text("stdout"));
                eprint!("{}", text("stderr"));
            }
            result
        })
    }

    fn http<'a>(&'a self, url: String, options: Value, timeout: Duration) -> HttpFuture<'a> {
        Box::pin(async move {
            let Some(net) = &self.net else {
                return Err(
                    "no host is allowed: name the hosts http steps may reach with --allow-net"
                        .to_owned(),
                );
            };
            let gateway = net.with_deadline(Instant::now() + timeout);
            gateway
                .call(HostCall::HttpFetch { url, options })
                .await
                .map_err(|e| format!("{}: {}", e.code, e.message))
        })
    }

    fn emit<'a>(&'a self, event: &'a str, data: Value, at: At) -> StepFuture<'a> {
        Box::pin(async move {
            // No event bus without a server: the event is shown, and is the
            // step's output.
            let event = json!({ "type": event, "data": data });
            self.report
                .line(at.depth + 1, "→", "event", &event.to_string());
            success(event)
        })
    }

    fn approval<'a>(
        &'a self,
        _step: Option<&'a Step>,
        message: String,
        _at: At,
    ) -> DecisionFuture<'a> {
        Box::pin(async move { Some(approve(self, message).await) })
    }

    fn sub_workflow<'a>(&'a self, name: &'a str, given: Value, at: At) -> StepFuture<'a> {
        Box::pin(async move {
            match self.this.upgrade() {
                Some(local) => run_sub_workflow(&local, name, given, at).await,
                None => failure(StepStatus::Failed, "the run is over"),
            }
        })
    }

    fn on_decided<'a>(
        &'a self,
        at: At,
        step: &'a Step,
        result: &'a StepResult,
        reason: &'a str,
    ) -> HookFuture<'a> {
        let (symbol, word) = if result.status == StepStatus::Skipped {
            ("↷", "skipped")
        } else {
            ("✗", "refused")
        };
        self.report
            .line(at.depth, symbol, word, &format!("{}: {reason}", step.id));
        Box::pin(async {})
    }

    fn on_started<'a>(&'a self, at: At, step: &'a Step, attempt: u32) -> HookFuture<'a> {
        if attempt == 1 {
            self.report.line(at.depth, "▶", "started", &step.id);
        }
        Box::pin(async {})
    }

    fn on_finished<'a>(
        &'a self,
        at: At,
        step: &'a Step,
        result: &'a StepResult,
        took: Duration,
    ) -> HookFuture<'a> {
        let symbol = match result.status {
            StepStatus::Succeeded => "✓",
            StepStatus::TimedOut => "⏱",
            _ => "✗",
        };
        let mut text = format!("{} ({})", step.id, millis(took));
        if result.status != StepStatus::Succeeded
            && let Some(error) = result.output.get("error")
        {
            let error = error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned);
            text.push_str(&format!(": {error}"));
        }
        self.report
            .line(at.depth, symbol, result.status.as_str(), &text);
        Box::pin(async {})
    }

    fn on_retrying(&self, at: At, step: &Step, attempt: u32, attempts: u32, delay_s: u64) {
        self.report.line(
            at.depth,
            "↻",
            "retrying",
            &format!(
                "{} (attempt {attempt} of {attempts}, in {delay_s} s)",
                step.id
            ),
        );
    }
}

async fn run_script(
    local: &Local,
    source: &ScriptSource,
    input: Value,
    timeout: Duration,
) -> StepResult {
    let (code, language) = match source {
        ScriptSource::Inline(code) => (code.clone(), Language::Js),
        ScriptSource::Saved(name) => match saved_script(&local.dir, name) {
            Some((path, code)) => (code, Language::from_path(&path)),
            None => {
                return failure(
                    StepStatus::Failed,
                    format!(
                        "saved script `{name}`: a local run looks for {name}.ts or {name}.js beside the workflow"
                    ),
                );
            }
        },
    };
    let pool = match pool(local).await {
        Ok(pool) => pool,
        Err(e) => return failure(StepStatus::Failed, format!("no sandbox host: {e:#}")),
    };
    let limits = Limits {
        timeout,
        cpu: timeout,
        ..Limits::default()
    };
    let job = PoolRun {
        tenant: "cli".into(),
        source: code,
        language,
        input_json: input.to_string(),
        limits,
        grants: Grants::NONE.with(citadel_sandbox::Capability::Sleep),
        cancel: None,
        version_key: None,
        fault: None,
    };
    let outcome = pool.run(job, Arc::new(citadel_pool::EchoGateway)).await;
    for line in &outcome.logs {
        local.report.line(1, "·", "log", &line.message);
    }
    match (outcome.status, &outcome.result, &outcome.error) {
        (RunStatus::Succeeded, result, _) => success(
            result
                .as_ref()
                .and_then(|r| serde_json::from_str(r.get()).ok())
                .unwrap_or(Value::Null),
        ),
        (_, _, Some(e)) => {
            let status = if e.kind == ErrorKind::Timeout {
                StepStatus::TimedOut
            } else {
                StepStatus::Failed
            };
            let code = serde_json::to_value(e.kind).unwrap_or(Value::Null);
            StepResult {
                status,
                output: json!({
                    "error": format!("{}: {}", e.name, e.message),
                    "code": code,
                    "line": e.line,
                    "column": e.column,
                }),
                exit_code: None,
            }
        }
        (status, _, None) => failure(StepStatus::Failed, format!("the run ended {status:?}")),
    }
}

/// A saved script's file beside the workflow: `NAME.ts` or `NAME.js`, the
/// name's folders as directories (no `..`, no absolute paths).
fn saved_script(dir: &Path, name: &str) -> Option<(PathBuf, String)> {
    let safe = name.split('/').all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if !safe {
        return None;
    }
    ["ts", "js"].iter().find_map(|ext| {
        let path = dir.join(format!("{name}.{ext}"));
        let code = std::fs::read_to_string(&path).ok()?;
        Some((path, code))
    })
}

async fn pool(local: &Local) -> anyhow::Result<Arc<Pool>> {
    let mut slot = local.pool.lock().await;
    if let Some(pool) = &*slot {
        return Ok(Arc::clone(pool));
    }
    // Isolate threads as the machine has: independent steps run at once.
    let config = crate::run::pool_config(1, local.require_jail)?;
    let pool = Arc::new(Pool::start(config)?);
    *slot = Some(Arc::clone(&pool));
    Ok(pool)
}

async fn jail(local: &Local) -> Result<Arc<Jail>, citadel_jail::JailError> {
    let mut slot = local.jail.lock().await;
    if let Some(jail) = &*slot {
        return Ok(Arc::clone(jail));
    }
    let jail = Arc::new(Jail::new(JailConfig {
        required: local.require_jail,
        ..JailConfig::default()
    })?);
    *slot = Some(Arc::clone(&jail));
    Ok(jail)
}

/// An `approval` step: `--approve`, or asked on the terminal; rejected
/// when nobody can answer.
async fn approve(local: &Local, message: String) -> StepResult {
    if local.approve {
        return success(json!({ "decision": "approve", "by": "--approve" }));
    }
    if !local.interactive {
        return StepResult {
            status: StepStatus::Rejected,
            output: json!({ "error": "nobody to approve it: run on a terminal, or pass --approve" }),
            exit_code: None,
        };
    }
    // One question at a time on the terminal.
    static ASKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ASKING.lock().await;
    let answer = tokio::task::spawn_blocking(move || {
        eprint!("? {message} [y/N] ");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes")
    })
    .await
    .unwrap_or(false);
    if answer {
        success(json!({ "decision": "approve", "by": "terminal" }))
    } else {
        StepResult {
            status: StepStatus::Rejected,
            output: json!({ "error": "rejected on the terminal" }),
            exit_code: None,
        }
    }
}

async fn run_sub_workflow(local: &Arc<Local>, name: &str, given: Value, at: At) -> StepResult {
    // Validation bounds the depth of the files as they were; this bounds
    // it for files edited since.
    if at.depth >= citadel_workflow::MAX_SUBWORKFLOW_DEPTH {
        return failure(
            StepStatus::Failed,
            format!(
                "sub-workflow `{name}`: workflows nest at most {} deep",
                citadel_workflow::MAX_SUBWORKFLOW_DEPTH
            ),
        );
    }
    let Some(path) = sub_workflow_path(&local.dir, name) else {
        return failure(
            StepStatus::Failed,
            format!("sub-workflow `{name}`: no {name}.yaml beside the workflow"),
        );
    };
    let loaded = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            citadel_workflow::validate(&text, at.profile).map_err(|d| {
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    let workflow = match loaded {
        Ok(w) => w,
        Err(e) => return failure(StepStatus::Failed, format!("sub-workflow `{name}`: {e}")),
    };
    let inputs = match citadel_workflow::check_inputs(&workflow, &given) {
        Ok(inputs) => inputs,
        Err(errors) => {
            let text: Vec<String> = errors
                .iter()
                .map(|e| format!("input `{}`: {}", e.input, e.message))
                .collect();
            return failure(
                StepStatus::Failed,
                format!("sub-workflow `{name}`: {}", text.join("; ")),
            );
        }
    };
    let profile = Profile::effective(at.profile, workflow.profile);
    if !profile.executes() {
        return failure(
            StepStatus::Failed,
            format!("sub-workflow `{name}` asks for the `{profile}` profile, which never executes"),
        );
    }
    let inner = At {
        depth: at.depth + 1,
        profile,
    };
    let (outcome, _) = run_workflow(
        Arc::clone(local),
        workflow,
        inputs,
        local.env.clone(),
        inner,
    )
    .await;
    steps::sub_workflow_result(name, outcome)
}

fn millis(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
