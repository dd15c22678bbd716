//! What the store keeps. Times are Unix milliseconds.
//!
//! The types read from one table decode from its rows by column name
//! (`sqlx::FromRow`); statuses, states, scopes and languages decode into
//! the domain's enums (`try_from = "Text<…>"`, see `text.rs`), and a row that does not
//! decode is an error, never a default.

use citadel_domain::{
    JobState, KillScope, Language, Missed, NodeState, RunStatus, ScriptKind, Trigger, VersionState,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::text::Text;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// An API token: a principal inside a tenant, or a platform admin (no tenant).
/// The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Token {
    pub id: String,
    pub tenant_id: Option<String>,
    /// The user a session token was issued to.
    pub user_id: Option<String>,
    pub name: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The token that minted this one; `None` for tokens made by an
    /// administrator's command or a login.
    pub created_by: Option<String>,
    /// The person this token acts for: the user (for sessions and what they
    /// mint), else the root token of its minting chain (itself if none).
    pub person: String,
    /// For an embed session: the host product's end user it acts for.
    pub end_user: Option<String>,
}

impl Token {
    /// True when the token may authenticate at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A token to create, with its first role binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub tenant_id: Option<String>,
    /// Set for a user's session token.
    pub user_id: Option<String>,
    pub name: String,
    pub hash: String,
    pub expires_at: Option<i64>,
    /// Role bound to the token (tenant tokens only), with an optional path
    /// prefix scope (`""` for the whole tenant).
    pub role: Option<(String, String)>,
}

/// Who mints a token: the minting token and the person it acts for. The
/// new token acts for that same person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenOrigin {
    pub created_by: Option<String>,
    /// `None`: the new token's user, else the new token itself.
    pub person: Option<String>,
    /// For an embed session: the host product's end user it acts for.
    pub end_user: Option<String>,
}

/// A one-time code for an embed session, stored by its hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmbedCode {
    pub code_hash: String,
    pub tenant_id: String,
    /// The host product's id for its end user.
    pub end_user: String,
    /// The folder the session may act in (ends in `/`).
    pub folder: String,
    pub role: String,
    /// How long the session's token lives once the code is exchanged.
    pub session_ms: i64,
    /// The token that minted the code.
    pub created_by: String,
    pub created_at: i64,
    /// After this the code exchanges for nothing.
    pub expires_at: i64,
}

/// A person in a tenant who logs in with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub username: String,
    /// argon2id in PHC format; never leaves the server.
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// A user to create, with the roles (role, path prefix) it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub tenant_id: String,
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<(String, String)>,
}

/// A tenant's own role. Built-in roles live in code, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRole {
    pub tenant_id: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: i64,
}

/// A role granted to a token, optionally only below a path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RoleBinding {
    pub id: String,
    pub tenant_id: String,
    pub token_id: String,
    pub role: String,
    /// `""` for the whole tenant, else e.g. `billing/`.
    pub path_prefix: String,
    pub created_at: i64,
}

/// An audit entry to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct NewAuditEntry {
    pub at: i64,
    pub tenant_id: Option<String>,
    pub principal: Option<String>,
    pub action: String,
    pub target: String,
    /// `ok`, `denied`, `rejected`, `failed`, …
    pub outcome: String,
    pub request_id: String,
    /// JSON object text.
    pub details: String,
}

/// An appended audit entry: its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub entry: NewAuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash before the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry: SHA-256 over the previous hash and every field,
/// each length-prefixed so no two different entries encode alike.
pub fn audit_hash(prev_hash: &str, seq: i64, e: &NewAuditEntry) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(prev_hash.as_bytes());
    field(&seq.to_le_bytes());
    field(&e.at.to_le_bytes());
    field(e.tenant_id.as_deref().unwrap_or("\u{0}").as_bytes());
    field(e.principal.as_deref().unwrap_or("\u{0}").as_bytes());
    field(e.action.as_bytes());
    field(e.target.as_bytes());
    field(e.outcome.as_bytes());
    field(e.request_id.as_bytes());
    field(e.details.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Filters for paging through the audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only this tenant's entries (`None`: all, for platform admins).
    pub tenant_id: Option<String>,
    pub action: Option<String>,
    pub principal: Option<String>,
    pub outcome: Option<String>,
    /// Only entries with a smaller sequence number (the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AuditVerdict {
    Intact {
        entries: i64,
    },
    /// The first entry whose stored hash does not match, or whose sequence
    /// skips (a deleted row).
    Broken {
        seq: i64,
        reason: String,
    },
}

