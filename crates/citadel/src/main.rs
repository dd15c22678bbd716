//! The `citadel` command: CLI definition and glue over the library crates.
//! Subcommands return a [`CliError`]; `main` prints it and maps it to the
//! exit code, here and nowhere else.

mod bench;
mod bench_caps;
mod config;
mod doctor;
mod error;
mod extensions;
mod run;
mod server;
mod template;
mod workflow_run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub(crate) use error::{CliError, ResultExt};

#[derive(Parser)]
#[command(
    name = "citadel",
    version,
    about = "Runs tenants' scripts safely, fast, and on the record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (embedded SQLite in ./citadel-data unless --database).
    Serve(server::ServeArgs),
    /// A node that runs queued jobs (async runs) without the HTTP API; share
    /// a PostgreSQL database (--database) with `citadel serve` nodes.
    Worker(server::WorkerArgs),
    /// Manage tenants and tokens in the database the server uses.
    #[command(subcommand)]
    Admin(server::AdminCommand),
    /// Manage the secrets' master key.
    #[command(subcommand)]
    Secrets(server::SecretsCommand),
    /// Check the audit log's hash chain.
    #[command(subcommand)]
    Audit(server::AuditCommand),
    /// Show the effective configuration.
    #[command(subcommand)]
    Config(server::ConfigCommand),
    /// Run a script (the body of an async function receiving `input` and `api`).
    Run(run::RunArgs),
    /// Check, dry-run and run workflow files.
    #[command(subcommand)]
    Workflow(extensions::WorkflowCommand),
    /// Check and pack plugin bundles.
    #[command(subcommand)]
    Plugin(extensions::PluginCommand),
    /// Scaffold a script from a built-in template.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Statically analyse a script; exits 1 when it has errors.
    Check(CheckArgs),
    /// Measure isolated runs against the Deno-sidecar anchor.
    Bench(bench::BenchArgs),
    /// Run a command in the process jail (as workflow `shell` steps will).
    Jail(doctor::JailArgs),
    /// Report which isolation layers this machine allows and check that a
    /// jailed sandbox host runs.
    Doctor(doctor::DoctorArgs),
    /// Internal: a jailed sandbox host serving its supervisor on descriptor 3.
    #[command(hide = true)]
    SandboxHost {
        #[arg(long)]
        allow_faults: bool,
        /// Threads to run isolates on.
        #[arg(long, default_value_t = 1)]
        isolate_threads: usize,
    },
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The script, `.js` or `.ts`.
    file: PathBuf,
    /// Print the diagnostics as a JSON array.
    #[arg(long)]
    json: bool,
    /// A JSON policy file: {"allow": [...], "deny": [...], "severity": {...}}.
    #[arg(long)]
    policy: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Usage errors exit 2, as clap does by default.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => server::serve(args),
        Command::Worker(args) => server::worker(args.data),
        Command::Admin(cmd) => server::admin(cmd),
        Command::Audit(cmd) => server::audit(cmd),
        Command::Secrets(cmd) => server::secrets(cmd),
        Command::Config(cmd) => server::config(cmd),
        Command::Run(args) => run::run(args),
        Command::Check(args) => run::check(args),
        Command::Workflow(cmd) => extensions::workflow(cmd),
        Command::Plugin(cmd) => extensions::plugin(cmd),
        Command::Template(cmd) => template::template_command(cmd),
        Command::Bench(args) => bench::bench(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Jail(args) => doctor::jail(args),
        Command::SandboxHost {
            allow_faults,
            isolate_threads,
        } => {
            let code = citadel_pool::host_main(
                citadel_pool::HOST_SOCKET_FD,
                allow_faults,
                isolate_threads,
            );
            std::process::exit(code)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(message) = error.message() {
                eprintln!("{message}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
