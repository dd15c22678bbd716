//! `citadel run` and `citadel check`.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use citadel_analyzer::{Diagnostic, Language, Policy, Severity};
use citadel_pool::{EchoGateway, Pool, PoolConfig, PoolRun};
use citadel_sandbox::{
    Capability, ErrorKind, Grants, Limits, NoHost, RunOutcome, RunRequest, RunStatus, Sandbox,
};
use clap::Args;

use crate::{CheckArgs, CliError, ResultExt};

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The script, `.js` or `.ts`.
    file: PathBuf,
    /// The script's `input`, as JSON.
    #[arg(long, default_value = "null")]
    input: String,
    /// Wall-clock limit, including time spent awaiting host calls.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// CPU-time limit (defaults to the timeout).
    #[arg(long)]
    cpu_ms: Option<u64>,
    /// Heap limit of the isolate.
    #[arg(long, default_value_t = 64)]
    memory_mb: usize,
    /// Capabilities to grant, comma-separated (`sleep`, `echo`).
    #[arg(long, value_delimiter = ',', default_value = "sleep")]
    grant: Vec<String>,
    /// Grant `api.http.fetch` to these hosts, comma-separated
    /// (`api.example.com`, `*.example.com`, `http://localhost:8080`). Loopback
    /// and private addresses stay unreachable unless
    /// CITADEL_EGRESS_ALLOW_PRIVATE=true.
    #[arg(long, value_delimiter = ',')]
    allow_net: Vec<String>,
    /// A JSON policy file for the static analysis that precedes the run.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print one JSON object with status, result, logs, error and timings.
    #[arg(long)]
    json: bool,
    /// Run the isolate in this process instead of a jailed sandbox host.
    #[arg(long)]
    in_process: bool,
    /// Refuse to run when the kernel allows no namespaces for the jail.
    #[arg(long, env = "CITADEL_JAIL_REQUIRED")]
    require_jail: bool,
}

fn read_source(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).usage(format!("cannot read {}", path.display()))
}

fn read_policy(path: Option<&Path>) -> Result<Policy, CliError> {
    let Some(path) = path else {
        return Ok(Policy::default());
    };
    let text = std::fs::read_to_string(path).usage(format!("cannot read {}", path.display()))?;
    let invalid = || format!("invalid policy {}", path.display());
    let policy: Policy = serde_json::from_str(&text).usage(invalid())?;
    policy
        .validate()
        .map_err(|e| CliError::usage(format!("{}: {e}", invalid())))?;
    Ok(policy)
}

fn print_diagnostics(file: &Path, diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        let severity = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        eprintln!(
            "{}:{}:{}: {severity}[{}]: {}",
            file.display(),
            d.line,
            d.column,
            d.rule,
            d.message
        );
    }
}

pub(crate) fn check(args: CheckArgs) -> Result<(), CliError> {
    let source = read_source(&args.file)?;
    let policy = read_policy(args.policy.as_deref())?;
    let script = citadel_sandbox::Script::compile(&source, Language::from_path(&args.file));
    let diagnostics = policy.apply(&script.diagnostics);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnostics).unwrap_or_default()
        );
    } else {
        print_diagnostics(&args.file, &diagnostics);
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        eprintln!(
            "{}: {errors} error(s), {} warning(s)",
            args.file.display(),
            diagnostics.len() - errors
        );
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Err(CliError::Threw)
    } else {
        Ok(())
    }
}

fn parse_grants(names: &[String]) -> Result<Grants, CliError> {
    let mut grants = Grants::NONE;
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let capability = match name {
            "sleep" => Capability::Sleep,
            "echo" => Capability::Echo,
            "http" | "secrets" | "kv" | "db" | "events" => {
                return Err(CliError::usage(format!(
                    "capability `{name}` needs a server (`citadel serve`); the CLI grants sleep and echo"
                )));
            }
            other => return Err(CliError::usage(format!("unknown capability `{other}`"))),
        };
        grants = grants.with(capability);
    }
    Ok(grants)
}

