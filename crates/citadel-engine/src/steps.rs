//! Running a workflow's steps, shared by every runner: the CLI's local
//! `citadel workflow run` and the engine's durable runs (`workflows.rs`).
//!
//! [`drive`] asks [`Progress`] for the ready steps, runs as many at once as
//! the DAG and `max_parallel` allow, each with its retries and timeout,
//! and hands the results back. What a step *does* outside the process (run
//! a script, a shell command, a request, an event, an approval, a
//! sub-workflow) is the runner's, through [`StepEffects`]; so are the
//! hooks that show or persist each step's progress. Templates, `assert`,
//! `sleep` and `foreach` are the same everywhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_jail::{CommandLimits, CommandSpec, Exit, Jail};
use citadel_workflow::{
    Action, Outcome, Profile, Progress, Ready, Scope, ScriptSource, Step, StepResult, StepStatus,
    Templated,
};
use serde_json::{Value, json};

/// What a step's action comes to.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;
/// A hook's future.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
/// An approval's decision, `None` while nobody has decided.
pub type DecisionFuture<'a> = Pin<Box<dyn Future<Output = Option<StepResult>> + Send + 'a>>;
/// A response as `api.http.fetch` gives it, or why there is none.
pub type HttpFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>>;

/// Where a step stands: how deep in sub-workflows and `foreach` bodies
/// (0 for the run's own steps), and the profile of the workflow it belongs
/// to (a sub-workflow may ask for a lower one).
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub depth: usize,
    pub profile: Profile,
}

impl At {
    pub fn deeper(self) -> At {
        At {
            depth: self.depth + 1,
            ..self
        }
    }
}

/// What a runner does for the steps it runs.
pub trait StepEffects: Send + Sync + 'static {
    /// A `script` step's run with its rendered input.
    fn script<'a>(
        &'a self,
        source: &'a ScriptSource,
        input: Value,
        timeout: Duration,
    ) -> StepFuture<'a>;
    /// A `shell` step's rendered (escaped) command.
    fn shell<'a>(&'a self, command: String, timeout: Duration) -> StepFuture<'a>;
    /// An `http` step's request, `options` as `api.http.fetch` takes them.
    fn http<'a>(&'a self, url: String, options: Value, timeout: Duration) -> HttpFuture<'a>;
    /// An `emit` step's event.
    fn emit<'a>(&'a self, event: &'a str, data: Value, at: At) -> StepFuture<'a>;
    /// An `approval` step's decision; `None` when it is undecided and the
    /// runner waits for it without holding the step (a durable run).
    /// `step` is `None` for an approval inside a `foreach` body.
    fn approval<'a>(
        &'a self,
        step: Option<&'a Step>,
        message: String,
        at: At,
    ) -> DecisionFuture<'a>;
    /// A `workflow` step: the named workflow run with `given` inputs.
    fn sub_workflow<'a>(&'a self, name: &'a str, given: Value, at: At) -> StepFuture<'a>;

    /// A step was skipped or refused without running.
    fn on_decided<'a>(
        &'a self,
        _at: At,
        _step: &'a Step,
        _result: &'a StepResult,
        _reason: &'a str,
    ) -> HookFuture<'a> {
        Box::pin(async {})
    }
    /// A step's attempt starts (1 for the first).
    fn on_started<'a>(&'a self, _at: At, _step: &'a Step, _attempt: u32) -> HookFuture<'a> {
        Box::pin(async {})
    }
    /// A step ended.
    fn on_finished<'a>(
        &'a self,
        _at: At,
        _step: &'a Step,
        _result: &'a StepResult,
        _took: Duration,
    ) -> HookFuture<'a> {
        Box::pin(async {})
    }
    /// A step failed and is tried again after `delay_s`.
    fn on_retrying(&self, _at: At, _step: &Step, _attempt: u32, _attempts: u32, _delay_s: u64) {}
}

/// How [`drive`] stopped.
#[derive(Debug)]
pub enum Driven {
    /// Every step has a result.
    Finished(Outcome),
    /// Nothing runs, and approvals wait for a decision.
    Waiting,
    /// `stop` fired; the steps running were dropped.
    Stopped,
}

