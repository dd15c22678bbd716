//! Scripts and their versions: save, list, fetch, diff, the approval
//! workflow (submit, approve, reject), rollback, the tenant's script
//! settings, and templates.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_analyzer::{Diagnostic, Language, MAX_SOURCE_BYTES, Severity};
use citadel_scripts::{
    Bump, CapabilitySpec, LimitOverrides, ReviewAction, ReviewError, SemVer, TEMPLATES,
    TenantSettings, VersionState, content_hash, unified_diff, validate_name,
};
use citadel_store::{NewVersion, SaveOutcome, ScriptVersion, VersionTransition, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::ErrorBody;
use crate::auth::{Authed, person_grants};
use crate::error::{ApiError, ApiResult, scope_list};
use crate::json::ApiJson;
use crate::rbac::{CapabilityNeed, Principal, capability_needs};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
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
}

/// A script: its name and which version is live.
#[derive(Serialize, ToSchema)]
pub(crate) struct ScriptView {
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
pub(crate) struct VersionView {
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

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl VersionView {
    fn new(name: &str, v: ScriptVersion, live_seq: Option<i64>, with_source: bool) -> Self {
        VersionView {
            script: name.to_owned(),
            live: live_seq == Some(v.seq),
            capabilities: parse_json(&v.capabilities),
            limits: parse_json(&v.limits),
            diagnostics: parse_json(&v.diagnostics),
            source: with_source.then_some(v.source),
            version: v.version,
            seq: v.seq,
            hash: v.hash,
            language: v.language,
            change_note: v.change_note,
            author: v.author,
            state: v.state,
            reviewed_by: v.reviewed_by,
            review_reason: v.review_reason,
            reviewed_at: v.reviewed_at,
            created_at: v.created_at,
        }
    }
}

/// Checks a script name from a path or body (400 with the reason).
pub(crate) fn checked_name(name: &str) -> ApiResult<()> {
    validate_name(name).map_err(|e| ApiError::invalid(e.to_string()))
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

fn language_tag(l: Language) -> &'static str {
    match l {
        Language::Js => "js",
        Language::Ts => "ts",
    }
}

const MAX_CHANGE_NOTE: usize = 4096;

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
    auth: Authed,
    ApiJson(body): ApiJson<SaveScript>,
) -> ApiResult<(StatusCode, axum::Json<VersionView>)> {
    let engine = state.engine()?;
    checked_name(&body.name)?;
    let tenant = auth
        .tenant_with(&state, "script.write", Some(&body.name))
        .await?;
    if body.source.len() > MAX_SOURCE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the source is larger than {MAX_SOURCE_BYTES} bytes"),
        ));
    }
    if body.change_note.len() > MAX_CHANGE_NOTE {
        return Err(ApiError::invalid(format!(
            "change_note is longer than {MAX_CHANGE_NOTE} bytes"
        )));
    }
    body.capabilities.validate().map_err(ApiError::invalid)?;
    if let Some(need) = auth
        .principal
        .missing_for_grant(&body.capabilities, &body.name)
    {
        let scopes = auth.principal.scopes_of(need.permission);
        return Err(refuse_grant(&state, &auth, &tenant, &body.name, need, &scopes, None).await);
    }
    engine
        .platform()
        .check(&body.limits)
        .map_err(|e| ApiError::invalid(format!("limits.{e}")))?;

    let settings = engine.settings(&tenant).await?;
    let diagnostics = settings
        .policy
        .apply(&engine.analyze(&body.source, body.language));
    if settings.policy.blocks(&diagnostics) {
        let blocking: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        let first = blocking.first().map_or(String::new(), |d| {
            format!(": {}:{}: {} [{}]", d.line, d.column, d.message, d.rule)
        });
        let rules: Vec<&str> = blocking.iter().map(|d| d.rule.as_str()).collect();
        state
            .audit_event(
                Some(&auth.principal),
                Some(&tenant),
                "script.save",
                &body.name,
                "rejected",
                &auth.request_id,
                json!({ "rules": rules }),
            )
            .await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            format!(
                "static analysis rejected the script ({} blocking finding{}){first}",
                blocking.len(),
                if blocking.len() == 1 { "" } else { "s" }
            ),
        )
        .with_details(json!({ "diagnostics": diagnostics })));
    }

    let language = language_tag(body.language);
    let needs_approval = settings.approval_required_for(&body.name);
    let new = NewVersion {
        tenant_id: tenant.clone(),
        name: body.name.clone(),
        hash: content_hash(&body.source, language, &body.capabilities, &body.limits),
        language: language.to_owned(),
        capabilities: serde_json::to_string(&body.capabilities).unwrap_or_default(),
        limits: serde_json::to_string(&body.limits).unwrap_or_default(),
        diagnostics: serde_json::to_string(&diagnostics).unwrap_or_default(),
        source: body.source,
        change_note: body.change_note,
        author: auth.principal.person.clone(),
        state: if needs_approval {
            VersionState::Draft
        } else {
            VersionState::Approved
        }
        .as_str()
        .to_owned(),
        make_live: !needs_approval,
    };
    let bump = body.bump;
    let next = move |latest: Option<&str>| SemVer::next(latest, bump).to_string();
    let outcome = state
        .store
        .save_version(&new, &next)
        .await
        .map_err(|e| match e {
            citadel_store::StoreError::Conflict(_) => {
                ApiError::conflict("another save of this script won the race; retry")
            }
            other => other.into(),
        })?;
    match outcome {
        SaveOutcome::Unchanged(v) => {
            let live = engine.store().script(&tenant, &body.name).await?;
            let live_seq = live.and_then(|s| s.live_seq);
            Ok((
                StatusCode::OK,
                axum::Json(VersionView::new(&body.name, v, live_seq, true)),
            ))
        }
        SaveOutcome::Created(v) => {
            engine.invalidate_live(&tenant, &body.name);
            auth.record_change(
                &state,
                &tenant,
                "script.save",
                &body.name,
                json!({ "version": v.version, "hash": v.hash, "state": v.state, "live": new.make_live }),
            )
            .await?;
            let live_seq = new.make_live.then_some(v.seq);
            let view = VersionView::new(&body.name, v, live_seq, true);
            let view = if needs_approval {
                view
            } else {
                VersionView { live: true, ..view }
            };
            Ok((StatusCode::CREATED, axum::Json(view)))
        }
    }
}

