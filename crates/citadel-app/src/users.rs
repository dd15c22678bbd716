//! Users: people who log in with a password (argon2id) for a session token
//! carrying their roles; created with one role, listed, disabled.

use citadel_store::{NewToken, NewUser, RoleBinding, Token, User, new_id, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::access::{BUILTIN_ROLES, Principal};
use crate::authn::{self, generate_token, hash_token};
use crate::roles::role_permissions;
use crate::tenants::validate_path_prefix;
use crate::{App, AppError, AppResult, Caller, ErrorCode};

/// How long a login's session token lives.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// The longest password accepted, in bytes (argon2 hashes whatever it is
/// given; a megabyte of password would cost the server for nothing).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes a password with argon2id (default parameters) and a random salt.
pub fn hash_password(password: &str) -> AppResult<String> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(AppError::internal)?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AppError::internal)?
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
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// Usernames: 1-64 of a-z, 0-9, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> AppResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "usernames are 1-64 of a-z, 0-9, `.`, `_`, `-` and `@`",
        ))
    }
}

/// A user to create, with its one role.
pub struct NewUserRequest<'a> {
    pub tenant_id: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub role: &'a str,
    /// `""` for the whole tenant, else a folder such as `billing/`.
    pub path_prefix: &'a str,
}

/// Creates a user with one role; like tokens, `actor` (`None` for an
/// operator's command) can only hand out what it holds itself.
pub async fn create(
    app: &App,
    actor: Option<&Principal>,
    req: &NewUserRequest<'_>,
    request_id: &str,
) -> AppResult<User> {
    validate_username(req.username)?;
    validate_path_prefix(req.path_prefix)?;
    if req.password.chars().count() < 12 || req.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid("passwords are 12 to 1024 characters"));
    }
    let Some(permissions) = role_permissions(app.store.as_ref(), req.tenant_id, req.role).await?
    else {
        return Err(AppError::invalid(format!(
            "unknown role `{}` (built-in: {})",
            req.role,
            BUILTIN_ROLES.join(", ")
        )));
    };
    if let Some(actor) = actor {
        let scope = (!req.path_prefix.is_empty()).then_some(req.path_prefix);
        if let Some(missing) = permissions.iter().find(|p| !actor.allows(**p, scope)) {
            return Err(AppError::forbidden(*missing));
        }
    }
    let password = req.password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(AppError::internal)??;
    let user = app
        .store
        .create_user(&NewUser {
            tenant_id: req.tenant_id.to_owned(),
            username: req.username.to_owned(),
            password_hash,
            roles: vec![(req.role.to_owned(), req.path_prefix.to_owned())],
        })
        .await?;
    let details =
        json!({ "username": req.username, "role": req.role, "path_prefix": req.path_prefix });
    app.record(
        actor,
        Some(req.tenant_id),
        "user.create",
        &user.id,
        "ok",
        request_id,
        details,
    )
    .await?;
    Ok(user)
}

/// A user the caller creates in its tenant.
pub struct NewTenantUser {
    pub username: String,
    pub password: String,
    pub role: String,
    pub path_prefix: String,
}

/// Creates a user in the caller's tenant.
pub async fn create_in_tenant(app: &App, caller: &Caller, body: &NewTenantUser) -> AppResult<User> {
    let scope = (!body.path_prefix.is_empty()).then_some(body.path_prefix.as_str());
    let tenant = caller
        .tenant_with(app, Permission::UserWrite, scope)
        .await?;
    let req = NewUserRequest {
        tenant_id: &tenant,
        username: &body.username,
        password: &body.password,
        role: &body.role,
        path_prefix: &body.path_prefix,
    };
    create(app, Some(&caller.principal), &req, &caller.request_id).await
}

/// The users of the caller's tenant.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<User>> {
    let tenant = caller.tenant_with(app, Permission::UserRead, None).await?;
    Ok(app.store.list_users(&tenant).await?)
}

/// Disables a user of the caller's tenant and revokes its sessions.
pub async fn disable(app: &App, caller: &Caller, id: &str) -> AppResult<()> {
    let tenant = caller.tenant_with(app, Permission::UserWrite, None).await?;
    if !app.store.disable_user(&tenant, id, now_ms()).await? {
        return Err(AppError::not_found(format!("user `{id}` not found")));
    }
    app.forget_principals();
    caller
        .record_change(app, &tenant, "user.disable", id, json!({}))
        .await
}

/// Credentials to log in with.
pub struct Login<'a> {
    pub tenant: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// Checks a user's password and issues a session token carrying the user's
/// roles, for [`SESSION_MS`]. Every failure answers the same `unauthorized`
/// (or `rate_limited` for a source past its limit, before any password
/// hash is computed, so guessing costs the server nothing more) and is
/// audited.
pub async fn login(
    app: &App,
    login: &Login<'_>,
    source: &str,
    request_id: &str,
) -> AppResult<(Token, String)> {
    if login.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid("passwords are at most 1024 bytes"));
    }
    if authn::limited(app, source).is_some() {
        return Err(authn::failed(app, source, "invalid credentials", None).await);
    }
    match check_and_open_session(app, login, request_id).await {
        Err(e) if e.code == ErrorCode::Unauthorized => {
            let answer = authn::failed(app, source, "invalid credentials", None).await;
            Err(if answer.code == ErrorCode::RateLimited {
                answer
            } else {
                e
            })
        }
        other => other,
    }
}

async fn check_and_open_session(
    app: &App,
    login: &Login<'_>,
    request_id: &str,
) -> AppResult<(Token, String)> {
    let tenant = app.store.tenant_by_name(login.tenant).await?;
    let user = match &tenant {
        Some(t) => app.store.user_by_name(&t.id, login.username).await?,
        None => None,
    };
    let hash = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let attempt = login.password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&attempt, &hash))
        .await
        .map_err(AppError::internal)?;
    let (Some(tenant), Some(user), true) =
        (tenant, user.filter(|u| u.disabled_at.is_none()), matches)
    else {
        let tenant_id = app
            .store
            .tenant_by_name(login.tenant)
            .await
            .ok()
            .flatten()
            .map(|t| t.id);
        app.audit_event(
            None,
            tenant_id.as_deref(),
            "auth.login_failed",
            login.username,
            "denied",
            request_id,
            json!({ "username": login.username }),
        )
        .await;
        return Err(AppError::unauthorized("invalid credentials"));
    };
    let roles = app.store.user_roles(&tenant.id, &user.id).await?;
    let secret = generate_token();
    let mut roles_iter = roles.into_iter();
    let token = app
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
        let binding = RoleBinding {
            id: new_id("rb"),
            tenant_id: tenant.id.clone(),
            token_id: token.id.clone(),
            role,
            path_prefix,
            created_at: now_ms(),
        };
        app.store.create_binding(&binding).await?;
    }
    app.record(
        None,
        Some(&tenant.id),
        "auth.login",
        &user.id,
        "ok",
        request_id,
        json!({ "username": login.username, "token": token.id }),
    )
    .await?;
    Ok((token, secret))
}