/// A tenant's script: a name (a path like `billing/on-paid`) and which of
/// its versions is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Script {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// A script or a workflow (the language of its versions says which).
    #[sqlx(try_from = "Text<ScriptKind>")]
    pub kind: ScriptKind,
    /// The `seq` of the live version; `None` until one goes live.
    pub live_seq: Option<i64>,
    /// The highest `seq` saved.
    pub latest_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One immutable version of a script. Only `state` and the review fields
/// change after it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ScriptVersion {
    pub script_id: String,
    pub tenant_id: String,
    /// 1, 2, 3… in save order.
    pub seq: i64,
    /// The semantic version, e.g. `1.0.3`.
    pub version: String,
    /// SHA-256 of the content (source, language, capabilities, limits).
    pub hash: String,
    pub source: String,
    #[sqlx(try_from = "Text<Language>")]
    pub language: Language,
    /// JSON: the granted capabilities.
    pub capabilities: String,
    /// JSON: per-script limit overrides.
    pub limits: String,
    /// JSON: the analyzer's diagnostics at save time.
    pub diagnostics: String,
    pub change_note: String,
    /// The person that saved it: a user id, else the id of the root token
    /// of the chain that minted the saving token (before migration 0008,
    /// the saving token itself).
    pub author: String,
    #[sqlx(try_from = "Text<VersionState>")]
    pub state: VersionState,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub reviewed_at: Option<i64>,
    pub created_at: i64,
}

/// What saving a version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new version was stored.
    Created(ScriptVersion),
    /// The content equals the latest version's; nothing was stored.
    Unchanged(ScriptVersion),
    /// The name is taken by an entry of the other kind (a workflow's name
    /// for a script, or the reverse); nothing was stored.
    OtherKind(ScriptKind),
}

/// A version to save. The store assigns `seq` and compares `hash` with the
/// latest version; the caller computes `version` from the latest one via
/// the `next_version` callback given to [`crate::ScriptStore::save_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub tenant_id: String,
    pub name: String,
    /// The entry's kind; a save into an entry of another kind is refused.
    pub kind: ScriptKind,
    pub hash: String,
    pub source: String,
    pub language: Language,
    pub capabilities: String,
    pub limits: String,
    pub diagnostics: String,
    pub change_note: String,
    pub author: String,
    /// `Draft` (approval required) or `Approved`.
    pub state: VersionState,
    /// Make the new version live at once (no approval required).
    pub make_live: bool,
}

/// A state change of a version, applied only if the version is currently
/// in one of `from` (compare-and-set, so concurrent reviews cannot both win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTransition {
    pub tenant_id: String,
    pub script_id: String,
    pub seq: i64,
    pub from: Vec<VersionState>,
    pub to: VersionState,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub at: i64,
    /// Also make the version live.
    pub make_live: bool,
}

/// One execution of a script version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub tenant_id: String,
    pub script_id: String,
    pub script_name: String,
    /// The semantic version that ran.
    pub version: String,
    #[sqlx(try_from = "Text<RunStatus>")]
    pub status: RunStatus,
    #[sqlx(rename = "trigger_kind", try_from = "Text<Trigger>")]
    pub trigger: Trigger,
    /// Who started it (user id, else token id).
    pub principal: Option<String>,
    /// JSON text.
    pub input: String,
    /// JSON text.
    pub result: Option<String>,
    /// JSON: the log lines.
    pub logs: String,
    pub logs_truncated: bool,
    /// JSON: the error, if any.
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A page of a tenant's runs, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    pub tenant_id: String,
    pub script_name: Option<String>,
    pub status: Option<RunStatus>,
    pub trigger: Option<Trigger>,
    /// Runs created at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Runs created before this time (ms since the epoch).
    pub until: Option<i64>,
    /// Runs created before this one (its id), for paging.
    pub before: Option<String>,
    pub limit: i64,
}

