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
        }
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
        let env_file = std::env::var_os("CITADEL_CONFIG").map(PathBuf::from);
        let default_file = Path::new("citadel.toml");
        let path = file
            .map(Path::to_path_buf)
            .or(env_file)
            .or_else(|| default_file.exists().then(|| default_file.to_path_buf()));
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
}