/// Lists the scripts the caller may read.
#[utoipa::path(get, path = "/v1/scripts", responses((status = 200, body = Vec<ScriptView>), (status = 403, body = ErrorBody)))]
async fn list_scripts(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<ScriptView>>> {
    let tenant = auth.tenant(&state).await?;
    let all = state.store.list_scripts(&tenant).await?;
    let mut out = Vec::with_capacity(all.len());
    let mut live_versions = Vec::new();
    for s in all {
        if !auth.principal.allows("script.read", Some(&s.name)) {
            continue;
        }
        live_versions.push((s.id.clone(), s.live_seq));
        out.push(s);
    }
    if out.is_empty() {
        auth.require_somewhere(&state, "script.read").await?;
    }
    let mut views = Vec::with_capacity(out.len());
    for s in out {
        let live_version = match s.live_seq {
            Some(_) => state
                .store
                .live_version(&tenant, &s.name)
                .await?
                .map(|(_, v)| v.version),
            None => None,
        };
        views.push(ScriptView {
            name: s.name,
            live_version,
            versions: s.latest_seq,
            created_at: s.created_at,
            updated_at: s.updated_at,
        });
    }
    Ok(axum::Json(views))
}

/// The caller's tenant and the script, once the caller holds `permission`
/// on it; 404 for a script the tenant does not have.
async fn script_with(
    state: &AppState,
    auth: &Authed,
    permission: &str,
    name: &str,
) -> ApiResult<(String, citadel_store::Script)> {
    checked_name(name)?;
    let tenant = auth.tenant_with(state, permission, Some(name)).await?;
    let script = state
        .store
        .script(&tenant, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("script `{name}` not found")))?;
    Ok((tenant, script))
}

