//! The routes. Each handler authenticates through `Authed`, states the
//! permission it needs, and audits what it changes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use citadel_store::{AuditQuery, CustomRole, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::admin::{self, TokenRequest};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::rbac::{BUILTIN_ROLES, PERMISSIONS, builtin_role, is_permission};

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "Citadel",
    description = "Runs tenants' code safely, fast, and on the record."
))]
struct ApiDoc;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(list_roles))
        .routes(routes!(put_role, delete_role))
        .routes(routes!(list_audit))
        .routes(routes!(create_user, list_users))
        .routes(routes!(disable_user))
        .routes(routes!(login))
        .merge(crate::scripts::routes())
        .merge(crate::runs::routes())
        .merge(crate::killswitch::routes())
        .merge(crate::jobs::routes())
        .merge(crate::events::routes())
        .merge(crate::schedules::routes())
}

/// A tenant.
#[derive(Serialize, ToSchema)]
struct Tenant {
    id: String,
    name: String,
    created_at: i64,
}

impl From<citadel_store::Tenant> for Tenant {
    fn from(t: citadel_store::Tenant) -> Self {
        Tenant {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

/// An API token (never its secret).
#[derive(Serialize, ToSchema)]
struct Token {
    id: String,
    name: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    /// The user a session token belongs to.
    user_id: Option<String>,
    /// The token that minted this one.
    created_by: Option<String>,
    /// The person it acts for (a user, or the root token of its chain).
    person: String,
}

impl From<citadel_store::Token> for Token {
    fn from(t: citadel_store::Token) -> Self {
        Token {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            user_id: t.user_id,
            created_by: t.created_by,
            person: t.person,
        }
    }
}

/// A role a token holds, in a folder (`""`: the whole tenant).
#[derive(Serialize, ToSchema)]
struct TokenRole {
    role: String,
    path_prefix: String,
}

/// A token as listed: with its roles and their scopes.
#[derive(Serialize, ToSchema)]
struct TokenView {
    #[serde(flatten)]
    token: Token,
    /// Its first role by name (tokens made by the API or `citadel admin`
    /// have one).
    role: Option<String>,
    /// That role's folder scope (`""`: the whole tenant).
    path_prefix: String,
    /// Every role it holds, by name (a session carries all of its user's).
    roles: Vec<TokenRole>,
}

/// One audit entry and its place in the hash chain.
#[derive(Serialize, ToSchema)]
struct AuditEntry {
    seq: i64,
    at: i64,
    tenant_id: Option<String>,
    principal: Option<String>,
    action: String,
    target: String,
    outcome: String,
    request_id: String,
    details: serde_json::Value,
    prev_hash: String,
    hash: String,
}

impl From<citadel_store::AuditEntry> for AuditEntry {
    fn from(a: citadel_store::AuditEntry) -> Self {
        let e = a.entry;
        AuditEntry {
            seq: a.seq,
            at: e.at,
            tenant_id: e.tenant_id,
            principal: e.principal,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            prev_hash: a.prev_hash,
            hash: a.hash,
        }
    }
}

/// The error body every failure has.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    code: String,
    message: String,
    /// Particulars of some errors (the missing permission, the field at
    /// fault, …); absent when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    details: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
struct Status {
    status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Status)))]
async fn health() -> axum::Json<Status> {
    axum::Json(Status {
        status: "ok".into(),
    })
}

#[derive(Serialize, ToSchema)]
struct Readiness {
    status: String,
    database: String,
    sandbox_hosts: Option<usize>,
}

