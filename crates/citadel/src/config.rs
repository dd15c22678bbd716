//! Configuration: defaults, then a TOML file, then `CITADEL_*` environment
//! variables, then command-line flags (each overriding the one before).
//!
//! The file is `--config FILE`, else `$CITADEL_CONFIG`, else `citadel.toml`
//! in the working directory if it exists.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use citadel_server::HttpSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database lives (`DATA_DIR/citadel.db`).
    pub data_dir: PathBuf,
    /// `postgres://…` to share one database between nodes; overrides `data_dir`.
    pub database: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_ms: u64,
    /// Sandbox hosts kept started even when idle (0: one per core).
    pub sandbox_hosts: usize,
    /// Sandbox hosts running at most, started on demand (0: eight per core,
    /// between 16 and 128). A host serves one tenant at a time and an awaiting run
    /// uses no CPU, so this is well above the core count.
    pub sandbox_hosts_max: usize,
    /// Sandbox hosts one tenant may hold at once (0: a quarter of
    /// `sandbox_hosts_max`), so no tenant can hold every host.
    pub sandbox_hosts_per_tenant: usize,
    /// A sandbox host above `sandbox_hosts` idle this long is stopped.
    pub sandbox_host_idle_ms: u64,
    /// Refuse to start when the jail has no namespaces.
    pub jail_required: bool,
    /// A node silent this long is marked down by the others, and its jobs
    /// are run again elsewhere.
    pub node_timeout_ms: u64,
    /// A node down this long is forgotten (`/v1/nodes` no longer lists it).
    pub node_retention_ms: u64,
    /// Queued jobs this node runs at once (awaiting runs hold no CPU). 0 on
    /// `serve`: the node answers the API only and other nodes run the queue.
    pub worker_concurrency: usize,
    /// Run limits: the platform's defaults and the maxima no tenant or
    /// script override may exceed (`[limits.default]`, `[limits.max]`:
    /// `timeout_ms`, `memory_mb`, `log_bytes`, and for warm version
    /// contexts `warm_runs`, `warm_seconds`).
    pub limits: citadel_scripts::PlatformLimits,
    /// What every tenant may use (`[quotas]`: `runs_per_minute` over the
    /// platform, `concurrent_runs` per node, `concurrent_jobs` over all
    /// nodes); past them runs are answered 429 with Retry-After, or (queued
    /// jobs) wait.
    pub quotas: citadel_engine::Quotas,
    /// A client that has not sent a whole request line and headers this
    /// long after starting (or after its previous request) is disconnected.
    pub header_read_timeout_ms: u64,
    /// A request body not received whole this long after its headers is
    /// answered 408 `timeout`.
    pub body_read_timeout_ms: u64,
    /// Failed authentications (bad tokens, failed logins) a client address
    /// may make per window before it is answered 429 `rate_limited`; each
    /// window's failures are one audit entry with their count.
    pub auth_failure_limit: u64,
    pub auth_failure_window_ms: u64,
    /// Behind a reverse proxy only: the header it appends each client's
    /// address to (`x-forwarded-for`), whose last entry then counts as the
    /// client's address. Unset, the connection's peer counts (a client can
    /// write any header, so never set this without such a proxy).
    pub client_address_header: Option<String>,
    /// Secrets (`[secrets]`).
    pub secrets: SecretsConfig,
    /// Outgoing HTTP from scripts (`[egress]`).
    pub egress: EgressConfig,
    /// Data sources for `api.db.query` (`[datasources]`).
    pub datasources: DatasourcesConfig,
    /// Workflows (`[workflows]`).
    pub workflows: WorkflowsConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    /// The highest security profile a workflow run gets, on a server and
    /// locally (also CITADEL_SECURITY_PROFILE; `workflow run --profile`
    /// overrides both): `plan_only`,
    /// `restricted`, `standard` or `elevated`. A workflow may ask for less.
    pub profile: citadel_workflow::Profile,
    /// A step's timeout when it sets none, in seconds (also
    /// CITADEL_WORKFLOW_TIMEOUT_S).
    #[serde(deserialize_with = "step_seconds")]
    pub default_timeout_s: u64,
    /// Steps of one run running at once at most (also
    /// CITADEL_WORKFLOW_MAX_PARALLEL_STEPS).
    #[serde(deserialize_with = "positive")]
    pub max_parallel_steps: usize,
    /// Hosts `http` steps may reach, as `citadel run --allow-net` names
    /// them (also CITADEL_WORKFLOW_ALLOWED_DOMAINS, comma-separated).
    #[serde(deserialize_with = "host_patterns")]
    pub allowed_domains: Vec<String>,
    /// Where `script: NAME` and `workflow: NAME` are looked up (also
    /// CITADEL_WORKFLOW_WORKSPACE_ROOT). Unset: beside the workflow file.
    pub workspace_root: Option<PathBuf>,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        WorkflowsConfig {
            profile: citadel_workflow::Profile::Standard,
            default_timeout_s: 300,
            max_parallel_steps: 16,
            allowed_domains: Vec::new(),
            workspace_root: None,
        }
    }
}

