//! Events: a tenant (or a script, through `api.events.emit`) publishes
//! `{type, data}`; the event is stored and fanned out to every subscription
//! whose pattern matches its type, each delivery a queued run (idempotent
//! per event and subscription). Emitted events carry their depth, and a
//! chain deeper than [`MAX_EVENT_DEPTH`] is refused, so scripts cannot loop.

use std::sync::atomic::Ordering;

use citadel_sandbox::HostError;
use citadel_store::{Delivery, Event, Published, new_time_ordered_id, now_ms};
use serde_json::json;

use crate::{Engine, EngineError, InFlight, JobRequest, RunSpec};

/// Hops an event chain may take through `events.emit`.
pub const MAX_EVENT_DEPTH: i64 = 8;

/// Event types: 1–200 bytes of `a-z 0-9 _ - .`, dot-separated non-empty
/// segments (`order.paid`).
pub fn validate_event_type(t: &str) -> Result<(), String> {
    check(t, false).map_err(|why| format!("invalid event type `{}`: {why}", clip(t)))
}

/// Subscription patterns: like event types, where `*` matches any run of
/// characters (`order.*`, `*.failed`, `*`).
pub fn validate_pattern(p: &str) -> Result<(), String> {
    check(p, true).map_err(|why| format!("invalid event pattern `{}`: {why}", clip(p)))
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

fn check(s: &str, glob: bool) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 200 {
        return Err("it must be 1–200 bytes");
    }
    if s.split('.').any(str::is_empty) {
        return Err("it has an empty segment");
    }
    let ok = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b) || (glob && b == b'*')
    };
    if !s.bytes().all(ok) {
        return Err(if glob {
            "only a-z, 0-9, `_`, `-`, `.` and `*` are allowed"
        } else {
            "only a-z, 0-9, `_`, `-` and `.` are allowed"
        });
    }
    Ok(())
}

/// Whether `pattern` (with `*` wildcards) matches the whole of `event_type`.
pub fn matches(pattern: &str, event_type: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), event_type.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

impl Engine {
    /// Stores an event and enqueues a run for every matching subscription.
    ///
    /// Cancel-safe: the work runs as its own task, which a caller that goes
    /// away (a client that disconnects, a run stopped while it emits) does
    /// not stop; once the event is stored, every delivery is enqueued and
    /// recorded, never runs enqueued without their deliveries.
    pub async fn publish(
        &self,
        tenant_id: &str,
        event_type: &str,
        data_json: String,
        depth: i64,
        source: &str,
    ) -> Result<(Event, Vec<Delivery>), EngineError> {
        if depth > MAX_EVENT_DEPTH {
            return Err(EngineError::TooDeep(MAX_EVENT_DEPTH));
        }
        let engine = self.clone();
        let (tenant_id, event_type, source) = (
            tenant_id.to_owned(),
            event_type.to_owned(),
            source.to_owned(),
        );
        tokio::spawn(async move {
            engine
                .publish_whole(&tenant_id, &event_type, data_json, depth, &source)
                .await
        })
        .await
        .map_err(|e| EngineError::Unavailable(format!("publishing the event stopped: {e}")))?
    }

    async fn publish_whole(
        &self,
        tenant_id: &str,
        event_type: &str,
        data_json: String,
        depth: i64,
        source: &str,
    ) -> Result<(Event, Vec<Delivery>), EngineError> {
        let event = Event {
            id: new_time_ordered_id("evt"),
            tenant_id: tenant_id.to_owned(),
            event_type: event_type.to_owned(),
            data: data_json,
            depth,
            source: source.to_owned(),
            created_at: now_ms(),
        };
        // The event's row is written last, with its webhook deliveries
        // and their jobs, in one group commit with other publishes.
        let subscriptions = self.store.subscriptions(tenant_id).await?;
        let mut deliveries = Vec::new();
        for sub in subscriptions
            .into_iter()
            .filter(|s| matches(&s.pattern, event_type))
        {
            let mut delivery = Delivery {
                event_id: event.id.clone(),
                tenant_id: tenant_id.to_owned(),
                subscription: sub.name.clone(),
                script_name: sub.script_name.clone(),
                run_id: None,
                error: None,
            };
            match self.live(tenant_id, &sub.script_name).await? {
                None => delivery.error = Some(format!("`{}` has no live version", sub.script_name)),
                Some(live) => {
                    let spec = RunSpec {
                        tenant_id: tenant_id.to_owned(),
                        live,
                        input_json: json!({ "id": event.id, "type": event.event_type, "data": serde_json::from_str::<serde_json::Value>(&event.data).unwrap_or_default() }).to_string(),
                        trigger: citadel_domain::Trigger::Event,
                        principal: Some(source.to_owned()),
                        timeout_ms: None,
                        run_id: None,
                        created_at: None,
                    };
                    let request = JobRequest {
                        idempotency_key: Some(format!("event:{}:{}", event.id, sub.name)),
                        depth,
                        ..JobRequest::default()
                    };
                    match self.enqueue_run(spec, request).await {
                        Ok((run_id, _)) => delivery.run_id = Some(run_id),
                        Err(EngineError::Store(e)) => return Err(e.into()),
                        Err(other) => delivery.error = Some(other.to_string()),
                    }
                }
            }
            deliveries.push(delivery);
        }
        self.deliver_to_plugins(&event, &mut deliveries).await?;
        let (webhook_deliveries, jobs) = self.deliver_to_endpoints(&event, &mut deliveries).await?;
        let published = Published {
            event,
            webhook_deliveries,
            jobs,
            deliveries,
        };
        let published = self.published.write(published).await?;
        if !published.jobs.is_empty() {
            self.worker.wake.notify_one();
        }
        Ok((published.event, published.deliveries))
    }
}

