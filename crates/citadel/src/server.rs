//! `citadel serve`, `citadel admin …`, `citadel audit verify` and
//! `citadel config show`: glue between the CLI and the server and store crates.

use std::path::PathBuf;
use std::sync::Arc;

use citadel_engine::{Engine, EngineConfig, Executor, WorkerConfig};
use citadel_pool::{Pool, PoolConfig};
use citadel_server::AppState;
use citadel_server::admin::{self, TokenRequest};
use citadel_store::{AuditVerdict, Store};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::exit;

/// Where the data is: the same flags for every command that touches it.
#[derive(Args, Clone)]
pub(crate) struct DataArgs {
    /// A TOML configuration file (else $CITADEL_CONFIG, else ./citadel.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database (also CITADEL_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL (also CITADEL_DATABASE_URL).
    #[arg(long, global = true)]
    database: Option<String>,
}

impl DataArgs {
    fn config(&self) -> Result<Config, u8> {
        let mut config = Config::load(self.config.as_deref()).map_err(|e| {
            eprintln!("citadel: {e}");
            exit::USAGE
        })?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database {
            config.database = Some(url.clone());
        }
        Ok(config)
    }
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on (also CITADEL_LISTEN).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
}

// The variants are the CLI's `create-…` subcommands, named as SPEC.md has them.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a tenant.
    CreateTenant {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Create an API token and print it (alone on the last line).
    CreateToken {
        /// The tenant's name.
        #[arg(long, required_unless_present = "platform")]
        tenant: Option<String>,
        /// The role: owner, admin, developer, operator, approver, viewer, or a custom one.
        #[arg(long, required_unless_present = "platform")]
        role: Option<String>,
        /// A platform-admin token (tenant management) instead of a tenant token.
        #[arg(long, conflicts_with_all = ["tenant", "role"])]
        platform: bool,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Scope the role to scripts below this folder, e.g. `billing/`.
        #[arg(long, default_value = "")]
        path_prefix: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Create a user who logs in with `POST /v1/login`; the password is read
    /// from the first line of standard input.
    CreateUser(CreateUserArgs),
}

#[derive(Args, Clone)]
pub(crate) struct CreateUserArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    username: String,
    /// The user's role.
    #[arg(long)]
    role: String,
    /// Scope the role to scripts below this folder, e.g. `billing/`.
    #[arg(long, default_value = "")]
    path_prefix: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the hash chain; exits 1 if any entry was edited or deleted.
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration (secrets masked).
    Show {
        #[command(flatten)]
        data: DataArgs,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("citadel: cannot start the runtime: {e}");
            exit::THREW
        })
}

/// Loads the configuration, opens its store and runs `f` with it: the
/// preamble of every command that only needs the database.
fn with_store<F, Fut>(data: &DataArgs, f: F) -> u8
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let config = match data.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        match open(&config).await {
            Ok(store) => f(store).await,
            Err(code) => code,
        }
    })
}

async fn open(config: &Config) -> Result<Arc<dyn Store>, u8> {
    if config.database.is_none() {
        // Said here, with the flag to change it, rather than as the driver's
        // bare I/O error.
        if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
            eprintln!(
                "citadel: cannot create the data directory `{}`: {e}\n  choose another with --data-dir DIR (or CITADEL_DATA_DIR)",
                config.data_dir.display()
            );
            return Err(exit::THREW);
        }
    }
    let url = config.database_url();
    citadel_store::connect(&url).await.map_err(|e| {
        let shown = crate::config::mask_password(&url);
        let hint = if config.database.is_none() {
            "check that the data directory is writable (--data-dir DIR or CITADEL_DATA_DIR)"
        } else if e.is_unavailable() {
            "is the database running and reachable from here? (--database URL or CITADEL_DATABASE_URL)"
        } else {
            "check the URL, user and password (--database URL or CITADEL_DATABASE_URL)"
        };
        eprintln!("citadel: cannot open the database {shown}: {e}\n  {hint}");
        exit::THREW
    })
}

/// Refuses an address another process holds before anything is started, with
/// the flag that changes it. (The server binds again; nothing else can take the
/// address in between but another process racing for it.)
fn check_listen(addr: std::net::SocketAddr) -> Result<(), u8> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|e| {
        eprintln!("{}", listen_error(addr, &e));
        exit::THREW
    })
}

