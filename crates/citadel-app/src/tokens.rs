//! API tokens: created by an operator's command or by a principal (who can
//! only hand out what it holds itself), listed with their roles, revoked.

use std::collections::HashMap;

use citadel_store::{NewToken, Token, TokenOrigin, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::access::{BUILTIN_ROLES, Principal};
use crate::authn::{generate_token, hash_token};
use crate::roles::role_permissions;
use crate::tenants::{validate_name, validate_path_prefix};
use crate::{App, AppError, AppResult, Caller, ErrorCode};

/// The longest a token may live: ten years.
const MAX_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;

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
/// `actor` (`None` for an operator's command) can only hand out what it
/// holds itself; the new token acts for the person behind it.
pub async fn create(
    app: &App,
    actor: Option<&Principal>,
    req: &TokenRequest<'_>,
    request_id: &str,
) -> AppResult<(Token, String)> {
    validate_name("token name", req.name)?;
    validate_path_prefix(req.path_prefix)?;
    if req.expires_at.is_some_and(|e| e <= now_ms()) {
        return Err(AppError::invalid("expiry must be in the future"));
    }
    let role = match (req.tenant_id, req.role) {
        (Some(tenant), Some(role)) => {
            let Some(permissions) = role_permissions(app.store.as_ref(), tenant, role).await?
            else {
                return Err(AppError::invalid(format!(
                    "unknown role `{role}` (built-in: {})",
                    BUILTIN_ROLES.join(", ")
                )));
            };
            if let Some(actor) = actor {
                let scope = (!req.path_prefix.is_empty()).then_some(req.path_prefix);
                if let Some(missing) = permissions.iter().find(|p| !actor.allows(**p, scope)) {
                    return Err(AppError::forbidden(*missing));
                }
            }
            Some((role.to_owned(), req.path_prefix.to_owned()))
        }
        (Some(_), None) => return Err(AppError::invalid("a tenant token needs a role")),
        (None, Some(_)) => return Err(AppError::invalid("a platform-admin token has no role")),
        (None, None) => None,
    };
    let secret = generate_token();
    // A minted token acts for the person behind the token that minted it.
    let origin = TokenOrigin {
        created_by: actor.map(|a| a.token_id.clone()),
        person: actor.map(|a| a.person.clone()),
        end_user: None,
    };
    let new = NewToken {
        user_id: None,
        tenant_id: req.tenant_id.map(str::to_owned),
        name: req.name.to_owned(),
        hash: hash_token(&secret),
        expires_at: req.expires_at,
        role,
    };
    let token = app.store.create_token_by(&new, &origin).await?;
    let details = json!({
        "name": req.name,
        "role": req.role,
        "path_prefix": req.path_prefix,
        "person": token.person,
    });
    app.record(
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

/// A token the caller asks for in its tenant.
pub struct NewTenantToken {
    pub name: String,
    pub role: String,
    /// Scope the role to scripts below this folder (`""`: the tenant).
    pub path_prefix: String,
    pub expires_in_seconds: Option<u64>,
}

/// Creates a token in the caller's tenant. A principal whose role is
/// scoped to a folder may hand out tokens scoped within that folder; a
/// role carrying more than the caller holds is refused and audited.
pub async fn create_in_tenant(
    app: &App,
    caller: &Caller,
    body: &NewTenantToken,
) -> AppResult<(Token, String)> {
    let scope = (!body.path_prefix.is_empty()).then_some(body.path_prefix.as_str());
    let tenant = caller
        .tenant_with(app, Permission::TokenWrite, scope)
        .await?;
    let expires_at = match body.expires_in_seconds {
        Some(s) if s == 0 || s > MAX_LIFETIME_S => {
            return Err(AppError::invalid(
                "expires_in_seconds must be 1..=315360000",
            ));
        }
        Some(s) => Some(now_ms() + (s as i64) * 1000),
        None => None,
    };
    let req = TokenRequest {
        tenant_id: Some(&tenant),
        name: &body.name,
        role: Some(&body.role),
        path_prefix: &body.path_prefix,
        expires_at,
    };
    match create(app, Some(&caller.principal), &req, &caller.request_id).await {
        Err(e) if e.code == ErrorCode::Forbidden => {
            let permission = e.missing_permission().unwrap_or("").to_owned();
            app.audit_event(
                Some(&caller.principal),
                Some(&tenant),
                "permission.denied",
                "token.create",
                "denied",
                &caller.request_id,
                json!({ "permission": permission, "role": body.role }),
            )
            .await;
            Err(e)
        }
        other => other,
    }
}

/// A token with the roles it holds, by role then scope.
pub struct TokenRoles {
    pub token: Token,
    /// (role, path prefix) pairs, sorted.
    pub roles: Vec<(String, String)>,
}

/// The tokens of the caller's tenant with their roles (never their
/// secrets).
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<TokenRoles>> {
    let tenant = caller.tenant_with(app, Permission::TokenRead, None).await?;
    let mut roles: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for b in app.store.tenant_bindings(&tenant).await? {
        roles
            .entry(b.token_id)
            .or_default()
            .push((b.role, b.path_prefix));
    }
    Ok(app
        .store
        .list_tokens(&tenant)
        .await?
        .into_iter()
        .map(|token| {
            let mut roles = roles.remove(&token.id).unwrap_or_default();
            roles.sort();
            TokenRoles { token, roles }
        })
        .collect())
}

/// Revokes a token of the caller's tenant.
pub async fn revoke(app: &App, caller: &Caller, id: &str) -> AppResult<()> {
    let tenant = caller
        .tenant_with(app, Permission::TokenWrite, None)
        .await?;
    if !app.store.revoke_token(&tenant, id, now_ms()).await? {
        return Err(AppError::not_found(format!("token `{id}` not found")));
    }
    app.forget_principals();
    caller
        .record_change(app, &tenant, "token.revoke", id, json!({}))
        .await
}

/// Who the caller is, as a console shows it and decides which actions to
/// offer (the server still checks each one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    pub token_id: String,
    /// Who acts: the user behind a session, else the token.
    pub actor: String,
    /// The person authorship and review compare (a version's `author`).
    pub person: String,
    pub user_id: Option<String>,
    /// The session's user's name.
    pub username: Option<String>,
    /// `None` for a platform admin.
    pub tenant: Option<citadel_store::Tenant>,
    /// Every permission held, with the folder it is scoped to (empty:
    /// the whole tenant), sorted.
    pub grants: Vec<(String, String)>,
    /// True for a login session (which logging out revokes).
    pub session: bool,
}

/// The caller's identity and grants.
pub async fn whoami(app: &App, caller: &Caller) -> AppResult<WhoAmI> {
    let p = &caller.principal;
    let tenant = match &p.tenant_id {
        Some(id) => app.store.tenant(id).await?,
        None => None,
    };
    let mut grants: Vec<(String, String)> = p
        .grants
        .iter()
        .map(|g| (g.permission.as_str().to_owned(), g.path_prefix.clone()))
        .collect();
    grants.sort();
    grants.dedup();
    let username = match (&p.tenant_id, &p.user_id) {
        (Some(t), Some(u)) => app.store.user(t, u).await?.map(|u| u.username),
        _ => None,
    };
    Ok(WhoAmI {
        username,
        token_id: p.token_id.clone(),
        actor: p.actor().to_owned(),
        person: p.person.clone(),
        user_id: p.user_id.clone(),
        tenant,
        grants,
        session: p.user_id.is_some(),
    })
}

/// Ends the caller's login session: its token is revoked and audited.
/// An API token is not a session and stays valid (false): revoke it with
/// `DELETE /v1/tokens/{id}`.
pub async fn logout(app: &App, caller: &Caller) -> AppResult<bool> {
    let p = &caller.principal;
    let (Some(tenant), Some(_)) = (&p.tenant_id, &p.user_id) else {
        return Ok(false);
    };
    let revoked = app
        .store
        .revoke_token(tenant, &p.token_id, now_ms())
        .await?;
    app.forget_principals();
    if revoked {
        caller
            .record_change(app, tenant, "auth.logout", &p.token_id, json!({}))
            .await?;
    }
    Ok(revoked)
}
