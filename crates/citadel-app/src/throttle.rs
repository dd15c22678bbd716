//! Failed authentication, per source (an opaque key; the HTTP edge uses the
//! client's address, IPv6 by /64): past `limit` failures in a window a
//! source is answered 429 `rate_limited` with `Retry-After` until the window
//! ends, and each window's failures are one audit entry with their count,
//! written when the window closes — so a flood of bad tokens costs the
//! server a counter, not a row each.
//!
//! Written here rather than with a rate-limiting crate: what is needed is
//! not a token bucket but a per-window tally by tenant and reason that is
//! handed to the audit log when the window closes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::json;

/// Sources tracked at once; past this, new sources share one window, so a
/// spread-out flood is still limited and memory stays bounded.
const MAX_SOURCES: usize = 10_000;
/// Tenants named per source window (revoked or expired tokens name one).
const MAX_TENANTS: usize = 8;
const OVERFLOW: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimit {
    pub limit: u64,
    pub window_ms: i64,
}

#[derive(Default)]
struct Tally {
    count: u64,
    reasons: BTreeMap<&'static str, u64>,
}

struct Window {
    started: i64,
    last: i64,
    count: u64,
    /// Failures answered 429.
    limited: u64,
    /// By tenant (`None`: no tenant known), so each tenant's auditors see
    /// the failures with its tokens.
    tallies: BTreeMap<Option<String>, Tally>,
}

/// One closed window, to append to the audit log.
pub(crate) struct Closed {
    pub source: String,
    pub tenant: Option<String>,
    pub details: serde_json::Value,
}

pub(crate) struct AuthFailures {
    settings: Mutex<FailureLimit>,
    windows: Mutex<HashMap<String, Window>>,
    /// When a failure next looks for closed windows: not on every failure,
    /// so a flood from many sources does not scan them all each time.
    next_sweep: std::sync::atomic::AtomicI64,
}