fn listen_error(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => "the address is in use by another process".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address".to_owned()
        }
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges".to_owned(),
        _ => e.to_string(),
    };
    format!(
        "citadel: cannot listen on {addr}: {why}\n  pick another address with --listen HOST:PORT (or CITADEL_LISTEN)"
    )
}

/// How long a stopping node lets its queued jobs finish before handing the
/// rest back to the queue.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn init_logs() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CITADEL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// Opens the store and starts the sandbox hosts and the engine (which works
/// the queue as a node with `role`).
async fn start_node(config: &Config, role: &str) -> Result<(Arc<dyn Store>, Pool, Engine), u8> {
    let store = open(config).await?;
    let mut pool_config = PoolConfig::new().map_err(|e| {
        eprintln!("citadel: cannot find the citadel executable: {e}");
        exit::THREW
    })?;
    if config.sandbox_hosts > 0 {
        pool_config.size = config.sandbox_hosts;
    }
    if config.sandbox_hosts_max > 0 {
        pool_config.max_hosts = config.sandbox_hosts_max;
        pool_config.max_hosts_per_tenant =
            citadel_pool::default_hosts_per_tenant(config.sandbox_hosts_max);
    }
    if config.sandbox_hosts_per_tenant > 0 {
        pool_config.max_hosts_per_tenant = config.sandbox_hosts_per_tenant;
    }
    pool_config.idle_timeout = std::time::Duration::from_millis(config.sandbox_host_idle_ms);
    pool_config.jail.required = config.jail_required;
    let pool = Pool::start(pool_config).map_err(|e| {
        eprintln!("citadel: cannot start the sandbox hosts: {e}");
        exit::THREW
    })?;
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::Pool(pool.clone()),
        EngineConfig {
            platform: config.limits,
            quotas: config.quotas,
            // `serve` with a concurrency of 0 answers the API and enqueues,
            // leaving the queue (and the schedules) to other nodes.
            worker: (config.worker_concurrency > 0 || role == "worker").then(|| WorkerConfig {
                role: role.to_owned(),
                concurrency: config.worker_concurrency.max(1),
                node_timeout: std::time::Duration::from_millis(config.node_timeout_ms.max(1_000)),
                ..WorkerConfig::default()
            }),
            ..EngineConfig::default()
        },
    );
    // A node that cannot write its row would accept runs it cannot record.
    if let Err(e) = engine.register().await {
        eprintln!(
            "citadel: {e}\n  the database {} must be writable by this process (check its file's permissions, owner and free space, or the URL)",
            crate::config::mask_password(&config.database_url())
        );
        pool.shutdown();
        return Err(exit::THREW);
    }
    tracing::info!(
        node = engine.node_id(),
        role,
        isolation = %pool.isolation().summary(),
        database = %crate::config::mask_password(&config.database_url()),
        "starting"
    );
    Ok((store, pool, engine))
}

pub(crate) fn serve(args: ServeArgs) -> u8 {
    let mut config = match args.data.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Err(code) = check_listen(config.listen) {
        return code;
    }
    init_logs();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let (store, pool, engine) = match start_node(&config, "serve").await {
            Ok(parts) => parts,
            Err(code) => return code,
        };
        if store.list_tenants().await.map(|t| t.is_empty()).unwrap_or(false) {
            eprintln!(
                "citadel: no tenants yet. In this directory, run:\n  citadel admin create-tenant acme\n  citadel admin create-token --tenant acme --role owner\nthen call the API with `Authorization: Bearer <token>` on http://{}",
                config.listen
            );
        }
        let state = AppState::new(store, Some(engine.clone()));
        let result = citadel_server::serve(state, &config.http()).await;
        engine.drain(DRAIN_GRACE).await;
        pool.shutdown();
        match result {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("{}", listen_error(config.listen, &e));
                exit::THREW
            }
        }
    })
}

