//! Embed sessions: the host product's backend mints a one-time code for one
//! of its end users and a folder; the embedded editor exchanges it, once,
//! for a short-lived token scoped to that folder. The end user appears in
//! the audit log and on runs as `embed:<id>`, the id the host product gave.

use citadel_store::{EmbedCode, NewToken, TokenOrigin, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::authn::{generate_token, hash_token};
use crate::roles::role_permissions;
use crate::{App, AppError, AppResult, Caller};

/// How long a code may wait to be exchanged: long enough to load a page.
pub const CODE_MS: i64 = 120_000;
/// A session's default lifetime, and the longest one.
pub const DEFAULT_SESSION_S: u64 = 900;
pub const MAX_SESSION_S: u64 = 3_600;
/// The longest end-user id the host product may give.
pub const MAX_END_USER: usize = 128;

/// What an embed session may hold: working on scripts in its folder and
/// the capabilities a developer grants them, never reviewing (its person
/// is the session, so a new session would be a new reviewer) nor
/// administering.
const EMBEDDABLE: &[Permission] = &[
    Permission::ScriptRead,
    Permission::ScriptWrite,
    Permission::ScriptRun,
    Permission::SecretRead,
    Permission::KvRead,
    Permission::KvWrite,
    Permission::DatasourceRead,
];

/// A session to mint.
pub struct EmbedRequest {
    /// The host product's id for its end user.
    pub user: String,
    /// The folder the session may act in (`customers/42/`).
    pub folder: String,
    /// The role it holds there (default `developer`).
    pub role: String,
    pub session_seconds: Option<u64>,
    /// Platform admins: the tenant, by name.
    pub tenant: Option<String>,
}

/// A minted code, shown once.
pub struct EmbedOffer {
    /// The tenant's name (its page is `/embed/{tenant}`).
    pub tenant: String,
    pub code: String,
    pub code_expires_at: i64,
    pub session_seconds: u64,
}

fn checked_end_user(user: &str) -> AppResult<()> {
    if user.is_empty()
        || user.len() > MAX_END_USER
        || !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@:+-".contains(&b))
    {
        return Err(AppError::invalid(format!(
            "user must be 1 to {MAX_END_USER} letters, digits or `._@:+-`"
        )));
    }
    Ok(())
}

/// Mints a one-time code for an embed session. A tenant's caller needs
/// `token.write` in the folder and can hand out only what it holds there;
/// the tenant must have configured `embed.origins`.
pub async fn create_session(
    app: &App,
    caller: &Caller,
    req: &EmbedRequest,
) -> AppResult<EmbedOffer> {
    checked_end_user(&req.user)?;
    citadel_scripts::validate_folder(&req.folder)
        .map_err(|e| AppError::invalid(format!("folder: {e}")))?;
    let session_seconds = req.session_seconds.unwrap_or(DEFAULT_SESSION_S);
    if session_seconds == 0 || session_seconds > MAX_SESSION_S {
        return Err(AppError::invalid(format!(
            "session_seconds must be 1..={MAX_SESSION_S}"
        )));
    }
    let (tenant, tenant_name) = if caller.principal.is_platform_admin() {
        let Some(name) = &req.tenant else {
            return Err(AppError::invalid("a platform admin names the tenant"));
        };
        match app.store.tenant_by_name(name).await? {
            Some(t) => (t.id, t.name),
            None => return Err(AppError::not_found(format!("tenant `{name}` not found"))),
        }
    } else {
        if req.tenant.is_some() {
            return Err(AppError::invalid(
                "tenant is for platform admins; a tenant's token mints for its own tenant",
            ));
        }
        let id = caller
            .tenant_with(app, Permission::TokenWrite, Some(&req.folder))
            .await?;
        let name = app
            .store
            .tenant(&id)
            .await?
            .map(|t| t.name)
            .ok_or_else(|| AppError::not_found("the caller's tenant no longer exists"))?;
        (id, name)
    };
    let Some(permissions) = role_permissions(app.store.as_ref(), &tenant, &req.role).await? else {
        return Err(AppError::invalid(format!("unknown role `{}`", req.role)));
    };
    if let Some(p) = permissions.iter().find(|p| !EMBEDDABLE.contains(p)) {
        return Err(AppError::invalid(format!(
            "role `{}` holds `{}`, which an embed session may not (only {})",
            req.role,
            p.as_str(),
            EMBEDDABLE
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !caller.principal.is_platform_admin()
        && let Some(missing) = permissions
            .iter()
            .find(|p| !caller.principal.allows(**p, Some(&req.folder)))
    {
        return Err(AppError::forbidden(*missing));
    }
    let settings = app.engine()?.settings(&tenant).await?;
    if settings.embed.as_ref().is_none_or(|e| e.origins.is_empty()) {
        return Err(AppError::invalid(
            "no origin may embed this tenant's editor: set `embed.origins` in PUT /v1/settings first",
        ));
    }
    let code = generate_token().replacen("ctk_", "cem_", 1);
    let now = now_ms();
    let row = EmbedCode {
        code_hash: hash_token(&code),
        tenant_id: tenant.clone(),
        end_user: format!("embed:{}", req.user),
        folder: req.folder.clone(),
        role: req.role.clone(),
        session_ms: (session_seconds as i64) * 1000,
        created_by: caller.principal.token_id.clone(),
        created_at: now,
        expires_at: now + CODE_MS,
    };
    app.store.put_embed_code(&row).await?;
    caller
        .record_change(
            app,
            &tenant,
            "embed.session_create",
            &row.end_user,
            json!({ "folder": req.folder, "role": req.role, "session_seconds": session_seconds }),
        )
        .await?;
    Ok(EmbedOffer {
        tenant: tenant_name,
        code,
        code_expires_at: row.expires_at,
        session_seconds,
    })
}

/// An opened embed session.
pub struct EmbedSession {
    /// A bearer token for the session; shown once.
    pub token: String,
    pub expires_at: i64,
    pub tenant: String,
    pub folder: String,
    pub end_user: String,
    pub settings: citadel_scripts::EmbedSettings,
}

/// Exchanges a code for its session's token: once, before the code
/// expires. Any other code answers `unauthorized` and counts as a failed
/// authentication of `source`.
pub async fn exchange(
    app: &App,
    code: &str,
    tenant_name: &str,
    source: &str,
    request_id: &str,
) -> AppResult<EmbedSession> {
    if crate::authn::limited(app, source).is_some() {
        return Err(crate::authn::failed(app, source, "invalid embed code", None).await);
    }
    let now = now_ms();
    let taken = if code.len() == 68 && code.starts_with("cem_") {
        app.store.take_embed_code(&hash_token(code), now).await?
    } else {
        None
    };
    let Some(c) = taken else {
        return Err(crate::authn::failed(app, source, "invalid embed code", None).await);
    };
    // A code opens a session only on its own tenant's page (whose framing
    // policy names that tenant's origins).
    let page_tenant = app.store.tenant_by_name(tenant_name).await?;
    if page_tenant.as_ref().map(|t| t.id.as_str()) != Some(c.tenant_id.as_str()) {
        return Err(crate::authn::failed(app, source, "invalid embed code", None).await);
    }
    let secret = generate_token();
    let expires_at = now + c.session_ms;
    let token = app
        .store
        .create_token_by(
            &NewToken {
                tenant_id: Some(c.tenant_id.clone()),
                user_id: None,
                name: c.end_user.clone(),
                hash: hash_token(&secret),
                expires_at: Some(expires_at),
                role: Some((c.role.clone(), c.folder.clone())),
            },
            &TokenOrigin {
                created_by: Some(c.created_by.clone()),
                person: None,
                end_user: Some(c.end_user.clone()),
            },
        )
        .await?;
    app.record(
        None,
        Some(&c.tenant_id),
        "embed.session_open",
        &c.end_user,
        "ok",
        request_id,
        json!({ "token_id": token.id, "folder": c.folder, "role": c.role }),
    )
    .await?;
    let settings = app
        .engine()?
        .settings(&c.tenant_id)
        .await?
        .embed
        .clone()
        .unwrap_or_default();
    Ok(EmbedSession {
        token: secret,
        expires_at,
        // Checked above to be the code's tenant.
        tenant: tenant_name.to_owned(),
        folder: c.folder,
        end_user: c.end_user,
        settings,
    })
}

/// The origins that may frame a tenant's embedded editor (by tenant name;
/// none for an unknown tenant or one without embed settings).
pub async fn frame_origins(app: &App, tenant_name: &str) -> AppResult<Vec<String>> {
    let Some(t) = app.store.tenant_by_name(tenant_name).await? else {
        return Ok(Vec::new());
    };
    Ok(app
        .engine()?
        .settings(&t.id)
        .await?
        .embed
        .as_ref()
        .map(|e| {
            e.origins
                .iter()
                .filter(|o| citadel_scripts::is_origin(o))
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}
