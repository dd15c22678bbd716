//! Cron schedules: a cron expression (five fields, or six with seconds
//! first) evaluated in an IANA time zone, as Unix milliseconds. Parsing and
//! evaluation are `croner`'s; time zones come from `jiff` with the time zone
//! database compiled in, so every node computes the same occurrences
//! whatever its system has installed.
//!
//! Occurrences are whole seconds. Across a daylight saving change the wall
//! clock is followed (croner follows the Open Cron Pattern Specification):
//! a fixed time the clock skips (02:30 on a spring-forward night) occurs
//! once, as the gap ends (03:00), and a fixed time the clock repeats occurs
//! once, at its first instant; expressions that repeat within the hour
//! (`*/15 * * * *`) occur in both halves of a repeated hour.

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// What the fields are, for error messages.
const FIELDS: &str = "(fields: [second] minute hour day-of-month month day-of-week)";

/// The longest cron expression accepted.
pub const MAX_CRON_BYTES: usize = 256;

/// A parsed cron expression and the time zone it is evaluated in.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: TimeZone,
    expression: String,
    timezone: String,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone)
            .finish()
    }
}

impl CronSchedule {
    /// Parses `expression` (`sec min hour day month weekday`, or the usual
    /// five fields with the seconds taken as 0; names such as `MON` and
    /// `JAN`, `L`, `W`, `#` and the `@daily` nicknames work) for time zone
    /// `tz` (an IANA name such as `Europe/Berlin`, or `UTC`). The error is a
    /// message for whoever wrote them.
    pub fn parse(expression: &str, tz: &str) -> Result<CronSchedule, String> {
        let expression = expression.trim();
        if expression.len() > MAX_CRON_BYTES {
            return Err(format!(
                "cron expression is longer than {MAX_CRON_BYTES} bytes"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| format!("invalid cron expression `{expression}`: {e} {FIELDS}"))?;
        let zone = if tz.is_empty() || tz.len() > 64 || tz.starts_with('/') || tz.contains("..") {
            None
        } else {
            TimeZone::get(tz).ok()
        };
        let zone = zone.ok_or_else(|| {
            format!("unknown time zone `{tz}` (use an IANA name such as `Europe/Berlin`, or `UTC`)")
        })?;
        let timezone = zone.iana_name().unwrap_or(tz).to_owned();
        let schedule = CronSchedule {
            cron,
            tz: zone,
            expression: expression.to_owned(),
            timezone,
        };
        // An expression such as `0 0 30 2 *` (30 February) parses but names
        // no date at all.
        if schedule.next_after(EPOCH_2000_MS).is_none() {
            return Err(format!(
                "cron expression `{expression}` never matches a date"
            ));
        }
        Ok(schedule)
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name, as the time zone database spells it.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The first occurrence strictly after `ms` (Unix milliseconds), or
    /// `None` when there is none the calendar can express.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        // Occurrences are whole seconds, so the first one after `ms` is the
        // first one after the second `ms` falls in.
        let start = Timestamp::from_second(ms.div_euclid(1000))
            .ok()?
            .to_zoned(self.tz.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp().as_millisecond())
    }

    /// The last occurrence at or before `ms`, or `None` when there is none.
    pub fn latest_at_or_before(&self, ms: i64) -> Option<i64> {
        let start = Timestamp::from_second(ms.div_euclid(1000))
            .ok()?
            .to_zoned(self.tz.clone());
        let prev = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(prev.timestamp().as_millisecond())
    }

    /// Up to `n` occurrences strictly after `from_ms`, in order.
    pub fn upcoming(&self, from_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut at = from_ms;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) if next > at => {
                    out.push(next);
                    at = next;
                }
                _ => break,
            }
        }
        out
    }

    /// An instant as RFC 3339 text with the offset it has in this
    /// schedule's time zone (`2026-03-29T03:00:00+02:00`).
    pub fn rfc3339(&self, ms: i64) -> String {
        match Timestamp::from_millisecond(ms) {
            Ok(ts) => ts.display_with_offset(self.tz.to_offset(ts)).to_string(),
            Err(_) => String::new(),
        }
    }
}

