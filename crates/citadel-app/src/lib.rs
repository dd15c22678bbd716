//! Citadel's use cases, shared by the HTTP API and the `citadel` commands:
//! who may do what (RBAC), authentication, the audit trail, tenants,
//! tokens, users and roles, scripts and their review, runs, jobs, events,
//! schedules, settings and kill switches, secrets, the key-value store and
//! data sources.
//!
//! Every use case takes the [`App`] and, where a principal acts, its
//! [`Caller`]; it checks the caller's permission, does the work through the
//! engine and the store, audits what it changed, and answers a typed value
//! or an [`AppError`]. Nothing here knows HTTP: the server extracts a
//! request into these calls and maps their answers to responses.
//!
//! Every tenant-owned call takes the tenant from the caller's token, never
//! from its input.

pub mod access;
pub mod audit;
pub mod authn;
pub mod datasources;
pub mod embed;
mod error;
pub mod events;
pub mod inbound;
pub mod jobs;
pub mod killswitch;
pub mod kv;
pub mod plugins;
pub mod roles;
pub mod runs;
pub mod schedules;
pub mod scripts;
pub mod secrets;
pub mod tenants;
mod throttle;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod workflows;

use std::sync::Arc;

use citadel_engine::Engine;
use citadel_store::{NewAuditEntry, Store, StoreError, now_ms};
use serde_json::{Value, json};

pub use access::{Grant, Permission, Principal};
pub use error::{AppError, AppResult, ErrorCode};
pub use throttle::FailureLimit;

/// What every use case shares: the store, the engine (where this process
/// runs scripts) and the caches of authentication. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub store: Arc<dyn Store>,
    /// Runs scripts; `None` for commands that only administer (the CLI's
    /// `admin` commands), whose script use cases then answer `unavailable`.
    pub engine: Option<Engine>,
    auth_cache: authn::AuthCache,
    auth_failures: throttle::AuthFailures,
    manifests: plugins::Manifests,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    pub fn new(store: Arc<dyn Store>, engine: Option<Engine>) -> Self {
        App(Arc::new(AppInner {
            store,
            engine,
            auth_cache: authn::AuthCache::default(),
            auth_failures: throttle::AuthFailures::default(),
            manifests: plugins::Manifests::default(),
        }))
    }

    /// Sets how many failed authentications a source may make per window.
    pub fn limit_auth_failures(&self, limit: FailureLimit) {
        self.auth_failures.configure(limit);
    }

    /// The engine, or `unavailable` where this process runs no scripts.
    pub fn engine(&self) -> AppResult<&Engine> {
        self.engine
            .as_ref()
            .ok_or_else(|| AppError::unavailable("this process does not run scripts"))
    }

    /// Appends an audit entry. A failure to record a security event is
    /// logged, not returned: the answer to the request stands.
    // One argument per audit field, so call sites read like the entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_event(
        &self,
        principal: Option<&Principal>,
        tenant_id: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
        request_id: &str,
        details: Value,
    ) {
        if let Err(e) = self
            .record(
                principal, tenant_id, action, target, outcome, request_id, details,
            )
            .await
        {
            tracing::error!(error = %e, action, "could not append to the audit log");
        }
    }

    /// Appends an audit entry for a mutation; the mutation fails if its
    /// record cannot be written.
    // One argument per audit field, so call sites read like the entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &self,
        principal: Option<&Principal>,
        tenant_id: Option<&str>,
        action: &str,
        target: &str,
        outcome: &str,
        request_id: &str,
        details: Value,
    ) -> Result<(), StoreError> {
        let entry = NewAuditEntry {
            at: now_ms(),
            tenant_id: tenant_id.map(str::to_owned),
            principal: principal.map(|p| p.actor().to_owned()),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            request_id: request_id.to_owned(),
            details: details.to_string(),
        };
        self.store.append_audit(&entry).await.map(|_| ())
    }

    /// Forgets every cached principal: after anything that changes who may
    /// do what.
    pub(crate) fn forget_principals(&self) {
        self.auth_cache.clear();
    }
}

/// Who calls a use case, and in which request (for the audit trail).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
}

impl Caller {
    /// The one permission check. A denial is audited and answered
    /// `forbidden` with the missing permission named (and the caller's
    /// folder scopes, when those are why).
    pub async fn require(
        &self,
        app: &App,
        permission: Permission,
        path: Option<&str>,
    ) -> AppResult<()> {
        if self.principal.allows(permission, path) {
            return Ok(());
        }
        app.audit_event(
            Some(&self.principal),
            self.principal.tenant_id.as_deref(),
            "permission.denied",
            path.unwrap_or(""),
            "denied",
            &self.request_id,
            json!({ "permission": permission.as_str() }),
        )
        .await;
        let scopes = self.principal.scopes_of(permission);
        if scopes.is_empty() {
            Err(AppError::forbidden(permission))
        } else {
            Err(AppError::forbidden_outside(permission, path, &scopes))
        }
    }

    /// Requires `permission` on at least one path (a listing then shows
    /// only what each path allows); denied like [`Caller::require`].
    pub async fn require_somewhere(&self, app: &App, permission: Permission) -> AppResult<()> {
        if self
            .principal
            .grants
            .iter()
            .any(|g| g.permission == permission)
        {
            return Ok(());
        }
        self.require(app, permission, None).await
    }

    /// The caller's tenant; platform admins have none and are refused
    /// (audited) on tenant use cases.
    pub async fn tenant(&self, app: &App) -> AppResult<String> {
        if let Some(t) = &self.principal.tenant_id {
            return Ok(t.clone());
        }
        self.require(app, Permission::TenantMember, None).await?;
        Err(AppError::forbidden(Permission::TenantMember))
    }

    /// The caller's tenant, once the caller holds `permission` there (for
    /// `path`): the preamble of every tenant use case.
    pub async fn tenant_with(
        &self,
        app: &App,
        permission: Permission,
        path: Option<&str>,
    ) -> AppResult<String> {
        let tenant = self.tenant(app).await?;
        self.require(app, permission, path).await?;
        Ok(tenant)
    }

    pub async fn require_platform_admin(&self, app: &App) -> AppResult<()> {
        if self.principal.is_platform_admin() {
            return Ok(());
        }
        self.require(app, Permission::PlatformAdmin, None).await
    }

    /// Audits a change this caller made in its tenant.
    pub async fn record_change(
        &self,
        app: &App,
        tenant: &str,
        action: &str,
        target: &str,
        details: Value,
    ) -> AppResult<()> {
        app.record(
            Some(&self.principal),
            Some(tenant),
            action,
            target,
            "ok",
            &self.request_id,
            details,
        )
        .await?;
        Ok(())
    }
}

/// Checks a script name (also of a subscription's or schedule's script).
pub(crate) fn checked_name(name: &str) -> AppResult<()> {
    citadel_scripts::validate_name(name).map_err(|e| AppError::invalid(e.to_string()))
}

/// Checks the name of a webhook endpoint or inbound webhook (`what`):
/// 1 to 64 of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter or digit.
pub(crate) fn checked_short_name(name: &str, what: &str) -> AppResult<()> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(AppError::invalid(format!(
        "`{}` is not {what} name: 1 to 64 of a-z, 0-9, `_`, `.`, `-`, starting with a letter or digit",
        name.chars().take(64).collect::<String>()
    )))
}

/// `limit` of a listing, `1..=max` (default `default`).
pub(crate) fn page_limit(limit: Option<i64>, default: i64, message: &str) -> AppResult<i64> {
    let limit = limit.unwrap_or(default);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::invalid(message));
    }
    Ok(limit)
}
