//! `/v1/tokens`: API tokens of the caller's tenant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use citadel_app::tokens::{self, NewTenantToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
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
    Authed(caller): Authed,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let request = NewTenantToken {
        name: body.name,
        role: body.role,
        path_prefix: body.path_prefix,
        expires_in_seconds: body.expires_in_seconds,
    };
    let (token, secret) = tokens::create_in_tenant(&state.app, &caller, &request).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: token.into(),
            role: request.role,
            path_prefix: request.path_prefix,
            secret,
        }),
    ))
}

/// Lists the tokens of the caller's tenant with their names, roles and
/// scopes (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let listed = tokens::list(&state.app, &caller).await?;
    Ok(axum::Json(
        listed
            .into_iter()
            .map(|t| {
                let roles: Vec<TokenRole> = t
                    .roles
                    .into_iter()
                    .map(|(role, path_prefix)| TokenRole { role, path_prefix })
                    .collect();
                TokenView {
                    role: roles.first().map(|r| r.role.clone()),
                    path_prefix: roles
                        .first()
                        .map(|r| r.path_prefix.clone())
                        .unwrap_or_default(),
                    roles,
                    token: t.token.into(),
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
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&state.app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
