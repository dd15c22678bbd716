//! `/v1/events` and `/v1/subscriptions`: publishing an event stores it and
//! fans it out to the scripts subscribed to its type; delivery status per
//! subscriber is on the event.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_app::events::{self, DeliveryStatus};
use citadel_store::{Event, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::routes::{json_text, raw};

pub(super) fn routes() -> OpenApiRouter<AppState> {
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
        data: raw(e.data),
        id: e.id,
        event_type: e.event_type,
        depth: e.depth,
        source: e.source,
        created_at: e.created_at,
        deliveries,
    }
}

fn delivery_view(
    DeliveryStatus {
        delivery: d,
        status,
    }: DeliveryStatus,
) -> DeliveryView {
    DeliveryView {
        subscription: d.subscription,
        script: d.script_name,
        run_id: d.run_id,
        status: status.map(str::to_owned),
        error: d.error,
    }
}

/// Publishes an event: stored, then a queued run for every subscription
/// whose pattern matches its type. 202 with the deliveries.
#[utoipa::path(post, path = "/v1/events", request_body = NewEvent,
    responses((status = 202, body = EventView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<NewEvent>,
) -> ApiResult<(StatusCode, axum::Json<EventView>)> {
    let (event, deliveries) =
        events::publish(&state.app, &caller, &body.event_type, json_text(body.data)).await?;
    let deliveries = deliveries.into_iter().map(delivery_view).collect();
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
    Authed(caller): Authed,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Vec<EventView>>> {
    let Query(q) = query?;
    let list = events::list(&state.app, &caller, q.limit).await?;
    Ok(axum::Json(
        list.into_iter().map(|e| view(e, None)).collect(),
    ))
}

/// One event with the status of each delivery.
#[utoipa::path(get, path = "/v1/events/{id}", params(("id" = String, Path)),
    responses((status = 200, body = EventView), (status = 404, body = ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<EventView>> {
    let (event, deliveries) = events::get(&state.app, &caller, &id).await?;
    let deliveries = deliveries.into_iter().map(delivery_view).collect();
    Ok(axum::Json(view(event, Some(deliveries))))
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
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<SubscriptionView>>> {
    let subs = events::subscriptions(&state.app, &caller).await?;
    Ok(axum::Json(
        subs.into_iter().map(SubscriptionView::from).collect(),
    ))
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
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> ApiResult<axum::Json<SubscriptionView>> {
    let sub =
        events::put_subscription(&state.app, &caller, &name, &body.event, &body.script).await?;
    Ok(axum::Json(sub.into()))
}

/// Removes a subscription (needs `script.run` on its script).
#[utoipa::path(delete, path = "/v1/subscriptions/{name}", params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_subscription(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    events::delete_subscription(&state.app, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