/// Readiness: the database answers with current migrations and takes
/// writes, and the sandbox pool is up.
#[utoipa::path(get, path = "/ready", responses((status = 200, body = Readiness), (status = 503, body = ErrorBody)))]
async fn ready(State(state): State<AppState>) -> ApiResult<axum::Json<Readiness>> {
    let unavailable =
        |msg: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", msg);
    state
        .store
        .ready()
        .await
        .map_err(|e| unavailable(format!("database: {e}")))?;
    // Reads can succeed on a database that takes no writes (a read-only
    // file, a full disk): runs would then finish unrecorded.
    if let Some(engine) = &state.engine {
        engine
            .check_writable()
            .await
            .map_err(|e| unavailable(format!("database: not writable: {e}")))?;
    }
    let pool = state.pool.as_ref().map(|p| p.status());
    // Hosts start on demand, so none running is fine; none startable is not.
    if let Some(why) = pool
        .as_ref()
        .and_then(citadel_pool::PoolStatus::unavailable)
    {
        return Err(unavailable(why));
    }
    let hosts = pool.map(|s| s.hosts);
    let database = serde_json::to_value(state.store.backend())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(axum::Json(Readiness {
        status: "ready".into(),
        database,
        sandbox_hosts: hosts,
    }))
}

/// Prometheus metrics in the text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    // Queue depth by state, across every tenant and node.
    let jobs = match state.store.job_counts(None).await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count jobs for /metrics");
            Vec::new()
        }
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(&state, &jobs),
    )
        .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// Creates a tenant (platform admins only).
#[utoipa::path(post, path = "/v1/tenants", request_body = NewTenant,
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<NewTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    auth.require_platform_admin(&state).await?;
    let tenant =
        admin::create_tenant(&state, Some(&auth.principal), &body.name, &auth.request_id).await?;
    Ok((StatusCode::CREATED, axum::Json(tenant.into())))
}

