//! Outgoing webhook endpoints as code: saved as the seed's YAML (or its
//! JSON form) with the source of the transform it names, every change a
//! version; enabled and disabled; their delivery log with each attempt;
//! redelivery of one delivery and a test send. The engine (`webhooks.rs`)
//! delivers. Managing endpoints and reading their deliveries (which hold
//! event data) needs `plugin.install`.

use citadel_engine::parse_endpoint;
use citadel_plugin::{Diagnostic, Endpoint};
use citadel_store::{
    EndpointSave, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointVersion,
    new_time_ordered_id, now_ms,
};
use serde_json::{Value, json};

use crate::access::Permission;
use crate::error::ErrorCode;
use crate::{App, AppError, AppResult, Caller};

/// The largest endpoint document and the largest transform source.
pub const MAX_SOURCE_BYTES: usize = 64 << 10;

/// An endpoint with its parsed document.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub endpoint: WebhookEndpoint,
    /// `None` only for a stored document this build no longer reads.
    pub parsed: Option<Endpoint>,
}

fn checked_name(name: &str) -> AppResult<()> {
    crate::checked_short_name(name, "an endpoint")
}

fn view(endpoint: WebhookEndpoint) -> EndpointView {
    let parsed = parse_endpoint(&endpoint).ok();
    EndpointView { endpoint, parsed }
}

async fn endpoint_of(app: &App, tenant: &str, name: &str) -> AppResult<WebhookEndpoint> {
    checked_name(name)?;
    app.store
        .endpoint(tenant, name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("webhook endpoint `{name}` not found")))
}

fn rejected(what: &str, diagnostics: &[Diagnostic]) -> AppError {
    let first = diagnostics
        .iter()
        .find(|d| d.is_error())
        .map_or(String::new(), |d| format!(": {d}"));
    AppError::new(
        ErrorCode::Rejected,
        format!("the {what} is not valid{first}"),
    )
    .with_details(json!({ "diagnostics": diagnostics }))
}

/// Saves an endpoint: its first version, or its next one when the
/// document or the transform changed. Answers whether a version was made.
pub async fn save(
    app: &App,
    caller: &Caller,
    name: &str,
    source: &str,
    transform: Option<&str>,
) -> AppResult<(EndpointView, bool)> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    checked_name(name)?;
    let engine = app.engine()?;
    if source.len() > MAX_SOURCE_BYTES || transform.is_some_and(|t| t.len() > MAX_SOURCE_BYTES) {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!(
                "an endpoint document and its transform are at most {MAX_SOURCE_BYTES} bytes each"
            ),
        ));
    }
    let parsed =
        Endpoint::parse(&format!("{name}.yaml"), source).map_err(|d| rejected("endpoint", &d))?;
    match (&parsed.transform, transform) {
        (Some(t), None) => {
            return Err(AppError::invalid(format!(
                "the endpoint names the transform `{}`: send its source as `transform`",
                t.entry
            ))
            .with_details(json!({ "field": "transform" })));
        }
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "a `transform` was sent but the endpoint names none (`transform.entry`)",
            )
            .with_details(json!({ "field": "transform" })));
        }
        (Some(t), Some(code)) => {
            let module = citadel_plugin::transform_module(code, &t.export);
            let settings = engine.settings(&tenant).await?;
            let diagnostics = settings
                .policy
                .apply(&engine.analyze(&module, t.language.analyzer()));
            if settings.policy.blocks(&diagnostics) {
                return Err(AppError::new(
                    ErrorCode::Rejected,
                    "the transform does not pass static analysis",
                )
                .with_details(json!({ "diagnostics": diagnostics })));
            }
        }
        (None, None) => {}
    }
    let saved = app
        .store
        .save_endpoint(
            &tenant,
            name,
            source,
            transform,
            caller.principal.actor(),
            now_ms(),
        )
        .await?;
    engine.forget_extensions(&tenant);
    let (endpoint, created) = match saved {
        EndpointSave::Created(e) => (e, true),
        EndpointSave::Unchanged(e) => (e, false),
    };
    if created {
        caller
            .record_change(
                app,
                &tenant,
                "webhook.save",
                &format!("webhook:{name}"),
                json!({ "version": endpoint.version, "on": parsed.on }),
            )
            .await?;
    }
    Ok((view(endpoint), created))
}

pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<EndpointView>> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    Ok(app
        .store
        .endpoints(&tenant)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<EndpointView> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    Ok(view(endpoint_of(app, &tenant, name).await?))
}

pub async fn versions(
    app: &App,
    caller: &Caller,
    name: &str,
) -> AppResult<Vec<WebhookEndpointVersion>> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    endpoint_of(app, &tenant, name).await?;
    Ok(app.store.endpoint_versions(&tenant, name).await?)
}

/// Deletes an endpoint with its versions and delivery log.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    checked_name(name)?;
    if !app.store.delete_endpoint(&tenant, name).await? {
        return Err(AppError::not_found(format!(
            "webhook endpoint `{name}` not found"
        )));
    }
    if let Ok(engine) = app.engine() {
        engine.forget_extensions(&tenant);
    }
    caller
        .record_change(
            app,
            &tenant,
            "webhook.delete",
            &format!("webhook:{name}"),
            json!({}),
        )
        .await
}