impl Engine {
    /// Enqueues one run per enabled plugin with hooks matching the event
    /// (all its matching hooks in that run), recorded as a delivery to
    /// subscription `plugin:{slug}`: hooks take the queue's path, so they
    /// are idempotent per event, fair and retried like any queued run.
    async fn deliver_to_plugins(
        &self,
        event: &Event,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), EngineError> {
        let plugins = self.tenant_plugins(&event.tenant_id).await?;
        let data = || serde_json::from_str::<serde_json::Value>(&event.data).unwrap_or_default();
        for plugin in plugins.iter().filter(|p| p.enabled) {
            let hooks: Vec<String> = serde_json::from_str::<Vec<String>>(&plugin.hooks)
                .unwrap_or_default()
                .into_iter()
                .filter(|h| citadel_plugin::event_matches(h, &event.event_type))
                .collect();
            if hooks.is_empty() {
                continue;
            }
            let entry = citadel_scripts::plugin_entry(&plugin.slug);
            let subscription = format!("plugin:{}", plugin.slug);
            let mut delivery = Delivery {
                event_id: event.id.clone(),
                tenant_id: event.tenant_id.clone(),
                subscription: subscription.clone(),
                script_name: entry.clone(),
                run_id: None,
                error: None,
            };
            match self.live(&event.tenant_id, &entry).await? {
                None => {
                    delivery.error = Some(format!("plugin `{}` has no version in use", plugin.slug))
                }
                Some(live) => {
                    let config = serde_json::from_str(&plugin.config).unwrap_or_default();
                    let input = citadel_plugin::hook_input(
                        &hooks,
                        json!({ "id": event.id, "type": event.event_type, "data": data() }),
                        config,
                    );
                    let spec = RunSpec {
                        tenant_id: event.tenant_id.clone(),
                        live,
                        input_json: input.to_string(),
                        trigger: citadel_domain::Trigger::Event,
                        principal: Some(event.source.clone()),
                        timeout_ms: None,
                        run_id: None,
                        created_at: None,
                    };
                    let request = JobRequest {
                        idempotency_key: Some(format!("event:{}:{subscription}", event.id)),
                        depth: event.depth,
                        ..JobRequest::default()
                    };
                    match self.enqueue_run(spec, request).await {
                        Ok((run_id, _)) => delivery.run_id = Some(run_id),
                        Err(EngineError::Store(e)) => return Err(e.into()),
                        Err(other) => delivery.error = Some(other.to_string()),
                    }
                }
            }
            deliveries.push(delivery);
        }
        Ok(())
    }

    /// Counts one event emitted by a run against its quotas: the run's own
    /// (`events_per_run`, breadth of a fan-out) and its tenant's rate
    /// (`events_per_minute`, shared among the nodes up).
    pub(crate) fn take_emit(&self, tenant: &str, flight: &InFlight) -> Result<(), HostError> {
        let quotas = &self.config.quotas;
        let emitted = flight.emitted.fetch_add(1, Ordering::Relaxed);
        if emitted >= quotas.events_per_run {
            return Err(HostError::new(
                "limit_exceeded",
                format!("a run may emit at most {} events", quotas.events_per_run),
            ));
        }
        self.quota
            .take_event(tenant, quotas, self.nodes_up())
            .map_err(|wait| {
                HostError::new(
                    "rate_limited",
                    format!(
                        "the tenant's events per minute ({}) are used up; retry in {} ms",
                        quotas.events_per_minute,
                        wait.as_millis().max(1)
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("order.*", "order.paid"));
        assert!(matches("order.*", "order.paid.late"));
        assert!(!matches("order.*", "orders.paid"));
        assert!(!matches("order.*", "order"));
        assert!(matches("*", "anything.at.all"));
        assert!(matches("*.failed", "payment.failed"));
        assert!(matches("order.paid", "order.paid"));
        assert!(!matches("order.paid", "order.paid2"));
        assert!(matches("a*b*c", "aXbYc"));
    }

    #[test]
    fn types_and_patterns() {
        assert_eq!(validate_event_type("order.paid"), Ok(()));
        assert_eq!(
            validate_event_type("Order.Paid").unwrap_err(),
            "invalid event type `Order.Paid`: only a-z, 0-9, `_`, `-` and `.` are allowed"
        );
        assert_eq!(
            validate_event_type("order..paid").unwrap_err(),
            "invalid event type `order..paid`: it has an empty segment"
        );
        assert_eq!(
            validate_event_type("").unwrap_err(),
            "invalid event type ``: it must be 1–200 bytes"
        );
        assert_eq!(validate_pattern("order.*"), Ok(()));
        assert!(validate_event_type("order.*").is_err());
    }
}
