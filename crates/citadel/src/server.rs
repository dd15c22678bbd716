//! `citadel serve`, `citadel admin …`, `citadel audit verify` and
//! `citadel config show`: glue between the CLI and the server and store crates.

use std::path::PathBuf;
use std::sync::Arc;

use citadel_app::App;
use citadel_app::tokens::TokenRequest;
use citadel_app::users::NewUserRequest;
use citadel_engine::{Engine, EngineConfig, Executor, WorkerConfig};
use citadel_pool::{Pool, PoolConfig};
use citadel_store::{AuditVerdict, Store};
use clap::{Args, Subcommand};

use crate::config::{Config, mask_password};
use crate::{CliError, ResultExt};

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
    fn config(&self) -> Result<Config, CliError> {
        let mut config = Config::load(self.config.as_deref()).map_err(CliError::usage)?;
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
    /// Write a commented configuration file: every key with its default.
    Init {
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file: its first problem with line and column
    /// (exit 1), or that it is valid.
    Validate { file: PathBuf },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .failed("cannot start the runtime")
}

/// Loads the configuration, opens its store and runs `f` with it: the
/// preamble of every command that only needs the database.
fn with_store<F, Fut>(data: &DataArgs, f: F) -> Result<(), CliError>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let config = data.config()?;
    runtime()?.block_on(async { f(open(&config).await?).await })
}

async fn open(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    if config.database.is_none() {
        // Said here, with the flag to change it, rather than as the driver's
        // bare I/O error.
        std::fs::create_dir_all(&config.data_dir)
            .failed(format!(
                "cannot create the data directory `{}`",
                config.data_dir.display()
            ))
            .map_err(|e| e.hint("choose another with --data-dir DIR (or CITADEL_DATA_DIR)"))?;
    }
    let url = config.database_url();
    match citadel_store::connect(&url).await {
        Ok(store) => Ok(store),
        Err(e) => {
            let hint = if config.database.is_none() {
                "check that the data directory is writable (--data-dir DIR or CITADEL_DATA_DIR)"
            } else if e.is_unavailable() {
                "is the database running and reachable from here? (--database URL or CITADEL_DATABASE_URL)"
            } else {
                "check the URL, user and password (--database URL or CITADEL_DATABASE_URL)"
            };
            let doing = format!("cannot open the database {}", mask_password(&url));
            Err(CliError::failed(anyhow::Error::new(e).context(doing)).hint(hint))
        }
    }
}

/// Refuses an address another process holds before anything is started, with
/// the flag that changes it. (The server binds again; nothing else can take the
/// address in between but another process racing for it.)
fn check_listen(addr: std::net::SocketAddr) -> Result<(), CliError> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| listen_error(addr, &e))
}

fn listen_error(addr: std::net::SocketAddr, e: &std::io::Error) -> CliError {
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => "the address is in use by another process".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address".to_owned()
        }
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges".to_owned(),
        _ => e.to_string(),
    };
    CliError::failed(anyhow::anyhow!("cannot listen on {addr}: {why}"))
        .hint("pick another address with --listen HOST:PORT (or CITADEL_LISTEN)")
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

/// What workflow runs may do on this node, from `[workflows]`: `shell`
/// steps get the process jail when the kernel allows one.
fn workflow_settings(config: &Config) -> citadel_engine::WorkflowSettings {
    let w = &config.workflows;
    let jail = match citadel_jail::Jail::new(citadel_jail::JailConfig {
        required: config.jail_required,
        ..citadel_jail::JailConfig::default()
    }) {
        Ok(jail) => Some(Arc::new(jail)),
        Err(e) => {
            tracing::warn!(error = %e, "no process jail: workflow shell steps will fail");
            None
        }
    };
    citadel_engine::WorkflowSettings {
        max_profile: w.profile,
        default_timeout: std::time::Duration::from_secs(w.default_timeout_s),
        max_parallel_steps: w.max_parallel_steps.max(1),
        allowed_hosts: w.allowed_domains.clone(),
        jail,
    }
}