async fn version_of(
    state: &AppState,
    tenant: &str,
    script: &citadel_store::Script,
    version: &str,
) -> ApiResult<ScriptVersion> {
    if SemVer::parse(version).is_none() {
        return Err(ApiError::invalid(format!(
            "`{version}` is not a version (MAJOR.MINOR.PATCH)"
        )));
    }
    state
        .store
        .version(tenant, &script.id, version)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("version {version} of `{}` not found", script.name))
        })
}

#[derive(Serialize, ToSchema)]
struct ScriptDetail {
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
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScriptDetail>> {
    let (tenant, script) = script_with(&state, &auth, "script.read", &name).await?;
    let live = state.store.live_version(&tenant, &name).await?;
    let live = live.map(|(_, v)| VersionView::new(&name, v, script.live_seq, true));
    Ok(axum::Json(ScriptDetail {
        script: ScriptView {
            live_version: live.as_ref().map(|v| v.version.clone()),
            versions: script.latest_seq,
            created_at: script.created_at,
            updated_at: script.updated_at,
            name,
        },
        live,
    }))
}

/// Every version of a script, oldest first (without sources).
#[utoipa::path(get, path = "/v1/scripts/{name}/versions", params(("name" = String, Path)),
    responses((status = 200, body = Vec<VersionView>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    let (tenant, script) = script_with(&state, &auth, "script.read", &name).await?;
    let versions = state.store.versions(&tenant, &script.id).await?;
    Ok(axum::Json(
        versions
            .into_iter()
            .map(|v| VersionView::new(&name, v, script.live_seq, false))
            .collect(),
    ))
}

/// One version with its source.
#[utoipa::path(get, path = "/v1/scripts/{name}/versions/{version}", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<AppState>,
    auth: Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let (tenant, script) = script_with(&state, &auth, "script.read", &name).await?;
    let v = version_of(&state, &tenant, &script, &version).await?;
    Ok(axum::Json(VersionView::new(
        &name,
        v,
        script.live_seq,
        true,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: String,
    to: String,
}

#[derive(Serialize, ToSchema)]
struct Diff {
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
    auth: Authed,
    Path(name): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Diff>> {
    let Query(q) = query?;
    let (tenant, script) = script_with(&state, &auth, "script.read", &name).await?;
    let from = version_of(&state, &tenant, &script, &q.from).await?;
    let to = version_of(&state, &tenant, &script, &q.to).await?;
    Ok(axum::Json(Diff {
        diff: unified_diff(
            &format!("{name}@{}", from.version),
            &from.source,
            &format!("{name}@{}", to.version),
            &to.source,
        ),
        capabilities_changed: from.capabilities != to.capabilities,
        limits_changed: from.limits != to.limits,
        from: from.version,
        to: to.version,
    }))
}

/// Refuses a grant that exceeds what its author may do: audited, and
/// answered 403 naming the capability, the permission it needs, and the
/// folders the author is confined to (if that is why).
async fn refuse_grant(
    state: &AppState,
    auth: &Authed,
    tenant: &str,
    target: &str,
    need: CapabilityNeed,
    scopes: &[&str],
    author: Option<&str>,
) -> ApiError {
    state
        .audit_event(
            Some(&auth.principal),
            Some(tenant),
            "permission.denied",
            target,
            "denied",
            &auth.request_id,
            json!({ "permission": need.permission, "capability": need.capability, "author": author }),
        )
        .await;
    let place = if need.tenant_wide {
        "across the tenant"
    } else {
        "on the script"
    };
    let who = match author {
        Some(a) => format!("its author (`{a}`)"),
        None => "this token".to_owned(),
    };
    let why = if scopes.is_empty() {
        format!("{who} does not hold it")
    } else {
        format!("{who} may only act on scripts under {}", scope_list(scopes))
    };
    let message = match author {
        Some(_) => format!(
            "the version grants `{}`, which needs permission `{}` {place}, and {why}",
            need.capability, need.permission
        ),
        None => format!(
            "granting `{}` needs permission `{}` {place}: {why}",
            need.capability, need.permission
        ),
    };
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).with_details(json!({
        "permission": need.permission,
        "capability": need.capability,
        "scopes": scopes,
        "author": author,
    }))
}

/// Before a version goes live by approval or rollback: its grant must not
/// exceed what its author (the person) may do now.
async fn author_may_grant(
    state: &AppState,
    auth: &Authed,
    tenant: &str,
    target: &str,
    v: &ScriptVersion,
) -> ApiResult<()> {
    let spec: CapabilitySpec = serde_json::from_str(&v.capabilities)
        .map_err(|e| ApiError::internal(format!("stored capabilities of {target}: {e}")))?;
    if capability_needs(&spec).is_empty() {
        return Ok(());
    }
    let author = Principal {
        token_id: v.author.clone(),
        person: v.author.clone(),
        user_id: None,
        tenant_id: Some(tenant.to_owned()),
        grants: person_grants(state, tenant, &v.author).await?,
    };
    let script = target.split_once('@').map_or(target, |(name, _)| name);
    match author.missing_for_grant(&spec, script) {
        None => Ok(()),
        Some(need) => {
            let scopes = author.scopes_of(need.permission);
            Err(refuse_grant(state, auth, tenant, target, need, &scopes, Some(&v.author)).await)
        }
    }
}

/// Applies a review action, auditing it (and a refused self-review).
async fn review(
    state: &AppState,
    auth: &Authed,
    name: &str,
    version: &str,
    action: ReviewAction,
    reason: Option<String>,
) -> ApiResult<axum::Json<VersionView>> {
    let permission = match action {
        ReviewAction::Submit => "script.write",
        ReviewAction::Approve | ReviewAction::Reject => "script.approve",
    };
    let (tenant, script) = script_with(state, auth, permission, name).await?;
    let v = version_of(state, &tenant, &script, version).await?;
    let current = VersionState::parse(&v.state).unwrap_or(VersionState::Draft);
    let audit_action = format!("script.{}", action.as_str());
    let target = format!("{name}@{}", v.version);
    // Persons, not tokens: a token the author minted is still the author.
    if let Err(e) = action.apply(current, &v.author, &auth.principal.person) {
        return Err(match e {
            ReviewError::OwnVersion { .. } => {
                state
                    .audit_event(
                        Some(&auth.principal),
                        Some(&tenant),
                        &audit_action,
                        &target,
                        "denied",
                        &auth.request_id,
                        json!({ "reason": "own version" }),
                    )
                    .await;
                ApiError::new(StatusCode::FORBIDDEN, "own_version", e.to_string())
            }
            ReviewError::WrongState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", e.to_string())
                    .with_details(json!({ "state": v.state }))
            }
        });
    }
    if action == ReviewAction::Approve {
        author_may_grant(state, auth, &tenant, &target, &v).await?;
    }
    let reviewing = action != ReviewAction::Submit;
    let t = VersionTransition {
        tenant_id: tenant.clone(),
        script_id: script.id.clone(),
        seq: v.seq,
        from: vec![action.from().as_str().to_owned()],
        to: action.to().as_str().to_owned(),
        reviewed_by: reviewing.then(|| auth.principal.person.clone()),
        review_reason: reason.clone(),
        at: now_ms(),
        make_live: action == ReviewAction::Approve,
    };
    if !state.store.transition_version(&t).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            "the version changed state meanwhile; reload it",
        ));
    }
    state.engine()?.invalidate_live(&tenant, name);
    auth.record_change(
        state,
        &tenant,
        &audit_action,
        &target,
        json!({ "from": current.as_str(), "to": t.to, "reason": reason, "live": t.make_live }),
    )
    .await?;
    let v = version_of(state, &tenant, &script, version).await?;
    let live_seq = if t.make_live {
        Some(v.seq)
    } else {
        script.live_seq
    };
    Ok(axum::Json(VersionView::new(name, v, live_seq, false)))
}

