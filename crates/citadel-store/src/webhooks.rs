//! [`WebhookStore`]: outgoing webhook endpoints (each change a new
//! version, all kept), their deliveries and every attempt of each. The
//! retries themselves are queue jobs (kind `webhook`, the delivery's id);
//! what is kept here is what a tenant reads back: the delivery log.

use std::sync::LazyLock;

use citadel_domain::DeliveryState;
use serde::Serialize;

use crate::sql::{Dialect, SqlStore, conflict};
use crate::text::Text;
use crate::{StoreError, StoreFuture};

/// An endpoint as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WebhookEndpoint {
    pub tenant_id: String,
    pub name: String,
    pub version: i64,
    /// The endpoint document, YAML or JSON, as written.
    pub source: String,
    /// The transform script's source, when the document names one.
    pub transform: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Unix ms of the first failure since the last success.
    pub failing_since: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One stored version of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WebhookEndpointVersion {
    pub tenant_id: String,
    pub name: String,
    pub version: i64,
    pub source: String,
    pub transform: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// One event sent (or being sent) to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WebhookDelivery {
    pub id: String,
    pub tenant_id: String,
    pub endpoint: String,
    pub event_id: String,
    pub event_type: String,
    /// JSON: the event as delivered (`{id, type, data, timestamp}`).
    pub payload: String,
    #[sqlx(try_from = "Text<DeliveryState>")]
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WebhookAttempt {
    pub delivery_id: String,
    pub tenant_id: String,
    pub attempt: i64,
    pub at: i64,
    /// The receiver's status; `None` when it gave none (timeout, refused
    /// connection, redirect not followed, …).
    pub status: Option<i64>,
    pub latency_ms: i64,
    /// The first bytes of the answer.
    pub response: String,
    pub error: Option<String>,
}

/// A delivery's last attempt with everything that ends it, written in one
/// transaction (see [`WebhookStore::finish_deliveries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedDelivery {
    pub attempt: WebhookAttempt,
    /// `Delivered` or `Failed`.
    pub state: DeliveryState,
    /// The delivery's queue job, ended.
    pub job: crate::FinishedJob,
    /// `webhook.delivered` or `webhook.failed`.
    pub audit: crate::NewAuditEntry,
}

/// A script or workflow exposed as an inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct InboundWebhook {
    pub tenant_id: String,
    pub name: String,
    /// The script's or workflow's name.
    pub target: String,
    /// `standard_webhooks` or `hmac`.
    pub verify: String,
    /// The tenant secret the signature is checked with.
    pub secret: String,
    /// `hmac`: the header holding the signature.
    pub signature_header: Option<String>,
    /// `hmac`: the header whose value is de-duplicated on.
    pub id_header: Option<String>,
    /// `sync` (the run's result is the answer) or `async` (202).
    pub mode: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Whether a save made a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSave {
    Created(WebhookEndpoint),
    /// Identical to the current version; nothing stored.
    Unchanged(WebhookEndpoint),
}

