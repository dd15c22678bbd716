//! Prometheus metrics: HTTP requests by route and status, latency histograms
//! by route, and gauges filled in at scrape time (sandbox pool state).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), status))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(route.to_owned()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition format.
    pub fn render(&self, state: &AppState, jobs: &[(String, i64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP citadel_http_requests_total HTTP requests by route and status.\n# TYPE citadel_http_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "citadel_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP citadel_http_request_duration_seconds HTTP request latency by route.\n# TYPE citadel_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "citadel_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "citadel_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "citadel_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "citadel_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP citadel_jobs Jobs in the durable queue by state (all nodes).\n# TYPE citadel_jobs gauge\n");
        // Every state, 0 included: a series that vanishes when its state
        // empties reads as "no data" rather than 0 on a dashboard.
        for job_state in citadel_domain::JobState::ALL.map(|s| s.as_str()) {
            let n = jobs
                .iter()
                .find(|(s, _)| s == job_state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "citadel_jobs{{state=\"{job_state}\"}} {n}");
        }
        if let Some(engine) = &state.app.engine {
            let c = &engine.counters;
            out.push_str("# HELP citadel_runs_total Finished runs by status.\n# TYPE citadel_runs_total counter\n");
            for (status, n) in c.runs() {
                if status != "queued" && status != "running" {
                    let _ = writeln!(out, "citadel_runs_total{{status=\"{status}\"}} {n}");
                }
            }
            let gauges = [
                (
                    "citadel_runs_in_flight",
                    "Runs in flight on this node.",
                    engine.in_flight_count() as u64,
                    "gauge",
                ),
                (
                    "citadel_kill_switches_engaged",
                    "Kill switches engaged.",
                    engine.kill_switches().len() as u64,
                    "gauge",
                ),
                (
                    "citadel_runs_refused_by_kill_switch_total",
                    "Runs refused because a kill switch covered them.",
                    c.refused_by_kill_switch.load(Ordering::Relaxed),
                    "counter",
                ),
                (
                    "citadel_runs_killed_in_flight_total",
                    "Runs aborted in flight by a kill switch.",
                    c.killed_in_flight.load(Ordering::Relaxed),
                    "counter",
                ),
                (
                    "citadel_analyses_total",
                    "Sources analysed (analysis cache misses).",
                    c.analyses.load(Ordering::Relaxed),
                    "counter",
                ),
                (
                    "citadel_analysis_cache_hits_total",
                    "Saves whose analysis came from the cache (same content hash).",
                    c.analysis_cache_hits.load(Ordering::Relaxed),
                    "counter",
                ),
                (
                    "citadel_job_leases_lost_total",
                    "Jobs this node stopped because another node had taken their lease.",
                    c.leases_lost.load(Ordering::Relaxed),
                    "counter",
                ),
                (
                    "citadel_run_stream_polls_total",
                    "Database reads by run event streams (runs in flight on this node are pushed, not polled).",
                    c.stream_polls.load(Ordering::Relaxed),
                    "counter",
                ),
            ];
            for (name, help, value, kind) in gauges {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
                );
            }
        }
        if let Some(pool) = &state.pool {
            let s = pool.status();
            out.push_str("# HELP citadel_sandbox_hosts Sandbox host processes running.\n# TYPE citadel_sandbox_hosts gauge\n");
            let _ = writeln!(out, "citadel_sandbox_hosts {}", s.hosts);
            out.push_str("# HELP citadel_sandbox_hosts_busy Sandbox hosts with runs in flight.\n# TYPE citadel_sandbox_hosts_busy gauge\n");
            let _ = writeln!(out, "citadel_sandbox_hosts_busy {}", s.busy_hosts);
            out.push_str("# HELP citadel_sandbox_runs_in_flight Runs inside sandbox hosts.\n# TYPE citadel_sandbox_runs_in_flight gauge\n");
            let _ = writeln!(out, "citadel_sandbox_runs_in_flight {}", s.runs_in_flight);
            out.push_str("# HELP citadel_sandbox_hosts_failed_total Sandbox hosts that crashed, hung or broke the protocol.\n# TYPE citadel_sandbox_hosts_failed_total counter\n");
            let _ = writeln!(out, "citadel_sandbox_hosts_failed_total {}", s.hosts_failed);
            out.push_str("# HELP citadel_sandbox_hosts_recycled_total Sandbox hosts replaced after serving their share of runs.\n# TYPE citadel_sandbox_hosts_recycled_total counter\n");
            let _ = writeln!(
                out,
                "citadel_sandbox_hosts_recycled_total {}",
                s.hosts_recycled
            );
            out.push_str("# HELP citadel_sandbox_hosts_live Sandbox hosts taking runs.\n# TYPE citadel_sandbox_hosts_live gauge\n");
            let _ = writeln!(out, "citadel_sandbox_hosts_live {}", s.live_hosts);
            out.push_str("# HELP citadel_sandbox_runs_waiting Runs waiting for a sandbox host.\n# TYPE citadel_sandbox_runs_waiting gauge\n");
            let _ = writeln!(out, "citadel_sandbox_runs_waiting {}", s.runs_waiting);
            out.push_str("# HELP citadel_sandbox_host_tenants Tenants holding a sandbox host.\n# TYPE citadel_sandbox_host_tenants gauge\n");
            let _ = writeln!(out, "citadel_sandbox_host_tenants {}", s.tenants);
            out.push_str("# HELP citadel_sandbox_hosts_started_total Sandbox hosts started.\n# TYPE citadel_sandbox_hosts_started_total counter\n");
            let _ = writeln!(
                out,
                "citadel_sandbox_hosts_started_total {}",
                s.hosts_started
            );
            out.push_str("# HELP citadel_sandbox_hosts_retired_total Idle sandbox hosts stopped.\n# TYPE citadel_sandbox_hosts_retired_total counter\n");
            let _ = writeln!(
                out,
                "citadel_sandbox_hosts_retired_total {}",
                s.hosts_retired
            );
            out.push_str("# HELP citadel_sandbox_host_start_failures_total Sandbox hosts that could not be started (retried with backoff).\n# TYPE citadel_sandbox_host_start_failures_total counter\n");
            let _ = writeln!(
                out,
                "citadel_sandbox_host_start_failures_total {}",
                s.host_start_failures
            );
            out.push_str("# HELP citadel_watchdog_kills_total Runs the watchdog ended: silent past their limits (reported as the limit broken), or in a sandbox host that stopped responding.\n# TYPE citadel_watchdog_kills_total counter\n");
            let _ = writeln!(out, "citadel_watchdog_kills_total {}", s.watchdog_kills);
        }
        out
    }
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