/// Submits a draft for review.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/submit", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn submit_version(
    State(state): State<AppState>,
    auth: Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    review(&state, &auth, &name, &version, ReviewAction::Submit, None).await
}

/// Approves a submitted version (not your own); it goes live.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/approve", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_version(
    State(state): State<AppState>,
    auth: Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    review(&state, &auth, &name, &version, ReviewAction::Approve, None).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rejection {
    reason: String,
}

/// Rejects a submitted version (not your own), with a reason.
#[utoipa::path(post, path = "/v1/scripts/{name}/versions/{version}/reject", params(("name" = String, Path), ("version" = String, Path)),
    request_body = Rejection,
    responses((status = 200, body = VersionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_version(
    State(state): State<AppState>,
    auth: Authed,
    Path((name, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Rejection>,
) -> ApiResult<axum::Json<VersionView>> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > MAX_CHANGE_NOTE {
        return Err(ApiError::invalid("reason must be 1–4096 bytes"));
    }
    review(
        &state,
        &auth,
        &name,
        &version,
        ReviewAction::Reject,
        Some(reason.to_owned()),
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: String,
}

/// Makes an earlier approved version live again. Where approval is
/// required this takes `script.approve`, else `script.write`.
#[utoipa::path(post, path = "/v1/scripts/{name}/rollback", params(("name" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<axum::Json<VersionView>> {
    checked_name(&name)?;
    let engine = state.engine()?;
    let tenant = auth.tenant(&state).await?;
    let settings = engine.settings(&tenant).await?;
    let permission = if settings.approval_required_for(&name) {
        "script.approve"
    } else {
        "script.write"
    };
    let (tenant, script) = script_with(&state, &auth, permission, &name).await?;
    let v = version_of(&state, &tenant, &script, &body.version).await?;
    if v.state != VersionState::Approved.as_str() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_approved",
            format!(
                "version {} is {}; only an approved version can go live",
                v.version, v.state
            ),
        ));
    }
    author_may_grant(&state, &auth, &tenant, &format!("{name}@{}", v.version), &v).await?;
    let from = state
        .store
        .live_version(&tenant, &name)
        .await?
        .map(|(_, live)| live.version);
    if !state
        .store
        .set_live(&tenant, &script.id, v.seq, now_ms())
        .await?
    {
        return Err(ApiError::not_found(format!(
            "version {} of `{name}` not found",
            v.version
        )));
    }
    engine.invalidate_live(&tenant, &name);
    auth.record_change(
        &state,
        &tenant,
        "script.rollback",
        &name,
        json!({ "from": from, "to": v.version }),
    )
    .await?;
    let seq = v.seq;
    Ok(axum::Json(VersionView::new(&name, v, Some(seq), false)))
}