/// Enables an endpoint (also one the platform disabled: its failure clock
/// starts afresh) or disables it by hand.
pub async fn set_enabled(
    app: &App,
    caller: &Caller,
    name: &str,
    enabled: bool,
) -> AppResult<EndpointView> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    endpoint_of(app, &tenant, name).await?;
    app.store
        .set_endpoint_enabled(&tenant, name, enabled, Some("disabled by hand"), now_ms())
        .await?;
    if let Ok(engine) = app.engine() {
        engine.forget_extensions(&tenant);
    }
    let action = if enabled {
        "webhook.enable"
    } else {
        "webhook.disable"
    };
    caller
        .record_change(app, &tenant, action, &format!("webhook:{name}"), json!({}))
        .await?;
    Ok(view(endpoint_of(app, &tenant, name).await?))
}

/// An endpoint's deliveries, newest first.
pub async fn deliveries(
    app: &App,
    caller: &Caller,
    name: &str,
    limit: Option<i64>,
) -> AppResult<Vec<WebhookDelivery>> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    endpoint_of(app, &tenant, name).await?;
    let limit = crate::page_limit(limit, 100, "limit is 1 to 1000")?;
    Ok(app.store.deliveries_of(&tenant, name, limit).await?)
}

/// One delivery with every attempt.
pub async fn delivery(
    app: &App,
    caller: &Caller,
    name: &str,
    id: &str,
) -> AppResult<(WebhookDelivery, Vec<WebhookAttempt>)> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    endpoint_of(app, &tenant, name).await?;
    let delivery = match app.store.delivery(&tenant, id).await? {
        Some(d) if d.endpoint == name => d,
        _ => return Err(AppError::not_found(format!("delivery `{id}` not found"))),
    };
    let attempts = app.store.attempts(&tenant, id).await?;
    Ok((delivery, attempts))
}

/// Delivers a delivery's event again, as a new delivery with attempts of
/// its own; answers its id.
pub async fn redeliver(app: &App, caller: &Caller, name: &str, id: &str) -> AppResult<String> {
    let (old, _) = delivery(app, caller, name, id).await?;
    let engine = app.engine()?;
    let endpoint = endpoint_of(app, &old.tenant_id, name).await?;
    if !endpoint.enabled {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            format!("webhook endpoint `{name}` is disabled; enable it first"),
        ));
    }
    let parsed = parse_endpoint(&endpoint).map_err(AppError::internal)?;
    let payload: Value = serde_json::from_str(&old.payload).unwrap_or_default();
    let new_id = engine
        .enqueue_delivery(
            &endpoint,
            &parsed,
            &old.event_id,
            &old.event_type,
            payload["data"].clone(),
            old.created_at,
        )
        .await
        .map_err(|e| crate::runs::refusal(e, &format!("webhooks/{name}")))?;
    caller
        .record_change(
            app,
            &old.tenant_id,
            "webhook.redeliver",
            &format!("webhook:{name}"),
            json!({ "delivery": id, "new_delivery": new_id }),
        )
        .await?;
    Ok(new_id)
}

/// Sends a synthetic event to an endpoint now, once (no retries, and the
/// endpoint's failure clock is not touched); the attempt is recorded in
/// its delivery log and answered.
pub async fn test_send(
    app: &App,
    caller: &Caller,
    name: &str,
    event_type: &str,
    data: Value,
) -> AppResult<(WebhookDelivery, WebhookAttempt)> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let engine = app.engine()?;
    citadel_engine::validate_event_type(event_type).map_err(AppError::invalid)?;
    let endpoint = endpoint_of(app, &tenant, name).await?;
    let parsed = parse_endpoint(&endpoint).map_err(AppError::internal)?;
    let now = now_ms();
    let event_id = new_time_ordered_id("evt");
    let mut delivery = WebhookDelivery {
        id: new_time_ordered_id("msg"),
        tenant_id: tenant.clone(),
        endpoint: name.to_owned(),
        event_id: event_id.clone(),
        event_type: event_type.to_owned(),
        payload: json!({
            "id": event_id,
            "type": event_type,
            "timestamp": jiff::Timestamp::from_millisecond(now).map(|t| t.to_string()).unwrap_or_default(),
            "data": data,
            "test": true,
        })
        .to_string(),
        state: citadel_domain::DeliveryState::Pending,
        attempts: 0,
        last_status: None,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_deliveries(std::slice::from_ref(&delivery))
        .await?;
    let tried = engine.attempt(&endpoint, &parsed, &delivery, 1).await;
    let state = match tried.outcome {
        citadel_plugin::retry::Outcome::Delivered => citadel_domain::DeliveryState::Delivered,
        _ => citadel_domain::DeliveryState::Failed,
    };
    app.store
        .record_attempts(&[(tried.attempt.clone(), state)])
        .await?;
    delivery.state = state;
    delivery.attempts = 1;
    delivery.last_status = tried.attempt.status;
    delivery.last_error = tried.attempt.error.clone();
    caller
        .record_change(
            app,
            &tenant,
            "webhook.test",
            &format!("webhook:{name}"),
            json!({ "delivery": delivery.id, "status": tried.attempt.status }),
        )
        .await?;
    Ok((delivery, tried.attempt))
}
