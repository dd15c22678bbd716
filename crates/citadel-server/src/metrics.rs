//! Prometheus metrics (prometheus-client, OpenMetrics text): HTTP requests
//! by route and status and latency histograms by route, counted as
//! requests finish (atomics behind a read lock, no allocation for a route
//! seen before), and the engine's, queue's and sandbox pool's state read at
//! scrape time.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use citadel_domain::RunStatus;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics counted as requests are served.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// The metrics of a server, with the engine's capability calls where it
    /// runs scripts.
    pub fn new(engine: Option<&citadel_engine::Engine>) -> Self {
        let mut m = Metrics::default();
        if let Some(engine) = engine {
            engine.gateway_metrics.register(&mut m.registry);
            engine.extension_metrics.register(&mut m.registry);
        }
        m
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RouteStatus, Counter>::default();
        let latency = Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let mut registry = Registry::default();
        registry.register(
            "citadel_http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "citadel_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, elapsed: std::time::Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition: the request metrics, then what is read now —
    /// `jobs` (jobs per state, across every tenant and node), the engine's
    /// counters and the sandbox pool's state.
    pub fn render(&self, state: &AppState, scraped: &Scraped) -> String {
        let now = scrape(state, scraped);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode(&mut out, &now);
        out
    }
}

/// One metric read at scrape time: its points in a fixed order (by label
/// value where it has one label), so the text reads the same every scrape.
#[derive(Debug)]
struct Series {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    /// (label name, label value) and the value; no label for a single point.
    points: Vec<(Option<(&'static str, &'static str)>, u64)>,
}

impl Series {
    fn one(name: &'static str, help: &'static str, kind: MetricType, value: u64) -> Series {
        Series {
            name,
            help,
            kind,
            points: vec![(None, value)],
        }
    }
}

/// The values read at scrape time, encoded in order.
#[derive(Debug)]
struct Snapshot(Vec<Series>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for s in &self.0 {
            let help = format!("{}.", s.help);
            let mut metric = encoder.encode_descriptor(s.name, &help, None, s.kind)?;
            match s.points.as_slice() {
                [(None, value)] => point(s.kind, metric, *value)?,
                points => {
                    for (label, value) in points {
                        let labels = [label.unwrap_or(("", ""))];
                        point(s.kind, metric.encode_family(&labels)?, *value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn point(kind: MetricType, m: MetricEncoder<'_>, value: u64) -> Result<(), std::fmt::Error> {
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(m),
        _ => ConstGauge::new(value as i64).encode(m),
    }
}

/// What a scrape read from the database.
#[derive(Debug, Default)]
pub struct Scraped {
    /// Jobs per state, across every tenant and node.
    pub jobs: Vec<(String, i64)>,
    /// Secrets of every tenant expiring within 7 days (`None`: unread).
    pub secrets_expiring: Option<i64>,
}

/// A registry of the values read at scrape time.
fn scrape(state: &AppState, scraped: &Scraped) -> Registry {
    use MetricType::{Counter as C, Gauge as G};
    let jobs = &scraped.jobs;
    let mut series = Vec::new();
    if let Some(n) = scraped.secrets_expiring {
        series.push(Series::one(
            "citadel_secrets_expiring",
            "Secrets (all tenants) that expire within 7 days",
            G,
            n.max(0) as u64,
        ));
    }
    // Every state, 0 included: a series that vanishes when its state
    // empties reads as "no data" rather than 0 on a dashboard.
    series.push(Series {
        name: "citadel_jobs",
        help: "Jobs in the durable queue by state (all nodes)",
        kind: G,
        points: citadel_domain::JobState::ALL
            .iter()
            .map(|s| {
                let n = jobs
                    .iter()
                    .find(|(state, _)| state == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (Some(("state", s.as_str())), n.max(0) as u64)
            })
            .collect(),
    });
    if let Some(engine) = &state.app.engine {
        let c = &engine.counters;
        series.push(Series {
            name: "citadel_runs",
            help: "Finished runs by status",
            kind: C,
            points: c
                .runs()
                .filter(|(status, _)| {
                    ![RunStatus::Queued, RunStatus::Running]
                        .iter()
                        .any(|s| s.as_str() == *status)
                })
                .map(|(status, n)| (Some(("status", status)), n))
                .collect(),
        });
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        series.extend([
            Series::one(
                "citadel_runs_in_flight",
                "Runs in flight on this node",
                G,
                engine.in_flight_count() as u64,
            ),
            Series::one(
                "citadel_kill_switches_engaged",
                "Kill switches engaged",
                G,
                engine.kill_switches().len() as u64,
            ),
            Series::one(
                "citadel_runs_refused_by_kill_switch",
                "Runs refused because a kill switch covered them",
                C,
                load(&c.refused_by_kill_switch),
            ),
            Series::one(
                "citadel_runs_killed_in_flight",
                "Runs aborted in flight by a kill switch",
                C,
                load(&c.killed_in_flight),
            ),
            Series::one(
                "citadel_analyses",
                "Sources analysed (analysis cache misses)",
                C,
                load(&c.analyses),
            ),
            Series::one(
                "citadel_analysis_cache_hits",
                "Saves whose analysis came from the cache (same content hash)",
                C,
                load(&c.analysis_cache_hits),
            ),
            Series::one(
                "citadel_job_leases_lost",
                "Jobs this node stopped because another node had taken their lease",
                C,
                load(&c.leases_lost),
            ),
            Series::one(
                "citadel_run_stream_polls",
                "Database reads by run event streams (runs in flight on this node are pushed, not polled)",
                C,
                load(&c.stream_polls),
            ),
        ]);
    }
    if let Some(pool) = &state.pool {
        let s = pool.status();
        series.extend([
            Series::one("citadel_sandbox_hosts", "Sandbox host processes running", G, s.hosts as u64),
            Series::one("citadel_sandbox_hosts_busy", "Sandbox hosts with runs in flight", G, s.busy_hosts as u64),
            Series::one("citadel_sandbox_runs_in_flight", "Runs inside sandbox hosts", G, s.runs_in_flight as u64),
            Series::one(
                "citadel_sandbox_hosts_failed",
                "Sandbox hosts that crashed, hung or broke the protocol",
                C,
                s.hosts_failed,
            ),
            Series::one(
                "citadel_sandbox_hosts_recycled",
                "Sandbox hosts replaced after serving their share of runs",
                C,
                s.hosts_recycled,
            ),
            Series::one("citadel_sandbox_hosts_live", "Sandbox hosts taking runs", G, s.live_hosts as u64),
            Series::one("citadel_sandbox_runs_waiting", "Runs waiting for a sandbox host", G, s.runs_waiting as u64),
            Series::one("citadel_sandbox_host_tenants", "Tenants holding a sandbox host", G, s.tenants as u64),
            Series::one("citadel_sandbox_hosts_started", "Sandbox hosts started", C, s.hosts_started),
            Series::one("citadel_sandbox_hosts_retired", "Idle sandbox hosts stopped", C, s.hosts_retired),
            Series::one(
                "citadel_sandbox_host_start_failures",
                "Sandbox hosts that could not be started (retried with backoff)",
                C,
                s.host_start_failures,
            ),
            Series::one(
                "citadel_watchdog_kills",
                "Runs the watchdog ended: silent past their limits (reported as the limit broken), or in a sandbox host that stopped responding",
                C,
                s.watchdog_kills,
            ),
        ]);
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(series)));
    registry
}

/// Records every request by its route template (not its raw path, which
/// would let clients create unbounded label values).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe(&route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_status_and_latency_bucket() {
        let m = Metrics::default();
        m.observe("/v1/runs", 200, std::time::Duration::from_micros(800));
        m.observe("/v1/runs", 200, std::time::Duration::from_millis(3));
        m.observe("/v1/runs", 404, std::time::Duration::from_micros(100));
        let mut text = String::new();
        encode_registry(&mut text, &m.registry).unwrap();
        for line in [
            "citadel_http_requests_total{route=\"/v1/runs\",status=\"200\"} 2\n",
            "citadel_http_requests_total{route=\"/v1/runs\",status=\"404\"} 1\n",
            "citadel_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/v1/runs\"} 1\n",
            "citadel_http_request_duration_seconds_bucket{le=\"0.001\",route=\"/v1/runs\"} 2\n",
            "citadel_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/v1/runs\"} 3\n",
            "citadel_http_request_duration_seconds_count{route=\"/v1/runs\"} 3\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn scrape_time_series_keep_their_order() {
        let snapshot = Snapshot(vec![Series {
            name: "citadel_jobs",
            help: "Jobs",
            kind: MetricType::Gauge,
            points: vec![
                (Some(("state", "queued")), 2),
                (Some(("state", "running")), 0),
            ],
        }]);
        let mut r = Registry::default();
        r.register_collector(Box::new(snapshot));
        let mut text = String::new();
        encode(&mut text, &r).unwrap();
        assert_eq!(
            text,
            "# HELP citadel_jobs Jobs.\n# TYPE citadel_jobs gauge\n\
             citadel_jobs{state=\"queued\"} 2\ncitadel_jobs{state=\"running\"} 0\n# EOF\n"
        );
    }
}
