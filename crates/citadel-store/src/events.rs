//! [`EventStore`]: events, the subscriptions that route them to scripts,
//! and what became of each.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::sql::{Dialect, SqlStore, conflict};
use crate::{NewJob, StoreError, StoreFuture, WebhookDelivery};

/// Something that happened in a tenant's world (`order.paid`), with data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    /// JSON text.
    pub data: String,
    /// 0 when sent through the API; one more per `events.emit` hop.
    pub depth: i64,
    /// Who sent it: a principal, or the run that emitted it.
    pub source: String,
    pub created_at: i64,
}

/// Routes events whose type matches `pattern` (a glob: `order.*`) to a
/// script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Subscription {
    pub tenant_id: String,
    pub name: String,
    pub pattern: String,
    pub script_name: String,
    pub created_at: i64,
}

/// What became of one event for one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Delivery {
    pub event_id: String,
    pub tenant_id: String,
    pub subscription: String,
    pub script_name: String,
    /// The run (job) it became.
    pub run_id: Option<String>,
    /// Why it did not become a run (no live version, kill switch, …).
    pub error: Option<String>,
}

/// A published event with what it sets going (see
/// [`EventStore::put_published`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub event: Event,
    /// One per endpoint the event goes to.
    pub webhook_deliveries: Vec<WebhookDelivery>,
    /// The first attempts of those deliveries.
    pub jobs: Vec<NewJob>,
    /// The event's record of where it went.
    pub deliveries: Vec<Delivery>,
}

/// Events and their routing. Every method is scoped by tenant.
pub trait EventStore: Send + Sync {
    /// Creates or replaces a subscription (by tenant and name).
    fn put_subscription<'a>(&'a self, s: &'a Subscription) -> StoreFuture<'a, ()>;
    fn subscriptions<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Subscription>>;
    fn delete_subscription<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, bool>;
    fn insert_event<'a>(&'a self, e: &'a Event) -> StoreFuture<'a, ()>;
    fn event<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Event>>;
    /// Newest first; `limit` is clamped to 1..=1000.
    fn list_events<'a>(&'a self, tenant_id: &'a str, limit: i64) -> StoreFuture<'a, Vec<Event>>;
    /// Inserts deliveries (replacing one for the same event and subscription).
    fn put_deliveries<'a>(&'a self, d: &'a [Delivery]) -> StoreFuture<'a, ()>;
    /// Published events with everything they set going, all in one
    /// transaction: each event, its webhook deliveries, their jobs and its
    /// deliveries' record.
    fn put_published<'a>(&'a self, all: &'a [Published]) -> StoreFuture<'a, ()>;
    /// An event's deliveries, by subscription name.
    fn deliveries<'a>(
        &'a self,
        tenant_id: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, Vec<Delivery>>;
}

const EVENT_COLUMNS: &str = "id, tenant_id, event_type, data, depth, source, created_at";

static EVENT_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND id = $2")
});
static EVENTS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )
});

impl<D: Dialect> SqlStore<D> {
    async fn insert_event_in(conn: &mut D::Connection, e: &Event) -> Result<(), StoreError> {
        D::query(
            "INSERT INTO events (id, tenant_id, event_type, data, depth, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.tenant_id)
        .bind(&e.event_type)
        .bind(&e.data)
        .bind(e.depth)
        .bind(&e.source)
        .bind(e.created_at)
        .execute(conn)
        .await
        .map_err(|err| conflict(err, format!("event `{}`", e.id)))?;
        Ok(())
    }

    async fn put_deliveries_in(conn: &mut D::Connection, d: &[Delivery]) -> Result<(), StoreError> {
        for x in d {
            D::query(
                "INSERT INTO deliveries (event_id, tenant_id, subscription, script_name, \
                 run_id, error) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (event_id, subscription) DO UPDATE SET run_id = excluded.run_id, \
                 error = excluded.error",
            )
            .bind(&x.event_id)
            .bind(&x.tenant_id)
            .bind(&x.subscription)
            .bind(&x.script_name)
            .bind(&x.run_id)
            .bind(&x.error)
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict(e, format!("event `{}`", x.event_id)))?;
        }
        Ok(())
    }
}

impl<D: Dialect> EventStore for SqlStore<D> {
    fn put_subscription<'a>(&'a self, s: &'a Subscription) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            D::query(
                "INSERT INTO subscriptions (tenant_id, name, pattern, script_name, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET pattern = excluded.pattern, \
                 script_name = excluded.script_name",
            )
            .bind(&s.tenant_id)
            .bind(&s.name)
            .bind(&s.pattern)
            .bind(&s.script_name)
            .bind(s.created_at)
            .execute(&mut conn)
            .await
            .map_err(|e| conflict(e, format!("tenant `{}`", s.tenant_id)))?;
            Ok(())
        })
    }

    fn subscriptions<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Subscription>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT tenant_id, name, pattern, script_name, created_at FROM subscriptions \
                 WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn delete_subscription<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query("DELETE FROM subscriptions WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut conn)
                .await?;
            Ok(done == 1)
        })
    }

    fn insert_event<'a>(&'a self, e: &'a Event) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            Self::insert_event_in(&mut conn, e).await
        })
    }

    fn event<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Event>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&EVENT_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_events<'a>(&'a self, tenant_id: &'a str, limit: i64) -> StoreFuture<'a, Vec<Event>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&EVENTS_OF_TENANT)
                .bind(tenant_id)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn put_deliveries<'a>(&'a self, d: &'a [Delivery]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if d.is_empty() {
                return Ok(());
            }
            let mut tx = self.tx().await?;
            Self::put_deliveries_in(&mut tx, d).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn put_published<'a>(&'a self, all: &'a [Published]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            for p in all {
                Self::insert_event_in(&mut tx, &p.event).await?;
                Self::insert_deliveries_in(&mut tx, &p.webhook_deliveries).await?;
                Self::enqueue_in(&mut tx, &p.jobs).await?;
                Self::put_deliveries_in(&mut tx, &p.deliveries).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn deliveries<'a>(
        &'a self,
        tenant_id: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT event_id, tenant_id, subscription, script_name, run_id, error \
                 FROM deliveries WHERE tenant_id = $1 AND event_id = $2 ORDER BY subscription",
            )
            .bind(tenant_id)
            .bind(event_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }
}