/// The tenant's script settings.
#[utoipa::path(get, path = "/v1/settings", responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
async fn get_settings(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<TenantSettings>> {
    let tenant = auth.tenant_with(&state, "script.read", None).await?;
    let settings = state.engine()?.settings(&tenant).await?;
    Ok(axum::Json(Arc::unwrap_or_clone(settings)))
}

/// Replaces the tenant's script settings: approval, default limits (within
/// the platform maxima), analyzer policy.
#[utoipa::path(put, path = "/v1/settings", request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn put_settings(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<TenantSettings>,
) -> ApiResult<axum::Json<TenantSettings>> {
    let tenant = auth.tenant_with(&state, "settings.write", None).await?;
    let engine = state.engine()?;
    body.validate().map_err(ApiError::invalid)?;
    engine
        .platform()
        .check(&body.limits)
        .map_err(|e| ApiError::invalid(format!("limits.{e}")))?;
    engine.put_settings(&tenant, &body).await?;
    auth.record_change(
        &state,
        &tenant,
        "settings.update",
        "",
        serde_json::to_value(&body).unwrap_or(Value::Null),
    )
    .await?;
    Ok(axum::Json(body))
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
async fn list_templates(_auth: Authed) -> axum::Json<Vec<TemplateView>> {
    axum::Json(
        TEMPLATES
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