/// Opens the store and starts the sandbox hosts and the engine (which works
/// the queue as a node with `role`).
async fn start_node(
    config: &Config,
    role: &str,
) -> Result<(Arc<dyn Store>, Pool, Engine), CliError> {
    let store = open(config).await?;
    let mut pool_config = PoolConfig::new().failed("cannot find the citadel executable")?;
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
    let vault = open_vault(config, &store).await?;
    let egress = citadel_egress::Egress::new(config.egress())
        .map_err(|e| CliError::failed(anyhow::anyhow!("cannot set up outgoing HTTP: {e}")))?;
    let pool = Pool::start(pool_config).failed("cannot start the sandbox hosts")?;
    let workflows = workflow_settings(config);
    let engine = Engine::start(
        Arc::clone(&store),
        Executor::Pool(pool.clone()),
        EngineConfig {
            platform: config.limits,
            quotas: config.quotas,
            vault: Some(vault),
            egress: Some(Arc::new(egress)),
            datasources: Some(citadel_engine::DataSourceConfig {
                root: datasources_root(config)?,
                limits: citadel_datasource::QueryLimits::default(),
            }),
            // `serve` with a concurrency of 0 answers the API and enqueues,
            // leaving the queue (and the schedules) to other nodes.
            worker: (config.worker_concurrency > 0 || role == "worker").then(|| WorkerConfig {
                role: role.to_owned(),
                concurrency: config.worker_concurrency.max(1),
                node_timeout: std::time::Duration::from_millis(config.node_timeout_ms.max(1_000)),
                node_retention: std::time::Duration::from_millis(config.node_retention_ms),
                ..WorkerConfig::default()
            }),
            workflows,
            ..EngineConfig::default()
        },
    );
    // A node that cannot write its row would accept runs it cannot record.
    if let Err(e) = engine.register().await {
        pool.shutdown();
        return Err(CliError::failed(e).hint(format!(
            "the database {} must be writable by this process (check its file's permissions, owner and free space, or the URL)",
            mask_password(&config.database_url())
        )));
    }
    tracing::info!(
        node = engine.node_id(),
        role,
        isolation = %pool.isolation().summary(),
        database = %mask_password(&config.database_url()),
        "starting"
    );
    Ok((store, pool, engine))
}

/// The vault of this node's master key, checked against the database
/// before anything else starts: a wrong or missing key refuses to start
/// with the reason, and touches no data. With no key configured and none
/// in the data directory, a first start generates one there.
async fn open_vault(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Result<Arc<citadel_secrets::Vault>, CliError> {
    use citadel_secrets::{MasterKey, Vault};
    let (path, configured) = config.master_key_file();
    let hint = "point secrets.master_key_file (or CITADEL_MASTER_KEY_FILE) at the key the secrets were sealed with";
    let key = if path.exists() {
        MasterKey::load(&path).map_err(|e| CliError::failed(e).hint(hint))?
    } else if configured {
        return Err(CliError::failed(anyhow::anyhow!(
            "the master key file `{}` does not exist",
            path.display()
        ))
        .hint(hint));
    } else if Vault::in_use(store.as_ref())
        .await
        .map_err(CliError::failed)?
    {
        return Err(CliError::failed(anyhow::anyhow!(
            "this database holds sealed secrets but there is no master key at `{}`",
            path.display()
        ))
        .hint(hint));
    } else {
        let key = MasterKey::generate().map_err(CliError::failed)?;
        // With PostgreSQL nothing else has made the data directory.
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .failed(format!("cannot create the directory `{}`", dir.display()))?;
        }
        match key.write_new(&path) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    "generated a master key for secrets in the data directory; in production keep it elsewhere (secrets.master_key_file) and back it up"
                );
                key
            }
            // Another node sharing the directory generated it first.
            Err(_) if path.exists() => {
                MasterKey::load(&path).map_err(|e| CliError::failed(e).hint(hint))?
            }
            Err(e) => return Err(CliError::failed(e)),
        }
    };
    Vault::open(Arc::clone(store), key)
        .await
        .map(Arc::new)
        .map_err(|e| CliError::failed(e).hint(hint))
}

