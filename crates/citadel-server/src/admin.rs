//! Operations shared by the HTTP API and the `citadel admin` commands, so
//! both validate and audit the same way.

use citadel_store::{
    NewToken, NewUser, Store, StoreError, Tenant, Token, TokenOrigin, User, now_ms,
};
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
    // A minted token acts for the person behind the token that minted it.
    let origin = TokenOrigin {
        created_by: actor.map(|a| a.token_id.clone()),
        person: actor.map(|a| a.person.clone()),
    };
    let new = NewToken {
        user_id: None,
        tenant_id: req.tenant_id.map(str::to_owned),
        name: req.name.to_owned(),
        hash: hash_token(&secret),
        expires_at: req.expires_at,
        role,
    };
    let token = state.store.create_token_by(&new, &origin).await?;
    let details = json!({
        "name": req.name,
        "role": req.role,
        "path_prefix": req.path_prefix,
        "person": token.person,
    });
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

/// How long a login's session token lives.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// Hashes a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(ApiError::internal)?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(ApiError::internal)?
        .to_string())
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::password_hash::PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so a login for
/// an unknown name costs as much as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// Usernames: 1-64 of a-z, 0-9, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "usernames are 1-64 of a-z, 0-9, `.`, `_`, `-` and `@`",
        ))
    }
}

/// Creates a user with one role; like tokens, a principal can only hand out
/// what it holds itself.
// The user's fields plus who asks and the request id; a struct would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub async fn create_user(
    state: &AppState,
    actor: Option<&Principal>,
    tenant_id: &str,
    username: &str,
    password: &str,
    role: &str,
    path_prefix: &str,
    request_id: &str,
) -> Result<User, ApiError> {
    validate_username(username)?;
    validate_path_prefix(path_prefix)?;
    if password.chars().count() < 12 || password.len() > 1024 {
        return Err(ApiError::invalid("passwords are 12 to 1024 characters"));
    }
    let Some(permissions) = role_permissions(state.store.as_ref(), tenant_id, role).await? else {
        return Err(ApiError::invalid(format!(
            "unknown role `{role}` (built-in: {})",
            BUILTIN_ROLES.join(", ")
        )));
    };
    if let Some(actor) = actor {
        let scope = (!path_prefix.is_empty()).then_some(path_prefix);
        if let Some(missing) = permissions.iter().find(|p| !actor.allows(p, scope)) {
            return Err(ApiError::forbidden(missing));
        }
    }
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    let user = state
        .store
        .create_user(&NewUser {
            tenant_id: tenant_id.to_owned(),
            username: username.to_owned(),
            password_hash,
            roles: vec![(role.to_owned(), path_prefix.to_owned())],
        })
        .await?;
    let details = json!({ "username": username, "role": role, "path_prefix": path_prefix });
    state
        .record(
            actor,
            Some(tenant_id),
            "user.create",
            &user.id,
            "ok",
            request_id,
            details,
        )
        .await?;
    Ok(user)
}

/// Checks a user's password and issues a session token carrying the user's
/// roles. Every failure looks the same to the caller and is audited.
pub async fn login(
    state: &AppState,
    tenant_name: &str,
    username: &str,
    password: &str,
    request_id: &str,
) -> Result<(Token, String), ApiError> {
    let tenant = state.store.tenant_by_name(tenant_name).await?;
    let user = match &tenant {
        Some(t) => state.store.user_by_name(&t.id, username).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let attempt = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&attempt, &hash))
        .await
        .map_err(ApiError::internal)?;
    let (Some(tenant), Some(user), true) =
        (tenant, user.filter(|u| u.disabled_at.is_none()), matches)
    else {
        let tenant_id = state
            .store
            .tenant_by_name(tenant_name)
            .await
            .ok()
            .flatten()
            .map(|t| t.id);
        state
            .audit_event(
                None,
                tenant_id.as_deref(),
                "auth.login_failed",
                username,
                "denied",
                request_id,
                json!({ "username": username }),
            )
            .await;
        return Err(ApiError::unauthorized("invalid credentials"));
    };
    let roles = state.store.user_roles(&tenant.id, &user.id).await?;
    let secret = generate_token();
    let mut roles_iter = roles.into_iter();
    let token = state
        .store
        .create_token(&NewToken {
            user_id: Some(user.id.clone()),
            tenant_id: Some(tenant.id.clone()),
            name: format!("session:{}", user.username),
            hash: hash_token(&secret),
            expires_at: Some(now_ms() + SESSION_MS),
            role: roles_iter.next(),
        })
        .await?;
    for (role, path_prefix) in roles_iter {
        let binding = citadel_store::RoleBinding {
            id: citadel_store::new_id("rb"),
            tenant_id: tenant.id.clone(),
            token_id: token.id.clone(),
            role,
            path_prefix,
            created_at: now_ms(),
        };
        state.store.create_binding(&binding).await?;
    }
    state
        .record(
            None,
            Some(&tenant.id),
            "auth.login",
            &user.id,
            "ok",
            request_id,
            json!({ "username": username, "token": token.id }),
        )
        .await?;
    Ok((token, secret))
}