/// Runs a workflow's ready steps until it ends, waits for approvals, or
/// `stop` fires: as many at once as the DAG allows, at most `max_parallel`.
pub async fn drive<E: StepEffects>(
    effects: &Arc<E>,
    progress: &mut Progress<'_>,
    at: At,
    max_parallel: usize,
    default_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> Driven {
    let mut stop = std::pin::pin!(stop);
    let mut running = tokio::task::JoinSet::new();
    // Ready steps waiting for one of the run's `max_parallel` places.
    let mut queue = std::collections::VecDeque::new();
    let mut undecided = 0usize;
    loop {
        for ready in progress.ready() {
            match ready {
                Ready::Run { step, scope } => queue.push_back((step.clone(), scope)),
                Ready::Skipped { step, reason } | Ready::Refused { step, reason } => {
                    if let Some(result) = progress.results().get(&step.id) {
                        effects.on_decided(at, step, result, &reason).await;
                    }
                }
            }
        }
        while running.len() < max_parallel.max(1)
            && let Some((step, scope)) = queue.pop_front()
        {
            let effects = Arc::clone(effects);
            running.spawn(async move {
                let t = Instant::now();
                let result = run_step(&*effects, &step, scope, default_timeout, at).await;
                (step, result, t.elapsed())
            });
        }
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            () = &mut stop => {
                running.abort_all();
                return Driven::Stopped;
            }
        };
        let Some(joined) = joined else { break };
        let (step, result, took) = match joined {
            Ok(done) => done,
            // A step's task panicked: nothing to record it under, so the
            // run cannot go on. (Steps do not panic; this is the backstop.)
            Err(e) => {
                tracing::error!(error = %e, "a workflow step's task failed");
                break;
            }
        };
        match result {
            Some(result) => {
                effects.on_finished(at, &step, &result, took).await;
                progress.finish(&step.id, result);
            }
            None => undecided += 1,
        }
    }
    if undecided > 0 {
        return Driven::Waiting;
    }
    let mut outcome = progress.outcome();
    if !progress.is_finished() {
        // A step's task panicked and the run stopped short: never a success.
        outcome.status = StepStatus::Failed;
    }
    Driven::Finished(outcome)
}

/// Runs one step with its retries, each attempt within the step's timeout;
/// `None` for an approval nobody has decided yet.
pub async fn run_step<E: StepEffects + ?Sized>(
    effects: &E,
    step: &Step,
    scope: Scope,
    default_timeout: Duration,
    at: At,
) -> Option<StepResult> {
    if let Action::Approval { message } = &step.action {
        // An approval waits for a person: only a `timeout` it sets ends it.
        let timeout =
            Duration::from_secs(step.timeout.unwrap_or(citadel_workflow::MAX_STEP_SECONDS));
        let text = approval_message(message.as_ref(), &scope);
        return match tokio::time::timeout(timeout, effects.approval(Some(step), text, at)).await {
            Ok(decision) => decision,
            Err(_) => Some(timed_out(timeout)),
        };
    }
    let timeout = step.timeout.map_or(default_timeout, Duration::from_secs);
    let attempts = step.retry.as_ref().map_or(1, |r| r.attempts.max(1));
    let mut attempt = 1;
    loop {
        effects.on_started(at, step, attempt).await;
        let result = match tokio::time::timeout(
            timeout,
            run_action(effects, &step.action, &scope, timeout, at),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => timed_out(timeout),
        };
        let retryable = matches!(result.status, StepStatus::Failed | StepStatus::TimedOut);
        let Some(retry) = step
            .retry
            .as_ref()
            .filter(|_| retryable && attempt < attempts)
        else {
            return Some(result);
        };
        attempt += 1;
        let delay = retry.delay_before(attempt);
        effects.on_retrying(at, step, attempt, attempts, delay);
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
}

fn timed_out(timeout: Duration) -> StepResult {
    failure(
        StepStatus::TimedOut,
        format!(
            "did not finish within its timeout of {} s",
            timeout.as_secs()
        ),
    )
}

/// An approval's question: its `message` rendered, else a plain one.
fn approval_message(message: Option<&citadel_workflow::Template>, scope: &Scope) -> String {
    message
        .and_then(|m| m.render(scope).ok())
        .unwrap_or_else(|| "continue?".to_owned())
}

/// A step that ended with `status` and `{"error": error}` as its output.
pub fn failure(status: StepStatus, error: impl Into<String>) -> StepResult {
    StepResult {
        status,
        output: json!({ "error": error.into() }),
        exit_code: None,
    }
}

/// A step that succeeded with `output`.
pub fn success(output: Value) -> StepResult {
    StepResult {
        status: StepStatus::Succeeded,
        output,
        exit_code: None,
    }
}

/// A `workflow` step's result from the sub-workflow's outcome: its
/// outputs, and which of its steps failed it.
pub fn sub_workflow_result(name: &str, outcome: Outcome) -> StepResult {
    let outputs = Value::Object(outcome.outputs);
    if outcome.status == StepStatus::Succeeded {
        return success(outputs);
    }
    let at = outcome.failed_step.as_deref().unwrap_or("its outputs");
    StepResult {
        status: StepStatus::Failed,
        output: json!({
            "outputs": outputs,
            "error": format!("sub-workflow `{name}` failed at {at}"),
        }),
        exit_code: None,
    }
}

/// An optional templated field rendered, `absent` when it is not set; a
/// failed step when it does not render.
fn render(field: &Option<Templated>, scope: &Scope, absent: Value) -> Result<Value, StepResult> {
    match field {
        None => Ok(absent),
        Some(t) => t
            .render(scope)
            .map_err(|e| failure(StepStatus::Failed, e.to_string())),
    }
}

/// One attempt of a step's action. Boxed: `foreach` recurses.
fn run_action<'a, E: StepEffects + ?Sized>(
    effects: &'a E,
    action: &'a Action,
    scope: &'a Scope,
    timeout: Duration,
    at: At,
) -> StepFuture<'a> {
    Box::pin(async move {
        match action {
            Action::Script { source, input } => match render(input, scope, Value::Null) {
                Ok(input) => effects.script(source, input, timeout).await,
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
            } => match http_request(method, url, headers, body.as_ref(), scope) {
                Ok((url, options)) => http_result(effects.http(url, options, timeout).await),
                Err(e) => failure(StepStatus::Failed, e.to_string()),
            },
            Action::Emit { event, payload } => match render(payload, scope, Value::Null) {
                Ok(data) => effects.emit(event, data, at).await,
                Err(failed) => failed,
            },
            Action::Approval { message } => {
                // An approval inside a `foreach` body: decided at once or
                // not at all (only a run's own steps wait).
                let text = approval_message(message.as_ref(), scope);
                effects
                    .approval(None, text, at.deeper())
                    .await
                    .unwrap_or_else(|| {
                        failure(
                            StepStatus::Rejected,
                            "an approval inside a `foreach` cannot wait: make it a step of its own",
                        )
                    })
            }
            Action::Sleep { seconds } => {
                tokio::time::sleep(Duration::from_secs(*seconds)).await;
                success(json!({ "slept_seconds": seconds }))
            }
            Action::Shell { command } => match command.render(scope) {
                Ok(command) => effects.shell(command, timeout).await,
                Err(e) => failure(StepStatus::Failed, e.to_string()),
            },
            Action::Workflow { workflow, inputs } => match render(inputs, scope, json!({})) {
                Ok(given) => effects.sub_workflow(workflow, given, at).await,
                Err(failed) => failed,
            },
            Action::Foreach {
                items,
                action,
                parallelism,
                max_items,
            } => match items.resolve(scope, *max_items) {
                Ok(list) => {
                    run_foreach(effects, action, list, *parallelism, scope, timeout, at).await
                }
                Err(e) => failure(StepStatus::Failed, e.to_string()),
            },
        }
    })
}