/// The SQLite data-source root, created when it is the default one.
fn datasources_root(config: &Config) -> Result<PathBuf, CliError> {
    let root = config.datasources_root();
    if config.datasources.root.is_none() {
        std::fs::create_dir_all(&root).failed(format!(
            "cannot create the data-source directory `{}`",
            root.display()
        ))?;
    }
    Ok(root)
}

/// `citadel secrets …`.
#[derive(Subcommand)]
pub(crate) enum SecretsCommand {
    /// Re-wrap every tenant's data key under a new master key, which then
    /// replaces the key file (the old one is kept as `FILE.old`). Secret
    /// values are not re-encrypted; running nodes keep serving. Restart
    /// every node afterwards so each loads the new key.
    RotateMasterKey {
        #[command(flatten)]
        data: DataArgs,
    },
}

pub(crate) fn secrets(cmd: SecretsCommand) -> Result<(), CliError> {
    let SecretsCommand::RotateMasterKey { data } = cmd;
    let config = data.config()?;
    let (path, _) = config.master_key_file();
    let old = citadel_secrets::MasterKey::load(&path)
        .map_err(|e| CliError::failed(e).hint("the current master key file must be readable"))?;
    with_store(&data, |store| async move {
        let new = citadel_secrets::MasterKey::generate().map_err(CliError::failed)?;
        // The new key is on disk before any data key depends on it.
        let staged = path.with_extension("key.new");
        let _ = std::fs::remove_file(&staged);
        new.write_new(&staged).map_err(CliError::failed)?;
        let n = citadel_secrets::rewrap_all(store.as_ref(), &old, &new)
            .await
            .map_err(|e| {
                let _ = std::fs::remove_file(&staged);
                CliError::failed(e)
            })?;
        let kept = path.with_extension("key.old");
        std::fs::rename(&path, &kept)
            .and_then(|()| std::fs::rename(&staged, &path))
            .failed(format!(
                "the data keys are wrapped by the new key in `{}`, but it could not replace `{}`: move it there by hand",
                staged.display(),
                path.display()
            ))?;
        println!(
            "re-wrapped {n} data key(s) under master key {} (was {}); the old key is in {}",
            new.id(),
            old.id(),
            kept.display()
        );
        Ok(())
    })
}

pub(crate) fn serve(args: ServeArgs) -> Result<(), CliError> {
    let mut config = args.data.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    check_listen(config.listen)?;
    init_logs();
    runtime()?.block_on(async {
        let (store, pool, engine) = start_node(&config, "serve").await?;
        if store.list_tenants().await.map(|t| t.is_empty()).unwrap_or(false) {
            eprintln!(
                "citadel: no tenants yet. In this directory, run:\n  citadel admin create-tenant acme\n  citadel admin create-token --tenant acme --role owner\nthen call the API with `Authorization: Bearer <token>` on http://{}",
                config.listen
            );
        }
        let state = citadel_server::AppState::new(store, Some(engine.clone()));
        let result = citadel_server::serve(state, &config.http()).await;
        engine.drain(DRAIN_GRACE).await;
        pool.shutdown();
        result.map_err(|e| listen_error(config.listen, &e))
    })
}

/// `citadel worker`: a node that runs queued jobs without the HTTP API.
pub(crate) fn worker(data: DataArgs) -> Result<(), CliError> {
    let config = data.config()?;
    init_logs();
    runtime()?.block_on(async {
        let (_store, pool, engine) = start_node(&config, "worker").await?;
        citadel_server::shutdown_signal().await;
        tracing::info!("draining: finishing jobs in flight");
        engine.drain(DRAIN_GRACE).await;
        pool.shutdown();
        Ok(())
    })
}

/// The tenant called `name`; none is a usage error.
async fn tenant_id(store: &dyn Store, name: &str) -> Result<String, CliError> {
    match store.tenant_by_name(name).await {
        Ok(Some(t)) => Ok(t.id),
        Ok(None) => Err(CliError::usage(format!("no tenant named `{name}`"))),
        Err(e) => Err(CliError::failed(e)),
    }
}

