//! `/v1/webhooks`: outgoing webhook endpoints as code (the seed's YAML or
//! its JSON form, with the transform's source), their versions, their
//! delivery log with every attempt, redelivery and a test send.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_app::webhooks::{self, EndpointView};
use citadel_store::{WebhookAttempt, WebhookDelivery, WebhookEndpointVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks))
        .routes(routes!(save_webhook, get_webhook, delete_webhook))
        .routes(routes!(list_webhook_versions))
        .routes(routes!(enable_webhook))
        .routes(routes!(disable_webhook))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(get_webhook_delivery))
        .routes(routes!(redeliver_webhook_delivery))
        .routes(routes!(test_webhook))
}

/// An outgoing webhook endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
struct EndpointBody {
    name: String,
    version: i64,
    enabled: bool,
    /// Why it is disabled (a 410, failing past `disable_after`, by hand).
    disabled_reason: Option<String>,
    /// Unix ms of its first failure since its last success.
    failing_since: Option<i64>,
    /// The event types (or patterns) it receives.
    on: Vec<String>,
    /// Its URL, `${SECRET:NAME}` references unresolved.
    url: Option<String>,
    /// The delay before each attempt, in seconds.
    retry_schedule_s: Vec<u64>,
    /// The endpoint document as saved.
    source: String,
    /// The transform's source, when it names one.
    transform: Option<String>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl From<EndpointView> for EndpointBody {
    fn from(v: EndpointView) -> Self {
        let e = v.endpoint;
        let (on, url, retry) = match &v.parsed {
            Some(p) => (
                p.on.clone(),
                Some(p.delivery.url.to_string()),
                p.retry.schedule.iter().map(|d| d.as_secs()).collect(),
            ),
            None => (Vec::new(), None, Vec::new()),
        };
        EndpointBody {
            name: e.name,
            version: e.version,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since,
            on,
            url,
            retry_schedule_s: retry,
            source: e.source,
            transform: e.transform,
            created_by: e.created_by,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    /// The endpoint document: YAML, or its JSON form.
    source: String,
    /// The source of the transform the document names (`transform.entry`).
    #[serde(default)]
    transform: Option<String>,
}

/// Saves an endpoint: 201 with a new version, 200 when nothing changed.
/// A document with problems is 422 `rejected`, each located in
/// `details.diagnostics`.
#[utoipa::path(put, path = "/v1/webhooks/{name}", params(("name" = String, Path)), request_body = SaveBody,
    responses((status = 201, body = EndpointBody), (status = 200, body = EndpointBody),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SaveBody>,
) -> ApiResult<(StatusCode, axum::Json<EndpointBody>)> {
    let (view, created) = webhooks::save(
        &state.app,
        &caller,
        &name,
        &body.source,
        body.transform.as_deref(),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(view.into())))
}

/// The tenant's endpoints.
#[utoipa::path(get, path = "/v1/webhooks", responses((status = 200, body = Vec<EndpointBody>), (status = 403, body = ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<EndpointBody>>> {
    let list = webhooks::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{name}", params(("name" = String, Path)),
    responses((status = 200, body = EndpointBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<EndpointBody>> {
    Ok(axum::Json(
        webhooks::get(&state.app, &caller, &name).await?.into(),
    ))
}

/// Deletes an endpoint with its versions and delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    webhooks::delete(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointVersion)]
struct VersionBody {
    version: i64,
    source: String,
    transform: Option<String>,
    created_by: String,
    created_at: i64,
}

impl From<WebhookEndpointVersion> for VersionBody {
    fn from(v: WebhookEndpointVersion) -> Self {
        VersionBody {
            version: v.version,
            source: v.source,
            transform: v.transform,
            created_by: v.created_by,
            created_at: v.created_at,
        }
    }
}

/// An endpoint's versions, oldest first.
#[utoipa::path(get, path = "/v1/webhooks/{name}/versions", params(("name" = String, Path)),
    responses((status = 200, body = Vec<VersionBody>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_webhook_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionBody>>> {
    let list = webhooks::versions(&state.app, &caller, &name).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Enables an endpoint (one the platform disabled too).
#[utoipa::path(post, path = "/v1/webhooks/{name}/enable", params(("name" = String, Path)),
    responses((status = 200, body = EndpointBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<EndpointBody>> {
    Ok(axum::Json(
        webhooks::set_enabled(&state.app, &caller, &name, true)
            .await?
            .into(),
    ))
}

/// Disables an endpoint: no event is delivered to it.
#[utoipa::path(post, path = "/v1/webhooks/{name}/disable", params(("name" = String, Path)),
    responses((status = 200, body = EndpointBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<EndpointBody>> {
    Ok(axum::Json(
        webhooks::set_enabled(&state.app, &caller, &name, false)
            .await?
            .into(),
    ))
}

/// One delivery of an event to an endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
struct DeliveryBody {
    id: String,
    endpoint: String,
    event_id: String,
    event_type: String,
    /// The event as delivered (before the transform).
    #[schema(value_type = serde_json::Value)]
    payload: Value,
    #[schema(value_type = crate::openapi::DeliveryState)]
    state: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
    /// Every attempt, when one delivery is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptBody>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
struct AttemptBody {
    attempt: i64,
    at: i64,
    /// The receiver's status; `null` when it gave none.
    status: Option<i64>,
    latency_ms: i64,
    /// The first KiB of the answer.
    response: String,
    error: Option<String>,
}

impl From<WebhookAttempt> for AttemptBody {
    fn from(a: WebhookAttempt) -> Self {
        AttemptBody {
            attempt: a.attempt,
            at: a.at,
            status: a.status,
            latency_ms: a.latency_ms,
            response: a.response,
            error: a.error,
        }
    }
}

fn delivery_body(d: WebhookDelivery, attempts: Option<Vec<WebhookAttempt>>) -> DeliveryBody {
    DeliveryBody {
        payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        state: d.state.as_str().to_owned(),
        id: d.id,
        endpoint: d.endpoint,
        event_id: d.event_id,
        event_type: d.event_type,
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: d.created_at,
        updated_at: d.updated_at,
        attempt_log: attempts.map(|a| a.into_iter().map(Into::into).collect()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// At most this many, newest first (1 to 1000, default 100).
    limit: Option<i64>,
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{name}/deliveries", params(("name" = String, Path), DeliveriesQuery),
    responses((status = 200, body = Vec<DeliveryBody>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_webhook_deliveries(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> ApiResult<axum::Json<Vec<DeliveryBody>>> {
    let list = webhooks::deliveries(&state.app, &caller, &name, q.limit).await?;
    Ok(axum::Json(
        list.into_iter().map(|d| delivery_body(d, None)).collect(),
    ))
}

/// One delivery with every attempt (status, latency, response excerpt).
#[utoipa::path(get, path = "/v1/webhooks/{name}/deliveries/{id}", params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DeliveryBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_webhook_delivery(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<DeliveryBody>> {
    let (d, attempts) = webhooks::delivery(&state.app, &caller, &name, &id).await?;
    Ok(axum::Json(delivery_body(d, Some(attempts))))
}

#[derive(Serialize, ToSchema)]
struct Redelivered {
    /// The new delivery's id.
    delivery_id: String,
}

/// Delivers a delivery's event again, as a new delivery (202).
#[utoipa::path(post, path = "/v1/webhooks/{name}/deliveries/{id}/redeliver", params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = Redelivered), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn redeliver_webhook_delivery(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, axum::Json<Redelivered>)> {
    let delivery_id = webhooks::redeliver(&state.app, &caller, &name, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Redelivered { delivery_id }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// The event type to send (`webhook.test` by default).
    #[serde(rename = "type", default)]
    event_type: Option<String>,
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    data: Value,
}

/// Sends a synthetic event to the endpoint now, once, and answers the
/// delivery with its attempt.
#[utoipa::path(post, path = "/v1/webhooks/{name}/test", params(("name" = String, Path)), request_body = TestBody,
    responses((status = 200, body = DeliveryBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn test_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TestBody>,
) -> ApiResult<axum::Json<DeliveryBody>> {
    let event_type = body.event_type.unwrap_or_else(|| "webhook.test".to_owned());
    let (d, attempt) =
        webhooks::test_send(&state.app, &caller, &name, &event_type, body.data).await?;
    Ok(axum::Json(delivery_body(d, Some(vec![attempt]))))
}

/// A script or workflow exposed at `/hooks/{tenant}/{name}`.
#[derive(Serialize, ToSchema)]
#[schema(as = InboundWebhook)]
struct InboundBody {
    name: String,
    /// The script's or workflow's name.
    target: String,
    /// `standard_webhooks` or `hmac`.
    verify: String,
    /// The tenant secret the signature is checked with.
    secret: String,
    signature_header: Option<String>,
    id_header: Option<String>,
    /// `sync` or `async`.
    mode: String,
    created_at: i64,
    updated_at: i64,
}

impl From<citadel_store::InboundWebhook> for InboundBody {
    fn from(h: citadel_store::InboundWebhook) -> Self {
        InboundBody {
            name: h.name,
            target: h.target,
            verify: h.verify,
            secret: h.secret,
            signature_header: h.signature_header,
            id_header: h.id_header,
            mode: h.mode,
            created_at: h.created_at,
            updated_at: h.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InboundSpecBody {
    /// The script or workflow a verified request runs.
    target: String,
    /// `standard_webhooks` (the default) or `hmac`.
    #[serde(default = "standard")]
    verify: String,
    /// The tenant secret to verify with (a `whsec_…` for
    /// `standard_webhooks`, the shared key for `hmac`).
    secret: String,
    /// `hmac`: the header with the signature (`X-Hub-Signature-256`).
    #[serde(default)]
    signature_header: Option<String>,
    /// `hmac`: a header with a message id to refuse replays on.
    #[serde(default)]
    id_header: Option<String>,
    /// `sync` (answer the run's result; the default) or `async` (202).
    #[serde(default = "sync")]
    mode: String,
}

fn standard() -> String {
    "standard_webhooks".into()
}

fn sync() -> String {
    "sync".into()
}

pub(super) fn inbound_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_inbound_webhooks))
        .routes(routes!(put_inbound_webhook, delete_inbound_webhook))
}

/// Creates or replaces an inbound webhook. Needs `plugin.install`, and
/// `script.run` on the target.
#[utoipa::path(put, path = "/v1/inbound-webhooks/{name}", params(("name" = String, Path)), request_body = InboundSpecBody,
    responses((status = 200, body = InboundBody), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_inbound_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<InboundSpecBody>,
) -> ApiResult<axum::Json<InboundBody>> {
    let spec = citadel_app::inbound::InboundSpec {
        target: body.target,
        verify: body.verify,
        secret: body.secret,
        signature_header: body.signature_header,
        id_header: body.id_header,
        mode: body.mode,
    };
    Ok(axum::Json(
        citadel_app::inbound::put(&state.app, &caller, &name, spec)
            .await?
            .into(),
    ))
}

/// The tenant's inbound webhooks.
#[utoipa::path(get, path = "/v1/inbound-webhooks", responses((status = 200, body = Vec<InboundBody>), (status = 403, body = ErrorBody)))]
async fn list_inbound_webhooks(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<InboundBody>>> {
    let list = citadel_app::inbound::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(Into::into).collect()))
}

/// Removes an inbound webhook.
#[utoipa::path(delete, path = "/v1/inbound-webhooks/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_inbound_webhook(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    citadel_app::inbound::delete(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/{tenant}/{name}`: a signed request to an inbound webhook.
/// A sync hook answers `{run_id, status, result, error}` (200 when the run
/// succeeded, 502 `handler_failed` otherwise); an async one 202 `{run_id}`.
pub(crate) async fn receive_inbound(
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let request = citadel_app::inbound::InboundRequest {
        tenant,
        name,
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    match citadel_app::inbound::receive(&state.app, request).await {
        Ok(citadel_app::inbound::Received::Queued(run_id)) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "run_id": run_id })),
        )
            .into_response(),
        Ok(citadel_app::inbound::Received::Finished(run)) => {
            let status = if run.status == citadel_domain::RunStatus::Succeeded {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
            let error_code = parse(run.error.as_deref()).and_then(|e| e.get("code").cloned());
            (
                status,
                axum::Json(serde_json::json!({
                    "run_id": run.id,
                    "status": run.status.as_str(),
                    "result": parse(run.result.as_deref()),
                    "error": error_code,
                })),
            )
                .into_response()
        }
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