/// What a tenant's dashboard asks of its runs: those created at or after
/// `since`, counted per `bucket_ms`, and the latest `sample_limit` of them
/// for percentiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStatsQuery {
    pub tenant_id: String,
    pub since: i64,
    pub bucket_ms: i64,
    pub sample_limit: i64,
}

/// Finished runs counted per time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunBucket {
    /// The bucket's start (ms since the epoch, a multiple of the bucket).
    pub start: i64,
    pub finished: i64,
    /// Finished any other way than `succeeded`.
    pub failed: i64,
}

/// One finished run, as the dashboard's percentiles read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSample {
    pub script_name: String,
    pub status: RunStatus,
    pub duration_ms: Option<i64>,
    pub cpu_ms: Option<i64>,
}

/// The answer to a [`RunStatsQuery`]: exact counts, sampled usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStats {
    /// Oldest first; buckets with no finished run are absent.
    pub buckets: Vec<RunBucket>,
    /// The newest finished runs first, at most `sample_limit`.
    pub samples: Vec<RunSample>,
}

/// An engaged kill switch. `scope` is `platform`, `tenant`, `folder` or
/// `script`; `tenant_id` is empty for the platform, `target` is the folder
/// prefix or script name (empty for platform and tenant scopes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct KillSwitch {
    #[sqlx(try_from = "Text<KillScope>")]
    pub scope: KillScope,
    pub tenant_id: String,
    pub target: String,
    pub reason: String,
    pub engaged_by: Option<String>,
    pub engaged_at: i64,
}

/// A durable queue entry that becomes a run (or, later, an event delivery
/// or a workflow step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    /// What the payload is: `run` today.
    pub kind: String,
    /// JSON, interpreted by whoever runs `kind`.
    pub payload: String,
    /// 0 low, 1 normal, 2 high, 3 critical.
    pub priority: i64,
    #[sqlx(try_from = "Text<JobState>")]
    pub state: JobState,
    /// Not claimed before this time.
    pub run_at: i64,
    /// Claims so far.
    pub attempts: i64,
    pub max_attempts: i64,
    pub timeout_ms: i64,
    /// A duplicate enqueue with the same key (per tenant) returns this job.
    pub idempotency_key: Option<String>,
    /// The node holding the lease while `running`.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    /// Set by a cancel request while the job runs; its node stops it.
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Jobs sharing a key (a script's id) run at most `script_cap` at once
    /// across every node.
    pub script_key: Option<String>,
    pub script_cap: Option<i64>,
}

/// How a running job ended (see [`crate::JobStore::finish_jobs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    pub id: String,
    /// `Succeeded`, `Failed` or `Cancelled`.
    pub state: JobState,
    pub error: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub payload: String,
    pub priority: i64,
    pub run_at: i64,
    pub max_attempts: i64,
    pub timeout_ms: i64,
    pub idempotency_key: Option<String>,
    /// See [`Job::script_key`].
    pub script_key: Option<String>,
    pub script_cap: Option<i64>,
}

/// A node (a `citadel serve` or `citadel worker` process) sharing the
/// database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Node {
    pub id: String,
    /// `serve` or `worker`.
    pub role: String,
    pub version: String,
    pub hostname: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Jobs it is running, at its last heartbeat.
    pub running: i64,
    #[sqlx(try_from = "Text<NodeState>")]
    pub state: NodeState,
}

/// A cron schedule on a script: `cron` in time zone `timezone`, firing runs
/// of the script's live version with `input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Schedule {
    pub id: String,
    pub tenant_id: String,
    /// Unique in the tenant.
    pub name: String,
    pub script_name: String,
    pub cron: String,
    /// An IANA time zone name.
    pub timezone: String,
    /// JSON text: the runs' input.
    pub input: String,
    /// After downtime: missed occurrences are dropped, or one run for them.
    #[sqlx(try_from = "Text<Missed>")]
    pub missed: Missed,
    pub enabled: bool,
    /// The next occurrence to fire (Unix ms).
    pub next_fire_at: i64,
    /// The occurrence most recently fired.
    pub last_fired_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
