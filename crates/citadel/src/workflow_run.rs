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
use citadel_jail::{CommandLimits, CommandSpec, Exit, Jail, JailConfig};
use citadel_pool::{Gateway, Pool, PoolRun};
use citadel_sandbox::{ErrorKind, Grants, HostCall, Limits, RunStatus};
use citadel_workflow::{
    Action, Outcome, Profile, Progress, Ready, Scope, ScriptSource, Step, StepResult, StepStatus,
    Workflow,
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

/// Where a step stands: how deep in sub-workflows and `foreach` bodies
/// (for the display's indentation and the depth limit), and the profile of
/// the workflow it belongs to (a sub-workflow may ask for a lower one).
#[derive(Clone, Copy)]
struct At {
    depth: usize,
    profile: Profile,
}

impl At {
    fn deeper(self) -> At {
        At {
            depth: self.depth + 1,
            ..self
        }
    }
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
    let local = Arc::new(Local {
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
        env,
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
    progress.grant(env.clone(), BTreeMap::new());
    let mut running = tokio::task::JoinSet::new();
    // Ready steps waiting for one of the run's `max_parallel` places.
    let mut waiting = std::collections::VecDeque::new();
    loop {
        for ready in progress.ready() {
            match ready {
                Ready::Run { step, scope } => waiting.push_back((step.clone(), scope)),
                Ready::Skipped { step, reason } => {
                    local
                        .report
                        .line(at.depth, "↷", "skipped", &format!("{}: {reason}", step.id));
                }
                Ready::Refused { step, reason } => {
                    local
                        .report
                        .line(at.depth, "✗", "refused", &format!("{}: {reason}", step.id));
                }
            }
        }
        while running.len() < local.max_parallel
            && let Some((step, scope)) = waiting.pop_front()
        {
            local.report.line(at.depth, "▶", "started", &step.id);
            let (local, env) = (Arc::clone(&local), env.clone());
            running.spawn(async move {
                let t = Instant::now();
                let result = run_step(&local, &step, scope, &env, at).await;
                (step.id, result, t.elapsed())
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, result, took) = match joined {
            Ok(done) => done,
            // A step's task panicked: nothing to record it under, so the
            // run cannot go on. (Steps do not panic; this is the backstop.)
            Err(e) => {
                eprintln!("citadel: a step's task failed: {e}");
                break;
            }
        };
        let symbol = match result.status {
            StepStatus::Succeeded => "✓",
            StepStatus::TimedOut => "⏱",
            _ => "✗",
        };
        let word = result.status.as_str();
        let mut text = format!("{id} ({})", millis(took));
        if result.status != StepStatus::Succeeded
            && let Some(error) = result.output.get("error")
        {
            let error = error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned);
            text.push_str(&format!(": {error}"));
        }
        local.report.line(at.depth, symbol, word, &text);
        progress.finish(&id, result);
    }
    let mut outcome = progress.outcome();
    if !progress.is_finished() {
        // A step's task panicked and the run stopped short: never a success.
        outcome.status = StepStatus::Failed;
    }
    (outcome, progress.results().clone())
}

/// Runs one step with its retries, each attempt within the step's timeout.
async fn run_step(
    local: &Arc<Local>,
    step: &Step,
    scope: Scope,
    env: &BTreeMap<String, String>,
    at: At,
) -> StepResult {
    // An approval waits for a person: only a `timeout` it sets ends it.
    let default = match step.action {
        Action::Approval { .. } => Duration::from_secs(citadel_workflow::MAX_STEP_SECONDS),
        _ => local.default_timeout,
    };
    let timeout = step.timeout.map_or(default, Duration::from_secs);
    let attempts = step.retry.as_ref().map_or(1, |r| r.attempts.max(1));
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(
            timeout,
            run_action(local, &step.action, &scope, env, timeout, at),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => failure(
                StepStatus::TimedOut,
                format!(
                    "did not finish within its timeout of {} s",
                    timeout.as_secs()
                ),
            ),
        };
        let retryable = matches!(result.status, StepStatus::Failed | StepStatus::TimedOut);
        let Some(retry) = step
            .retry
            .as_ref()
            .filter(|_| retryable && attempt < attempts)
        else {
            return result;
        };
        attempt += 1;
        let delay = retry.delay_before(attempt);
        local.report.line(
            at.depth,
            "↻",
            "retrying",
            &format!(
                "{} (attempt {attempt} of {attempts}, in {delay} s)",
                step.id
            ),
        );
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
}

fn failure(status: StepStatus, error: impl Into<String>) -> StepResult {
    StepResult {
        status,
        output: json!({ "error": error.into() }),
        exit_code: None,
    }
}

fn success(output: Value) -> StepResult {
    StepResult {
        status: StepStatus::Succeeded,
        output,
        exit_code: None,
    }
}

/// An optional templated field rendered, `absent` when it is not set; a
/// failed step when it does not render.
fn render(
    field: &Option<citadel_workflow::Templated>,
    scope: &Scope,
    absent: Value,
) -> Result<Value, StepResult> {
    match field {
        None => Ok(absent),
        Some(t) => t
            .render(scope)
            .map_err(|e| failure(StepStatus::Failed, e.to_string())),
    }
}

/// One attempt of a step's action. Boxed: sub-workflows and `foreach`
/// recurse.
fn run_action<'a>(
    local: &'a Arc<Local>,
    action: &'a Action,
    scope: &'a Scope,
    env: &'a BTreeMap<String, String>,
    timeout: Duration,
    at: At,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepResult> + Send + 'a>> {
    Box::pin(async move {
        match action {
            Action::Script { source, input } => match render(input, scope, Value::Null) {
                Ok(input) => run_script(local, source, input, timeout).await,
                Err(failed) => failed,
            },
            Action::Assert { condition, message } => match condition.eval_bool(scope) {
                Ok(true) => success(Value::Bool(true)),
                Ok(false) => {
                    let text = message
                        .as_ref()
                        .and_then(|m| m.render(scope).ok())
                        .unwrap_or_else(|| format!("`{}` is false", condition.source()));
                    failure(StepStatus::Failed, text)
                }
                Err(e) => failure(StepStatus::Failed, e.to_string()),
            },
            Action::Http {
                method,
                url,
                headers,
                body,
            } => run_http(local, method, url, headers, body.as_ref(), scope, timeout).await,
            Action::Emit { event, payload } => {
                let data = match render(payload, scope, Value::Null) {
                    Ok(data) => data,
                    Err(failed) => return failed,
                };
                // No event bus without a server: the event is shown, and is
                // the step's output.
                let event = json!({ "type": event, "data": data });
                local
                    .report
                    .line(at.depth + 1, "→", "event", &event.to_string());
                success(event)
            }
            Action::Approval { message } => {
                let text = message
                    .as_ref()
                    .and_then(|m| m.render(scope).ok())
                    .unwrap_or_else(|| "continue?".to_owned());
                approve(local, text).await
            }
            Action::Sleep { seconds } => {
                tokio::time::sleep(Duration::from_secs(*seconds)).await;
                success(json!({ "slept_seconds": seconds }))
            }
            Action::Shell { command } => match command.render(scope) {
                Ok(command) => run_shell(local, command, timeout).await,
                Err(e) => failure(StepStatus::Failed, e.to_string()),
            },
            Action::Workflow { workflow, inputs } => match render(inputs, scope, json!({})) {
                Ok(given) => run_sub_workflow(local, workflow, given, env, at).await,
                Err(failed) => failed,
            },
            Action::Foreach {
                items,
                action,
                parallelism,
                max_items,
            } => {
                let list = match items.resolve(scope, *max_items) {
                    Ok(list) => list,
                    Err(e) => return failure(StepStatus::Failed, e.to_string()),
                };
                run_foreach(local, action, list, *parallelism, scope, env, timeout, at).await
            }
        }
    })
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

/// A `shell` step: `/bin/sh -c COMMAND` in a fresh process jail with no
/// network, its stdout shown as it is.
async fn run_shell(local: &Local, command: String, timeout: Duration) -> StepResult {
    let jail = match jail(local).await {
        Ok(jail) => jail,
        Err(e) => return failure(StepStatus::Failed, e.to_string()),
    };
    let spec = CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), command],
        limits: CommandLimits {
            wall: timeout,
            cpu_seconds: timeout.as_secs().max(1),
            ..CommandLimits::default()
        },
        ..CommandSpec::default()
    };
    let out = match jail.run(&spec).await {
        Ok(out) => out,
        Err(e) => return failure(StepStatus::Failed, e.to_string()),
    };
    let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
    if !matches!(local.report, Report::Quiet) {
        print!("{stdout}");
        eprint!("{stderr}");
    }
    let output = json!({ "stdout": stdout, "stderr": stderr });
    match out.exit {
        Exit::Code(0) => StepResult {
            status: StepStatus::Succeeded,
            output,
            exit_code: Some(0),
        },
        Exit::Code(code) => StepResult {
            status: StepStatus::Failed,
            output: json!({ "stdout": stdout, "stderr": stderr, "error": format!("exited with code {code}") }),
            exit_code: Some(i64::from(code)),
        },
        Exit::Signal(signal) => StepResult {
            status: StepStatus::Failed,
            output: json!({ "stdout": stdout, "stderr": stderr, "error": format!("killed by signal {signal}") }),
            exit_code: Some(128 + i64::from(signal)),
        },
        Exit::TimedOut => StepResult {
            status: StepStatus::TimedOut,
            output: json!({ "stdout": stdout, "stderr": stderr, "error": "killed at its timeout" }),
            exit_code: Some(124),
        },
    }
}

/// An `http` step through the egress guard, to the `--allow-net` hosts.
async fn run_http(
    local: &Local,
    method: &str,
    url: &citadel_workflow::Template,
    headers: &[(String, citadel_workflow::Template)],
    body: Option<&citadel_workflow::Templated>,
    scope: &Scope,
    timeout: Duration,
) -> StepResult {
    let Some(net) = &local.net else {
        return failure(
            StepStatus::Failed,
            "no host is allowed: name the hosts http steps may reach with --allow-net",
        );
    };
    let rendered = (|| -> Result<(String, Value), citadel_workflow::EvalError> {
        let url = url.render(scope)?;
        let mut header_map = serde_json::Map::new();
        for (name, value) in headers {
            header_map.insert(name.clone(), Value::String(value.render(scope)?));
        }
        let body = match body.map(|b| b.render(scope)).transpose()? {
            None => Value::Null,
            Some(Value::String(s)) => Value::String(s),
            Some(other) => {
                header_map
                    .entry("content-type")
                    .or_insert_with(|| Value::String("application/json".into()));
                Value::String(other.to_string())
            }
        };
        Ok((
            url,
            json!({ "method": method, "headers": header_map, "body": body }),
        ))
    })();
    let (url, options) = match rendered {
        Ok(r) => r,
        Err(e) => return failure(StepStatus::Failed, e.to_string()),
    };
    let gateway = net.with_deadline(Instant::now() + timeout);
    match gateway.call(HostCall::HttpFetch { url, options }).await {
        Ok(response) => {
            let status = response.get("status").and_then(Value::as_u64).unwrap_or(0);
            let mut output = response;
            // A JSON body is given as JSON to the steps after.
            if let Some(Value::String(text)) = output.get("body")
                && let Ok(parsed) = serde_json::from_str::<Value>(text)
            {
                output["body"] = parsed;
            }
            if (200..400).contains(&status) {
                success(output)
            } else {
                output["error"] = Value::String(format!("HTTP {status}"));
                StepResult {
                    status: StepStatus::Failed,
                    output,
                    exit_code: None,
                }
            }
        }
        Err(e) => failure(StepStatus::Failed, format!("{}: {}", e.code, e.message)),
    }
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

async fn run_sub_workflow(
    local: &Arc<Local>,
    name: &str,
    given: Value,
    env: &BTreeMap<String, String>,
    at: At,
) -> StepResult {
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
    let (outcome, _) = run_workflow(Arc::clone(local), workflow, inputs, env.clone(), inner).await;
    let output = Value::Object(outcome.outputs);
    match outcome.status {
        StepStatus::Succeeded => success(output),
        _ => StepResult {
            status: StepStatus::Failed,
            output: json!({
                "outputs": output,
                "error": format!("sub-workflow `{name}` failed at {}", outcome.failed_step.as_deref().unwrap_or("its outputs")),
            }),
            exit_code: None,
        },
    }
}

/// A `foreach`: the action once per item, at most `parallelism` at once,
/// `item` and `index` in scope; its output is the items' outputs in order.
#[allow(clippy::too_many_arguments)]
async fn run_foreach(
    local: &Arc<Local>,
    action: &Action,
    list: Vec<Value>,
    parallelism: u32,
    scope: &Scope,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    at: At,
) -> StepResult {
    use futures_util::stream::{self, StreamExt};
    let results: Vec<StepResult> = stream::iter(list.into_iter().enumerate())
        .map(|(index, item)| {
            let mut scope = scope.clone();
            scope.item = Some((item, index));
            async move { run_action(local, action, &scope, env, timeout, at.deeper()).await }
        })
        .buffered(parallelism.max(1) as usize)
        .collect()
        .await;
    let outputs: Vec<Value> = results.iter().map(|r| r.output.clone()).collect();
    match results
        .iter()
        .position(|r| r.status != StepStatus::Succeeded)
    {
        None => success(Value::Array(outputs)),
        Some(i) => StepResult {
            status: StepStatus::Failed,
            output: json!({ "items": outputs, "error": format!("item {i} {}", results[i].status) }),
            exit_code: None,
        },
    }
}

fn millis(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
