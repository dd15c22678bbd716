//! Per-tenant quotas enforced at admission: a runs-per-minute rate (token
//! bucket, refilled continuously) and caps on synchronous runs in flight
//! (per tenant, and per script where its version sets `concurrency`).
//!
//! The rate is the whole platform's: each node takes an equal share of it
//! (the rate divided by the nodes up, as last seen by its heartbeat), which
//! is exact when a load balancer spreads requests evenly and needs no
//! database write per run. Synchronous caps are per node. Queued jobs are
//! capped across every node where they are claimed (`concurrent_jobs`, and
//! the script's `concurrency`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::lock;

/// What every tenant may use on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    /// Runs started (sync) or enqueued (async) per minute, over all nodes.
    pub runs_per_minute: u64,
    /// Synchronous runs in flight at once.
    pub concurrent_runs: u64,
    /// Queued jobs running at once, over every node.
    pub concurrent_jobs: u64,
    /// Events one run may emit (`api.events.emit`): fan-out is bounded in
    /// depth by the event-chain limit and in breadth by this.
    pub events_per_run: u64,
    /// Events a tenant's runs may emit per minute, over all nodes (each
    /// node takes its share, like `runs_per_minute`).
    pub events_per_minute: u64,
    /// Run event streams (`GET /v1/runs/{id}/events`) open at once, per
    /// node.
    pub streams: u64,
    /// A KV key's size (`api.kv`, `/v1/kv`), in bytes.
    pub kv_key_bytes: u64,
    /// A KV value's size as JSON text, in bytes.
    pub kv_value_bytes: u64,
    /// What a tenant's KV store may hold, keys and values, in bytes.
    pub kv_bytes: u64,
    /// `api.http.fetch` requests one run may make.
    pub http_calls_per_run: u64,
    /// `api.http.fetch` requests a tenant's runs may make per minute, over
    /// all nodes (each node takes its share).
    pub http_requests_per_minute: u64,
    /// `api.db.query` statements one run may make.
    pub db_queries_per_run: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            runs_per_minute: 600_000,
            concurrent_runs: 1_000,
            concurrent_jobs: 1_000,
            events_per_run: 100,
            events_per_minute: 60_000,
            streams: 100,
            kv_key_bytes: 512,
            kv_value_bytes: 128 << 10,
            kv_bytes: 64 << 20,
            http_calls_per_run: 50,
            http_requests_per_minute: 6_000,
            db_queries_per_run: 100,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct QuotaState {
    buckets: Mutex<HashMap<String, Bucket>>,
    event_buckets: Mutex<HashMap<String, Bucket>>,
    http_buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: Mutex<HashMap<String, u64>>,
}

impl QuotaState {
    /// Takes one run from the tenant's bucket (this node's share of the
    /// rate, `nodes` being up), or says how long until one is available.
    pub(crate) fn take(&self, tenant: &str, q: &Quotas, nodes: usize) -> Result<(), Duration> {
        take_n(&self.buckets, tenant, q.runs_per_minute, nodes, 1.0)
    }

    /// Takes `n` runs at once (a batch is admitted whole or not at all).
    /// `Err(None)` when `n` is more than this node's share of the rate
    /// could ever hold, so no wait would admit it.
    pub(crate) fn take_many(
        &self,
        tenant: &str,
        q: &Quotas,
        nodes: usize,
        n: usize,
    ) -> Result<(), Option<Duration>> {
        if n as f64 > capacity(q.runs_per_minute, nodes) {
            return Err(None);
        }
        take_n(&self.buckets, tenant, q.runs_per_minute, nodes, n as f64).map_err(Some)
    }

    /// Returns `n` runs taken by [`QuotaState::take_many`] for a batch that
    /// was then not written.
    pub(crate) fn give_back(&self, tenant: &str, q: &Quotas, nodes: usize, n: usize) {
        let capacity = capacity(q.runs_per_minute, nodes);
        if let Some(b) = lock(&self.buckets).get_mut(tenant) {
            b.tokens = (b.tokens + n as f64).min(capacity);
        }
    }

    /// This node's share of the tenant's runs per minute, `nodes` being up.
    pub(crate) fn runs_capacity(q: &Quotas, nodes: usize) -> u64 {
        capacity(q.runs_per_minute, nodes) as u64
    }

    /// Takes one emitted event from the tenant's events bucket.
    pub(crate) fn take_event(
        &self,
        tenant: &str,
        q: &Quotas,
        nodes: usize,
    ) -> Result<(), Duration> {
        take_n(&self.event_buckets, tenant, q.events_per_minute, nodes, 1.0)
    }

