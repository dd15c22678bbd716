//! Stores, tokens, engines and live scripts for the suites above the store.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use citadel_app::authn::{generate_token, hash_token};
use citadel_engine::{Engine, EngineConfig, Executor, InProcess, LiveScript, RunSpec};
use citadel_store::{AuditEntry, AuditQuery, NewToken, NewVersion, SaveOutcome, Store};

use crate::{TempDir, temp_dir};

/// A fresh SQLite store on a file in its own temporary directory; the
/// directory lives as long as this value.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// The store's URL, to open it again (a second node, a read-only view).
    pub url: String,
    dir: TempDir,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = temp_dir("db");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = citadel_store::connect(&url).await.unwrap();
        TestDb { store, url, dir }
    }

    /// The directory holding the database file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The database file.
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("c.db")
    }

    /// Every byte the database holds on disk: the file and its write-ahead
    /// log (recent writes live there until a checkpoint), for tests that
    /// grep the database for what must never be stored.
    pub fn file_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let path = self.dir.path().join(format!("c.db{suffix}"));
            if let Ok(bytes) = std::fs::read(path) {
                all.extend(bytes);
            }
        }
        all
    }

    /// Creates the tenant `name`; its id.
    pub async fn tenant(&self, name: &str) -> String {
        self.store.create_tenant(name).await.unwrap().id
    }
}

/// A bearer token minted into the store.
#[derive(Debug, Clone)]
pub struct Token {
    /// What a caller sends after `Bearer `.
    pub secret: String,
    pub id: String,
}

/// A token to mint, as `citadel admin create-token` makes them: a tenant's
/// token with a role (and a folder it is scoped to), or a platform token
/// (no tenant, no role).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenSpec<'a> {
    pub tenant: Option<&'a str>,
    pub name: &'a str,
    pub role: Option<&'a str>,
    /// The folder the role is scoped to (`""`: the whole tenant).
    pub path_prefix: &'a str,
    pub expires_at: Option<i64>,
}

/// Mints the token `spec` describes.
pub async fn mint(store: &dyn Store, spec: TokenSpec<'_>) -> Token {
    let secret = generate_token();
    let t = store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: spec.tenant.map(str::to_owned),
            name: spec.name.to_owned(),
            hash: hash_token(&secret),
            expires_at: spec.expires_at,
            role: spec
                .role
                .map(|r| (r.to_owned(), spec.path_prefix.to_owned())),
        })
        .await
        .unwrap();
    Token { secret, id: t.id }
}

/// Mints a tenant-wide token holding `role`, named after it.
pub async fn token(store: &dyn Store, tenant: &str, role: &str) -> Token {
    mint(
        store,
        TokenSpec {
            tenant: Some(tenant),
            name: role,
            role: Some(role),
            ..TokenSpec::default()
        },
    )
    .await
}

/// Mints a tenant-wide token for each of `roles`, named after it:
/// (role, token), to hand to `Api::with_callers`.
pub async fn tokens<'r>(
    store: &dyn Store,
    tenant: &str,
    roles: &[&'r str],
) -> Vec<(&'r str, Token)> {
    let mut out = Vec::new();
    for role in roles {
        out.push((*role, token(store, tenant, role).await));
    }
    out
}

/// The configuration of a node that runs no queue worker: what it enqueues
/// stays queued.
pub fn without_worker() -> EngineConfig {
    EngineConfig {
        worker: None,
        ..EngineConfig::default()
    }
}

/// An engine on `store` running isolates in this process on `threads`
/// threads.
pub fn engine(store: &Arc<dyn Store>, threads: usize, config: EngineConfig) -> Engine {
    Engine::start(
        Arc::clone(store),
        Executor::InProcess(InProcess::start(threads).unwrap()),
        config,
    )
}

/// A version saved straight into the store, approved and live at once (no
/// analysis): what a test needs to run a script through the engine.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub name: &'a str,
    pub source: &'a str,
    /// The content hash the engine caches analysis by: scripts of one test
    /// with different sources need different hashes.
    pub hash: &'a str,
    pub language: &'a str,
    /// The grant, as JSON text.
    pub capabilities: &'a str,
    /// The limits, as JSON text.
    pub limits: &'a str,
}

impl Default for Version<'_> {
    fn default() -> Self {
        Version {
            name: "",
            source: "",
            hash: "h",
            language: "js",
            capabilities: "{}",
            limits: "{}",
        }
    }
}

/// The script `nap`: sleeps `input.sleep` ms when asked to (it is granted
/// `sleep`), then returns its input. A run of it stays in flight as long as
/// a test needs.
pub const NAP: Version<'static> = Version {
    name: "nap",
    source: "if (input.sleep) await api.sleep(input.sleep);\nreturn input;",
    hash: "h",
    language: "js",
    capabilities: r#"{"sleep":true}"#,
    limits: "{}",
};

/// Saves `version` as the tenant's live version 1.0.0 of its script.
pub async fn save_live(store: &dyn Store, tenant: &str, version: &Version<'_>) {
    let language = version.language.parse().expect("a known language");
    let new = NewVersion {
        tenant_id: tenant.to_owned(),
        name: version.name.into(),
        hash: version.hash.into(),
        source: version.source.into(),
        language,
        kind: citadel_domain::ScriptKind::of(language),
        capabilities: version.capabilities.into(),
        limits: version.limits.into(),
        diagnostics: "[]".into(),
        change_note: String::new(),
        author: "a".into(),
        state: citadel_domain::VersionState::Approved,
        make_live: true,
    };
    let next = |_: Option<&str>| "1.0.0".to_owned();
    assert!(matches!(
        store.save_version(&new, &next).await.unwrap(),
        SaveOutcome::Created(_)
    ));
}

/// Saves `version` live and reads it back as the engine runs it.
pub async fn live_script(
    store: &dyn Store,
    tenant: &str,
    version: &Version<'_>,
) -> Arc<LiveScript> {
    save_live(store, tenant, version).await;
    let (script, live) = store
        .live_version(tenant, version.name)
        .await
        .unwrap()
        .unwrap();
    Arc::new(LiveScript::decode(script, live).unwrap())
}

/// A fresh store with one tenant, `acme`, whose live script is `version`.
pub struct Scripted {
    pub db: TestDb,
    pub tenant: String,
    pub live: Arc<LiveScript>,
}

impl Scripted {
    pub async fn new(version: &Version<'_>) -> Scripted {
        let db = TestDb::new().await;
        let tenant = db.tenant("acme").await;
        let live = live_script(db.store.as_ref(), &tenant, version).await;
        Scripted { db, tenant, live }
    }
}

/// A run of `live` for `tenant` with `input` (JSON text), triggered by the
/// API, with nothing else decided: set the other fields with `..`.
pub fn run_spec(tenant: &str, live: &Arc<LiveScript>, input: &str) -> RunSpec {
    RunSpec {
        tenant_id: tenant.into(),
        live: Arc::clone(live),
        input_json: input.into(),
        trigger: citadel_domain::Trigger::Api,
        principal: None,
        timeout_ms: None,
        run_id: None,
        created_at: None,
    }
}

/// The audit entries of `action`, newest first (up to 1000).
pub async fn audit(store: &dyn Store, action: &str) -> Vec<AuditEntry> {
    store
        .audit_page(&AuditQuery {
            action: Some(action.into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it answers `Some`, for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