/// Endpoints, deliveries and attempts; every method is scoped by tenant.
pub trait WebhookStore: Send + Sync {
    /// Creates an endpoint (version 1, enabled) or stores its next
    /// version, in one transaction; the same source and transform as the
    /// current version store nothing.
    fn save_endpoint<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        source: &'a str,
        transform: Option<&'a str>,
        by: &'a str,
        at: i64,
    ) -> StoreFuture<'a, EndpointSave>;
    fn endpoint<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<WebhookEndpoint>>;
    /// A tenant's endpoints, by name.
    fn endpoints<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<WebhookEndpoint>>;
    /// An endpoint's versions, oldest first.
    fn endpoint_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<WebhookEndpointVersion>>;
    /// Deletes an endpoint with its versions, deliveries and attempts;
    /// false when there is none.
    fn delete_endpoint<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
    /// Enables (clearing the reason and the failure clock) or disables an
    /// endpoint; false when there is none.
    fn set_endpoint_enabled<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        enabled: bool,
        reason: Option<&'a str>,
        at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Records the outcome of an attempt on the endpoint's failure clock:
    /// a success clears it, a failure starts it if it is not running.
    /// Answers when the endpoint has been failing since (`None` after a
    /// success).
    fn note_endpoint_outcome<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        ok: bool,
        at: i64,
    ) -> StoreFuture<'a, Option<i64>>;

    /// Inserts deliveries, all in one transaction.
    fn insert_deliveries<'a>(&'a self, d: &'a [WebhookDelivery]) -> StoreFuture<'a, ()>;
    fn delivery<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<WebhookDelivery>>;
    /// An endpoint's deliveries, newest first, at most `limit` (1..=1000).
    fn deliveries_of<'a>(
        &'a self,
        tenant_id: &'a str,
        endpoint: &'a str,
        limit: i64,
    ) -> StoreFuture<'a, Vec<WebhookDelivery>>;
    /// Records attempts and each delivery's state after its attempt, all
    /// in one transaction.
    fn record_attempts<'a>(
        &'a self,
        attempts: &'a [(WebhookAttempt, DeliveryState)],
    ) -> StoreFuture<'a, ()>;
    /// Ends deliveries of `node`'s running jobs: each one's last attempt,
    /// its state, its job's end and its audit entry, all in one
    /// transaction (one commit where four writers would each take the
    /// database's write lock); for each, whether the node still held the
    /// job.
    fn finish_deliveries<'a>(
        &'a self,
        node: &'a str,
        done: &'a [FinishedDelivery],
        now: i64,
    ) -> StoreFuture<'a, Vec<bool>>;
    /// A delivery's attempts, in order.
    fn attempts<'a>(
        &'a self,
        tenant_id: &'a str,
        delivery_id: &'a str,
    ) -> StoreFuture<'a, Vec<WebhookAttempt>>;
    /// Creates or replaces an inbound webhook (keeping its `created_at`).
    fn put_inbound<'a>(&'a self, hook: &'a InboundWebhook) -> StoreFuture<'a, InboundWebhook>;
    fn inbound<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<InboundWebhook>>;
    /// A tenant's inbound webhooks, by name.
    fn inbounds<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<InboundWebhook>>;
    /// False when there is none.
    fn delete_inbound<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;

    /// Marks a delivery failed without an attempt (its endpoint was
    /// disabled or deleted before it went out).
    fn fail_delivery<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        error: &'a str,
        at: i64,
    ) -> StoreFuture<'a, ()>;
}

const ENDPOINT_COLUMNS: &str = "tenant_id, name, version, source, transform, enabled, \
     disabled_reason, failing_since, created_by, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, tenant_id, endpoint, event_id, event_type, payload, state, \
     attempts, last_status, last_error, created_at, updated_at";
const ATTEMPT_COLUMNS: &str =
    "delivery_id, tenant_id, attempt, at, status, latency_ms, response, error";

static ENDPOINT_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2")
});
static ENDPOINTS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY name")
});
static INSERT_DELIVERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )
});
static INSERT_ATTEMPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (delivery_id, attempt) DO UPDATE SET at = excluded.at, \
         status = excluded.status, latency_ms = excluded.latency_ms, \
         response = excluded.response, error = excluded.error"
    )
});
static DELIVERY_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2")
});
static DELIVERIES_OF_ENDPOINT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint = $2 \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )
});
static ATTEMPTS_OF_DELIVERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id = $2 \
         ORDER BY attempt"
    )
});

const INBOUND_COLUMNS: &str = "tenant_id, name, target, verify, secret, signature_header, \
     id_header, mode, created_at, updated_at";

static PUT_INBOUND: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO inbound_webhooks ({INBOUND_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET target = excluded.target, \
         verify = excluded.verify, secret = excluded.secret, \
         signature_header = excluded.signature_header, id_header = excluded.id_header, \
         mode = excluded.mode, updated_at = excluded.updated_at \
         RETURNING {INBOUND_COLUMNS}"
    )
});
static INBOUND_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {INBOUND_COLUMNS} FROM inbound_webhooks WHERE tenant_id = $1 AND name = $2")
});
static INBOUNDS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {INBOUND_COLUMNS} FROM inbound_webhooks WHERE tenant_id = $1 ORDER BY name")
});

impl<D: Dialect> SqlStore<D> {
    /// [`WebhookStore::insert_deliveries`] inside the caller's write
    /// transaction.
    pub(crate) async fn insert_deliveries_in(
        tx: &mut D::Connection,
        all: &[WebhookDelivery],
    ) -> Result<(), StoreError> {
        for d in all {
            D::query(&INSERT_DELIVERY)
                .bind(&d.id)
                .bind(&d.tenant_id)
                .bind(&d.endpoint)
                .bind(&d.event_id)
                .bind(&d.event_type)
                .bind(&d.payload)
                .bind(d.state.as_str())
                .bind(d.attempts)
                .bind(d.last_status)
                .bind(d.last_error.as_deref())
                .bind(d.created_at)
                .bind(d.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict(e, format!("delivery `{}`", d.id)))?;
        }
        Ok(())
    }