    /// Takes one outgoing HTTP request from the tenant's bucket.
    pub(crate) fn take_http(&self, tenant: &str, q: &Quotas, nodes: usize) -> Result<(), Duration> {
        take_n(
            &self.http_buckets,
            tenant,
            q.http_requests_per_minute,
            nodes,
            1.0,
        )
    }

    /// Counts a synchronous run in flight under `key` (a tenant's or a
    /// script's id), unless `limit` are in flight already.
    pub(crate) fn enter(&self, key: &str, limit: u64) -> bool {
        let mut m = lock(&self.in_flight);
        let n = m.entry(key.to_owned()).or_insert(0);
        if *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    pub(crate) fn leave(&self, key: &str) {
        let mut m = lock(&self.in_flight);
        if let Some(n) = m.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(key);
            }
        }
    }
}

/// Takes one token from `tenant`'s bucket in `buckets` (this node's share of
/// `per_minute`, `nodes` being up), or says how long until one is available.
/// A bucket's size: this node's share of a per-minute rate.
fn capacity(per_minute: u64, nodes: usize) -> f64 {
    (per_minute as f64 / nodes.max(1) as f64).max(1.0)
}

fn take_n(
    buckets: &Mutex<HashMap<String, Bucket>>,
    tenant: &str,
    per_minute: u64,
    nodes: usize,
    n: f64,
) -> Result<(), Duration> {
    let capacity = capacity(per_minute, nodes);
    let per_sec = capacity / 60.0;
    let now = Instant::now();
    let mut buckets = lock(buckets);
    let b = buckets.entry(tenant.to_owned()).or_insert(Bucket {
        tokens: capacity,
        at: now,
    });
    b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(capacity);
    b.at = now;
    if b.tokens >= n {
        b.tokens -= n;
        Ok(())
    } else {
        Err(Duration::from_secs_f64((n - b.tokens) / per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refuses_past_the_rate_and_says_when() {
        let s = QuotaState::default();
        let q = Quotas {
            runs_per_minute: 2,
            ..Quotas::default()
        };
        assert_eq!(s.take("a", &q, 1), Ok(()));
        assert_eq!(s.take("a", &q, 1), Ok(()));
        let wait = s.take("a", &q, 1).unwrap_err();
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // Another tenant has its own bucket.
        assert_eq!(s.take("b", &q, 1), Ok(()));
        // With two nodes up, each takes half the rate.
        let q4 = Quotas {
            runs_per_minute: 4,
            ..Quotas::default()
        };
        assert_eq!(s.take("c", &q4, 2), Ok(()));
        assert_eq!(s.take("c", &q4, 2), Ok(()));
        let wait = s.take("c", &q4, 2).unwrap_err();
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(s.enter("a", 1));
        assert!(!s.enter("a", 1));
        assert!(s.enter("b", 1));
        s.leave("a");
        assert!(s.enter("a", 1));
    }

    #[test]
    fn a_batch_takes_its_runs_whole_or_not_at_all() {
        let s = QuotaState::default();
        let q = Quotas {
            runs_per_minute: 60,
            ..Quotas::default()
        };
        assert_eq!(s.take_many("a", &q, 1, 50), Ok(()));
        // 10 left: a batch of 11 waits a second for the 11th…
        let wait = s.take_many("a", &q, 1, 11).unwrap_err().unwrap();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // …and took nothing: 10 single runs still pass.
        for _ in 0..10 {
            assert_eq!(s.take("a", &q, 1), Ok(()));
        }
        // More than the bucket holds is never admitted; with two nodes up
        // each holds half.
        assert_eq!(s.take_many("b", &q, 1, 61), Err(None));
        assert_eq!(s.take_many("b", &q, 2, 31), Err(None));
        assert_eq!(QuotaState::runs_capacity(&q, 2), 30);
        assert_eq!(s.take_many("b", &q, 2, 30), Ok(()));
        // A batch that was not written gives its runs back, never past the
        // bucket's size.
        assert!(s.take_many("b", &q, 2, 1).is_err());
        s.give_back("b", &q, 2, 30);
        assert_eq!(s.take_many("b", &q, 2, 30), Ok(()));
        s.give_back("b", &q, 2, 1000);
        assert_eq!(s.take_many("b", &q, 2, 30), Ok(()));
        assert!(s.take_many("b", &q, 2, 1).is_err());
    }
}