/// Lists tenants (platform admins only).
#[utoipa::path(get, path = "/v1/tenants", responses((status = 200, body = Vec<Tenant>), (status = 403, body = ErrorBody)))]
async fn list_tenants(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<Tenant>>> {
    auth.require_platform_admin(&state).await?;
    Ok(axum::Json(
        state
            .store
            .list_tenants()
            .await?
            .into_iter()
            .map(Tenant::from)
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    role: String,
    /// Scope the role to scripts below this folder, e.g. `billing/`.
    #[serde(default)]
    path_prefix: String,
    /// Seconds until the token expires; none for no expiry.
    expires_in_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct CreatedToken {
    #[serde(flatten)]
    token: Token,
    role: String,
    path_prefix: String,
    /// The secret. It is shown this once and never stored.
    secret: String,
}

/// Creates an API token in the caller's tenant; its secret is shown once.
#[utoipa::path(post, path = "/v1/tokens", request_body = NewTokenBody,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    // A principal whose role is scoped to a folder may hand out tokens
    // scoped within that folder.
    let scope = (!body.path_prefix.is_empty()).then_some(body.path_prefix.as_str());
    let tenant = auth.tenant_with(&state, "token.write", scope).await?;
    let expires_at = match body.expires_in_seconds {
        Some(s) if s == 0 || s > 10 * 365 * 24 * 3600 => {
            return Err(ApiError::invalid(
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
    let (token, secret) =
        match admin::create_token(&state, Some(&auth.principal), &req, &auth.request_id).await {
            Err(e) if e.code == "forbidden" => {
                let permission = e
                    .details
                    .as_ref()
                    .and_then(|d| d["permission"].as_str())
                    .unwrap_or("")
                    .to_owned();
                state
                    .audit_event(
                        Some(&auth.principal),
                        Some(&tenant),
                        "permission.denied",
                        "token.create",
                        "denied",
                        &auth.request_id,
                        json!({ "permission": permission, "role": body.role }),
                    )
                    .await;
                return Err(e);
            }
            other => other?,
        };
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: token.into(),
            role: body.role,
            path_prefix: body.path_prefix,
            secret,
        }),
    ))
}

/// Lists the tokens of the caller's tenant with their names, roles and
/// scopes (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let tenant = auth.tenant_with(&state, "token.read", None).await?;
    let mut roles: std::collections::HashMap<String, Vec<TokenRole>> =
        std::collections::HashMap::new();
    for b in state.store.tenant_bindings(&tenant).await? {
        roles.entry(b.token_id).or_default().push(TokenRole {
            role: b.role,
            path_prefix: b.path_prefix,
        });
    }
    Ok(axum::Json(
        state
            .store
            .list_tokens(&tenant)
            .await?
            .into_iter()
            .map(|t| {
                let mut roles = roles.remove(&t.id).unwrap_or_default();
                roles.sort_by(|a, b| (&a.role, &a.path_prefix).cmp(&(&b.role, &b.path_prefix)));
                TokenView {
                    role: roles.first().map(|r| r.role.clone()),
                    path_prefix: roles
                        .first()
                        .map(|r| r.path_prefix.clone())
                        .unwrap_or_default(),
                    roles,
                    token: t.into(),
                }
            })
            .collect(),
    ))
}

/// Revokes a token of the caller's tenant.
#[utoipa::path(delete, path = "/v1/tokens/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant_with(&state, "token.write", None).await?;
    if !state.store.revoke_token(&tenant, &id, now_ms()).await? {
        return Err(ApiError::not_found(format!("token `{id}` not found")));
    }
    state.auth_cache.clear();
    auth.record_change(&state, &tenant, "token.revoke", &id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct RoleView {
    name: String,
    builtin: bool,
    permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct RoleList {
    roles: Vec<RoleView>,
    /// Every permission there is, with what it allows: `[name, description]`
    /// pairs. (Declared as string arrays: tuple schemas (`prefixItems`)
    /// defeat common client generators.)
    #[schema(value_type = Vec<Vec<String>>)]
    permissions: Vec<(String, String)>,
}

/// Lists the built-in roles and the tenant's own.
#[utoipa::path(get, path = "/v1/roles", responses((status = 200, body = RoleList), (status = 403, body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<RoleList>> {
    let tenant = auth.tenant_with(&state, "role.read", None).await?;
    let mut roles: Vec<RoleView> = BUILTIN_ROLES
        .iter()
        .map(|r| RoleView {
            name: (*r).into(),
            builtin: true,
            permissions: builtin_role(r)
                .unwrap_or(&[])
                .iter()
                .map(|p| (*p).into())
                .collect(),
        })
        .collect();
    roles.extend(
        state
            .store
            .roles(&tenant)
            .await?
            .into_iter()
            .map(|r| RoleView {
                name: r.name,
                builtin: false,
                permissions: r.permissions,
            }),
    );
    let permissions = PERMISSIONS
        .iter()
        .map(|(p, d)| ((*p).into(), (*d).into()))
        .collect();
    Ok(axum::Json(RoleList { roles, permissions }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    permissions: Vec<String>,
}

/// Creates or replaces a custom role of the caller's tenant.
#[utoipa::path(put, path = "/v1/roles/{name}", params(("name" = String, Path)), request_body = RoleBody,
    responses((status = 200, body = RoleView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_role(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<axum::Json<RoleView>> {
    let tenant = auth.tenant_with(&state, "role.write", None).await?;
    admin::validate_name("role name", &name)?;
    if builtin_role(&name).is_some() {
        return Err(ApiError::conflict(format!("`{name}` is a built-in role")));
    }
    if let Some(unknown) = body.permissions.iter().find(|p| !is_permission(p)) {
        return Err(ApiError::invalid(format!("unknown permission `{unknown}`")));
    }
    let role = CustomRole {
        tenant_id: tenant.clone(),
        name: name.clone(),
        permissions: body.permissions,
        created_at: now_ms(),
    };
    state.store.put_role(&role).await?;
    state.auth_cache.clear();
    auth.record_change(
        &state,
        &tenant,
        "role.put",
        &name,
        json!({ "permissions": role.permissions }),
    )
    .await?;
    Ok(axum::Json(RoleView {
        name: role.name,
        builtin: false,
        permissions: role.permissions,
    }))
}

/// Deletes a custom role of the caller's tenant.
#[utoipa::path(delete, path = "/v1/roles/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant_with(&state, "role.write", None).await?;
    if !state.store.delete_role(&tenant, &name).await? {
        return Err(ApiError::not_found(format!("role `{name}` not found")));
    }
    state.auth_cache.clear();
    auth.record_change(&state, &tenant, "role.delete", &name, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    action: Option<String>,
    principal: Option<String>,
    outcome: Option<String>,
    /// Entries older than this sequence number (the next page).
    before: Option<i64>,
    /// Page size, 1-1000 (default 50).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last one.
    next_before: Option<i64>,
}

/// Pages through the audit log, newest first: the caller's tenant, or
/// everything for a platform admin.
#[utoipa::path(get, path = "/v1/audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    auth: Authed,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<AuditPage>> {
    let Query(params) = params?;
    let tenant_id = if auth.principal.is_platform_admin() {
        None
    } else {
        auth.require(&state, "audit.read", None).await?;
        auth.principal.tenant_id.clone()
    };
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1-1000"));
    }
    let query = AuditQuery {
        tenant_id,
        action: params.action,
        principal: params.principal,
        outcome: params.outcome,
        before: params.before,
        limit,
    };
    let entries: Vec<AuditEntry> = state
        .store
        .audit_page(&query)
        .await?
        .into_iter()
        .map(AuditEntry::from)
        .collect();
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(axum::Json(AuditPage {
        entries,
        next_before,
    }))
}

/// A user (never its password hash).
#[derive(Serialize, ToSchema)]
struct UserView {
    id: String,
    username: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl From<citadel_store::User> for UserView {
    fn from(u: citadel_store::User) -> Self {
        UserView {
            id: u.id,
            username: u.username,
            created_at: u.created_at,
            disabled_at: u.disabled_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    /// 12 to 1024 characters; stored as an argon2id hash.
    password: String,
    role: String,
    #[serde(default)]
    path_prefix: String,
}

/// Creates a user in the caller's tenant.
#[utoipa::path(post, path = "/v1/users", request_body = NewUserBody,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let scope = (!body.path_prefix.is_empty()).then_some(body.path_prefix.as_str());
    let tenant = auth.tenant_with(&state, "user.write", scope).await?;
    let user = admin::create_user(
        &state,
        Some(&auth.principal),
        &tenant,
        &body.username,
        &body.password,
        &body.role,
        &body.path_prefix,
        &auth.request_id,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// Lists the users of the caller's tenant.
#[utoipa::path(get, path = "/v1/users", responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    let tenant = auth.tenant_with(&state, "user.read", None).await?;
    Ok(axum::Json(
        state
            .store
            .list_users(&tenant)
            .await?
            .into_iter()
            .map(UserView::from)
            .collect(),
    ))
}

/// Disables a user of the caller's tenant and revokes its sessions.
#[utoipa::path(delete, path = "/v1/users/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_user(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant_with(&state, "user.write", None).await?;
    if !state.store.disable_user(&tenant, &id, now_ms()).await? {
        return Err(ApiError::not_found(format!("user `{id}` not found")));
    }
    state.auth_cache.clear();
    auth.record_change(&state, &tenant, "user.disable", &id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    tenant: String,
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct Session {
    token_id: String,
    /// A bearer token carrying the user's roles until `expires_at`.
    token: String,
    expires_at: Option<i64>,
}

/// Logs a user in: a session token for 12 hours. Every failure answers the
/// same 401 and is audited.
#[utoipa::path(post, path = "/v1/login", request_body = LoginBody,
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    crate::throttle::Source(source): crate::throttle::Source,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<axum::Json<Session>> {
    let request_id = headers
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    if body.password.len() > 1024 {
        return Err(ApiError::invalid("passwords are at most 1024 bytes"));
    }
    // A source past its limit is refused before the password hash is
    // computed: guessing costs the server nothing more.
    if state.auth_failures.limited(&source, now_ms()).is_some() {
        return Err(state
            .auth_failed(&source, None, "invalid credentials")
            .await);
    }
    let (token, secret) = match admin::login(
        &state,
        &body.tenant,
        &body.username,
        &body.password,
        &request_id,
    )
    .await
    {
        Err(e) if e.code == "unauthorized" => {
            let answer = state
                .auth_failed(&source, None, "invalid credentials")
                .await;
            return Err(if answer.code == "rate_limited" {
                answer
            } else {
                e
            });
        }
        other => other?,
    };
    Ok(axum::Json(Session {
        token_id: token.id,
        token: secret,
        expires_at: token.expires_at,
    }))
}