    /// An attempt and its delivery's state after it, inside the caller's
    /// write transaction.
    async fn record_attempt_in(
        tx: &mut D::Connection,
        a: &WebhookAttempt,
        state: DeliveryState,
    ) -> Result<(), StoreError> {
        D::query(&INSERT_ATTEMPT)
            .bind(&a.delivery_id)
            .bind(&a.tenant_id)
            .bind(a.attempt)
            .bind(a.at)
            .bind(a.status)
            .bind(a.latency_ms)
            .bind(&a.response)
            .bind(a.error.as_deref())
            .execute(&mut *tx)
            .await?;
        let updated = D::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = $2, last_status = $3, \
             last_error = $4, updated_at = $5 WHERE tenant_id = $6 AND id = $7",
        )
        .bind(state.as_str())
        .bind(a.attempt)
        .bind(a.status)
        .bind(a.error.as_deref())
        .bind(a.at)
        .bind(&a.tenant_id)
        .bind(&a.delivery_id)
        .execute(&mut *tx)
        .await?;
        if updated != 1 {
            return Err(StoreError::NotFound(format!(
                "delivery `{}`",
                a.delivery_id
            )));
        }
        Ok(())
    }
}

impl<D: Dialect> WebhookStore for SqlStore<D> {
    fn put_inbound<'a>(&'a self, h: &'a InboundWebhook) -> StoreFuture<'a, InboundWebhook> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            D::query(&PUT_INBOUND)
                .bind(&h.tenant_id)
                .bind(&h.name)
                .bind(&h.target)
                .bind(&h.verify)
                .bind(&h.secret)
                .bind(h.signature_header.as_deref())
                .bind(h.id_header.as_deref())
                .bind(&h.mode)
                .bind(h.created_at)
                .bind(h.updated_at)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| conflict(e, format!("inbound webhook `{}`", h.name)))
        })
    }

    fn inbound<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<InboundWebhook>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&INBOUND_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn inbounds<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<InboundWebhook>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&INBOUNDS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn delete_inbound<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query("DELETE FROM inbound_webhooks WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut conn)
                .await?;
            Ok(done == 1)
        })
    }

    fn save_endpoint<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        source: &'a str,
        transform: Option<&'a str>,
        by: &'a str,
        at: i64,
    ) -> StoreFuture<'a, EndpointSave> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let current: Option<WebhookEndpoint> = D::query(&ENDPOINT_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut tx)
                .await?;
            if let Some(c) = &current
                && c.source == source
                && c.transform.as_deref() == transform
            {
                tx.commit().await?;
                return Ok(EndpointSave::Unchanged(c.clone()));
            }
            let version = current.as_ref().map_or(1, |c| c.version + 1);
            match &current {
                None => {
                    D::query(
                        "INSERT INTO webhook_endpoints (tenant_id, name, version, source, \
                         transform, enabled, disabled_reason, failing_since, created_by, \
                         created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $8, $8)",
                    )
                    .bind(tenant_id)
                    .bind(name)
                    .bind(version)
                    .bind(source)
                    .bind(transform)
                    .bind(true)
                    .bind(by)
                    .bind(at)
                    .execute(&mut tx)
                    .await
                    .map_err(|e| conflict(e, format!("webhook endpoint `{name}`")))?;
                }
                Some(_) => {
                    D::query(
                        "UPDATE webhook_endpoints SET version = $1, source = $2, transform = $3, \
                         updated_at = $4 WHERE tenant_id = $5 AND name = $6",
                    )
                    .bind(version)
                    .bind(source)
                    .bind(transform)
                    .bind(at)
                    .bind(tenant_id)
                    .bind(name)
                    .execute(&mut tx)
                    .await?;
                }
            }
            D::query(
                "INSERT INTO webhook_endpoint_versions (tenant_id, name, version, source, \
                 transform, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant_id)
            .bind(name)
            .bind(version)
            .bind(source)
            .bind(transform)
            .bind(by)
            .bind(at)
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, format!("webhook endpoint `{name}`")))?;
            let saved: WebhookEndpoint = D::query(&ENDPOINT_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_one(&mut tx)
                .await?;
            tx.commit().await?;
            Ok(EndpointSave::Created(saved))
        })
    }

    fn endpoint<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<WebhookEndpoint>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&ENDPOINT_BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn endpoints<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<WebhookEndpoint>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&ENDPOINTS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn endpoint_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<WebhookEndpointVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT tenant_id, name, version, source, transform, created_by, created_at \
                 FROM webhook_endpoint_versions WHERE tenant_id = $1 AND name = $2 ORDER BY version",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn delete_endpoint<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            D::query(
                "DELETE FROM webhook_attempts WHERE tenant_id = $1 AND delivery_id IN \
                 (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint = $2)",
            )
            .bind(tenant_id)
            .bind(name)
            .execute(&mut tx)
            .await?;
            for sql in [
                "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND endpoint = $2",
                "DELETE FROM webhook_endpoint_versions WHERE tenant_id = $1 AND name = $2",
            ] {
                D::query(sql)
                    .bind(tenant_id)
                    .bind(name)
                    .execute(&mut tx)
                    .await?;
            }
            let done = D::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
            Ok(done == 1)
        })
    }

    fn set_endpoint_enabled<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        enabled: bool,
        reason: Option<&'a str>,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, \
                 failing_since = CASE WHEN $1 THEN NULL ELSE failing_since END, updated_at = $3 \
                 WHERE tenant_id = $4 AND name = $5",
            )
            .bind(enabled)
            .bind(if enabled { None } else { reason })
            .bind(at)
            .bind(tenant_id)
            .bind(name)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn note_endpoint_outcome<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
        ok: bool,
        at: i64,
    ) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let row: Option<(Option<i64>,)> = if ok {
                D::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL \
                     WHERE tenant_id = $1 AND name = $2 RETURNING failing_since",
                )
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?
            } else {
                D::query(
                    "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) \
                     WHERE tenant_id = $2 AND name = $3 RETURNING failing_since",
                )
                .bind(at)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?
            };
            Ok(row.and_then(|(f,)| f))
        })
    }

    fn insert_deliveries<'a>(&'a self, all: &'a [WebhookDelivery]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            Self::insert_deliveries_in(&mut tx, all).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn delivery<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<WebhookDelivery>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&DELIVERY_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn deliveries_of<'a>(
        &'a self,
        tenant_id: &'a str,
        endpoint: &'a str,
        limit: i64,
    ) -> StoreFuture<'a, Vec<WebhookDelivery>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&DELIVERIES_OF_ENDPOINT)
                .bind(tenant_id)
                .bind(endpoint)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn record_attempts<'a>(
        &'a self,
        all: &'a [(WebhookAttempt, DeliveryState)],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            for (a, state) in all {
                Self::record_attempt_in(&mut tx, a, *state).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn finish_deliveries<'a>(
        &'a self,
        node: &'a str,
        done: &'a [FinishedDelivery],
        now: i64,
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(async move {
            // The audit chain's lock before the transaction, as every
            // appender takes them.
            let _one_writer_here = self.audit_lock.lock().await;
            let mut tx = self.write_tx().await?;
            for d in done {
                Self::record_attempt_in(&mut tx, &d.attempt, d.state).await?;
            }
            let jobs: Vec<&crate::FinishedJob> = done.iter().map(|d| &d.job).collect();
            let held = Self::finish_jobs_in(&mut tx, node, &jobs, now).await?;
            let entries: Vec<&crate::NewAuditEntry> = done.iter().map(|d| &d.audit).collect();
            Self::append_chain_in(&mut tx, &entries).await?;
            tx.commit().await?;
            Ok(held)
        })
    }

    fn attempts<'a>(
        &'a self,
        tenant_id: &'a str,
        delivery_id: &'a str,
    ) -> StoreFuture<'a, Vec<WebhookAttempt>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&ATTEMPTS_OF_DELIVERY)
                .bind(tenant_id)
                .bind(delivery_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn fail_delivery<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        error: &'a str,
        at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(
                "UPDATE webhook_deliveries SET state = $1, last_error = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(DeliveryState::Failed.as_str())
            .bind(error)
            .bind(at)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut conn)
            .await?;
            Ok(())
        })
    }
}
