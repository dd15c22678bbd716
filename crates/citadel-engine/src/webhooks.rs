//! Outgoing webhooks: every event published to a tenant is offered to its
//! enabled endpoints whose `on` patterns match; each match becomes a
//! delivery (a row of the delivery log) and a queue job of kind `webhook`
//! with the delivery's id, so a delivery survives restarts and is claimed
//! by whichever node is free, like a run.
//!
//! One attempt: the transform (if any) shapes the payload in the sandbox,
//! `${SECRET:NAME}` references are resolved from the vault, the body is
//! signed per Standard Webhooks (`webhook-id` the delivery's id, stable
//! across attempts), and it is sent through the egress guard (no private
//! addresses, no redirects followed) within the endpoint's timeout, so a
//! slow receiver holds a worker for that long at most. A 2xx delivers it; a
//! 410 disables the endpoint; anything else is tried again on the
//! endpoint's schedule (a `Retry-After` can only push an attempt later),
//! until the attempts run out or the endpoint has failed for longer than
//! its `disable_after`, which disables it. Disabling publishes
//! `webhook.endpoint.disabled`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_domain::{DeliveryState, JobState, Language, ScriptKind, Trigger, VersionState};
use citadel_egress::{Allowlist, FetchRequest};
use citadel_plugin::retry::{Outcome, classify, parse_retry_after, should_disable};
use citadel_plugin::{Endpoint, signature};
use citadel_store::{
    Delivery, Event, FinishedDelivery, FinishedJob, Job, NewAuditEntry, NewJob, Script,
    ScriptVersion, WebhookAttempt, WebhookDelivery, WebhookEndpoint, new_time_ordered_id, now_ms,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::{Value, json};

use crate::{Engine, EngineError, LiveScript, RunSpec, lock};

/// Runs of plugins' hooks, routes and jobs and attempts of webhook
/// deliveries, by tenant and plugin slug or endpoint name: counters by
/// outcome and latency histograms (`citadel_extension_*` in `/metrics`).
/// Their labels are bounded by what tenants install.
pub struct ExtensionMetrics {
    calls: Family<ExtensionOutcome, Counter>,
    latency: Family<ExtensionLabels, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExtensionLabels {
    tenant: String,
    /// The plugin's slug, or the endpoint's name.
    name: String,
    /// `hook`, `route`, `job` or `delivery`.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExtensionOutcome {
    tenant: String,
    name: String,
    kind: &'static str,
    /// `ok` or `failed`.
    outcome: &'static str,
}

fn extension_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
    ])
}

impl Default for ExtensionMetrics {
    fn default() -> Self {
        ExtensionMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(extension_histogram as fn() -> Histogram),
        }
    }
}

impl ExtensionMetrics {
    pub(crate) fn observe(
        &self,
        tenant: &str,
        name: &str,
        kind: &'static str,
        ok: bool,
        took: Duration,
    ) {
        self.calls
            .get_or_create(&ExtensionOutcome {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                kind,
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
        self.latency
            .get_or_create(&ExtensionLabels {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                kind,
            })
            .observe(took.as_secs_f64());
    }

    /// Adds the metrics to a registry.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "citadel_extension_runs",
            "Plugin hook, route and job runs and webhook delivery attempts, by outcome",
            self.calls.clone(),
        );
        registry.register(
            "citadel_extension_duration_seconds",
            "Plugin hook, route and job runs and webhook delivery attempts, latency",
            self.latency.clone(),
        );
    }
}

/// The job kind of a webhook delivery.
pub const WEBHOOK_JOB: &str = "webhook";

/// How much of a receiver's answer the log keeps.
const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// An endpoint document parsed, or why it does not parse.
pub fn parse_endpoint(e: &WebhookEndpoint) -> Result<Endpoint, String> {
    Endpoint::parse("endpoint", &e.source).map_err(|d| {
        d.first()
            .map_or_else(|| "it does not parse".to_owned(), ToString::to_string)
    })
}