impl Default for AuthFailures {
    fn default() -> Self {
        AuthFailures {
            settings: Mutex::new(FailureLimit {
                limit: 20,
                window_ms: 60_000,
            }),
            windows: Mutex::new(HashMap::new()),
            next_sweep: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

/// What to answer a failure with.
pub(crate) enum Verdict {
    /// 401, as usual.
    Refused,
    /// 429: the source is over its limit until this many seconds pass.
    Limited { retry_after_s: u64 },
}

impl AuthFailures {
    pub(crate) fn configure(&self, settings: FailureLimit) {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn settings(&self) -> FailureLimit {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `source` is over its limit now (checked before costly
    /// work, such as verifying a password).
    pub(crate) fn limited(&self, source: &str, now: i64) -> Option<u64> {
        let settings = self.settings();
        let windows = self.lock();
        let w = windows.get(source).or_else(|| windows.get(OVERFLOW))?;
        let ends = w.started + settings.window_ms;
        (now < ends && w.count >= settings.limit).then(|| retry_after(ends - now))
    }

    /// Counts one failure; returns the answer and the windows that have
    /// closed meanwhile (to audit).
    pub(crate) fn fail(
        &self,
        source: &str,
        tenant: Option<&str>,
        reason: &'static str,
        now: i64,
    ) -> (Verdict, Vec<Closed>) {
        let settings = self.settings();
        let mut windows = self.lock();
        use std::sync::atomic::Ordering::Relaxed;
        let mut closed = if now >= self.next_sweep.load(Relaxed) {
            self.next_sweep
                .store(now + (settings.window_ms / 8).max(10), Relaxed);
            take_closed(&mut windows, settings, now, false)
        } else {
            Vec::new()
        };
        let mut key = source;
        if !windows.contains_key(key) && windows.len() >= MAX_SOURCES {
            key = OVERFLOW;
        }
        // This source's own window may have closed since the last sweep.
        if windows
            .get(key)
            .is_some_and(|w| now >= w.started + settings.window_ms)
            && let Some(old) = windows.remove_entry(key)
        {
            closed.extend(close(old.0, old.1, settings));
        }
        let w = windows.entry(key.to_owned()).or_insert_with(|| Window {
            started: now,
            last: now,
            count: 0,
            limited: 0,
            tallies: BTreeMap::new(),
        });
        w.count += 1;
        w.last = now;
        let over = w.count > settings.limit;
        if over {
            w.limited += 1;
        }
        let tenant_key = match tenant {
            Some(t)
                if w.tallies.contains_key(&Some(t.to_owned())) || w.tallies.len() < MAX_TENANTS =>
            {
                Some(t.to_owned())
            }
            _ => None,
        };
        let tally = w.tallies.entry(tenant_key).or_default();
        tally.count += 1;
        *tally.reasons.entry(reason).or_default() += 1;
        let verdict = if over {
            Verdict::Limited {
                retry_after_s: retry_after(w.started + settings.window_ms - now),
            }
        } else {
            Verdict::Refused
        };
        (verdict, closed)
    }

    /// The windows that have closed by `now` (or every window, with
    /// `all`), removed, to audit.
    pub(crate) fn drain(&self, now: i64, all: bool) -> Vec<Closed> {
        let settings = self.settings();
        take_closed(&mut self.lock(), settings, now, all)
    }
}

fn retry_after(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000).max(1)
}

fn take_closed(
    windows: &mut HashMap<String, Window>,
    settings: FailureLimit,
    now: i64,
    all: bool,
) -> Vec<Closed> {
    let done: Vec<String> = windows
        .iter()
        .filter(|(_, w)| all || now >= w.started + settings.window_ms)
        .map(|(k, _)| k.clone())
        .collect();
    let mut out = Vec::new();
    for source in done {
        if let Some(w) = windows.remove(&source) {
            out.extend(close(source, w, settings));
        }
    }
    out
}

/// A window's audit entries: one per tenant its failures named.
fn close(source: String, w: Window, settings: FailureLimit) -> Vec<Closed> {
    w.tallies
        .into_iter()
        .map(|(tenant, tally)| Closed {
            source: source.clone(),
            tenant,
            details: json!({
                "source": source,
                "count": tally.count,
                "reasons": tally.reasons,
                "rate_limited": w.limited,
                "first_at": w.started,
                "last_at": w.last,
                "window_ms": settings.window_ms,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_a_source_is_limited_until_its_window_ends() {
        let f = AuthFailures::default();
        f.configure(FailureLimit {
            limit: 3,
            window_ms: 10_000,
        });
        for i in 0..3 {
            assert!(matches!(
                f.fail("a", None, "unknown token", 1_000 + i).0,
                Verdict::Refused
            ));
        }
        assert_eq!(f.limited("a", 1_010), Some(10));
        assert!(matches!(
            f.fail("a", None, "unknown token", 9_500).0,
            Verdict::Limited { retry_after_s: 2 }
        ));
        // Another source is not affected.
        assert_eq!(f.limited("b", 1_010), None);
        assert!(matches!(
            f.fail("b", Some("t1"), "token revoked", 1_010).0,
            Verdict::Refused
        ));
        // Nothing has closed yet; at 11_000 source a's window has.
        assert!(f.drain(10_999, false).is_empty());
        let closed = f.drain(11_000, false);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].source, "a");
        assert_eq!(closed[0].details["count"], 4);
        assert_eq!(closed[0].details["rate_limited"], 1);
        assert_eq!(closed[0].details["reasons"]["unknown token"], 4);
        assert_eq!(f.limited("a", 11_000), None);
        // A failure after its window ended starts a new one, even between
        // sweeps, and hands the old one over to be audited.
        let g = AuthFailures::default();
        g.configure(FailureLimit {
            limit: 1,
            window_ms: 100_000,
        });
        g.fail("c", None, "unknown token", 0);
        assert!(matches!(
            g.fail("c", None, "unknown token", 1).0,
            Verdict::Limited { .. }
        ));
        // This one sweeps (finding nothing closed); the next does not.
        let (_, closed) = g.fail("c", None, "unknown token", 95_000);
        assert!(closed.is_empty());
        let (verdict, closed) = g.fail("c", None, "unknown token", 100_000);
        assert!(matches!(verdict, Verdict::Refused));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].details["count"], 3);
        assert_eq!(closed[0].details["rate_limited"], 2);
        // Draining everything names the tenant of b's failure.
        let rest = f.drain(11_000, true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].tenant.as_deref(), Some("t1"));
    }
}
