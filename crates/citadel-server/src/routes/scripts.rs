//! `/v1/scripts`, `/v1/settings`, `/v1/templates`: scripts and their
//! versions, the approval workflow, rollback, the tenant's script settings,
//! and templates.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_analyzer::Language;
use citadel_app::scripts::{self, VersionOf};
use citadel_scripts::{Bump, CapabilitySpec, LimitOverrides, ReviewAction, TenantSettings};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::routes::parse_json;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(save_script, list_scripts))
        .routes(routes!(get_script))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(diff_versions))
        .routes(routes!(submit_version))
        .routes(routes!(approve_version))
        .routes(routes!(reject_version))
        .routes(routes!(rollback))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_templates))
        .routes(routes!(analyze_source))
}

/// A script: its name and which version is live.
#[derive(Serialize, ToSchema)]
pub(super) struct ScriptView {
    name: String,
    /// The live semantic version; none until a version goes live.
    live_version: Option<String>,
    /// Versions saved so far.
    versions: i64,
    created_at: i64,
    updated_at: i64,
}

/// One version of a script.
#[derive(Serialize, ToSchema)]
pub(super) struct VersionView {
    script: String,
    version: String,
    /// 1, 2, 3… in save order.
    seq: i64,
    /// SHA-256 of source, language, capabilities and limits.
    hash: String,
    #[schema(value_type = crate::openapi::Language)]
    language: String,
    #[schema(value_type = serde_json::Value)]
    capabilities: Value,
    #[schema(value_type = serde_json::Value)]
    limits: Value,
    /// The analyzer's findings at save time (after the tenant's policy).
    #[schema(value_type = Vec<serde_json::Value>)]
    diagnostics: Value,
    change_note: String,
    /// The person that saved it: a user id, or the root token of the chain
    /// that minted the saving token.
    author: String,
    #[schema(value_type = crate::openapi::ReviewState)]
    state: String,
    /// True for the version that runs.
    live: bool,
    /// The person that approved or rejected it.
    reviewed_by: Option<String>,
    review_reason: Option<String>,
    reviewed_at: Option<i64>,
    created_at: i64,
    /// Present when one version is fetched or saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

impl VersionView {
    pub(super) fn new(name: &str, v: VersionOf, with_source: bool) -> Self {
        let VersionOf { version: v, live } = v;
        VersionView {
            script: name.to_owned(),
            live,
            capabilities: parse_json(&v.capabilities),
            limits: parse_json(&v.limits),
            diagnostics: parse_json(&v.diagnostics),
            source: with_source.then_some(v.source),
            version: v.version,
            seq: v.seq,
            hash: v.hash,
            language: v.language.as_str().to_owned(),
            change_note: v.change_note,
            author: v.author,
            state: v.state.as_str().to_owned(),
            reviewed_by: v.reviewed_by,
            review_reason: v.review_reason,
            reviewed_at: v.reviewed_at,
            created_at: v.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveScript {
    /// A path such as `billing/on-paid`.
    name: String,
    source: String,
    /// `js` (default) or `ts`.
    #[serde(default = "default_language")]
    #[schema(value_type = crate::openapi::Language)]
    language: Language,
    /// The capabilities this version is granted (deny by default).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    capabilities: CapabilitySpec,
    /// Per-script limits (`timeout_ms`, `memory_mb`, `log_bytes`).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    limits: LimitOverrides,
    #[serde(default)]
    change_note: String,
    /// Which part of the semantic version to bump: `patch` (default),
    /// `minor` or `major`.
    #[serde(default)]
    #[schema(value_type = crate::openapi::Bump)]
    bump: Bump,
}

fn default_language() -> Language {
    Language::Js
}

/// Saves a new immutable version. Blocking analyzer findings reject the
/// save (422 `rejected`, with located diagnostics); identical content
/// returns the existing version (200); otherwise 201. Without required
/// approval the version goes live at once; with it, it starts as a draft.
#[utoipa::path(post, path = "/v1/scripts", request_body = SaveScript,
    responses((status = 201, body = VersionView), (status = 200, body = VersionView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_script(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<SaveScript>,
) -> ApiResult<(StatusCode, axum::Json<VersionView>)> {
    let name = body.name.clone();
    let save = scripts::SaveScript {
        name: body.name,
        source: body.source,
        language: body.language,
        capabilities: body.capabilities,
        limits: body.limits,
        change_note: body.change_note,
        bump: body.bump,
    };
    let saved = scripts::save(&state.app, &caller, save).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(VersionView::new(&name, saved.version, true)),
    ))
}

/// Lists the scripts the caller may read.
#[utoipa::path(get, path = "/v1/scripts", responses((status = 200, body = Vec<ScriptView>), (status = 403, body = ErrorBody)))]
async fn list_scripts(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<ScriptView>>> {
    let list = scripts::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(ScriptView::from).collect()))
}

impl From<scripts::ScriptSummary> for ScriptView {
    fn from(s: scripts::ScriptSummary) -> Self {
        ScriptView {
            name: s.script.name,
            live_version: s.live_version,
            versions: s.script.latest_seq,
            created_at: s.script.created_at,
            updated_at: s.script.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct ScriptDetail {
    #[serde(flatten)]
    script: ScriptView,
    /// The live version with its source.
    live: Option<VersionView>,
}

/// A script and its live version.
#[utoipa::path(get, path = "/v1/scripts/{name}", params(("name" = String, Path, description = "The script's name; `/` in it as %2F")),
    responses((status = 200, body = ScriptDetail), (status = 404, body = ErrorBody)))]
async fn get_script(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScriptDetail>> {
    let (script, live) = scripts::get(&state.app, &caller, &name).await?;
    Ok(axum::Json(ScriptDetail::new(name, script, live)))
}

impl ScriptDetail {
    pub(super) fn new(
        name: String,
        script: citadel_store::Script,
        live: Option<citadel_store::ScriptVersion>,
    ) -> Self {
        let live = live.map(|v| {
            let live = VersionOf {
                live: script.live_seq == Some(v.seq),
                version: v,
            };
            VersionView::new(&name, live, true)
        });
        ScriptDetail {
            script: ScriptView {
                live_version: live.as_ref().map(|v| v.version.clone()),
                versions: script.latest_seq,
                created_at: script.created_at,
                updated_at: script.updated_at,
                name,
            },
            live,
        }
    }
}

/// Every version of a script, oldest first (without sources).
#[utoipa::path(get, path = "/v1/scripts/{name}/versions", params(("name" = String, Path)),
    responses((status = 200, body = Vec<VersionView>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    let versions = scripts::versions(&state.app, &caller, &name).await?;
    Ok(axum::Json(
        versions
            .into_iter()
            .map(|v| VersionView::new(&name, v, false))
            .collect(),
    ))
}

/// One version with its source.
#[utoipa::path(get, path = "/v1/scripts/{name}/versions/{version}", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = scripts::version(&state.app, &caller, &name, &version).await?;
    Ok(axum::Json(VersionView::new(&name, v, true)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    pub(super) from: String,
    pub(super) to: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Diff {
    from: String,
    to: String,
    /// A unified line diff of the sources; empty when they are equal.
    diff: String,
    capabilities_changed: bool,
    limits_changed: bool,
}

/// The difference between two versions.
#[utoipa::path(get, path = "/v1/scripts/{name}/diff", params(("name" = String, Path), DiffQuery),
    responses((status = 200, body = Diff), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn diff_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Diff>> {
    let Query(q) = query?;
    let d = scripts::diff(&state.app, &caller, &name, &q.from, &q.to).await?;
    Ok(axum::Json(Diff::from(d)))
}

impl From<scripts::VersionDiff> for Diff {
    fn from(d: scripts::VersionDiff) -> Self {
        Diff {
            from: d.from,
            to: d.to,
            diff: d.diff,
            capabilities_changed: d.capabilities_changed,
            limits_changed: d.limits_changed,
        }
    }
}

async fn review(
    state: &AppState,
    caller: &citadel_app::Caller,
    name: &str,
    version: &str,
    action: ReviewAction,
    reason: Option<&str>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = scripts::review(&state.app, caller, name, version, action, reason).await?;
    Ok(axum::Json(VersionView::new(name, v, false)))
}

/// Submits a draft for review.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/submit", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn submit_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    review(&state, &caller, &name, &version, ReviewAction::Submit, None).await
}

/// Approves a submitted version (not your own); it goes live.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/approve", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    review(
        &state,
        &caller,
        &name,
        &version,
        ReviewAction::Approve,
        None,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Rejection {
    pub(super) reason: String,
}

/// Rejects a submitted version (not your own), with a reason.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/reject", params(("name" = String, Path), ("version" = String, Path)),
    request_body = Rejection,
    responses((status = 200, body = VersionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Rejection>,
) -> ApiResult<axum::Json<VersionView>> {
    review(
        &state,
        &caller,
        &name,
        &version,
        ReviewAction::Reject,
        Some(&body.reason),
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    pub(super) version: String,
}

/// Makes an earlier approved version live again. Where approval is
/// required this takes `script.approve`, else `script.write`.
#[utoipa::path(post, path = "/v1/scripts/{name}/rollback", params(("name" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = scripts::rollback(&state.app, &caller, &name, &body.version).await?;
    Ok(axum::Json(VersionView::new(&name, v, false)))
}

/// The tenant's script settings.
#[utoipa::path(get, path = "/v1/settings", responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn get_settings(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<TenantSettings>> {
    Ok(axum::Json(scripts::settings(&state.app, &caller).await?))
}

/// Replaces the tenant's script settings: approval, default limits (within
/// the platform maxima), analyzer policy.
#[utoipa::path(put, path = "/v1/settings", request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_settings(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<TenantSettings>,
) -> ApiResult<axum::Json<TenantSettings>> {
    Ok(axum::Json(
        scripts::put_settings(&state.app, &caller, body).await?,
    ))
}

#[derive(Serialize, ToSchema)]
struct TemplateView {
    name: String,
    description: String,
    #[schema(value_type = crate::openapi::Language)]
    language: String,
    #[schema(value_type = serde_json::Value)]
    capabilities: Value,
    source: String,
}

/// Built-in templates to start a script from.
#[utoipa::path(get, path = "/v1/templates", responses((status = 200, body = Vec<TemplateView>)))]
async fn list_templates(_caller: Authed) -> axum::Json<Vec<TemplateView>> {
    axum::Json(
        scripts::templates()
            .iter()
            .map(|t| TemplateView {
                name: t.name.into(),
                description: t.description.into(),
                language: t.language.into(),
                capabilities: parse_json(t.capabilities),
                source: t.source.into(),
            })
            .collect(),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AnalyzeBody {
    /// The script the source is for: the right to save is checked there
    /// (else anywhere in the tenant).
    name: Option<String>,
    source: String,
    /// `js` (default), `ts` or `workflow`.
    #[serde(default = "default_language")]
    #[schema(value_type = crate::openapi::Language)]
    language: Language,
}

/// One finding, at its 1-based line and column in the source.
#[derive(Serialize, ToSchema)]
struct DiagnosticView {
    /// The rule that fired, e.g. `no-eval`; `syntax` for parse errors.
    rule: String,
    /// `error` (blocks a save), `warning` or `info`.
    severity: String,
    message: String,
    line: u32,
    column: u32,
}

#[derive(Serialize, ToSchema)]
struct AnalysisView {
    diagnostics: Vec<DiagnosticView>,
    /// True when saving this source would be refused (422 `rejected`).
    blocked: bool,
}

/// Analyzes a source as a save would, under the tenant's policy, and saves
/// nothing: the editor's diagnostics as one types.
#[utoipa::path(post, path = "/v1/scripts:analyze", request_body = AnalyzeBody,
    responses((status = 200, body = AnalysisView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn analyze_source(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<AnalyzeBody>,
) -> ApiResult<axum::Json<AnalysisView>> {
    let found = scripts::analyze(
        &state.app,
        &caller,
        body.name.as_deref(),
        &body.source,
        body.language,
    )
    .await?;
    Ok(axum::Json(AnalysisView {
        blocked: found.blocked,
        diagnostics: found
            .diagnostics
            .into_iter()
            .map(|d| DiagnosticView {
                severity: serde_json::to_value(d.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                rule: d.rule,
                message: d.message,
                line: d.line,
                column: d.column,
            })
            .collect(),
    }))
}