pub(crate) fn run(args: RunArgs) -> Result<(), CliError> {
    if !args.in_process {
        citadel_jail::warm_cgroup_attach();
    }
    let source = read_source(&args.file)?;
    let policy = read_policy(args.policy.as_deref())?;
    serde_json::from_str::<serde::de::IgnoredAny>(&args.input)
        .usage("--input is not valid JSON")?;
    let mut grants = parse_grants(&args.grant)?;
    let net = if args.allow_net.is_empty() {
        None
    } else {
        if args.in_process {
            return Err(CliError::usage(
                "--allow-net serves fetches from the sandbox host's supervisor: drop --in-process",
            ));
        }
        grants = grants.with(Capability::Http);
        Some(NetGateway::new(&args.allow_net)?)
    };
    if args.timeout_ms == 0 || args.memory_mb == 0 {
        return Err(CliError::usage(
            "--timeout-ms and --memory-mb must be positive",
        ));
    }
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        cpu: Duration::from_millis(args.cpu_ms.unwrap_or(args.timeout_ms)),
        memory_bytes: args.memory_mb.saturating_mul(1 << 20),
        ..Limits::default()
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .failed("cannot start the runtime")?;
    // The jailed host starts first, so that it comes up while the script
    // is analysed here.
    let pool = if args.in_process {
        None
    } else {
        Some(start_pool(1, args.require_jail, &runtime).map_err(CliError::failed)?)
    };

    // In process the script is compiled here; through the pool the host
    // compiles it, so only the analysis (for the policy) happens here.
    let language = Language::from_path(&args.file);
    let sandbox = Sandbox::default();
    let script = args.in_process.then(|| sandbox.load(&source, language));
    let diagnostics = match &script {
        Some(script) => policy.apply(&script.diagnostics),
        None => {
            policy.apply(&citadel_analyzer::prepare_on_own_stack(&source, language).diagnostics)
        }
    };
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        if args.json {
            let rejected = serde_json::json!({
                "status": "rejected",
                "result": null,
                "logs": [],
                "error": {"code": "rejected", "message": "static analysis rejected the script", "diagnostics": diagnostics},
            });
            println!("{rejected}");
        } else {
            print_diagnostics(&args.file, &diagnostics);
        }
        if let Some(pool) = &pool {
            pool.shutdown();
        }
        return Err(CliError::Rejected);
    }
    if !args.json {
        print_diagnostics(&args.file, &diagnostics);
    }

    let outcome = match (&script, pool) {
        (_, Some(pool)) => {
            let job = PoolRun {
                tenant: "cli".into(),
                source,
                language,
                input_json: args.input.clone(),
                limits,
                grants,
                cancel: None,
                version_key: None,
                fault: None,
            };
            let gateway: Arc<dyn citadel_pool::Gateway> = match net {
                Some(mut net) => {
                    net.deadline = std::time::Instant::now() + limits.timeout;
                    Arc::new(net)
                }
                None => Arc::new(EchoGateway),
            };
            let outcome = runtime.block_on(pool.run(job, gateway));
            pool.shutdown();
            outcome
        }
        (Some(script), None) => {
            let request = RunRequest {
                input_json: &args.input,
                limits,
                grants,
                host: Rc::new(NoHost),
                cancel: None,
            };
            runtime.block_on(sandbox.run(script, request))
        }
        (None, None) => {
            return Err(CliError::failed(anyhow::anyhow!(
                "no isolate to run the script in"
            )));
        }
    };
    report(&outcome, args.json)
}

/// The CLI's gateway with `--allow-net`: `echo`, and `http.fetch` to the
/// allowed hosts through the same guard as the server's.
pub(crate) struct NetGateway {
    egress: Arc<citadel_egress::Egress>,
    allow: Arc<citadel_egress::Allowlist>,
    deadline: std::time::Instant,
}