/// A `foreach`: the action once per item, at most `parallelism` at once,
/// `item` and `index` in scope; its output is the items' outputs in order.
async fn run_foreach<E: StepEffects + ?Sized>(
    effects: &E,
    action: &Action,
    list: Vec<Value>,
    parallelism: u32,
    scope: &Scope,
    timeout: Duration,
    at: At,
) -> StepResult {
    use futures_util::stream::{self, StreamExt};
    let results: Vec<StepResult> = stream::iter(list.into_iter().enumerate())
        .map(|(index, item)| {
            let mut scope = scope.clone();
            scope.item = Some((item, index));
            async move { run_action(effects, action, &scope, timeout, at.deeper()).await }
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

/// An `http` step's URL and `api.http.fetch` options, rendered.
fn http_request(
    method: &str,
    url: &citadel_workflow::Template,
    headers: &[(String, citadel_workflow::Template)],
    body: Option<&Templated>,
    scope: &Scope,
) -> Result<(String, Value), citadel_workflow::EvalError> {
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
}

/// An `http` step's result: a 2xx or 3xx answer succeeds, its JSON body
/// given as JSON to the steps after.
fn http_result(response: Result<Value, String>) -> StepResult {
    let mut output = match response {
        Ok(response) => response,
        Err(e) => return failure(StepStatus::Failed, e),
    };
    let status = output.get("status").and_then(Value::as_u64).unwrap_or(0);
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

/// A `shell` step: `/bin/sh -c COMMAND` in a fresh process jail with no
/// network; its output holds stdout and stderr.
pub async fn shell_in_jail(jail: &Jail, command: String, timeout: Duration) -> StepResult {
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
    let (status, exit_code, error) = match out.exit {
        Exit::Code(0) => (StepStatus::Succeeded, 0, None),
        Exit::Code(code) => (
            StepStatus::Failed,
            i64::from(code),
            Some(format!("exited with code {code}")),
        ),
        Exit::Signal(signal) => (
            StepStatus::Failed,
            128 + i64::from(signal),
            Some(format!("killed by signal {signal}")),
        ),
        Exit::TimedOut => (
            StepStatus::TimedOut,
            124,
            Some("killed at its timeout".to_owned()),
        ),
    };
    let mut output = json!({ "stdout": stdout, "stderr": stderr });
    if let Some(error) = error {
        output["error"] = Value::String(error);
    }
    StepResult {
        status,
        output,
        exit_code: Some(exit_code),
    }
}
