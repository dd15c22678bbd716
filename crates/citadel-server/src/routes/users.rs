//! `/v1/users` and `/v1/login`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use citadel_app::users::{self, Login, NewTenantUser};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authed, Source};
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(disable_user))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(whoami))
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
    Authed(caller): Authed,
    ApiJson(body): ApiJson<NewUserBody>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let new = NewTenantUser {
        username: body.username,
        password: body.password,
        role: body.role,
        path_prefix: body.path_prefix,
    };
    let user = users::create_in_tenant(&state.app, &caller, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// Lists the users of the caller's tenant.
#[utoipa::path(get, path = "/v1/users", responses((status = 200, body = Vec<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    let list = users::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(UserView::from).collect()))
}

/// Disables a user of the caller's tenant and revokes its sessions.
#[utoipa::path(delete, path = "/v1/users/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_user(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    users::disable(&state.app, &caller, &id).await?;
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
    Source(source): Source,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<axum::Json<Session>> {
    let request_id = headers
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let credentials = Login {
        tenant: &body.tenant,
        username: &body.username,
        password: &body.password,
    };
    let (token, secret) = users::login(&state.app, &credentials, &source, request_id).await?;
    Ok(axum::Json(Session {
        token_id: token.id,
        token: secret,
        expires_at: token.expires_at,
    }))
}

/// Ends the caller's login session.
#[derive(Serialize, ToSchema)]
struct LoggedOut {
    /// True when a session token was revoked; false for an API token,
    /// which stays valid (revoke it with `DELETE /v1/tokens/{id}`).
    revoked: bool,
}

/// Logs out: revokes the caller's session token.
#[utoipa::path(post, path = "/v1/logout",
    responses((status = 200, body = LoggedOut), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<LoggedOut>> {
    let revoked = citadel_app::tokens::logout(&state.app, &caller).await?;
    Ok(axum::Json(LoggedOut { revoked }))
}

/// The caller's tenant.
#[derive(Serialize, ToSchema)]
struct TenantRef {
    id: String,
    name: String,
}

/// A permission held, in a folder (empty: the whole tenant).
#[derive(Serialize, ToSchema)]
struct GrantView {
    permission: String,
    path_prefix: String,
}

/// Who the caller is.
#[derive(Serialize, ToSchema)]
struct WhoAmIView {
    token_id: String,
    /// Who acts: the user behind a session, else the token.
    actor: String,
    /// The person a version's `author` and `reviewed_by` name: the user,
    /// else the root token of the chain that minted the token.
    person: String,
    user_id: Option<String>,
    username: Option<String>,
    /// None for a platform admin.
    tenant: Option<TenantRef>,
    grants: Vec<GrantView>,
    /// True for a login session.
    session: bool,
}

/// Who the caller is and what it may do (a console offers only those
/// actions; the server still checks each).
#[utoipa::path(get, path = "/v1/me",
    responses((status = 200, body = WhoAmIView), (status = 401, body = ErrorBody)))]
async fn whoami(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<WhoAmIView>> {
    let me = citadel_app::tokens::whoami(&state.app, &caller).await?;
    Ok(axum::Json(WhoAmIView {
        token_id: me.token_id,
        actor: me.actor,
        person: me.person,
        user_id: me.user_id,
        username: me.username,
        tenant: me.tenant.map(|t| TenantRef {
            id: t.id,
            name: t.name,
        }),
        grants: me
            .grants
            .into_iter()
            .map(|(permission, path_prefix)| GrantView {
                permission,
                path_prefix,
            })
            .collect(),
        session: me.session,
    }))
}