/// What a use case refused, as this command's outcome: the input is at
/// fault (a usage error) unless the database or the process is.
fn refused_input(e: citadel_app::AppError) -> CliError {
    use citadel_app::ErrorCode;
    match e.code {
        ErrorCode::Unavailable | ErrorCode::Internal => CliError::failed(e),
        _ => CliError::usage(e.message),
    }
}

pub(crate) fn admin(cmd: AdminCommand) -> Result<(), CliError> {
    let data = match &cmd {
        AdminCommand::CreateTenant { data, .. } | AdminCommand::CreateToken { data, .. } => {
            data.clone()
        }
        AdminCommand::CreateUser(args) => args.data.clone(),
    };
    with_store(&data, |store| async move {
        let app = App::new(Arc::clone(&store), None);
        let request_id = citadel_store::new_id("cli");
        let refused = refused_input;
        match cmd {
            AdminCommand::CreateUser(args) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .usage("cannot read the password from standard input")?;
                let password = password.trim_end_matches(['\r', '\n']);
                let tenant = tenant_id(store.as_ref(), &args.tenant).await?;
                let req = NewUserRequest {
                    tenant_id: &tenant,
                    username: &args.username,
                    password,
                    role: &args.role,
                    path_prefix: &args.path_prefix,
                };
                let user = citadel_app::users::create(&app, None, &req, &request_id)
                    .await
                    .map_err(refused)?;
                println!("created user {} ({})", user.username, user.id);
            }
            AdminCommand::CreateTenant { name, .. } => {
                let t = citadel_app::tenants::create(&app, None, &name, &request_id)
                    .await
                    .map_err(refused)?;
                println!("created tenant {} ({})", t.name, t.id);
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
                    (Some(t), false) => Some(tenant_id(store.as_ref(), t).await?),
                    _ => None,
                };
                let req = TokenRequest {
                    tenant_id: tenant_id.as_deref(),
                    name: &name,
                    role: role.as_deref(),
                    path_prefix: &path_prefix,
                    expires_at: None,
                };
                let (token, secret) = citadel_app::tokens::create(&app, None, &req, &request_id)
                    .await
                    .map_err(refused)?;
                eprintln!(
                    "created token {} ({}); it is shown once:",
                    token.name, token.id
                );
                println!("{secret}");
            }
        }
        Ok(())
    })
}

pub(crate) fn audit(cmd: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::Verify { data } = cmd;
    with_store(&data, |store| async move {
        match store.verify_audit().await.map_err(CliError::failed)? {
            AuditVerdict::Intact { entries } => {
                println!("audit chain intact: {entries} entries");
                Ok(())
            }
            AuditVerdict::Broken { seq, reason } => {
                println!("audit chain BROKEN at entry {seq}: {reason}");
                Err(CliError::Threw)
            }
        }
    })
}

pub(crate) fn config(cmd: ConfigCommand) -> Result<(), CliError> {
    match cmd {
        ConfigCommand::Show { data } => print!("{}", data.config()?.show()),
        ConfigCommand::Init { out: None, .. } => print!("{}", crate::config::TEMPLATE),
        ConfigCommand::Init {
            out: Some(path),
            force,
        } => {
            use std::io::Write as _;
            // Without --force, never through an existing file or link.
            let mut options = std::fs::OpenOptions::new();
            options.write(true);
            if force {
                options.create(true).truncate(true);
            } else {
                options.create_new(true);
            }
            let mut file = match options.open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(CliError::usage(format!(
                        "{} exists; --force replaces it",
                        path.display()
                    )));
                }
                other => other.failed(format!("cannot write {}", path.display()))?,
            };
            file.write_all(crate::config::TEMPLATE.as_bytes())
                .failed(format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        ConfigCommand::Validate { file } => {
            let text =
                std::fs::read_to_string(&file).usage(format!("cannot read {}", file.display()))?;
            match crate::config::check(&text) {
                Ok(_) => println!("{}: valid", file.display()),
                Err(e) => {
                    eprintln!("{}:{}:{}: {}", file.display(), e.line, e.column, e.message);
                    return Err(CliError::Threw);
                }
            }
        }
    }
    Ok(())
}