impl NetGateway {
    pub(crate) fn new(patterns: &[String]) -> Result<NetGateway, CliError> {
        let allow = citadel_egress::Allowlist::parse(patterns)
            .map_err(|e| CliError::usage(format!("--allow-net: {e}")))?;
        let allow_private =
            std::env::var("CITADEL_EGRESS_ALLOW_PRIVATE").is_ok_and(|v| v == "true" || v == "1");
        let config = citadel_egress::EgressConfig {
            allow_private,
            ..citadel_egress::EgressConfig::default()
        };
        let egress = citadel_egress::Egress::new(config)
            .map_err(|e| CliError::failed(anyhow::anyhow!("cannot set up outgoing HTTP: {e}")))?;
        Ok(NetGateway {
            egress: Arc::new(egress),
            allow: Arc::new(allow),
            deadline: std::time::Instant::now(),
        })
    }
}

impl NetGateway {
    /// The same hosts and client, for requests that must end by `deadline`.
    pub(crate) fn with_deadline(&self, deadline: std::time::Instant) -> NetGateway {
        NetGateway {
            egress: Arc::clone(&self.egress),
            allow: Arc::clone(&self.allow),
            deadline,
        }
    }
}

impl citadel_pool::Gateway for NetGateway {
    fn call(&self, call: citadel_sandbox::HostCall) -> citadel_pool::GatewayFuture {
        use citadel_sandbox::{HostCall, HostError};
        let (egress, allow, deadline) = (
            Arc::clone(&self.egress),
            Arc::clone(&self.allow),
            self.deadline,
        );
        Box::pin(async move {
            match call {
                HostCall::Echo { value } => Ok(value),
                HostCall::HttpFetch { url, options } => {
                    let request = citadel_engine::fetch_request(url, &options, deadline)?;
                    match egress.fetch(&[allow.as_ref()], request).await {
                        Ok(r) => Ok(citadel_engine::response_json(r)),
                        Err(e) => {
                            let code = match &e {
                                citadel_egress::EgressError::HostNotAllowed(_)
                                | citadel_egress::EgressError::SchemeNotAllowed(_) => {
                                    "capability_denied"
                                }
                                other => other.code(),
                            };
                            Err(HostError::new(code, e.to_string()))
                        }
                    }
                }
                other => Err(HostError::unavailable(format!(
                    "`{}` is not available here",
                    other.capability().name()
                ))),
            }
        })
    }
}

/// A pool of `size` jailed sandbox hosts running this executable.
pub(crate) fn pool_config(size: usize, require_jail: bool) -> anyhow::Result<PoolConfig> {
    use anyhow::Context;
    let mut config = PoolConfig::new().context("cannot find the citadel executable")?;
    config.size = size;
    config.jail.required = require_jail;
    Ok(config)
}

/// Starts a pool of jailed sandbox hosts running this executable, for the
/// CLI's one run at a time.
pub(crate) fn start_pool(
    size: usize,
    require_jail: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Pool> {
    let mut config = pool_config(size, require_jail)?;
    // One run at a time: one isolate thread is all a host needs, and it
    // starts sooner.
    config.isolate_threads_per_host = 1;
    let _guard = runtime.enter();
    Ok(Pool::start(config)?)
}

fn report(outcome: &RunOutcome, json: bool) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string(outcome).unwrap_or_default());
    } else {
        for line in &outcome.logs {
            eprintln!("{}", line.message);
        }
        if outcome.logs_truncated {
            eprintln!("citadel: further log lines dropped at the log-size limit");
        }
        match (&outcome.result, &outcome.error) {
            (Some(result), _) => println!("{}", result.get()),
            (None, Some(e)) => {
                let at = match (e.line, e.column) {
                    (Some(l), Some(c)) => format!(" (at line {l}, column {c})"),
                    _ => String::new(),
                };
                let code = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                eprintln!("error[{code}]: {}: {}{at}", e.name, e.message);
                if let Some(stack) = &e.stack {
                    eprintln!("{stack}");
                }
            }
            (None, None) => {}
        }
    }
    match (outcome.status, outcome.error_kind()) {
        (RunStatus::Succeeded, _) => Ok(()),
        (_, Some(ErrorKind::Rejected)) => Err(CliError::Rejected),
        (_, Some(kind)) if kind.is_limit() => Err(CliError::Limit),
        _ => Err(CliError::Threw),
    }
}
