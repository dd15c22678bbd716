//! `/v1/plugins`: a tenant's plugins installed from bundles (`.zip` or
//! `.tar.gz` bodies), configured, given their secrets, enabled, upgraded,
//! rolled back and uninstalled; a job run now; a test event for their
//! hooks. And `/ext/{tenant}/{slug}/{path}`, where their routes answer
//! (not in the OpenAPI document: each plugin declares its own).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use citadel_app::plugins::{self, HookOutcome, PluginView, RouteRequest, Status, VersionView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::Accepted;
use crate::AppState;
use crate::auth::{Authed, Source};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(install_plugin, list_plugins))
        .routes(routes!(upgrade_plugin, list_plugin_versions))
        .layer(axum::extract::DefaultBodyLimit::max(
            plugins::MAX_BUNDLE_BYTES,
        ));
    OpenApiRouter::new()
        .merge(uploads)
        .routes(routes!(plugin_status))
        .routes(routes!(get_plugin, uninstall_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(configure_plugin))
        .routes(routes!(set_plugin_secret))
        .routes(routes!(rollback_plugin))
        .routes(routes!(run_plugin_job))
        .routes(routes!(test_plugin_event))
}

/// An installed plugin.
#[derive(Serialize, ToSchema)]
#[schema(as = Plugin)]
pub(crate) struct PluginBody {
    slug: String,
    name: String,
    description: String,
    /// The version in use.
    version: String,
    enabled: bool,
    /// Its configuration (the schema's defaults filled in).
    #[schema(value_type = serde_json::Value)]
    config: Value,
    /// The version in use's manifest: permissions, events, routes, jobs,
    /// secrets and configuration schema.
    #[schema(value_type = serde_json::Value)]
    manifest: Value,
    secrets: Vec<SecretBody>,
    jobs: Vec<JobBody>,
    /// What keeps it from being enabled (configuration problems, unset
    /// secrets); empty when it can run.
    problems: Vec<String>,
    /// Warnings from validating the uploaded bundle (installs, upgrades).
    #[schema(value_type = Vec<serde_json::Value>)]
    warnings: Vec<Value>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, ToSchema)]