fn step_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    check_step_seconds(v).map_err(serde::de::Error::custom)
}

fn check_step_seconds(v: u64) -> Result<u64, String> {
    let max = citadel_workflow::MAX_STEP_SECONDS;
    if v == 0 || v > max {
        return Err(format!("must be between 1 and {max} seconds (got {v})"));
    }
    Ok(v)
}

fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        v => Ok(v),
    }
}

fn host_patterns<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    citadel_egress::Allowlist::parse(&v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The master key (64 hex digits, mode 0600) that wraps every tenant's
    /// data key (also CITADEL_MASTER_KEY_FILE). Unset, `serve` uses
    /// `DATA_DIR/master.key`, generating it on first start; production
    /// should keep the key outside the data directory (and every node of a
    /// PostgreSQL cluster must use the same one).
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Let scripts reach loopback, private and link-local addresses (also
    /// CITADEL_EGRESS_ALLOW_PRIVATE): for tests and local receivers only.
    /// The grants' allowlists apply regardless.
    pub allow_private: bool,
    /// Largest request body a script may send, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body a script may receive, in bytes.
    pub max_response_bytes: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        let d = citadel_egress::EgressConfig::default();
        EgressConfig {
            allow_private: false,
            max_request_bytes: d.max_request_bytes,
            max_response_bytes: d.max_response_bytes,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasourcesConfig {
    /// The directory SQLite data sources live under (also
    /// CITADEL_DATASOURCES_ROOT); a source's path is relative to it and
    /// cannot leave it. Unset: `DATA_DIR/datasources`.
    pub root: Option<PathBuf>,
}

impl Config {
    /// The master key file: configured, else `DATA_DIR/master.key`; and
    /// whether it was configured.
    pub fn master_key_file(&self) -> (PathBuf, bool) {
        match &self.secrets.master_key_file {
            Some(p) => (p.clone(), true),
            None => (self.data_dir.join("master.key"), false),
        }
    }

    /// The SQLite data-source root.
    pub fn datasources_root(&self) -> PathBuf {
        self.datasources
            .root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("datasources"))
    }

    /// The outgoing-HTTP settings of this node.
    pub fn egress(&self) -> citadel_egress::EgressConfig {
        citadel_egress::EgressConfig {
            allow_private: self.egress.allow_private,
            max_request_bytes: self.egress.max_request_bytes,
            max_response_bytes: self.egress.max_response_bytes,
            ..citadel_egress::EgressConfig::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        // The HTTP layer's defaults are the server crate's, stated once.
        let http = HttpSettings::default();
        Config {
            listen: http.listen,
            data_dir: PathBuf::from("citadel-data"),
            database: None,
            body_limit_bytes: http.body_limit_bytes,
            request_timeout_ms: http.request_timeout_ms,
            sandbox_hosts: 0,
            sandbox_hosts_max: 0,
            sandbox_hosts_per_tenant: 0,
            sandbox_host_idle_ms: 30_000,
            jail_required: false,
            node_timeout_ms: 10_000,
            node_retention_ms: 3_600_000,
            worker_concurrency: 2048,
            limits: citadel_scripts::PlatformLimits::default(),
            quotas: citadel_engine::Quotas::default(),
            header_read_timeout_ms: http.header_read_timeout_ms,
            body_read_timeout_ms: http.body_read_timeout_ms,
            auth_failure_limit: http.auth_failure_limit,
            auth_failure_window_ms: http.auth_failure_window_ms,
            client_address_header: http.client_address_header,
            secrets: SecretsConfig::default(),
            egress: EgressConfig::default(),
            datasources: DatasourcesConfig::default(),
            workflows: WorkflowsConfig::default(),
        }
    }
}

/// What `citadel config init` writes: every key with its default and what
/// it does. A test keeps it equal to `Config::default()`.
pub const TEMPLATE: &str = r#"# Citadel's configuration. Every key is shown with its default; delete what
# you do not change. Precedence: defaults < this file < CITADEL_* variables
# < command-line flags. `citadel config validate FILE` checks a file.

# Address the HTTP API listens on (CITADEL_LISTEN).
listen = "127.0.0.1:8080"
# The embedded SQLite database lives in DATA_DIR/citadel.db (CITADEL_DATA_DIR).
data_dir = "citadel-data"
# Share one PostgreSQL database between nodes instead (CITADEL_DATABASE_URL).
# database = "postgres://citadel:secret@localhost/citadel"

# Largest request body, in bytes.
body_limit_bytes = 1048576
# Requests taking longer are answered 408.
request_timeout_ms = 30000
# Whole request line and headers must arrive within this.
header_read_timeout_ms = 10000
# A body must arrive whole within this after its headers.
body_read_timeout_ms = 10000
# Failed authentications per client address and window before 429.
auth_failure_limit = 20
auth_failure_window_ms = 60000
# Behind a reverse proxy only: the header holding each client's address.
# client_address_header = "x-forwarded-for"

# Sandbox hosts kept started (0: one per core), at most (0: eight per core,
# 16 to 128), per tenant (0: a quarter of the maximum), and how long an
# extra idle host lives.
sandbox_hosts = 0
sandbox_hosts_max = 0
sandbox_hosts_per_tenant = 0
sandbox_host_idle_ms = 30000
# Refuse to start without namespaces for the jail (CITADEL_JAIL_REQUIRED).
jail_required = false

# A silent node is marked down after this, and forgotten after that.
node_timeout_ms = 10000
node_retention_ms = 3600000
# Queued jobs this node runs at once; 0 on `serve` answers the API only.
worker_concurrency = 2048

# Run limits: defaults, and maxima no tenant or script may exceed.
[limits.default]
timeout_ms = 5000
memory_mb = 64
log_bytes = 65536
warm_runs = 1000
warm_seconds = 60

[limits.max]
timeout_ms = 60000
memory_mb = 512
log_bytes = 1048576
warm_runs = 100000
warm_seconds = 3600

# What every tenant may use.
[quotas]
runs_per_minute = 600000
concurrent_runs = 1000
concurrent_jobs = 1000
events_per_run = 100
events_per_minute = 60000
streams = 100
kv_key_bytes = 512
kv_value_bytes = 131072
kv_bytes = 67108864
http_calls_per_run = 50
http_requests_per_minute = 6000
db_queries_per_run = 100

[secrets]
# The master key wrapping every tenant's data key (CITADEL_MASTER_KEY_FILE);
# unset, DATA_DIR/master.key is generated. Keep production's elsewhere.
# master_key_file = "/etc/citadel/master.key"

[egress]
# Let scripts reach loopback and private addresses (tests only).
allow_private = false
max_request_bytes = 1048576
max_response_bytes = 5242880

[datasources]
# Where SQLite data sources live (CITADEL_DATASOURCES_ROOT); unset,
# DATA_DIR/datasources.
# root = "/var/lib/citadel/datasources"

[workflows]
# The highest security profile a run gets, on this server (a tenant's
# `workflow_profile` setting may lower it) and in `citadel workflow run`
# (CITADEL_SECURITY_PROFILE; its `--profile` flag overrides): plan_only,
# restricted, standard, elevated.
profile = "standard"
# A step's timeout when it sets none, in seconds (CITADEL_WORKFLOW_TIMEOUT_S).
default_timeout_s = 300
# Steps of one run running at once (CITADEL_WORKFLOW_MAX_PARALLEL_STEPS).
max_parallel_steps = 16
# Hosts `http` steps may reach (CITADEL_WORKFLOW_ALLOWED_DOMAINS).
allowed_domains = []
# Where `citadel workflow run` finds `script: NAME` and `workflow: NAME`
# (CITADEL_WORKFLOW_WORKSPACE_ROOT); unset, beside the workflow file. A
# server finds them in the tenant's catalog.
# workspace_root = "/srv/workflows"
"#;

/// A problem in a configuration file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Checks a configuration file's text: the configuration, or its first
/// problem with its line and column (1-based).
pub fn check(text: &str) -> Result<Config, Located> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let mut at = e.span().map_or(0, |s| s.start).min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Located {
            line,
            column,
            message: shorter(e.message()),
        }
    })
}

