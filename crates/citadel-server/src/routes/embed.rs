//! `/v1/embed`: sessions for the editor a host product embeds. The host's
//! backend mints a one-time code (`POST /v1/embed/sessions`) and puts it
//! in the fragment of the `/embed/{tenant}` URL it frames; the page
//! exchanges it once (`POST /v1/embed/exchange`) for a short-lived token.

use axum::extract::State;
use axum::http::StatusCode;
use citadel_app::embed::{self, EmbedRequest};
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
        .routes(routes!(create_session))
        .routes(routes!(exchange))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    /// The host product's id for its end user (letters, digits, `._@:+-`);
    /// the audit log names the end user `embed:<user>`.
    user: String,
    /// The folder the session may act in, ending in `/`.
    folder: String,
    /// The role it holds there: `developer` (default) or a custom role
    /// within script read/write/run and what developers grant.
    #[serde(default = "developer")]
    role: String,
    /// How long the session lasts once opened: 1–3600 s (default 900).
    session_seconds: Option<u64>,
    /// Platform admins only: the tenant, by name.
    tenant: Option<String>,
}

fn developer() -> String {
    "developer".to_owned()
}

#[derive(Serialize, ToSchema)]
struct SessionOffer {
    /// The one-time code, shown once. Exchanged by the embedded page.
    code: String,
    /// Frame this (after Citadel's base URL): the code rides in the
    /// fragment, which browsers never send to a server or in a referrer.
    path: String,
    /// The code is worthless after this (ms since the epoch).
    code_expires_at: i64,
    session_seconds: u64,
}

/// Mints an embed session for one end user and folder: a one-time code
/// valid for two minutes. Needs `token.write` in the folder (or a platform
/// admin naming the tenant), a role the caller could hand out, and the
/// tenant's `embed.origins`.
#[utoipa::path(post, path = "/v1/embed/sessions", request_body = SessionBody,
    responses((status = 201, body = SessionOffer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_session(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<SessionBody>,
) -> ApiResult<(StatusCode, axum::Json<SessionOffer>)> {
    let req = EmbedRequest {
        user: body.user,
        folder: body.folder,
        role: body.role,
        session_seconds: body.session_seconds,
        tenant: body.tenant,
    };
    let offer = embed::create_session(&state.app, &caller, &req).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionOffer {
            path: format!("/embed/{}#code={}", offer.tenant, offer.code),
            code: offer.code,
            code_expires_at: offer.code_expires_at,
            session_seconds: offer.session_seconds,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExchangeBody {
    code: String,
    /// The tenant of the page exchanging it: a code of another tenant is
    /// refused.
    tenant: String,
}

/// The embedded editor's look, as the tenant's settings give it.
#[derive(Serialize, ToSchema)]
struct ThemeView {
    accent: Option<String>,
    background: Option<String>,
    text: Option<String>,
    font: Option<String>,
    logo_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct OpenedSession {
    /// A bearer token for the session, shown once.
    token: String,
    expires_at: i64,
    tenant: String,
    folder: String,
    /// `embed:<user>`.
    end_user: String,
    /// Where the page may post what happened (saved, ran, submitted).
    origins: Vec<String>,
    theme: ThemeView,
}

/// Exchanges a one-time embed code for its session (once; an unknown,
/// used or expired code answers 401 and counts as a failed authentication).
#[utoipa::path(post, path = "/v1/embed/exchange", request_body = ExchangeBody,
    responses((status = 200, body = OpenedSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn exchange(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Source(source): Source,
    ApiJson(body): ApiJson<ExchangeBody>,
) -> ApiResult<axum::Json<OpenedSession>> {
    let request_id = headers
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let s = embed::exchange(&state.app, &body.code, &body.tenant, &source, request_id).await?;
    Ok(axum::Json(OpenedSession {
        token: s.token,
        expires_at: s.expires_at,
        tenant: s.tenant,
        folder: s.folder,
        end_user: s.end_user,
        origins: s.settings.origins,
        theme: ThemeView {
            accent: s.settings.theme.accent,
            background: s.settings.theme.background,
            text: s.settings.theme.text,
            font: s.settings.theme.font,
            logo_url: s.settings.theme.logo_url,
        },
    }))
}
