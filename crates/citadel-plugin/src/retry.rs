//! When a failed delivery is tried again. The default is the Standard
//! Webhooks schedule: immediately, then after 5 seconds, 5 minutes, 30
//! minutes, 2 hours, 5 hours, 10 hours and 10 hours again — eight attempts
//! over about a day, so a receiver down for a deploy or a night still gets
//! its events. A receiver's `Retry-After` can push an attempt later (up to
//! a cap), never earlier: a receiver cannot make a sender hammer it.

use std::time::Duration;

use serde::Serialize;

/// The Standard Webhooks schedule: the delay before each attempt.
pub const STANDARD_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The longest delay a `Retry-After` may ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The most attempts a policy may have.
pub const MAX_ATTEMPTS: usize = 50;

/// How long an endpoint may fail without a success before it is disabled,
/// by default.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// A retry schedule: `schedule[n]` is the delay before attempt `n + 1`
/// (so `schedule[0]`, usually zero, is the first attempt's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    /// How much later than scheduled a `Retry-After` may move an attempt.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            schedule: STANDARD_SCHEDULE.to_vec(),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> usize {
        self.schedule.len()
    }

    /// After attempt number `attempt` (1-based; 0 before any) has failed,
    /// how long to wait before the next one, or `None` when none is left.
    /// A `Retry-After` longer than the scheduled delay wins, up to
    /// `max_retry_after`.
    pub fn next_attempt(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let scheduled = *self.schedule.get(attempt as usize)?;
        let asked = retry_after.map_or(Duration::ZERO, |d| d.min(self.max_retry_after));
        Some(scheduled.max(asked))
    }

    /// The standard schedule cut or extended (repeating its last delay) to
    /// `max_attempts`.
    pub fn standard(max_attempts: usize) -> RetryPolicy {
        let mut schedule: Vec<Duration> = STANDARD_SCHEDULE
            .iter()
            .copied()
            .take(max_attempts)
            .collect();
        while schedule.len() < max_attempts {
            schedule.push(STANDARD_SCHEDULE[STANDARD_SCHEDULE.len() - 1]);
        }
        RetryPolicy {
            schedule,
            ..RetryPolicy::default()
        }
    }

    /// Immediately, then `initial` doubling up to `max_delay`.
    pub fn exponential(max_attempts: usize, initial: Duration, max_delay: Duration) -> RetryPolicy {
        let mut schedule = Vec::with_capacity(max_attempts);
        let mut next = initial;
        for i in 0..max_attempts {
            if i == 0 {
                schedule.push(Duration::ZERO);
            } else {
                schedule.push(next.min(max_delay));
                next = next.saturating_mul(2);
            }
        }
        RetryPolicy {
            schedule,
            ..RetryPolicy::default()
        }
    }

    /// Immediately, then every `delay`.
    pub fn fixed(max_attempts: usize, delay: Duration) -> RetryPolicy {
        RetryPolicy {
            schedule: (0..max_attempts)
                .map(|i| if i == 0 { Duration::ZERO } else { delay })
                .collect(),
            ..RetryPolicy::default()
        }
    }
}

/// What one delivery attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx: delivered.
    Delivered,
    /// Anything else, a timeout or a network error: try again on schedule.
    /// Redirects count as failures: deliveries do not follow them, so a
    /// receiver cannot point the sender somewhere else.
    Retry,
    /// 410 Gone: the receiver asks to be forgotten; the endpoint is
    /// disabled.
    Gone,
}

/// Classifies an attempt by its status (`None`: no answer in time, or a
/// connection that failed).
pub fn classify(status: Option<u16>) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ => Outcome::Retry,
    }
}

/// Whether an endpoint failing since `failing_since` (Unix seconds, its
/// first failure after its last success) is to be disabled at `now`.
pub fn should_disable(failing_since: i64, now: i64, disable_after: Duration) -> bool {
    let after = i64::try_from(disable_after.as_secs()).unwrap_or(i64::MAX);
    now.saturating_sub(failing_since) >= after
}

/// [`RetryPolicy::next_attempt`] of the standard schedule.
pub fn next_attempt(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    RetryPolicy::default().next_attempt(attempt, retry_after)
}

/// A `Retry-After` header: seconds, or an HTTP date (read against `now`,
/// Unix seconds; a date in the past means no extra delay).
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?
        .as_second();
    Some(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)))
}

/// A duration as written in an endpoint file: `30s`, `5m`, `2h`, `1d`, or
/// a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_standard_schedule() {
        let delays: Vec<_> = (0..9).map(|a| next_attempt(a, None)).collect();
        assert_eq!(
            delays,
            vec![
                Some(S(0)),
                Some(S(5)),
                Some(S(300)),
                Some(S(1800)),
                Some(S(7200)),
                Some(S(18_000)),
                Some(S(36_000)),
                Some(S(36_000)),
                None,
            ]
        );
    }

    #[test]
    fn retry_after_only_pushes_later_and_is_capped() {
        assert_eq!(next_attempt(1, Some(S(60))), Some(S(60)));
        assert_eq!(next_attempt(2, Some(S(60))), Some(S(300)));
        assert_eq!(next_attempt(1, Some(S(10 * 86_400))), Some(MAX_RETRY_AFTER));
        assert_eq!(next_attempt(8, Some(S(1))), None);
    }

    #[test]
    fn configured_schedules() {
        assert_eq!(RetryPolicy::standard(3).schedule, vec![S(0), S(5), S(300)]);
        assert_eq!(RetryPolicy::standard(10).schedule[9], S(36_000));
        assert_eq!(
            RetryPolicy::exponential(5, S(10), S(50)).schedule,
            vec![S(0), S(10), S(20), S(40), S(50)]
        );
        assert_eq!(
            RetryPolicy::fixed(3, S(60)).schedule,
            vec![S(0), S(60), S(60)]
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(classify(Some(200)), Outcome::Delivered);
        assert_eq!(classify(Some(204)), Outcome::Delivered);
        assert_eq!(classify(Some(410)), Outcome::Gone);
        for s in [
            Some(301),
            Some(302),
            Some(400),
            Some(404),
            Some(429),
            Some(500),
            None,
        ] {
            assert_eq!(classify(s), Outcome::Retry, "{s:?}");
        }
        let day = Duration::from_secs(86_400);
        assert!(!should_disable(0, 86_399, day));
        assert!(should_disable(0, 86_400, day));
    }

    #[test]
    fn retry_after_headers() {
        let now = 1_445_412_480; // 2015-10-21T07:28:00Z
        assert_eq!(parse_retry_after("120", now), Some(S(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now),
            Some(S(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(S(0))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_duration("5m"), Some(S(300)));
        assert_eq!(parse_duration("2h"), Some(S(7200)));
        assert_eq!(parse_duration("15"), Some(S(15)));
        assert_eq!(parse_duration("5 min"), None);
    }
}
