//! Authentication: bearer tokens are 256 random bits shown once and stored
//! as their SHA-256 (the secret is high-entropy, so a fast hash is the right
//! one; argon2 is for passwords). Failed attempts are counted, limited and
//! audited per client address and window (`throttle.rs`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use citadel_store::now_ms;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::rbac::{Grant, Principal, builtin_role};
use crate::{AppState, REQUEST_ID};

/// The visible prefix of every Citadel token.
pub const TOKEN_PREFIX: &str = "ctk_";

/// A new token secret: the prefix and 64 hex digits (256 random bits).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let mut s = String::with_capacity(TOKEN_PREFIX.len() + 64);
    s.push_str(TOKEN_PREFIX);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn hash_token(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn well_formed(secret: &str) -> bool {
    secret
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How long a node trusts a token it has checked. Revoking a token, disabling
/// a user or changing a role clears this node's cache at once; other nodes
/// see the change within this time.
const AUTH_CACHE_TTL_MS: i64 = 1_000;
const AUTH_CACHE_ENTRIES: usize = 4096;

/// Recently authenticated tokens (by hash), so a busy client costs no
/// database round trips per request.
#[derive(Default)]
pub(crate) struct AuthCache(std::sync::Mutex<std::collections::HashMap<String, CachedPrincipal>>);

struct CachedPrincipal {
    principal: Principal,
    checked_at: i64,
    expires_at: Option<i64>,
}

impl AuthCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CachedPrincipal>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &str, now: i64) -> Option<Principal> {
        let cache = self.lock();
        let c = cache.get(hash)?;
        let fresh = now - c.checked_at < AUTH_CACHE_TTL_MS && c.expires_at.is_none_or(|e| e > now);
        fresh.then(|| c.principal.clone())
    }

    fn put(&self, hash: String, principal: Principal, expires_at: Option<i64>, now: i64) {
        let mut cache = self.lock();
        if cache.len() >= AUTH_CACHE_ENTRIES {
            cache.retain(|_, c| now - c.checked_at < AUTH_CACHE_TTL_MS);
            if cache.len() >= AUTH_CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            CachedPrincipal {
                principal,
                checked_at: now,
                expires_at,
            },
        );
    }

    /// Forgets every cached token: after anything that changes who may do
    /// what.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// An authenticated request: who is calling, and the request's id.
#[derive(Debug, Clone)]
pub struct Authed {
    pub principal: Principal,
    pub request_id: String,
}

impl Authed {
    /// The one permission check. A denial is audited and answered 403 with
    /// the missing permission named.
    pub async fn require(
        &self,
        state: &AppState,
        permission: &str,
        path: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.principal.allows(permission, path) {
            return Ok(());
        }
        state
            .audit_event(
                Some(&self.principal),
                self.principal.tenant_id.as_deref(),
                "permission.denied",
                path.unwrap_or(""),
                "denied",
                &self.request_id,
                json!({ "permission": permission }),
            )
            .await;
        let scopes = self.principal.scopes_of(permission);
        if scopes.is_empty() {
            Err(ApiError::forbidden(permission))
        } else {
            Err(ApiError::forbidden_outside(permission, path, &scopes))
        }
    }

    /// Requires `permission` on at least one path (a listing then shows
    /// only what each path allows); denied like [`Authed::require`].
    pub async fn require_somewhere(
        &self,
        state: &AppState,
        permission: &str,
    ) -> Result<(), ApiError> {
        if self
            .principal
            .grants
            .iter()
            .any(|g| g.permission == permission)
        {
            return Ok(());
        }
        self.require(state, permission, None).await
    }

    /// The caller's tenant; platform admins have none and are refused
    /// (audited) on tenant endpoints.
    pub async fn tenant(&self, state: &AppState) -> Result<String, ApiError> {
        if let Some(t) = &self.principal.tenant_id {
            return Ok(t.clone());
        }
        self.require(state, "tenant.member", None).await?;
        Err(ApiError::forbidden("tenant.member"))
    }

    /// The caller's tenant, once the caller holds `permission` there (for
    /// `path`): the preamble of every tenant endpoint.
    pub async fn tenant_with(
        &self,
        state: &AppState,
        permission: &str,
        path: Option<&str>,
    ) -> Result<String, ApiError> {
        let tenant = self.tenant(state).await?;
        self.require(state, permission, path).await?;
        Ok(tenant)
    }

    /// Audits a change this caller made in its tenant.
    pub async fn record_change(
        &self,
        state: &AppState,
        tenant: &str,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<(), ApiError> {
        state
            .record(
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

    pub async fn require_platform_admin(&self, state: &AppState) -> Result<(), ApiError> {
        if self.principal.is_platform_admin() {
            return Ok(());
        }
        self.require(state, "platform.admin", None).await
    }
}

/// The permissions the given (role, path prefix) pairs carry in a tenant;
/// an unknown custom role carries none.
pub(crate) async fn grants_of(
    state: &AppState,
    tenant: &str,
    roles: impl Iterator<Item = (String, String)>,
) -> Result<Vec<Grant>, ApiError> {
    let mut grants = Vec::new();
    let mut custom = None;
    for (role, path_prefix) in roles {
        let permissions: Vec<String> = match builtin_role(&role) {
            Some(p) => p.iter().map(|s| (*s).to_owned()).collect(),
            None => {
                if custom.is_none() {
                    custom = Some(state.store.roles(tenant).await?);
                }
                custom
                    .as_ref()
                    .and_then(|roles| roles.iter().find(|r| r.name == role))
                    .map(|r| r.permissions.clone())
                    .unwrap_or_default()
            }
        };
        grants.extend(permissions.into_iter().map(|permission| Grant {
            permission,
            path_prefix: path_prefix.clone(),
        }));
    }
    Ok(grants)
}

/// What a person (a user, or a root token) may do in a tenant now: a
/// disabled user, or a revoked or expired token, may do nothing.
pub(crate) async fn person_grants(
    state: &AppState,
    tenant: &str,
    person: &str,
) -> Result<Vec<Grant>, ApiError> {
    if let Some(token) = state.store.token(tenant, person).await? {
        if !token.is_active(now_ms()) {
            return Ok(Vec::new());
        }
        let roles = state.store.bindings(tenant, &token.id).await?;
        return grants_of(
            state,
            tenant,
            roles.into_iter().map(|b| (b.role, b.path_prefix)),
        )
        .await;
    }
    match state.store.user(tenant, person).await? {
        Some(user) if user.disabled_at.is_none() => {
            let roles = state.store.user_roles(tenant, &user.id).await?;
            grants_of(state, tenant, roles.into_iter()).await
        }
        _ => Ok(Vec::new()),
    }
}

pub(crate) fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = request_id(parts);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            return Err(ApiError::unauthorized("missing bearer token"));
        };
        let source = state.auth_failures.source(parts);
        let failed = |reason: &'static str, tenant: Option<String>| {
            let source = source.clone();
            async move { state.auth_failed(&source, tenant.as_deref(), reason).await }
        };
        let Some(secret) = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|s| well_formed(s))
        else {
            return Err(failed("malformed bearer token", None).await);
        };
        let hash = hash_token(secret);
        let now = now_ms();
        if let Some(principal) = state.auth_cache.get(&hash, now) {
            return Ok(Authed {
                principal,
                request_id,
            });
        }
        let token = state.store.token_by_hash(&hash).await?;
        let Some(token) = token else {
            return Err(failed("unknown token", None).await);
        };
        if token.revoked_at.is_some() {
            return Err(failed("token revoked", token.tenant_id.clone()).await);
        }
        if token.expires_at.is_some_and(|e| e <= now) {
            return Err(failed("token expired", token.tenant_id.clone()).await);
        }
        let grants = match &token.tenant_id {
            Some(tenant) => {
                let roles = state.store.bindings(tenant, &token.id).await?;
                grants_of(
                    state,
                    tenant,
                    roles.into_iter().map(|b| (b.role, b.path_prefix)),
                )
                .await?
            }
            None => Vec::new(),
        };
        let principal = Principal {
            token_id: token.id,
            person: token.person,
            user_id: token.user_id,
            tenant_id: token.tenant_id,
            grants,
        };
        state
            .auth_cache
            .put(hash, principal.clone(), token.expires_at, now);
        Ok(Authed {
            principal,
            request_id,
        })
    }
}