/// `citadel worker`: a node that runs queued jobs without the HTTP API.
pub(crate) fn worker(data: DataArgs) -> u8 {
    let config = match data.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logs();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let (_store, pool, engine) = match start_node(&config, "worker").await {
            Ok(parts) => parts,
            Err(code) => return code,
        };
        citadel_server::shutdown_signal().await;
        tracing::info!("draining: finishing jobs in flight");
        engine.drain(DRAIN_GRACE).await;
        pool.shutdown();
        exit::OK
    })
}

pub(crate) fn admin(cmd: AdminCommand) -> u8 {
    let data = match &cmd {
        AdminCommand::CreateTenant { data, .. } | AdminCommand::CreateToken { data, .. } => {
            data.clone()
        }
        AdminCommand::CreateUser(args) => args.data.clone(),
    };
    with_store(&data, |store| async move {
        let state = AppState::new(Arc::clone(&store), None);
        let request_id = citadel_store::new_id("cli");
        match cmd {
            AdminCommand::CreateUser(args) => {
                let mut password = String::new();
                if std::io::stdin().read_line(&mut password).is_err() {
                    eprintln!("citadel: cannot read the password from standard input");
                    return exit::USAGE;
                }
                let password = password.trim_end_matches(['\r', '\n']);
                let tenant = match store.tenant_by_name(&args.tenant).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        eprintln!("citadel: no tenant named `{}`", args.tenant);
                        return exit::USAGE;
                    }
                    Err(e) => {
                        eprintln!("citadel: {e}");
                        return exit::THREW;
                    }
                };
                match admin::create_user(
                    &state,
                    None,
                    &tenant.id,
                    &args.username,
                    password,
                    &args.role,
                    &args.path_prefix,
                    &request_id,
                )
                .await
                {
                    Ok(user) => {
                        println!("created user {} ({})", user.username, user.id);
                        exit::OK
                    }
                    Err(e) => {
                        eprintln!("citadel: {}", e.message);
                        exit::USAGE
                    }
                }
            }
            AdminCommand::CreateTenant { name, .. } => {
                match admin::create_tenant(&state, None, &name, &request_id).await {
                    Ok(t) => {
                        println!("created tenant {} ({})", t.name, t.id);
                        exit::OK
                    }
                    Err(e) => {
                        eprintln!("citadel: {}", e.message);
                        exit::USAGE
                    }
                }
            }
            AdminCommand::CreateToken {
                tenant,
                role,
                platform,
                name,
                path_prefix,
                ..
            } => {
                let tenant_id = match (&tenant, platform) {
                    (Some(t), false) => match store.tenant_by_name(t).await {
                        Ok(Some(t)) => Some(t.id),
                        Ok(None) => {
                            eprintln!("citadel: no tenant named `{t}`");
                            return exit::USAGE;
                        }
                        Err(e) => {
                            eprintln!("citadel: {e}");
                            return exit::THREW;
                        }
                    },
                    _ => None,
                };
                let req = TokenRequest {
                    tenant_id: tenant_id.as_deref(),
                    name: &name,
                    role: role.as_deref(),
                    path_prefix: &path_prefix,
                    expires_at: None,
                };
                match admin::create_token(&state, None, &req, &request_id).await {
                    Ok((token, secret)) => {
                        eprintln!(
                            "created token {} ({}); it is shown once:",
                            token.name, token.id
                        );
                        println!("{secret}");
                        exit::OK
                    }
                    Err(e) => {
                        eprintln!("citadel: {}", e.message);
                        exit::USAGE
                    }
                }
            }
        }
    })
}

pub(crate) fn audit(cmd: AuditCommand) -> u8 {
    let AuditCommand::Verify { data } = cmd;
    with_store(&data, |store| async move {
        match store.verify_audit().await {
            Ok(AuditVerdict::Intact { entries }) => {
                println!("audit chain intact: {entries} entries");
                exit::OK
            }
            Ok(AuditVerdict::Broken { seq, reason }) => {
                println!("audit chain BROKEN at entry {seq}: {reason}");
                exit::THREW
            }
            Err(e) => {
                eprintln!("citadel: {e}");
                exit::THREW
            }
        }
    })
}

pub(crate) fn config(cmd: ConfigCommand) -> u8 {
    let ConfigCommand::Show { data } = cmd;
    match data.config() {
        Ok(c) => {
            print!("{}", c.show());
            exit::OK
        }
        Err(code) => code,
    }
}
