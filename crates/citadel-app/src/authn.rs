//! Authentication: bearer tokens are 256 random bits shown once and stored
//! as their SHA-256 (the secret is high-entropy, so a fast hash is the right
//! one; argon2 is for passwords). Failed attempts are counted, limited and
//! audited per source and window (`throttle.rs`).

use citadel_store::now_ms;
use sha2::{Digest, Sha256};

use crate::access::{Grant, Permission, Principal, builtin_role};
use crate::throttle::{Closed, Verdict};
use crate::{App, AppError, AppResult};

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
const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
const AUTH_CACHE_ENTRIES: u64 = 4096;

/// Recently authenticated tokens (by hash), so a busy client costs no
/// database round trips per request.
pub(crate) struct AuthCache(moka::sync::Cache<String, CachedPrincipal>);

#[derive(Clone)]
struct CachedPrincipal {
    principal: Principal,
    expires_at: Option<i64>,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache(
            moka::sync::Cache::builder()
                .max_capacity(AUTH_CACHE_ENTRIES)
                .time_to_live(AUTH_CACHE_TTL)
                .build(),
        )
    }
}

impl AuthCache {
    fn get(&self, hash: &str, now: i64) -> Option<Principal> {
        let c = self.0.get(hash)?;
        c.expires_at.is_none_or(|e| e > now).then_some(c.principal)
    }

    fn put(&self, hash: String, principal: Principal, expires_at: Option<i64>) {
        self.0.insert(
            hash,
            CachedPrincipal {
                principal,
                expires_at,
            },
        );
    }

    pub(crate) fn clear(&self) {
        self.0.invalidate_all();
    }
}

/// Authenticates the credentials of a request: `authorization` is the
/// `Authorization` value (`Bearer ctk_…`), `None` when there was none;
/// `source` is what failures from it count against.
pub async fn authenticate(
    app: &App,
    authorization: Option<&str>,
    source: &str,
) -> AppResult<Principal> {
    let Some(header) = authorization else {
        return Err(AppError::unauthorized("missing bearer token"));
    };
    let Some(secret) = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|s| well_formed(s))
    else {
        return Err(failed(app, source, "malformed bearer token", None).await);
    };
    let hash = hash_token(secret);
    let now = now_ms();
    if let Some(principal) = app.auth_cache.get(&hash, now) {
        return Ok(principal);
    }
    let Some(token) = app.store.token_by_hash(&hash).await? else {
        return Err(failed(app, source, "unknown token", None).await);
    };
    if token.revoked_at.is_some() {
        return Err(failed(app, source, "token revoked", token.tenant_id.as_deref()).await);
    }
    if token.expires_at.is_some_and(|e| e <= now) {
        return Err(failed(app, source, "token expired", token.tenant_id.as_deref()).await);
    }
    let grants = match &token.tenant_id {
        Some(tenant) => {
            let roles = app.store.bindings(tenant, &token.id).await?;
            grants_of(
                app,
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
        end_user: token.end_user,
        grants,
    };
    app.auth_cache
        .put(hash, principal.clone(), token.expires_at);
    Ok(principal)
}

/// Counts a failed authentication from `source` and answers it:
/// `unauthorized` with `reason`, or `rate_limited` once the source is past
/// its limit. Failures are audited per source and window, when the window
/// closes.
pub(crate) async fn failed(
    app: &App,
    source: &str,
    reason: &'static str,
    tenant: Option<&str>,
) -> AppError {
    let (verdict, closed) = app.auth_failures.fail(source, tenant, reason, now_ms());
    audit_failures(app, closed).await;
    match verdict {
        Verdict::Refused => AppError::unauthorized(reason),
        Verdict::Limited { retry_after_s } => rate_limited(retry_after_s),
    }
}

/// Seconds until `source` may try again, when it is past its limit now
/// (checked before costly work, such as verifying a password).
pub(crate) fn limited(app: &App, source: &str) -> Option<u64> {
    app.auth_failures.limited(source, now_ms())
}

/// `rate_limited` for a source past its failed-authentication limit.
pub(crate) fn rate_limited(retry_after_s: u64) -> AppError {
    AppError::new(
        crate::ErrorCode::RateLimited,
        format!("too many failed authentications from this address; retry in {retry_after_s} s"),
    )
    .with_retry_after(retry_after_s)
}

/// Writes the audit entries of the failed-authentication windows that have
/// closed (every window, with `all`: at shutdown, and in tests).
pub async fn flush_failures(app: &App, all: bool) {
    let closed = app.auth_failures.drain(now_ms(), all);
    audit_failures(app, closed).await;
}

async fn audit_failures(app: &App, closed: Vec<Closed>) {
    for c in closed {
        app.audit_event(
            None,
            c.tenant.as_deref(),
            "auth.failed",
            &c.source,
            "denied",
            "-",
            c.details,
        )
        .await;
    }
}

/// The permissions the given (role, path prefix) pairs carry in a tenant;
/// an unknown custom role carries none.
pub(crate) async fn grants_of(
    app: &App,
    tenant: &str,
    roles: impl Iterator<Item = (String, String)>,
) -> AppResult<Vec<Grant>> {
    let mut grants = Vec::new();
    let mut custom = None;
    for (role, path_prefix) in roles {
        let permissions: Vec<Permission> = match builtin_role(&role) {
            Some(p) => p.to_vec(),
            None => {
                if custom.is_none() {
                    custom = Some(app.store.roles(tenant).await?);
                }
                match custom
                    .as_ref()
                    .and_then(|roles| roles.iter().find(|r| r.name == role))
                {
                    Some(r) => crate::roles::decoded(r)?,
                    // A binding to a role deleted since carries nothing.
                    None => Vec::new(),
                }
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
pub(crate) async fn person_grants(app: &App, tenant: &str, person: &str) -> AppResult<Vec<Grant>> {
    if let Some(token) = app.store.token(tenant, person).await? {
        if !token.is_active(now_ms()) {
            return Ok(Vec::new());
        }
        let roles = app.store.bindings(tenant, &token.id).await?;
        return grants_of(
            app,
            tenant,
            roles.into_iter().map(|b| (b.role, b.path_prefix)),
        )
        .await;
    }
    match app.store.user(tenant, person).await? {
        Some(user) if user.disabled_at.is_none() => {
            let roles = app.store.user_roles(tenant, &user.id).await?;
            grants_of(app, tenant, roles.into_iter()).await
        }
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_256_bit_hex() {
        let s = generate_token();
        assert!(well_formed(&s), "{s}");
        assert_ne!(generate_token(), s);
        assert!(!well_formed("ctk_abc"));
        assert!(!well_formed(&s.replacen("ctk_", "xyz_", 1)));
        assert_eq!(hash_token(&s).len(), 64);
        assert_eq!(hash_token(&s), hash_token(&s));
    }
}