/// serde's "unknown field `x`, expected one of `a`, `b`, …" as "unknown
/// field `x` (did you mean `a`?)"; other messages as they are.
fn shorter(message: &str) -> String {
    let Some((head, expected)) = message.split_once(", expected one of ") else {
        return message.to_owned();
    };
    let Some(field) = head
        .strip_prefix("unknown field `")
        .and_then(|f| f.strip_suffix('`'))
    else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split(", ").map(|c| c.trim_matches('`')).collect();
    match citadel_workflow::did_you_mean(field, candidates.iter().copied()) {
        Some(near) => format!("unknown field `{field}` (did you mean `{near}`?)"),
        None => format!("unknown field `{field}` (one of {expected})"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid environment variable {0}: {1}")]
    Env(&'static str, String),
}

impl Config {
    /// Loads the file (if any) and applies environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, true)
    }

    /// As [`Config::load`], but never from a `./citadel.toml` that merely
    /// happens to be in the working directory: only `--config FILE` or
    /// `$CITADEL_CONFIG`. Workflow commands load so, since such a file
    /// could raise the profile of a workflow run in someone's checkout.
    pub fn load_explicit(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, false)
    }

    fn load_from(file: Option<&Path>, implicit: bool) -> Result<Config, ConfigError> {
        let env_file = std::env::var_os("CITADEL_CONFIG").map(PathBuf::from);
        let default_file = Path::new("citadel.toml");
        let path = file
            .map(Path::to_path_buf)
            .or(env_file)
            .or_else(|| (implicit && default_file.exists()).then(|| default_file.to_path_buf()));
        let mut config = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| ConfigError::Read(p.clone(), e))?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse(p, e))?
            }
            None => Config::default(),
        };
        config.apply_env()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        fn var(name: &'static str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        fn parse<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse()
                .map_err(|e: T::Err| ConfigError::Env(name, e.to_string()))
        }
        if let Some(v) = var("CITADEL_LISTEN") {
            self.listen = parse("CITADEL_LISTEN", v)?;
        }
        if let Some(v) = var("CITADEL_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("CITADEL_DATABASE_URL") {
            self.database = Some(v);
        }
        if let Some(v) = var("CITADEL_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = parse("CITADEL_BODY_LIMIT_BYTES", v)?;
        }
        if let Some(v) = var("CITADEL_REQUEST_TIMEOUT_MS") {
            self.request_timeout_ms = parse("CITADEL_REQUEST_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("CITADEL_SANDBOX_HOSTS") {
            self.sandbox_hosts = parse("CITADEL_SANDBOX_HOSTS", v)?;
        }
        if let Some(v) = var("CITADEL_SANDBOX_HOSTS_MAX") {
            self.sandbox_hosts_max = parse("CITADEL_SANDBOX_HOSTS_MAX", v)?;
        }
        if let Some(v) = var("CITADEL_SANDBOX_HOSTS_PER_TENANT") {
            self.sandbox_hosts_per_tenant = parse("CITADEL_SANDBOX_HOSTS_PER_TENANT", v)?;
        }
        if let Some(v) = var("CITADEL_SANDBOX_HOST_IDLE_MS") {
            self.sandbox_host_idle_ms = parse("CITADEL_SANDBOX_HOST_IDLE_MS", v)?;
        }
        if let Some(v) = var("CITADEL_WORKER_CONCURRENCY") {
            self.worker_concurrency = parse("CITADEL_WORKER_CONCURRENCY", v)?;
        }
        if let Some(v) = var("CITADEL_NODE_TIMEOUT_MS") {
            self.node_timeout_ms = parse("CITADEL_NODE_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("CITADEL_NODE_RETENTION_MS") {
            self.node_retention_ms = parse("CITADEL_NODE_RETENTION_MS", v)?;
        }
        if let Some(v) = var("CITADEL_HEADER_READ_TIMEOUT_MS") {
            self.header_read_timeout_ms = parse("CITADEL_HEADER_READ_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("CITADEL_BODY_READ_TIMEOUT_MS") {
            self.body_read_timeout_ms = parse("CITADEL_BODY_READ_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("CITADEL_AUTH_FAILURE_LIMIT") {
            self.auth_failure_limit = parse("CITADEL_AUTH_FAILURE_LIMIT", v)?;
        }
        if let Some(v) = var("CITADEL_AUTH_FAILURE_WINDOW_MS") {
            self.auth_failure_window_ms = parse("CITADEL_AUTH_FAILURE_WINDOW_MS", v)?;
        }
        if let Some(v) = var("CITADEL_CLIENT_ADDRESS_HEADER") {
            self.client_address_header = Some(v);
        }
        if let Some(v) = var("CITADEL_JAIL_REQUIRED") {
            self.jail_required = parse("CITADEL_JAIL_REQUIRED", v)?;
        }
        if let Some(v) = var("CITADEL_MASTER_KEY_FILE") {
            self.secrets.master_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("CITADEL_EGRESS_ALLOW_PRIVATE") {
            self.egress.allow_private = parse("CITADEL_EGRESS_ALLOW_PRIVATE", v)?;
        }
        if let Some(v) = var("CITADEL_DATASOURCES_ROOT") {
            self.datasources.root = Some(PathBuf::from(v));
        }
        if let Some(v) = var("CITADEL_SECURITY_PROFILE") {
            self.workflows.profile = parse("CITADEL_SECURITY_PROFILE", v)?;
        }
        if let Some(v) = var("CITADEL_WORKFLOW_TIMEOUT_S") {
            let secs = parse("CITADEL_WORKFLOW_TIMEOUT_S", v)?;
            self.workflows.default_timeout_s = check_step_seconds(secs)
                .map_err(|e| ConfigError::Env("CITADEL_WORKFLOW_TIMEOUT_S", e))?;
        }
        if let Some(v) = var("CITADEL_WORKFLOW_MAX_PARALLEL_STEPS") {
            self.workflows.max_parallel_steps =
                match parse("CITADEL_WORKFLOW_MAX_PARALLEL_STEPS", v)? {
                    0 => {
                        return Err(ConfigError::Env(
                            "CITADEL_WORKFLOW_MAX_PARALLEL_STEPS",
                            "must be at least 1".into(),
                        ));
                    }
                    n => n,
                };
        }
        if let Some(v) = var("CITADEL_WORKFLOW_ALLOWED_DOMAINS") {
            let hosts: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect();
            citadel_egress::Allowlist::parse(&hosts)
                .map_err(|e| ConfigError::Env("CITADEL_WORKFLOW_ALLOWED_DOMAINS", e.to_string()))?;
            self.workflows.allowed_domains = hosts;
        }
        if let Some(v) = var("CITADEL_WORKFLOW_WORKSPACE_ROOT") {
            self.workflows.workspace_root = Some(PathBuf::from(v));
        }
        Ok(())
    }

    /// The database URL this configuration means.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("citadel.db").display()),
        }
    }

    /// What the HTTP layer takes of this configuration.
    pub fn http(&self) -> HttpSettings {
        HttpSettings {
            listen: self.listen,
            body_limit_bytes: self.body_limit_bytes,
            request_timeout_ms: self.request_timeout_ms,
            header_read_timeout_ms: self.header_read_timeout_ms,
            body_read_timeout_ms: self.body_read_timeout_ms,
            auth_failure_limit: self.auth_failure_limit,
            auth_failure_window_ms: self.auth_failure_window_ms,
            client_address_header: self.client_address_header.clone(),
        }
    }

    /// The configuration as TOML, with the database password masked.
    pub fn show(&self) -> String {
        let mut shown = self.clone();
        if let Some(url) = &shown.database {
            shown.database = Some(mask_password(url));
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://app:s3cret@db:5432/citadel"),
            "postgres://app:****@db:5432/citadel"
        );
        assert_eq!(
            mask_password("postgres://db/citadel"),
            "postgres://db/citadel"
        );
    }

    #[test]
    fn a_file_overrides_defaults_and_rejects_unknown_keys() {
        let c: Config = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nsandbox_hosts = 3\nsandbox_hosts_max = 40\nsandbox_hosts_per_tenant = 5",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.sandbox_hosts, 3);
        assert_eq!((c.sandbox_hosts_max, c.sandbox_hosts_per_tenant), (40, 5));
        assert_eq!(c.sandbox_host_idle_ms, 30_000);
        assert_eq!(c.body_limit_bytes, Config::default().body_limit_bytes);
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let c: Config = toml::from_str(
            "[limits.default]\ntimeout_ms = 100\nmemory_mb = 8\nlog_bytes = 10\n[limits.max]\ntimeout_ms = 200\nmemory_mb = 16\nlog_bytes = 20",
        )
        .unwrap();
        assert_eq!(c.limits.max.timeout_ms, 200);
        assert_eq!(toml::from_str::<Config>(&c.show()).unwrap(), c);
    }

    #[test]
    fn the_http_settings_are_the_configured_ones() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:9001\"\nbody_limit_bytes = 7\nrequest_timeout_ms = 8\nheader_read_timeout_ms = 9\nbody_read_timeout_ms = 10\nauth_failure_limit = 11\nauth_failure_window_ms = 12\nclient_address_header = \"x-forwarded-for\"",
        )
        .unwrap();
        assert_eq!(
            c.http(),
            HttpSettings {
                listen: "127.0.0.1:9001".parse().unwrap(),
                body_limit_bytes: 7,
                request_timeout_ms: 8,
                header_read_timeout_ms: 9,
                body_read_timeout_ms: 10,
                auth_failure_limit: 11,
                auth_failure_window_ms: 12,
                client_address_header: Some("x-forwarded-for".into()),
            }
        );
        assert_eq!(Config::default().http(), HttpSettings::default());
    }

    #[test]
    fn the_template_is_the_defaults_and_names_every_key() {
        assert_eq!(check(TEMPLATE).unwrap(), Config::default());
        // Every key of the configuration appears in it (set, or commented
        // out where it has no default).
        let mut missing = Vec::new();
        fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
            for (k, v) in table {
                match v {
                    toml::Value::Table(t) => keys(&format!("{prefix}{k}."), t, out),
                    _ => out.push(format!("{prefix}{k}")),
                }
            }
        }
        let mut all = Vec::new();
        let mut full = Config {
            database: Some("postgres://x".into()),
            client_address_header: Some("x".into()),
            ..Config::default()
        };
        full.secrets.master_key_file = Some("k".into());
        full.datasources.root = Some("r".into());
        full.workflows.workspace_root = Some("w".into());
        keys("", &toml::Table::try_from(&full).unwrap(), &mut all);
        for key in &all {
            let leaf = key.rsplit('.').next().unwrap();
            let set = TEMPLATE.lines().any(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{leaf} = "))
            });
            if !set {
                missing.push(key.clone());
            }
        }
        assert_eq!(missing, Vec::<String>::new());
    }

    #[test]
    fn a_bad_file_is_refused_where_it_is_wrong() {
        for (text, line, column, message) in [
            (
                "listen = \"127.0.0.1:8080\"\nlisen = 1\n",
                2,
                1,
                "unknown field `lisen` (did you mean `listen`?)",
            ),
            (
                "[workflows]\nprofile = \"root\"\n",
                2,
                11,
                "unknown variant `root`, expected one of `plan_only`, `restricted`, `standard`, `elevated`",
            ),
            (
                "[workflows]\ndefault_timeout_s = 0\n",
                2,
                21,
                "must be between 1 and 604800 seconds (got 0)",
            ),
            (
                "[workflows]\nmax_parallel_steps = 0\n",
                2,
                22,
                "must be at least 1",
            ),
            (
                "[workflows]\nallowed_domains = [\"ok.example.com\", \"http://\"]\n",
                2,
                19,
                "\"http://\": not a host: empty host",
            ),
            (
                "worker_concurrency = \"many\"\n",
                1,
                22,
                "invalid type: string \"many\", expected usize",
            ),
        ] {
            assert_eq!(
                check(text),
                Err(Located {
                    line,
                    column,
                    message: message.to_owned()
                }),
                "{text}"
            );
        }
    }
}
