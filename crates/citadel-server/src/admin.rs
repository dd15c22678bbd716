//! Operations shared by the HTTP API and the `citadel admin` commands, so
//! both validate and audit the same way.

use citadel_store::{NewToken, Store, StoreError, Tenant, Token, now_ms};
use serde_json::json;

use crate::AppState;
use crate::auth::{generate_token, hash_token};
use crate::error::ApiError;
use crate::rbac::{BUILTIN_ROLES, Principal, builtin_role};

/// Tenant names are URL-safe: lowercase letters, digits and dashes, 1–63
/// characters, starting with a letter or digit.
pub fn validate_tenant_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "tenant names are 1-63 of a-z, 0-9 and `-`, not starting with `-`",
        ))
    }
}

/// Role and token names: printable, 1–100 characters.
pub fn validate_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{what} must be 1-100 printable characters"
        )));
    }
    Ok(())
}

/// Path prefixes scope roles to folders: `""` or segments ending in `/`.
pub fn validate_path_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok = prefix.len() <= 200
        && prefix.ends_with('/')
        && !prefix.starts_with('/')
        && prefix.split('/').filter(|s| !s.is_empty()).all(|s| {
            s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "a path prefix is like `billing/` or `team/reports/`",
        ))
    }
}

pub async fn create_tenant(
    state: &AppState,
    actor: Option<&Principal>,
    name: &str,
    request_id: &str,
) -> Result<Tenant, ApiError> {
    validate_tenant_name(name)?;
    let tenant = state.store.create_tenant(name).await?;
    state
        .record(
            actor,
            Some(&tenant.id),
            "tenant.create",
            &tenant.name,
            "ok",
            request_id,
            json!({}),
        )
        .await?;
    Ok(tenant)
}

/// The permissions of a role of a tenant (built-in or custom).
pub async fn role_permissions(
    store: &dyn Store,
    tenant_id: &str,
    role: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    if let Some(p) = builtin_role(role) {
        return Ok(Some(p.iter().map(|s| (*s).to_owned()).collect()));
    }
    Ok(store
        .roles(tenant_id)
        .await?
        .into_iter()
        .find(|r| r.name == role)
        .map(|r| r.permissions))
}

/// A token to create.
pub struct TokenRequest<'a> {
    /// `None`: a platform-admin token.
    pub tenant_id: Option<&'a str>,
    pub name: &'a str,
    pub role: Option<&'a str>,
    pub path_prefix: &'a str,
    pub expires_at: Option<i64>,
}

/// Creates a token; returns it and its secret, which is never shown again.
/// A principal can only hand out what it holds itself.
pub async fn create_token(
    state: &AppState,
    actor: Option<&Principal>,
    req: &TokenRequest<'_>,
    request_id: &str,
) -> Result<(Token, String), ApiError> {
    validate_name("token name", req.name)?;
    validate_path_prefix(req.path_prefix)?;
    if req.expires_at.is_some_and(|e| e <= now_ms()) {
        return Err(ApiError::invalid("expiry must be in the future"));
    }
    let role = match (req.tenant_id, req.role) {
        (Some(tenant), Some(role)) => {
            let Some(permissions) = role_permissions(state.store.as_ref(), tenant, role).await?
            else {
                return Err(ApiError::invalid(format!(
                    "unknown role `{role}` (built-in: {})",
                    BUILTIN_ROLES.join(", ")
                )));
            };
            if let Some(actor) = actor {
                let scope = (!req.path_prefix.is_empty()).then_some(req.path_prefix);
                if let Some(missing) = permissions.iter().find(|p| !actor.allows(p, scope)) {
                    return Err(ApiError::forbidden(missing));
                }
            }
            Some((role.to_owned(), req.path_prefix.to_owned()))
        }
        (Some(_), None) => return Err(ApiError::invalid("a tenant token needs a role")),
        (None, Some(_)) => return Err(ApiError::invalid("a platform-admin token has no role")),
        (None, None) => None,
    };
    let secret = generate_token();
    let token = state
        .store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: req.tenant_id.map(str::to_owned),
            name: req.name.to_owned(),
            hash: hash_token(&secret),
            expires_at: req.expires_at,
            role,
        })
        .await?;
    let details = json!({ "name": req.name, "role": req.role, "path_prefix": req.path_prefix });
    state
        .record(
            actor,
            req.tenant_id,
            "token.create",
            &token.id,
            "ok",
            request_id,
            details,
        )
        .await?;
    Ok((token, secret))
}
