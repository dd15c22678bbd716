//! `citadel doctor`: which isolation layers are active here, and a check that
//! a jailed sandbox host runs a script.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_analyzer::Language;
use citadel_jail::Isolation;
use citadel_pool::{EchoGateway, PoolRun};
use citadel_sandbox::{Grants, Limits, RunStatus};
use clap::Args;

use crate::exit;
use crate::run::start_pool;

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// Fail when the kernel allows no namespaces for the jail.
    #[arg(long, env = "CITADEL_JAIL_REQUIRED")]
    require_jail: bool,
}

pub(crate) fn doctor(args: DoctorArgs) -> u8 {
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
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("citadel: cannot start the runtime");
        return exit::THREW;
    };
    let started = Instant::now();
    let pool = match start_pool(1, args.require_jail, &runtime) {
        Ok(pool) => pool,
        Err(e) => {
            println!("sandbox host: cannot start: {e}");
            return exit::THREW;
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
        fault: None,
    };
    let outcome = runtime.block_on(pool.run(job, Arc::new(EchoGateway)));
    pool.shutdown();
    if outcome.status == RunStatus::Succeeded {
        println!(
            "sandbox host: a jailed host ran a script in {:.1} ms (start-up included)",
            started.elapsed().as_secs_f64() * 1e3
        );
        exit::OK
    } else {
        println!("sandbox host: the run failed: {:?}", outcome.error);
        exit::THREW
    }
}
