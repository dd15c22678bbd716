//! Events and subscriptions: `POST /v1/events {type, data}` stores an event
//! and fans it out to the scripts subscribed to its type; delivery status
//! per subscriber is on the event.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_engine::{EngineError, validate_event_type, validate_pattern};
use citadel_store::{Delivery, Event, Subscription, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::rbac::{PUBLISH_EVENTS, READ_EVENTS};
use crate::scripts::checked_name;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish, list_events))
        .routes(routes!(get_event))
        .routes(routes!(list_subscriptions))
        .routes(routes!(put_subscription, delete_subscription))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewEvent {
    /// e.g. `order.paid`.
    #[serde(rename = "type")]
    event_type: String,
    /// Any JSON (`null` if absent); the subscribed scripts get
    /// `{id, type, data}` as input.
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    data: Option<Box<RawValue>>,
}

/// One subscriber's delivery of an event.
#[derive(Serialize, ToSchema)]
struct DeliveryView {
    subscription: String,
    script: String,
    /// The run it became.
    run_id: Option<String>,
    /// That run's status (or its queue job's state before it is recorded).
    #[schema(value_type = Option<crate::openapi::DeliveryStatus>)]
    status: Option<String>,
    /// Why it did not become a run.
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[schema(value_type = serde_json::Value)]
    data: Box<RawValue>,
    depth: i64,
    source: String,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<Vec<DeliveryView>>,
}

fn view(e: Event, deliveries: Option<Vec<DeliveryView>>) -> EventView {
    EventView {
        data: RawValue::from_string(e.data)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("`null` is JSON")),
        id: e.id,
        event_type: e.event_type,
        depth: e.depth,
        source: e.source,
        created_at: e.created_at,
        deliveries,
    }
}

fn delivery_view(d: Delivery, status: Option<String>) -> DeliveryView {
    DeliveryView {
        subscription: d.subscription,
        script: d.script_name,
        run_id: d.run_id,
        status,
        error: d.error,
    }
}