/// What a delivery's job carries.
#[derive(serde::Deserialize)]
struct DeliveryJob {
    endpoint: String,
    event_id: String,
    event_type: String,
    payload: String,
    created_at: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub attempt: WebhookAttempt,
    pub outcome: Outcome,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Engine {
    /// A tenant's webhook endpoints, cached for `cache_ttl`.
    pub(crate) async fn tenant_endpoints(
        &self,
        tenant: &str,
    ) -> Result<Arc<Vec<WebhookEndpoint>>, citadel_store::StoreError> {
        if let Some((at, list)) = lock(&self.endpoint_lists).get(tenant)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(self.store.endpoints(tenant).await?);
        lock(&self.endpoint_lists).put(tenant.to_owned(), (Instant::now(), Arc::clone(&list)));
        Ok(list)
    }

    /// A tenant by its name, cached for `cache_ttl` (names of tenants are
    /// never reused for another id).
    pub async fn tenant_named(
        &self,
        name: &str,
    ) -> Result<Option<citadel_store::Tenant>, citadel_store::StoreError> {
        if let Some((at, t)) = lock(&self.tenant_names).get(name)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(t.clone());
        }
        let t = self.store.tenant_by_name(name).await?;
        lock(&self.tenant_names).put(name.to_owned(), (Instant::now(), t.clone()));
        Ok(t)
    }

    /// A tenant's plugins, cached for `cache_ttl`.
    pub async fn tenant_plugins(
        &self,
        tenant: &str,
    ) -> Result<Arc<Vec<citadel_store::Plugin>>, citadel_store::StoreError> {
        if let Some((at, list)) = lock(&self.plugin_lists).get(tenant)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(self.store.plugins(tenant).await?);
        lock(&self.plugin_lists).put(tenant.to_owned(), (Instant::now(), Arc::clone(&list)));
        Ok(list)
    }

    /// Forgets the cached endpoints and plugins of a tenant: after a change
    /// through this node.
    pub fn forget_extensions(&self, tenant: &str) {
        lock(&self.endpoint_lists).pop(tenant);
        lock(&self.plugin_lists).pop(tenant);
    }

    /// Forgets a secret's cached value: after it changed through this node.
    pub fn forget_secret(&self, tenant: &str, name: &str) {
        lock(&self.delivery_secrets).pop(&(tenant.to_owned(), name.to_owned()));
    }