/// 2000-01-01T00:00:00Z.
const EPOCH_2000_MS: i64 = 946_684_800_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of an RFC 3339 instant.
    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn texts(s: &CronSchedule, times: &[i64]) -> Vec<String> {
        times.iter().map(|t| s.rfc3339(*t)).collect()
    }

    #[test]
    fn six_fields_have_seconds_and_five_fields_start_on_the_minute() {
        let every_second = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        let t = ms("2026-01-01T00:00:00Z");
        assert_eq!(
            every_second.upcoming(t, 3),
            vec![t + 1000, t + 2000, t + 3000]
        );
        // Strictly after: from inside a second, the next whole one.
        assert_eq!(every_second.next_after(t + 1), Some(t + 1000));
        assert_eq!(every_second.next_after(t + 999), Some(t + 1000));
        assert_eq!(every_second.latest_at_or_before(t + 1500), Some(t + 1000));
        assert_eq!(every_second.latest_at_or_before(t), Some(t));

        let quarter = CronSchedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            texts(&quarter, &quarter.upcoming(ms("2026-01-01T10:07:30Z"), 3)),
            [
                "2026-01-01T10:15:00+00:00",
                "2026-01-01T10:30:00+00:00",
                "2026-01-01T10:45:00+00:00"
            ]
        );
        let seconds = CronSchedule::parse("30 0 9 * * MON-FRI", "UTC").unwrap();
        // 2026-01-02 is a Friday.
        assert_eq!(
            texts(&seconds, &seconds.upcoming(ms("2026-01-02T09:00:30Z"), 2)),
            ["2026-01-05T09:00:30+00:00", "2026-01-06T09:00:30+00:00"]
        );
    }

    #[test]
    fn time_zones_follow_the_wall_clock_across_daylight_saving() {
        let s = CronSchedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(s.timezone(), "Europe/Berlin");
        // 2026-03-29: at 02:00 CET the clocks go to 03:00 CEST, so 02:30
        // does not happen that night; the run happens as the gap ends.
        assert_eq!(
            texts(&s, &s.upcoming(ms("2026-03-27T12:00:00Z"), 3)),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        // 2026-10-25: 02:00–03:00 happens twice (CEST, then CET); a fixed
        // time runs once.
        assert_eq!(
            texts(&s, &s.upcoming(ms("2026-10-24T12:00:00Z"), 2)),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        // Nine in the morning is 08:00 UTC in winter and 07:00 UTC in summer.
        let nine = CronSchedule::parse("0 9 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            nine.upcoming(ms("2026-03-28T12:00:00Z"), 2),
            vec![ms("2026-03-29T07:00:00Z"), ms("2026-03-30T07:00:00Z")]
        );
        assert_eq!(
            nine.next_after(ms("2026-03-27T12:00:00Z")),
            Some(ms("2026-03-28T08:00:00Z"))
        );
    }

    #[test]
    fn time_zone_names_are_iana_names() {
        let s = CronSchedule::parse("0 0 * * *", "america/new_york").unwrap();
        assert_eq!(s.timezone(), "America/New_York");
        assert_eq!(s.expression(), "0 0 * * *");
        for bad in ["Mars/Olympus", "", "/etc/passwd", "../UTC", "CEST+2"] {
            assert_eq!(
                CronSchedule::parse("* * * * *", bad).unwrap_err(),
                format!(
                    "unknown time zone `{bad}` (use an IANA name such as `Europe/Berlin`, or `UTC`)"
                ),
            );
        }
    }

    #[test]
    fn malformed_expressions_say_what_is_wrong() {
        let cases = [
            (
                "",
                "invalid cron expression ``: CronPattern cannot be an empty string. (fields: [second] minute hour day-of-month month day-of-week)",
            ),
            (
                "* * *",
                "invalid cron expression `* * *`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed. (fields: [second] minute hour day-of-month month day-of-week)",
            ),
            (
                "* * * * * * 2030",
                "invalid cron expression `* * * * * * 2030`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed. (fields: [second] minute hour day-of-month month day-of-week)",
            ),
            (
                "61 * * * *",
                "invalid cron expression `61 * * * *`: Component error: Number out of bounds. (fields: [second] minute hour day-of-month month day-of-week)",
            ),
            (
                "every minute",
                "invalid cron expression `every minute`: Invalid pattern: Pattern must have 5 or 6 fields when years are disallowed. (fields: [second] minute hour day-of-month month day-of-week)",
            ),
            (
                "0 0 30 2 *",
                "cron expression `0 0 30 2 *` never matches a date",
            ),
        ];
        for (expr, message) in cases {
            assert_eq!(
                CronSchedule::parse(expr, "UTC").unwrap_err(),
                message,
                "{expr}"
            );
        }
        let long = "* ".repeat(200);
        assert_eq!(
            CronSchedule::parse(&long, "UTC").unwrap_err(),
            "cron expression is longer than 256 bytes"
        );
    }

    #[test]
    fn nicknames_and_names_parse() {
        let daily = CronSchedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(ms("2026-01-01T10:00:00Z")),
            Some(ms("2026-01-02T00:00:00Z"))
        );
        let jan = CronSchedule::parse("0 0 12 1 JAN *", "Asia/Tokyo").unwrap();
        assert_eq!(
            texts(&jan, &[jan.next_after(ms("2026-06-01T00:00:00Z")).unwrap()]),
            ["2027-01-01T12:00:00+09:00"]
        );
        // Rare dates are found, years ahead.
        let leap = CronSchedule::parse("0 0 29 2 *", "UTC").unwrap();
        assert_eq!(
            leap.next_after(ms("2026-01-01T00:00:00Z")),
            Some(ms("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            leap.latest_at_or_before(ms("2026-01-01T00:00:00Z")),
            Some(ms("2024-02-29T00:00:00Z"))
        );
    }
}