struct SecretBody {
    name: String,
    /// True once a value is set (values are never shown).
    set: bool,
    version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct JobBody {
    name: String,
    cron: String,
    timezone: String,
    /// The schedule that fires it.
    schedule: String,
    /// Unix ms of the next occurrence while the plugin is enabled.
    next_fire_at: Option<i64>,
}

impl From<PluginView> for PluginBody {
    fn from(v: PluginView) -> Self {
        PluginBody {
            manifest: serde_json::to_value(&v.manifest).unwrap_or(Value::Null),
            warnings: v
                .warnings
                .iter()
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
                .collect(),
            slug: v.slug,
            name: v.name,
            description: v.description,
            version: v.version,
            enabled: v.enabled,
            config: v.config,
            secrets: v
                .secrets
                .into_iter()
                .map(|s| SecretBody {
                    name: s.name,
                    set: s.set,
                    version: s.version,
                })
                .collect(),
            jobs: v
                .jobs
                .into_iter()
                .map(|j| JobBody {
                    name: j.name,
                    cron: j.cron,
                    timezone: j.timezone,
                    schedule: j.schedule,
                    next_fire_at: j.next_fire_at,
                })
                .collect(),
            problems: v.problems,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// A bundle body: `application/zip` or `application/gzip` (a `.tar.gz`).
fn bundle_of(headers: &HeaderMap, body: &Bytes) -> ApiResult<()> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    const ACCEPTED: [&str; 4] = [
        "application/zip",
        "application/gzip",
        "application/x-gzip",
        "application/octet-stream",
    ];
    if !ACCEPTED.contains(&content_type.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a plugin bundle is sent as application/zip or application/gzip (a .tar.gz)",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "the body is empty: send the bundle",
        ));
    }
    Ok(())
}

/// Installs a plugin from a bundle (`citadel plugin pack` makes one),
/// disabled until it is configured and enabled. A bundle with problems is
/// refused (422 `rejected`, each located in `details.diagnostics`);
/// permissions beyond the tenant's ceiling are 403; a slug already
/// installed (or taken by a script) is 409.
#[utoipa::path(post, path = "/v1/plugins",
    request_body(content = Vec<u8>, content_type = "application/zip"),
    responses((status = 201, body = PluginBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn install_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<PluginBody>)> {
    bundle_of(&headers, &body)?;
    let view = plugins::install(&state.app, &caller, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(view.into())))
}

/// Lists the tenant's plugins the caller may read.
#[utoipa::path(get, path = "/v1/plugins", responses((status = 200, body = Vec<PluginBody>), (status = 403, body = ErrorBody)))]
async fn list_plugins(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<PluginBody>>> {
    let list = plugins::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

#[derive(Serialize, ToSchema)]
#[schema(as = PluginStatus)]
struct StatusBody {
    installed: usize,
    enabled: usize,
    /// Outgoing webhook endpoints enabled.
    webhooks_active: usize,
    /// Jobs of enabled plugins, each a schedule.
    jobs_scheduled: usize,
    plugins: Vec<PluginStatusEntry>,
}

#[derive(Serialize, ToSchema)]
struct PluginStatusEntry {
    slug: String,
    version: String,
    enabled: bool,
    /// Events it hooks, routes and jobs it declares.
    hooks: usize,
    routes: usize,
    jobs: usize,
    /// What keeps it from running (empty when it can).
    problems: Vec<String>,
}

impl From<Status> for StatusBody {
    fn from(s: Status) -> Self {
        StatusBody {
            installed: s.installed,
            enabled: s.enabled,
            webhooks_active: s.webhooks_active,
            jobs_scheduled: s.jobs_scheduled,
            plugins: s
                .plugins
                .into_iter()
                .map(|p| PluginStatusEntry {
                    slug: p.slug,
                    version: p.version,
                    enabled: p.enabled,
                    hooks: p.hooks,
                    routes: p.routes,
                    jobs: p.jobs,
                    problems: p.problems,
                })
                .collect(),
        }
    }
}

/// How many plugins are installed and enabled, and what keeps each from
/// running.
#[utoipa::path(get, path = "/v1/plugins/status", responses((status = 200, body = StatusBody), (status = 403, body = ErrorBody)))]
async fn plugin_status(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<StatusBody>> {
    Ok(axum::Json(
        plugins::status(&state.app, &caller).await?.into(),
    ))
}

/// One plugin.
#[utoipa::path(get, path = "/v1/plugins/{slug}", params(("slug" = String, Path)),
    responses((status = 200, body = PluginBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::get(&state.app, &caller, &slug).await?.into(),
    ))
}

/// Uninstalls a plugin: its schedules, hooks, routes, key-value entries
/// and secrets are removed; its runs stay on record.
#[utoipa::path(delete, path = "/v1/plugins/{slug}", params(("slug" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn uninstall_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    plugins::uninstall(&state.app, &caller, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Upgrades a plugin to a bundle of a higher version. Its configuration
/// and secrets are kept; its routes, hooks and schedules switch at once.
#[utoipa::path(post, path = "/v1/plugins/{slug}/versions", params(("slug" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/zip"),
    responses((status = 200, body = PluginBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upgrade_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<PluginBody>> {
    bundle_of(&headers, &body)?;
    Ok(axum::Json(
        plugins::upgrade(&state.app, &caller, &slug, &body)
            .await?
            .into(),
    ))
}

#[derive(Serialize, ToSchema)]
#[schema(as = PluginVersion)]
struct VersionBody {
    version: String,
    /// SHA-256 of the canonical bundle.
    sha256: String,
    installed_by: String,
    created_at: i64,
    /// The version in use.
    current: bool,
}

impl From<VersionView> for VersionBody {
    fn from(v: VersionView) -> Self {
        VersionBody {
            version: v.version,
            sha256: v.sha256,
            installed_by: v.installed_by,
            created_at: v.created_at,
            current: v.current,
        }
    }
}

/// A plugin's stored versions, oldest first.
#[utoipa::path(get, path = "/v1/plugins/{slug}/versions", params(("slug" = String, Path)),
    responses((status = 200, body = Vec<VersionBody>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_plugin_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionBody>>> {
    let list = plugins::versions(&state.app, &caller, &slug).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Enables a plugin: its hooks receive events, its routes answer and its
/// jobs are scheduled. Needs a valid configuration and every secret set
/// (409 `invalid_state`, each problem in `details.problems`).
#[utoipa::path(post, path = "/v1/plugins/{slug}/enable", params(("slug" = String, Path)),
    responses((status = 200, body = PluginBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enable_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::set_enabled(&state.app, &caller, &slug, true)
            .await?
            .into(),
    ))
}

/// Disables a plugin: no hook, route or job of it runs until it is
/// enabled again.
#[utoipa::path(post, path = "/v1/plugins/{slug}/disable", params(("slug" = String, Path)),
    responses((status = 200, body = PluginBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::set_enabled(&state.app, &caller, &slug, false)
            .await?
            .into(),
    ))
}

/// Replaces a plugin's configuration, checked against its schema (400
/// `invalid`, each problem in `details.problems`).
#[utoipa::path(put, path = "/v1/plugins/{slug}/config", params(("slug" = String, Path)),
    request_body = Object,
    responses((status = 200, body = PluginBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn configure_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
    ApiJson(config): ApiJson<Value>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::configure(&state.app, &caller, &slug, config)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretBodyIn {
    /// One of the manifest's `secrets`.
    name: String,
    /// The value (at least 8 bytes); never shown again.
    value: String,
}

/// Sets one of a plugin's secrets (created, or rotated when set).
#[utoipa::path(post, path = "/v1/plugins/{slug}/secrets", params(("slug" = String, Path)),
    request_body = SecretBodyIn,
    responses((status = 200, body = PluginBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn set_plugin_secret(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<SecretBodyIn>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::put_secret(&state.app, &caller, &slug, &body.name, &body.value)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// One of the plugin's stored versions.
    version: String,
}

/// Switches a plugin to one of its stored versions.
#[utoipa::path(post, path = "/v1/plugins/{slug}/rollback", params(("slug" = String, Path)),
    request_body = RollbackBody,
    responses((status = 200, body = PluginBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback_plugin(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<axum::Json<PluginBody>> {
    Ok(axum::Json(
        plugins::rollback(&state.app, &caller, &slug, &body.version)
            .await?
            .into(),
    ))
}

/// Queues a run of one of a plugin's jobs now; 202 with the run's id.
#[utoipa::path(post, path = "/v1/plugins/{slug}/jobs/{job}/run-now",
    params(("slug" = String, Path), ("job" = String, Path)),
    responses((status = 202, body = Accepted), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_plugin_job(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((slug, job)): Path<(String, String)>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let run_id = plugins::run_job(&state.app, &caller, &slug, &job).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            run_id,
            duplicate: false,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestEventBody {
    /// The event type (`auth.user.created`).
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    data: Value,
    /// Only this plugin's hooks (enabled or not); every enabled plugin's
    /// otherwise.
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = HookOutcome)]
struct HookOutcomeBody {
    slug: String,
    /// The hooks that matched; they ran in one run.
    hooks: Vec<String>,
    run_id: String,
    #[schema(value_type = crate::openapi::RunStatus)]
    status: String,
    #[schema(value_type = serde_json::Value)]
    result: Option<Value>,
    #[schema(value_type = serde_json::Value)]
    error: Option<Value>,
    #[schema(value_type = Vec<serde_json::Value>)]
    logs: Value,
    duration_ms: Option<i64>,
}

impl From<HookOutcome> for HookOutcomeBody {
    fn from(h: HookOutcome) -> Self {
        HookOutcomeBody {
            slug: h.slug,
            hooks: h.hooks,
            run_id: h.run_id,
            status: h.status,
            result: h.result,
            error: h.error,
            logs: h.logs,
            duration_ms: h.duration_ms,
        }
    }
}

/// Delivers a synthetic event to plugins' hooks and answers what each did
/// (result, logs, duration). The event is not stored and no subscription
/// sees it.
#[utoipa::path(post, path = "/v1/plugins/test-event", request_body = TestEventBody,
    responses((status = 200, body = Vec<HookOutcomeBody>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_plugin_event(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<TestEventBody>,
) -> ApiResult<axum::Json<Vec<HookOutcomeBody>>> {
    let outcomes = plugins::test_event(
        &state.app,
        &caller,
        &body.event_type,
        body.data,
        body.slug.as_deref(),
    )
    .await?;
    Ok(axum::Json(outcomes.into_iter().map(Into::into).collect()))
}

/// `/ext/{tenant}/{slug}/{*path}`: a plugin route's answer.
pub(crate) async fn ext_route(
    State(state): State<AppState>,
    Path(parts): Path<Vec<(String, String)>>,
    Source(source): Source,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let part = |name: &str| {
        parts
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let path = format!("/{}", part("path"));
    let query = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let request_id = headers
        .get(crate::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let request = RouteRequest {
        tenant: part("tenant"),
        slug: part("slug"),
        method: method.as_str().to_owned(),
        path,
        query,
        authorization: headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers: header_pairs,
        body: body.to_vec(),
        source,
        request_id,
    };
    match plugins::call_route(&state.app, request).await {
        Ok(answer) => {
            let mut response = (
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
                answer.body,
            )
                .into_response();
            let h = response.headers_mut();
            // The handler's headers (its content type among them) replace
            // the defaults.
            h.remove(axum::http::header::CONTENT_TYPE);
            for (name, value) in answer.headers {
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    h.append(n, v);
                }
            }
            if let Ok(v) = HeaderValue::try_from(answer.run_id) {
                h.insert("citadel-run-id", v);
            }
            response
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