    /// An endpoint's document parsed, from a cache keyed by its tenant,
    /// name and version (a version never changes).
    pub(crate) fn parsed_endpoint(&self, e: &WebhookEndpoint) -> Result<Arc<Endpoint>, String> {
        let key = (e.tenant_id.clone(), e.name.clone(), e.version);
        if let Some(p) = lock(&self.endpoints).get(&key) {
            return Ok(Arc::clone(p));
        }
        let parsed = Arc::new(parse_endpoint(e)?);
        lock(&self.endpoints).put(key, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// Offers a published event to the tenant's enabled endpoints: one
    /// delivery (and its job) per endpoint whose `on` matches, listed among
    /// the event's deliveries as `webhook:{name}`. The deliveries and jobs
    /// are for the caller to write, with the event.
    pub(crate) async fn deliver_to_endpoints(
        &self,
        event: &Event,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(Vec<WebhookDelivery>, Vec<NewJob>), EngineError> {
        let endpoints = self.tenant_endpoints(&event.tenant_id).await?;
        let mut batch = Vec::new();
        for endpoint in endpoints.iter().filter(|e| e.enabled).cloned() {
            let Ok(parsed) = self.parsed_endpoint(&endpoint) else {
                continue;
            };
            if parsed
                .on
                .iter()
                .any(|p| citadel_plugin::event_matches(p, &event.event_type))
            {
                batch.push((endpoint, parsed));
            }
        }
        if batch.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
        let pairs: Vec<(&WebhookEndpoint, &Endpoint)> =
            batch.iter().map(|(e, p)| (e, p.as_ref())).collect();
        let (rows, jobs) = delivery_rows(
            &pairs,
            &event.id,
            &event.event_type,
            &data,
            event.created_at,
        );
        for ((endpoint, _), row) in batch.iter().zip(&rows) {
            deliveries.push(Delivery {
                event_id: event.id.clone(),
                tenant_id: event.tenant_id.clone(),
                subscription: format!("webhook:{}", endpoint.name),
                script_name: String::new(),
                run_id: Some(row.id.clone()),
                error: None,
            });
        }
        Ok((rows, jobs))
    }

    /// Records a delivery of an event to an endpoint and queues its first
    /// attempt now. Returns the delivery's id.
    pub async fn enqueue_delivery(
        &self,
        endpoint: &WebhookEndpoint,
        parsed: &Endpoint,
        event_id: &str,
        event_type: &str,
        data: Value,
        event_at: i64,
    ) -> Result<String, EngineError> {
        let ids = self
            .enqueue_deliveries(&[(endpoint, parsed)], event_id, event_type, &data, event_at)
            .await?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }

    /// Records one delivery of an event per endpoint (one transaction) and
    /// queues their first attempts now (another). Returns their ids, in
    /// order.
    async fn enqueue_deliveries(
        &self,
        endpoints: &[(&WebhookEndpoint, &Endpoint)],
        event_id: &str,
        event_type: &str,
        data: &Value,
        event_at: i64,
    ) -> Result<Vec<String>, EngineError> {
        let (rows, jobs) = delivery_rows(endpoints, event_id, event_type, data, event_at);
        // The rows before the jobs: an attempt updates its row.
        self.store.insert_deliveries(&rows).await?;
        self.store.enqueue_many(&jobs).await?;
        self.worker.wake.notify_one();
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// One delivery job: an attempt, then done or queued again for the
    /// next one.
    pub(crate) async fn run_webhook_job(&self, job: &Job) {
        let node = self.worker.node_id().to_owned();
        let finish = |state: JobState, error: Option<String>| {
            let id = job.id.clone();
            async move {
                lock(&self.worker.finishing).insert(id.clone());
                let done = FinishedJob {
                    id: id.clone(),
                    state,
                    error,
                };
                if let Err(e) = self.finisher.finish(done).await {
                    tracing::error!(error = %e, job = %id, "cannot finish a delivery job");
                }
            }
        };
        let tenant = &job.tenant_id;
        let carried: Option<DeliveryJob> = serde_json::from_str(&job.payload).ok();
        let delivery = match carried {
            // The attempt's number is the job's: each claim is one attempt.
            Some(d) => WebhookDelivery {
                id: job.id.clone(),
                tenant_id: tenant.clone(),
                endpoint: d.endpoint,
                event_id: d.event_id,
                event_type: d.event_type,
                payload: d.payload,
                state: DeliveryState::Pending,
                attempts: (job.attempts - 1).max(0),
                last_status: None,
                last_error: None,
                created_at: d.created_at,
                updated_at: d.created_at,
            },
            None => {
                return finish(JobState::Failed, Some("an unreadable delivery job".into())).await;
            }
        };
        let found = self
            .tenant_endpoints(tenant)
            .await
            .map(|list| list.iter().find(|e| e.name == delivery.endpoint).cloned());
        let endpoint = match found {
            Ok(Some(e)) if e.enabled => e,
            Ok(_) => {
                let why = "the endpoint is disabled or deleted";
                let _ = self
                    .store
                    .fail_delivery(tenant, &delivery.id, why, now_ms())
                    .await;
                return finish(JobState::Cancelled, Some(why.into())).await;
            }
            Err(e) => {
                let _ = self
                    .store
                    .requeue_job(
                        &job.id,
                        &node,
                        now_ms() + 1_000,
                        Some(&e.to_string()),
                        true,
                        now_ms(),
                    )
                    .await;
                return;
            }
        };
        let parsed = match self.parsed_endpoint(&endpoint) {
            Ok(p) => p,
            Err(why) => {
                let _ = self
                    .store
                    .fail_delivery(tenant, &delivery.id, &why, now_ms())
                    .await;
                return finish(JobState::Failed, Some(why)).await;
            }
        };
        let number = delivery.attempts + 1;
        let tried = self.attempt(&endpoint, &parsed, &delivery, number).await;
        let now = now_ms();
        let error = tried.attempt.error.clone();
        let (state, next) = match tried.outcome {
            Outcome::Delivered => {
                // Only an endpoint that was failing has a clock to stop.
                if endpoint.failing_since.is_some() {
                    let _ = self
                        .store
                        .note_endpoint_outcome(tenant, &endpoint.name, true, now)
                        .await;
                }
                (DeliveryState::Delivered, None)
            }
            Outcome::Gone => {
                self.disable_endpoint(&endpoint, "the receiver answered 410 Gone")
                    .await;
                (DeliveryState::Failed, None)
            }
            Outcome::Retry => {
                let since = self
                    .store
                    .note_endpoint_outcome(tenant, &endpoint.name, false, now)
                    .await
                    .ok()
                    .flatten();
                // A success here must see the clock running to stop it.
                if endpoint.failing_since.is_none() {
                    self.forget_extensions(tenant);
                }
                let failing_too_long = since
                    .is_some_and(|s| should_disable(s / 1000, now / 1000, parsed.disable_after));
                if failing_too_long {
                    self.disable_endpoint(&endpoint, "it kept failing past its disable_after")
                        .await;
                    (DeliveryState::Failed, None)
                } else {
                    match parsed.retry.next_attempt(number as u32, tried.retry_after) {
                        Some(wait) => (DeliveryState::Pending, Some(wait)),
                        None => (DeliveryState::Failed, None),
                    }
                }
            }
        };
        if let (DeliveryState::Pending, Some(wait)) = (state, next) {
            if let Err(e) = self.attempts.record(tried.attempt, state).await {
                tracing::error!(error = %e, delivery = %delivery.id, "cannot record a delivery attempt");
            }
            lock(&self.worker.finishing).insert(job.id.clone());
            let at = now + wait.as_millis().min(i64::MAX as u128) as i64;
            if let Err(e) = self
                .store
                .requeue_job(&job.id, &node, at, error.as_deref(), false, now)
                .await
            {
                tracing::error!(error = %e, delivery = %delivery.id, "cannot requeue a delivery");
            }
            return;
        }
        // Done, delivered or not: its attempt, job end and audit entry in
        // one commit.
        let (state, job_state) = match state {
            DeliveryState::Delivered => (state, JobState::Succeeded),
            _ => (DeliveryState::Failed, JobState::Failed),
        };
        let failure = (job_state == JobState::Failed)
            .then(|| error.clone().unwrap_or_else(|| "failed".to_owned()));
        let audit = audit_entry(&delivery, number, tried.attempt.status, failure.as_deref());
        lock(&self.worker.finishing).insert(job.id.clone());
        let done = FinishedDelivery {
            attempt: tried.attempt,
            state,
            job: FinishedJob {
                id: job.id.clone(),
                state: job_state,
                error,
            },
            audit,
        };
        if let Err(e) = self.deliveries_done.finish(done).await {
            tracing::error!(error = %e, delivery = %delivery.id, "cannot finish a delivery");
        }
    }

    /// Disables an endpoint, audits it and publishes
    /// `webhook.endpoint.disabled`.
    async fn disable_endpoint(&self, e: &WebhookEndpoint, reason: &str) {
        let now = now_ms();
        match self
            .store
            .set_endpoint_enabled(&e.tenant_id, &e.name, false, Some(reason), now)
            .await
        {
            Ok(true) => self.forget_extensions(&e.tenant_id),
            Ok(false) => return,
            Err(err) => {
                tracing::error!(error = %err, endpoint = %e.name, "cannot disable an endpoint");
                return;
            }
        }
        let entry = NewAuditEntry {
            at: now,
            tenant_id: Some(e.tenant_id.clone()),
            principal: None,
            action: "webhook.endpoint.disable".into(),
            target: format!("webhook:{}", e.name),
            outcome: "ok".into(),
            request_id: "-".into(),
            details: json!({ "reason": reason }).to_string(),
        };
        if let Err(err) = self.store.append_audit(&entry).await {
            tracing::error!(error = %err, "cannot audit a disabled endpoint");
        }
        let data = json!({ "endpoint": e.name, "reason": reason }).to_string();
        if let Err(err) = self
            .publish(
                &e.tenant_id,
                "webhook.endpoint.disabled",
                data,
                1,
                "citadel",
            )
            .await
        {
            tracing::warn!(error = %err, "cannot publish webhook.endpoint.disabled");
        }
    }

    /// Makes attempt `number` of a delivery and says what came of it
    /// (nothing is recorded here).
    pub async fn attempt(
        &self,
        endpoint: &WebhookEndpoint,
        parsed: &Endpoint,
        delivery: &WebhookDelivery,
        number: i64,
    ) -> Attempted {
        let started = Instant::now();
        let at = now_ms();
        let result = self.send(endpoint, parsed, delivery).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let (status, response, error, retry_after) = match result {
            Ok((status, body, retry_after)) => {
                let excerpt =
                    String::from_utf8_lossy(&body[..body.len().min(RESPONSE_EXCERPT_BYTES)])
                        .into_owned();
                let error = (!(200..300).contains(&status))
                    .then(|| format!("the receiver answered {status}"));
                (Some(status), excerpt, error, retry_after)
            }
            Err(why) => (None, String::new(), Some(why), None),
        };
        let outcome = classify(status);
        self.extension_metrics.observe(
            &delivery.tenant_id,
            &delivery.endpoint,
            "delivery",
            outcome == Outcome::Delivered,
            started.elapsed(),
        );
        Attempted {
            attempt: WebhookAttempt {
                delivery_id: delivery.id.clone(),
                tenant_id: delivery.tenant_id.clone(),
                attempt: number,
                at,
                status: status.map(i64::from),
                latency_ms,
                response,
                error,
            },
            outcome,
            retry_after,
        }
    }

    /// Shapes, signs and sends one attempt: the receiver's status, body
    /// and `Retry-After`, or why nothing was answered.
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        parsed: &Endpoint,
        delivery: &WebhookDelivery,
    ) -> Result<(u16, Vec<u8>, Option<Duration>), String> {
        let egress = self
            .delivery_egress
            .as_ref()
            .ok_or_else(|| "outgoing HTTP is not configured on this node".to_owned())?;
        let body = match (&parsed.transform, &endpoint.transform) {
            (Some(t), Some(source)) => {
                self.transform(endpoint, &t.export, t.language.analyzer(), source, delivery)
                    .await?
            }
            _ => delivery.payload.clone(),
        };
        let secrets = self.endpoint_secrets(&delivery.tenant_id, parsed).await?;
        let lookup = |name: &str| {
            secrets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let url = parsed.resolve_url(lookup)?;
        let signing = parsed
            .delivery
            .signing_secret
            .render(lookup)
            .map_err(|name| format!("secret `{name}` is not set"))?;
        let timestamp = now_ms() / 1000;
        // During a rotation the secret holds the new and the old key,
        // separated by a space: each signs, so receivers on either verify.
        let keys: Vec<&str> = signing.split_whitespace().collect();
        let signed = signature::signed_headers(&keys, &delivery.id, timestamp, body.as_bytes())
            .map_err(|e| format!("cannot sign: {}", e.code()))?;
        let mut headers: Vec<(String, String)> =
            vec![("content-type".into(), "application/json".into())];
        for (name, value) in &parsed.delivery.headers {
            let value = value
                .render(lookup)
                .map_err(|n| format!("secret `{n}` is not set"))?;
            headers.push((name.clone(), value));
        }
        headers.extend(signed.into_iter().map(|(n, v)| (n.to_owned(), v)));
        let settings = self
            .settings(&delivery.tenant_id)
            .await
            .map_err(|e| format!("the tenant's settings: {e}"))?;
        // The endpoint names its own receiver: only that origin is allowed
        // (every hop is still checked against private addresses), within
        // the tenant's ceiling when it has one.
        let origin = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(443)
        );
        let any = Allowlist::parse(&[origin]).map_err(|e| e.to_string())?;
        let ceiling = match &settings.http_allow {
            Some(list) => Some(Allowlist::parse(list).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut allow: Vec<&Allowlist> = vec![&any];
        if let Some(c) = &ceiling {
            allow.push(c);
        }
        let request = FetchRequest {
            method: "POST".into(),
            url: url.to_string(),
            headers,
            body: Some(body.into_bytes()),
            timeout: Duration::from_millis(parsed.delivery.timeout_ms),
        };
        match egress.fetch(&allow, request).await {
            Ok(r) => {
                let retry_after = r
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| parse_retry_after(v, now_ms() / 1000));
                Ok((r.status, r.body, retry_after))
            }
            Err(citadel_egress::EgressError::TooManyRedirects(_)) => {
                Err("the receiver answered a redirect, which deliveries do not follow".into())
            }
            Err(e) => Err(format!("{}: {e}", e.code())),
        }
    }

    /// The values of the secrets an endpoint names.
    async fn endpoint_secrets(
        &self,
        tenant: &str,
        parsed: &Endpoint,
    ) -> Result<Vec<(String, String)>, String> {
        let names = parsed.secrets();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let vault =
            self.config.vault.as_ref().ok_or_else(|| {
                "secrets are not configured on this node (no master key)".to_owned()
            })?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // Values are kept for `cache_ttl` (a rotation reaches deliveries
            // that much later), so a busy endpoint does not read its secrets
            // once per attempt.
            let key = (tenant.to_owned(), name.to_owned());
            if let Some((at, value)) = lock(&self.delivery_secrets).get(&key)
                && at.elapsed() < self.config.cache_ttl
            {
                out.push((name.to_owned(), value.to_string()));
                continue;
            }
            let revealed = vault
                .reveal(tenant, name, now_ms())
                .await
                .map_err(|e| format!("secret `{name}`: {e}"))?;
            lock(&self.delivery_secrets).put(key, (Instant::now(), revealed.value.clone()));
            out.push((name.to_owned(), revealed.value.to_string()));
        }
        Ok(out)
    }

    /// Runs an endpoint's transform on a delivery's event in the sandbox
    /// (as a run of `webhooks/{name}`, with no capabilities); its result
    /// is the body sent.
    async fn transform(
        &self,
        endpoint: &WebhookEndpoint,
        export: &str,
        language: Language,
        source: &str,
        delivery: &WebhookDelivery,
    ) -> Result<String, String> {
        let name = format!("webhooks/{}", endpoint.name);
        let module = citadel_plugin::transform_module(source, export);
        let live = LiveScript {
            script: Script {
                id: format!("whk_{}_{}", endpoint.tenant_id, endpoint.name),
                tenant_id: endpoint.tenant_id.clone(),
                name: name.clone(),
                kind: ScriptKind::Script,
                live_seq: Some(endpoint.version),
                latest_seq: endpoint.version,
                created_at: endpoint.created_at,
                updated_at: endpoint.updated_at,
            },
            version: ScriptVersion {
                script_id: format!("whk_{}_{}", endpoint.tenant_id, endpoint.name),
                tenant_id: endpoint.tenant_id.clone(),
                seq: endpoint.version,
                version: format!("{}.0.0", endpoint.version),
                hash: String::new(),
                source: module,
                language,
                capabilities: "{}".into(),
                limits: "{}".into(),
                diagnostics: "[]".into(),
                change_note: String::new(),
                author: endpoint.created_by.clone(),
                state: VersionState::Approved,
                reviewed_by: None,
                review_reason: None,
                reviewed_at: None,
                created_at: endpoint.updated_at,
            },
            language,
            capabilities: Default::default(),
            limits: Default::default(),
        };
        let spec = RunSpec {
            tenant_id: endpoint.tenant_id.clone(),
            live: Arc::new(live),
            input_json: delivery.payload.clone(),
            trigger: Trigger::Event,
            principal: Some(format!("webhook:{}", endpoint.name)),
            timeout_ms: None,
            run_id: None,
            created_at: None,
        };
        let run = self
            .run_sync(spec)
            .await
            .map_err(|e| format!("the transform did not run: {e}"))?;
        if run.status != citadel_domain::RunStatus::Succeeded {
            let code = run
                .error
                .as_deref()
                .and_then(|e| serde_json::from_str::<Value>(e).ok())
                .and_then(|e| e.get("code").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| run.status.as_str().to_owned());
            return Err(format!("the transform failed ({code}); see run {}", run.id));
        }
        match run.result.as_deref() {
            None | Some("null") => Err(format!(
                "the transform answered nothing; see run {}",
                run.id
            )),
            Some(body) => Ok(body.to_owned()),
        }
    }
}

/// `webhook.delivered` or `webhook.failed` on the audit record, once a
/// delivery is done (`error` when it failed).
fn audit_entry(
    d: &WebhookDelivery,
    attempts: i64,
    status: Option<i64>,
    error: Option<&str>,
) -> NewAuditEntry {
    let delivered = error.is_none();
    NewAuditEntry {
        at: now_ms(),
        tenant_id: Some(d.tenant_id.clone()),
        principal: None,
        action: if delivered {
            "webhook.delivered"
        } else {
            "webhook.failed"
        }
        .into(),
        target: format!("webhook:{}", d.endpoint),
        outcome: if delivered { "ok" } else { "failed" }.into(),
        request_id: d.id.clone(),
        details: json!({
            "delivery": d.id,
            "event_id": d.event_id,
            "attempts": attempts,
            "status": status,
            "error": error,
        })
        .to_string(),
    }
}

/// One delivery of an event per endpoint, and the job of its first attempt
/// (due now).
fn delivery_rows(
    endpoints: &[(&WebhookEndpoint, &Endpoint)],
    event_id: &str,
    event_type: &str,
    data: &Value,
    event_at: i64,
) -> (Vec<WebhookDelivery>, Vec<NewJob>) {
    let now = now_ms();
    let payload = json!({
        "id": event_id,
        "type": event_type,
        "timestamp": jiff::Timestamp::from_millisecond(event_at)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        "data": data,
    })
    .to_string();
    let mut rows = Vec::with_capacity(endpoints.len());
    let mut jobs = Vec::with_capacity(endpoints.len());
    for (endpoint, parsed) in endpoints {
        let id = new_time_ordered_id("msg");
        jobs.push(NewJob {
            id: id.clone(),
            tenant_id: endpoint.tenant_id.clone(),
            kind: WEBHOOK_JOB.into(),
            // What an attempt needs, so it reads no delivery row.
            payload: json!({
                "endpoint": endpoint.name,
                "event_id": event_id,
                "event_type": event_type,
                "payload": payload,
                "created_at": now,
            })
            .to_string(),
            priority: citadel_domain::Priority::Normal.as_i64(),
            run_at: now,
            // The delivery decides when it is done; the queue only
            // keeps it alive across nodes.
            max_attempts: parsed.retry.max_attempts() as i64 + 1,
            timeout_ms: parsed.delivery.timeout_ms as i64 + 30_000,
            idempotency_key: None,
            script_key: None,
            script_cap: None,
        });
        rows.push(WebhookDelivery {
            id,
            tenant_id: endpoint.tenant_id.clone(),
            endpoint: endpoint.name.clone(),
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            payload: payload.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        });
    }
    (rows, jobs)
}
