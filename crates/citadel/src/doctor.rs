//! `citadel doctor`: which isolation layers are active here, and a check that
//! a jailed sandbox host runs a script.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_analyzer::Language;
use citadel_jail::Isolation;
use citadel_pool::{EchoGateway, PoolRun};
use citadel_sandbox::{Grants, Limits, RunStatus};
use clap::Args;

use crate::run::start_pool;
use crate::{CliError, ResultExt};

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// Fail when the kernel allows no namespaces for the jail.
    #[arg(long, env = "CITADEL_JAIL_REQUIRED")]
    require_jail: bool,
}

pub(crate) fn doctor(args: DoctorArgs) -> Result<(), CliError> {
    let iso = Isolation::probe();
    println!("isolation layers on this machine:");
    for (layer, on) in iso.layers() {
        println!(
            "  {:<34} {}",
            layer,
            if on { "active" } else { "unavailable" }
        );
    }
    println!(
        "  {:<34} {}",
        "running as",
        if iso.root {
            "root (jails drop to nobody)"
        } else {
            "an unprivileged user"
        }
    );
    if !iso.namespaces() {
        println!(
            "warning: without namespaces, jails fall back to rlimits{}",
            if iso.seccomp { " and seccomp" } else { "" }
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .failed("cannot start the runtime")?;
    let started = Instant::now();
    let pool = match start_pool(1, args.require_jail, &runtime) {
        Ok(pool) => pool,
        Err(e) => {
            // Part of the report on standard output, like the layers above.
            println!("sandbox host: cannot start: {e:#}");
            return Err(CliError::Threw);
        }
    };
    let job = PoolRun {
        tenant: "doctor".into(),
        source: "return {ok: true}".into(),
        language: Language::Js,
        input_json: "null".into(),
        limits: Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
        grants: Grants::NONE,
        cancel: None,
        version_key: None,
        fault: None,
    };
    let outcome = runtime.block_on(pool.run(job, Arc::new(EchoGateway)));
    pool.shutdown();
    if outcome.status == RunStatus::Succeeded {
        println!(
            "sandbox host: a jailed host ran a script in {:.1} ms (start-up included)",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    } else {
        println!("sandbox host: the run failed: {:?}", outcome.error);
        Err(CliError::Threw)
    }
}

#[derive(Args)]
pub(crate) struct JailArgs {
    /// Wall-clock limit.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Memory limit (address space and cgroup).
    #[arg(long, default_value_t = 512)]
    memory_mb: u64,
    /// Keep the host's network.
    #[arg(long)]
    network: bool,
    /// Fail when the kernel allows no namespaces for the jail.
    #[arg(long, env = "CITADEL_JAIL_REQUIRED")]
    require_jail: bool,
    /// The program and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// `citadel jail -- PROGRAM ARGS...`: stdin is passed on, output printed,
/// and the exit code mirrored (124 at the deadline, 128+N for signal N).
pub(crate) fn jail(args: JailArgs) -> Result<(), CliError> {
    use std::io::{Read, Write};

    use citadel_jail::{CommandLimits, CommandSpec, Exit, Jail, JailConfig};

    let jail = Jail::new(JailConfig {
        required: args.require_jail,
        ..JailConfig::default()
    })
    .map_err(CliError::usage)?;
    let mut stdin = Vec::new();
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    let spec = CommandSpec {
        program: args.command[0].clone(),
        args: args.command[1..].to_vec(),
        stdin,
        limits: CommandLimits {
            wall: Duration::from_millis(args.timeout_ms),
            memory_bytes: args.memory_mb << 20,
            ..CommandLimits::default()
        },
        network: args.network,
        ..CommandSpec::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .failed("cannot start the runtime")?;
    let out = runtime
        .block_on(jail.run(&spec))
        .map_err(CliError::failed)?;
    let _ = std::io::stdout().write_all(&out.stdout);
    let _ = std::io::stderr().write_all(&out.stderr);
    match out.exit {
        Exit::Code(0) => Ok(()),
        Exit::Code(c) => Err(CliError::Mirrored(c.clamp(1, 255) as u8)),
        Exit::Signal(s) => Err(CliError::Mirrored((128 + s).clamp(1, 255) as u8)),
        Exit::TimedOut => Err(CliError::Mirrored(124)),
    }
}
