//! Events and subscriptions: publishing an event stores it and fans it out
//! to the scripts subscribed to its type; each subscriber's delivery status
//! is on the event. Subscriptions follow the schedules' rules.

use citadel_engine::{EngineError, validate_event_type, validate_pattern};
use citadel_store::{Delivery, Event, Subscription, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::access::{PUBLISH_EVENTS, READ_EVENTS};
use crate::{App, AppError, AppResult, Caller, checked_name, page_limit};

/// A delivery and the status of what it became: the run's status, or its
/// queue job's state before the run is recorded (`None`: no run).
pub struct DeliveryStatus {
    pub delivery: Delivery,
    /// The run's status, else its job's state (`dead` has no run status).
    pub status: Option<&'static str>,
}

/// Publishes an event (`data_json`: its data as JSON text): stored, then a
/// queued run for every subscription whose pattern matches its type.
pub async fn publish(
    app: &App,
    caller: &Caller,
    event_type: &str,
    data_json: String,
) -> AppResult<(Event, Vec<DeliveryStatus>)> {
    let tenant = caller.tenant_with(app, PUBLISH_EVENTS, None).await?;
    validate_event_type(event_type).map_err(AppError::invalid)?;
    let engine = app.engine()?;
    let (event, deliveries) = engine
        .publish(&tenant, event_type, data_json, 0, caller.principal.actor())
        .await
        .map_err(|e| match e {
            EngineError::Store(e) => e.into(),
            other => AppError::invalid(other.to_string()),
        })?;
    let deliveries = deliveries
        .into_iter()
        .map(|d| DeliveryStatus {
            status: d
                .run_id
                .as_ref()
                .map(|_| citadel_domain::JobState::Queued.as_str()),
            delivery: d,
        })
        .collect();
    Ok((event, deliveries))
}

/// The tenant's events, newest first.
pub async fn list(app: &App, caller: &Caller, limit: Option<i64>) -> AppResult<Vec<Event>> {
    let limit = page_limit(limit, 100, "limit must be 1..=1000")?;
    let tenant = caller.tenant_with(app, READ_EVENTS, None).await?;
    Ok(app.store.list_events(&tenant, limit).await?)
}

/// One event with the status of each delivery.
pub async fn get(app: &App, caller: &Caller, id: &str) -> AppResult<(Event, Vec<DeliveryStatus>)> {
    let tenant = caller.tenant_with(app, READ_EVENTS, None).await?;
    let event = app
        .store
        .event(&tenant, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("event `{id}` not found")))?;
    let mut out = Vec::new();
    for d in app.store.deliveries(&tenant, id).await? {
        let status = match &d.run_id {
            Some(run) => match app.store.run(&tenant, run).await? {
                Some(r) => Some(r.status.as_str()),
                None => app.store.job(&tenant, run).await?.map(|j| j.state.as_str()),
            },
            None => None,
        };
        out.push(DeliveryStatus {
            delivery: d,
            status,
        });
    }
    Ok((event, out))
}

/// The tenant's subscriptions on scripts the caller may read.
pub async fn subscriptions(app: &App, caller: &Caller) -> AppResult<Vec<Subscription>> {
    let tenant = caller.tenant(app).await?;
    caller
        .require_somewhere(app, Permission::ScriptRead)
        .await?;
    let subs = app.store.subscriptions(&tenant).await?;
    Ok(subs
        .into_iter()
        .filter(|s| {
            caller
                .principal
                .allows(Permission::ScriptRead, Some(&s.script_name))
        })
        .collect())
}

/// A subscription of the tenant by name.
async fn subscription(app: &App, tenant: &str, name: &str) -> AppResult<Option<Subscription>> {
    Ok(app
        .store
        .subscriptions(tenant)
        .await?
        .into_iter()
        .find(|s| s.name == name))
}

/// Subscribes a script to events matching `pattern` (creates or replaces by
/// name). Like a schedule, it needs `script.run` on the script (and on the
/// script a replaced subscription ran); since the script then receives the
/// events, it also needs the right to read the tenant's events.
pub async fn put_subscription(
    app: &App,
    caller: &Caller,
    name: &str,
    pattern: &str,
    script: &str,
) -> AppResult<Subscription> {
    checked_name(name).map_err(|e| AppError::invalid(format!("subscription: {}", e.message)))?;
    checked_name(script)?;
    crate::scripts::refuse_reserved(script)?;
    validate_pattern(pattern).map_err(AppError::invalid)?;
    let tenant = caller.tenant_with(app, READ_EVENTS, None).await?;
    caller
        .require(app, Permission::ScriptRun, Some(script))
        .await?;
    if let Some(old) = subscription(app, &tenant, name).await?
        && old.script_name != script
    {
        caller
            .require(app, Permission::ScriptRun, Some(&old.script_name))
            .await?;
    }
    if app.store.script(&tenant, script).await?.is_none() {
        return Err(AppError::not_found(format!("script `{script}` not found")));
    }
    let sub = Subscription {
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        pattern: pattern.to_owned(),
        script_name: script.to_owned(),
        created_at: now_ms(),
    };
    app.store.put_subscription(&sub).await?;
    caller
        .record_change(
            app,
            &tenant,
            "subscription.put",
            name,
            json!({ "event": sub.pattern, "script": sub.script_name }),
        )
        .await?;
    Ok(sub)
}

/// Removes a subscription (needs `script.run` on its script).
pub async fn delete_subscription(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller.tenant(app).await?;
    let missing = || AppError::not_found(format!("subscription `{name}` not found"));
    let Some(sub) = subscription(app, &tenant, name).await? else {
        return Err(missing());
    };
    caller
        .require(app, Permission::ScriptRun, Some(&sub.script_name))
        .await?;
    if !app.store.delete_subscription(&tenant, name).await? {
        return Err(missing());
    }
    caller
        .record_change(
            app,
            &tenant,
            "subscription.delete",
            name,
            json!({ "script": sub.script_name }),
        )
        .await
}