/// Publishes an event: stored, then a queued run for every subscription
/// whose pattern matches its type. 202 with the deliveries.
#[utoipa::path(post, path = "/v1/events", request_body = NewEvent,
    responses((status = 202, body = EventView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(body): ApiJson<NewEvent>,
) -> ApiResult<(StatusCode, axum::Json<EventView>)> {
    let tenant = auth.tenant_with(&state, PUBLISH_EVENTS, None).await?;
    validate_event_type(&body.event_type).map_err(ApiError::invalid)?;
    let engine = state.engine()?;
    let data = body
        .data
        .map_or_else(|| "null".to_owned(), |d| d.get().to_owned());
    let (event, deliveries) = engine
        .publish(&tenant, &body.event_type, data, 0, auth.principal.actor())
        .await
        .map_err(|e| match e {
            EngineError::Store(e) => e.into(),
            other => ApiError::invalid(other.to_string()),
        })?;
    let deliveries = deliveries
        .into_iter()
        .map(|d| {
            let status = d.run_id.as_ref().map(|_| "queued".to_owned());
            delivery_view(d, status)
        })
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(view(event, Some(deliveries))),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Page size, 1–1000 (default 100).
    limit: Option<i64>,
}

/// The tenant's events, newest first.
#[utoipa::path(get, path = "/v1/events", params(EventsQuery),
    responses((status = 200, body = Vec<EventView>), (status = 400, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    auth: Authed,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<EventView>>> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1..=1000"));
    }
    let tenant = auth.tenant_with(&state, READ_EVENTS, None).await?;
    let events = state.store.list_events(&tenant, limit).await?;
    Ok(axum::Json(
        events.into_iter().map(|e| view(e, None)).collect(),
    ))
}

/// One event with the status of each delivery.
#[utoipa::path(get, path = "/v1/events/{id}", params(("id" = String, Path)),
    responses((status = 200, body = EventView), (status = 404, body = ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EventView>> {
    let tenant = auth.tenant_with(&state, READ_EVENTS, None).await?;
    let event = state
        .store
        .event(&tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event `{id}` not found")))?;
    let mut out = Vec::new();
    for d in state.store.deliveries(&tenant, &id).await? {
        let status = match &d.run_id {
            Some(run) => match state.store.run(&tenant, run).await? {
                Some(r) => Some(r.status),
                None => state.store.job(&tenant, run).await?.map(|j| j.state),
            },
            None => None,
        };
        out.push(delivery_view(d, status));
    }
    Ok(axum::Json(view(event, Some(out))))
}

#[derive(Serialize, ToSchema)]
struct SubscriptionView {
    name: String,
    /// The event type pattern, e.g. `order.*`.
    event: String,
    script: String,
    created_at: i64,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        SubscriptionView {
            name: s.name,
            event: s.pattern,
            script: s.script_name,
            created_at: s.created_at,
        }
    }
}

/// The tenant's subscriptions on scripts the caller may read.
#[utoipa::path(get, path = "/v1/subscriptions", responses((status = 200, body = Vec<SubscriptionView>), (status = 403, body = ErrorBody)))]
async fn list_subscriptions(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<axum::Json<Vec<SubscriptionView>>> {
    let tenant = auth.tenant(&state).await?;
    auth.require_somewhere(&state, "script.read").await?;
    let subs = state.store.subscriptions(&tenant).await?;
    Ok(axum::Json(
        subs.into_iter()
            .filter(|s| auth.principal.allows("script.read", Some(&s.script_name)))
            .map(SubscriptionView::from)
            .collect(),
    ))
}

/// A subscription of the tenant by name.
async fn subscription(
    state: &AppState,
    tenant: &str,
    name: &str,
) -> ApiResult<Option<Subscription>> {
    Ok(state
        .store
        .subscriptions(tenant)
        .await?
        .into_iter()
        .find(|s| s.name == name))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubscriptionBody {
    /// An event type pattern: `order.paid`, `order.*`, `*`.
    event: String,
    /// The script to run for each matching event.
    script: String,
}

/// Subscribes a script to events (creates or replaces by name). Like a
/// schedule, it needs `script.run` on the script (and on the script a
/// replaced subscription ran); since the script then receives the events,
/// it also needs the right to read the tenant's events.
#[utoipa::path(put, path = "/v1/subscriptions/{name}", params(("name" = String, Path)), request_body = SubscriptionBody,
    responses((status = 200, body = SubscriptionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_subscription(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> ApiResult<axum::Json<SubscriptionView>> {
    checked_name(&name).map_err(|e| ApiError::invalid(format!("subscription: {}", e.message)))?;
    checked_name(&body.script)?;
    validate_pattern(&body.event).map_err(ApiError::invalid)?;
    let tenant = auth.tenant_with(&state, READ_EVENTS, None).await?;
    auth.require(&state, "script.run", Some(&body.script))
        .await?;
    if let Some(old) = subscription(&state, &tenant, &name).await?
        && old.script_name != body.script
    {
        auth.require(&state, "script.run", Some(&old.script_name))
            .await?;
    }
    if state.store.script(&tenant, &body.script).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "script `{}` not found",
            body.script
        )));
    }
    let sub = Subscription {
        tenant_id: tenant.clone(),
        name: name.clone(),
        pattern: body.event,
        script_name: body.script,
        created_at: now_ms(),
    };
    state.store.put_subscription(&sub).await?;
    auth.record_change(
        &state,
        &tenant,
        "subscription.put",
        &name,
        json!({ "event": sub.pattern, "script": sub.script_name }),
    )
    .await?;
    Ok(axum::Json(sub.into()))
}

/// Removes a subscription (needs `script.run` on its script).
#[utoipa::path(delete, path = "/v1/subscriptions/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_subscription(
    State(state): State<AppState>,
    auth: Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let tenant = auth.tenant(&state).await?;
    let Some(sub) = subscription(&state, &tenant, &name).await? else {
        return Err(ApiError::not_found(format!(
            "subscription `{name}` not found"
        )));
    };
    auth.require(&state, "script.run", Some(&sub.script_name))
        .await?;
    if !state.store.delete_subscription(&tenant, &name).await? {
        return Err(ApiError::not_found(format!(
            "subscription `{name}` not found"
        )));
    }
    auth.record_change(
        &state,
        &tenant,
        "subscription.delete",
        &name,
        json!({ "script": sub.script_name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
