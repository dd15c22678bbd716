//! `citadel workflow validate|plan` and `citadel plugin validate|pack`: the
//! checks a tenant's author runs before uploading, with located errors.
//! Everything here is the pure half (`citadel-workflow`, `citadel-plugin`);
//! nothing runs and nothing reaches a server (`workflow run` is in
//! `workflow_run`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::{CliError, ResultExt};

#[derive(Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Check a workflow file; every problem with its line and column (exit 1
    /// when there are errors).
    Validate(WorkflowArgs),
    /// Dry run: the DAG in order, which steps would run and why, templates
    /// rendered with the inputs; nothing is executed.
    Plan {
        #[command(flatten)]
        args: WorkflowArgs,
        /// The run's inputs, as a JSON object.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Run a workflow here, without a server: script steps in a jailed
    /// sandbox host, shell steps in the process jail, step by step on the
    /// terminal (exit codes as `citadel run`).
    Run(crate::workflow_run::WorkflowRunArgs),
}

#[derive(Args)]
pub(crate) struct WorkflowArgs {
    /// The workflow, YAML.
    file: PathBuf,
    /// The highest security profile allowed (the workflow may ask for a
    /// lower one): plan_only, restricted, standard or elevated. Default:
    /// `[workflows] profile` of the configuration, CITADEL_SECURITY_PROFILE,
    /// else standard.
    #[arg(long)]
    profile: Option<String>,
    /// A TOML configuration file (else $CITADEL_CONFIG; a ./citadel.toml is
    /// not read implicitly here).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Check a plugin (a directory, `.zip` or `.tar.gz`): the manifest, the
    /// bundle, and the entry's handlers against what the manifest declares;
    /// `file:line:column` for each problem (exit 1 when there are errors).
    Validate {
        path: PathBuf,
        /// Print the diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a plugin directory and write its canonical `.tar.gz`
    /// (`SLUG-VERSION.tar.gz`; the same directory always packs to the same
    /// bytes).
    Pack {
        dir: PathBuf,
        /// Where to write it (default: the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The configuration of workflow commands: `--config FILE` or
/// `$CITADEL_CONFIG` (never an incidental `./citadel.toml`), then
/// `CITADEL_*` variables.
pub(crate) fn workflow_config(file: Option<&Path>) -> Result<crate::config::Config, CliError> {
    crate::config::Config::load_explicit(file).map_err(CliError::usage)
}

/// The `[workflows]` part of [`workflow_config`].
pub(crate) fn workflows_config(
    file: Option<&Path>,
) -> Result<crate::config::WorkflowsConfig, CliError> {
    Ok(workflow_config(file)?.workflows)
}

/// A run's inputs that do not satisfy the workflow: one line each, exit 2.
pub(crate) fn input_errors(errors: &[citadel_workflow::InputError]) -> CliError {
    let text: Vec<String> = errors
        .iter()
        .map(|e| format!("input `{}`: {} [{}]", e.input, e.message, e.code))
        .collect();
    CliError::usage(text.join("\n"))
}

/// `--profile` if given, else the configured one.
pub(crate) fn profile(
    flag: Option<&str>,
    config: &crate::config::WorkflowsConfig,
) -> Result<citadel_workflow::Profile, CliError> {
    match flag {
        Some(name) => name
            .parse()
            .map_err(|e| CliError::usage(format!("--profile: {e}"))),
        None => Ok(config.profile),
    }
}

/// The workflow in `file`, or the diagnostics reported (exit 1).
fn load(args: &WorkflowArgs) -> Result<citadel_workflow::Workflow, CliError> {
    let text = std::fs::read_to_string(&args.file)
        .usage(format!("cannot read {}", args.file.display()))?;
    let profile = profile(
        args.profile.as_deref(),
        &workflows_config(args.config.as_deref())?,
    )?;
    citadel_workflow::validate(&text, profile).map_err(|diagnostics| {
        report_workflow(&args.file, &diagnostics, args.json);
        CliError::Threw
    })
}

fn report_workflow(file: &Path, diagnostics: &[citadel_workflow::Diagnostic], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(diagnostics).unwrap_or_default()
        );
        return;
    }
    for d in diagnostics {
        eprintln!("{}:{d}", file.display());
    }
    eprintln!("{}: {} problem(s)", file.display(), diagnostics.len());
}

pub(crate) fn workflow(cmd: WorkflowCommand) -> Result<(), CliError> {
    match cmd {
        WorkflowCommand::Validate(args) => {
            let w = load(&args)?;
            if args.json {
                println!("[]");
            } else {
                println!(
                    "{}: workflow `{}` {} is valid ({} steps)",
                    args.file.display(),
                    w.name,
                    w.version,
                    w.steps.len()
                );
            }
            Ok(())
        }
        WorkflowCommand::Run(args) => crate::workflow_run::run(args),
        WorkflowCommand::Plan { args, input } => {
            let w = load(&args)?;
            let inputs: serde_json::Value =
                serde_json::from_str(&input).usage("--input is not valid JSON")?;
            let plan = citadel_workflow::plan(
                &w,
                &inputs,
                profile(
                    args.profile.as_deref(),
                    &workflows_config(args.config.as_deref())?,
                )?,
            )
            .map_err(|errors| input_errors(&errors))?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&plan).unwrap_or_default()
                );
            } else {
                print!("{plan}");
            }
            Ok(())
        }
    }
}

pub(crate) fn plugin(cmd: PluginCommand) -> Result<(), CliError> {
    match cmd {
        PluginCommand::Validate { path, json } => {
            let report = citadel_plugin::validate_path(&path);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.diagnostics).unwrap_or_default()
                );
            } else {
                eprint!("{}", report.render());
            }
            if report.is_ok() {
                Ok(())
            } else {
                Err(CliError::Threw)
            }
        }
        PluginCommand::Pack { dir, out } => match citadel_plugin::pack_dir(&dir) {
            Ok(packed) => {
                let target = out.unwrap_or_else(|| PathBuf::from(&packed.file_name));
                std::fs::write(&target, &packed.bytes)
                    .failed(format!("cannot write {}", target.display()))?;
                eprint!("{}", packed.report.render());
                println!("{} sha256:{}", target.display(), packed.sha256);
                Ok(())
            }
            Err(report) => {
                eprint!("{}", report.render());
                Err(CliError::Threw)
            }
        },
    }
}
