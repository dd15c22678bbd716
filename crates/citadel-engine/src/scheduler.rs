//! Cron schedules: every node that works the queue looks for due schedules
//! every few tens of milliseconds (one indexed query) and fires them by
//! enqueuing a run of the script's live version, trigger `schedule`.
//!
//! Exactly one run per occurrence, with any number of nodes: the run's job
//! carries the idempotency key `schedule:{id}:{occurrence_ms}`, so a second
//! node enqueuing the same occurrence gets the first job back, and the
//! schedule is then advanced by compare-and-set on `next_fire_at`, so one
//! node moves it on. The run is enqueued before the schedule advances: a
//! node that dies in between leaves the occurrence due, and whichever node
//! fires it next finds the job already there.
//!
//! Each pass over a due schedule fires at most one occurrence: the latest
//! one at or before now. It is on time when it is at most
//! [`LATE_TOLERANCE_MS`] old (a restart, a slow database); older, it was
//! missed (the nodes were down, or the clock jumped forward), and the
//! schedule's policy decides: `skip` fires nothing and waits for the next
//! occurrence, `catch_up` fires one run for everything missed (at the most
//! recent missed occurrence). Either way `next_fire_at` becomes the first
//! occurrence after now, so it only ever moves forward: a clock that goes
//! back fires nothing until it is past `next_fire_at` again, and no
//! occurrence is fired twice.
//!
//! A schedule whose script has no live version, or which a kill switch
//! covers, records nothing for that occurrence and moves on (with a
//! warning). A refusal that may pass (the tenant's rate of runs, the
//! database) leaves the occurrence due and is retried a second later.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use citadel_domain::{Missed, Trigger};
use citadel_scripts::CronSchedule;
use citadel_store::{Schedule, now_ms};

use crate::{Engine, EngineError, EngineInner, JobRequest, RunSpec, upgrade};

/// The trigger of runs a schedule fires.
pub const SCHEDULE_TRIGGER: &str = citadel_domain::Trigger::Schedule.as_str();

/// How old the latest occurrence may be and still fire under `skip`.
pub const LATE_TOLERANCE_MS: i64 = 60_000;

/// How often a node looks for due schedules.
const TICK: Duration = Duration::from_millis(20);

/// Due schedules read per query.
const BATCH: i64 = 256;

/// How long a schedule whose firing failed for a passing reason waits.
const RETRY_MS: i64 = 1_000;

/// Parsed expressions kept per node (by expression and time zone).
const PARSED_CAP: usize = 4096;

/// What one pass over a due schedule does: fire `fire` (an occurrence),
/// or nothing, and move `next_fire_at` to `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub fire: Option<i64>,
    pub next: i64,
}

/// The pass over a schedule due at `now` (`next_fire_at <= now`) whose
/// missed-run policy is `missed`.
pub(crate) fn plan(cron: &CronSchedule, next_fire_at: i64, missed: Missed, now: i64) -> Step {
    let latest = cron
        .latest_at_or_before(now)
        .filter(|l| *l >= next_fire_at)
        .unwrap_or(next_fire_at);
    let on_time = now - latest <= LATE_TOLERANCE_MS;
    Step {
        fire: (on_time || missed == Missed::CatchUp).then_some(latest),
        // No occurrence the calendar can express: never due again.
        next: cron.next_after(now).unwrap_or(i64::MAX),
    }
}

/// The idempotency key of a schedule's occurrence.
pub fn occurrence_key(schedule_id: &str, occurrence_ms: i64) -> String {
    format!("schedule:{schedule_id}:{occurrence_ms}")
}

/// Why an occurrence did not become a run.
enum NotFired {
    /// For good (no live version, a kill switch): move on.
    Dropped(String),
    /// For now (rate limit, database): try again shortly.
    Later(String),
}

pub(crate) fn spawn(weak: Weak<EngineInner>) {
    tokio::spawn(tick_loop(weak));
}

#[derive(Default)]
struct LoopState {
    parsed: HashMap<(String, String), Result<CronSchedule, String>>,
    /// Schedule id → not before (Unix ms), after a passing failure.
    retry_at: HashMap<String, i64>,
}

async fn tick_loop(weak: Weak<EngineInner>) {
    let mut state = LoopState::default();
    loop {
        let Some(engine) = upgrade(&weak) else { return };
        let now = now_ms();
        state.retry_at.retain(|_, at| *at > now);
        let pause = match engine.store.due_schedules(now, BATCH).await {
            Ok(due) => {
                let full = due.len() as i64 >= BATCH;
                let mut all_settled = true;
                let mut passes = Vec::with_capacity(due.len());
                for s in &due {
                    if state.retry_at.contains_key(&s.id) {
                        all_settled = false;
                        continue;
                    }
                    passes.push(engine.fire_due(s, state.step(s, now)));
                }
                // All at once: their enqueues share a transaction.
                let settled = futures_util::future::join_all(passes).await;
                let mut soonest = i64::MAX;
                for (id, next) in settled {
                    match next {
                        Some(next) => soonest = soonest.min(next),
                        None => {
                            all_settled = false;
                            state.retry_at.insert(id, now + RETRY_MS);
                        }
                    }
                }
                if full && all_settled {
                    // A full batch that all moved on: more may be due at once.
                    Duration::ZERO
                } else {
                    // Wake for the next occurrence this pass knows of, or
                    // look again after a tick (schedules saved meanwhile).
                    let until_next = u64::try_from(soonest - now_ms()).unwrap_or(0);
                    TICK.min(Duration::from_millis(until_next))
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due schedules");
                Duration::from_secs(1)
            }
        };
        drop(engine);
        if pause.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
}

impl LoopState {
    /// What this pass does with a due schedule.
    fn step(&mut self, s: &Schedule, now: i64) -> Step {
        if self.parsed.len() >= PARSED_CAP {
            self.parsed.clear();
        }
        let cron = self
            .parsed
            .entry((s.cron.clone(), s.timezone.clone()))
            .or_insert_with(|| CronSchedule::parse(&s.cron, &s.timezone));
        match cron {
            Ok(cron) => {
                let step = plan(cron, s.next_fire_at, s.missed, now);
                if step.fire.is_none() {
                    tracing::info!(schedule = %s.id, tenant = %s.tenant_id, missed_since = s.next_fire_at,
                        "missed occurrences skipped");
                }
                step
            }
            Err(e) => {
                // Checked when saved, so only a newer parser can refuse it.
                tracing::error!(schedule = %s.id, error = %e,
                    "unreadable schedule; it stays idle until it is saved again");
                Step {
                    fire: None,
                    next: i64::MAX,
                }
            }
        }
    }
}

impl Engine {
    /// One pass over a due schedule: its id, and its next fire time once
    /// it moved on (`None`: retry it, its occurrence is still due).
    async fn fire_due(&self, s: &Schedule, step: Step) -> (String, Option<i64>) {
        let mut fired = None;
        if let Some(at) = step.fire {
            match self.fire_occurrence(s, at).await {
                Ok((run_id, created)) => {
                    tracing::debug!(schedule = %s.id, occurrence = at, run = %run_id, created,
                        "schedule fired");
                    fired = Some(at);
                }
                Err(NotFired::Dropped(why)) => {
                    tracing::warn!(schedule = %s.id, tenant = %s.tenant_id, script = %s.script_name,
                        occurrence = at, "scheduled run not started: {why}");
                }
                Err(NotFired::Later(why)) => {
                    tracing::warn!(schedule = %s.id, tenant = %s.tenant_id, occurrence = at,
                        "scheduled run deferred: {why}");
                    return (s.id.clone(), None);
                }
            }
        }
        // Losing the race is fine: the node that won fired this occurrence
        // (or one after it), and this node's enqueue of it was a no-op.
        match self
            .store
            .advance_schedule(&s.id, s.next_fire_at, step.next, fired)
            .await
        {
            Ok(_) => (s.id.clone(), Some(step.next)),
            Err(e) => {
                tracing::warn!(schedule = %s.id, error = %e, "cannot advance a schedule");
                (s.id.clone(), None)
            }
        }
    }

    /// Enqueues the run of one occurrence (or finds it enqueued already).
    async fn fire_occurrence(&self, s: &Schedule, at: i64) -> Result<(String, bool), NotFired> {
        let live = self
            .live(&s.tenant_id, &s.script_name)
            .await
            .map_err(|e| NotFired::Later(e.to_string()))?
            .ok_or_else(|| NotFired::Dropped(format!("`{}` has no live version", s.script_name)))?;
        let spec = RunSpec {
            tenant_id: s.tenant_id.clone(),
            live,
            input_json: s.input.clone(),
            trigger: Trigger::Schedule,
            principal: Some(format!("schedule:{}", s.name)),
            timeout_ms: None,
            run_id: None,
            created_at: None,
        };
        let request = JobRequest {
            idempotency_key: Some(occurrence_key(&s.id, at)),
            ..JobRequest::default()
        };
        self.enqueue_run(spec, request).await.map_err(|e| match e {
            EngineError::Killed(_) => NotFired::Dropped(e.to_string()),
            other => NotFired::Later(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const T: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn on_time_occurrences_fire_and_the_next_one_is_after_now() {
        let every_min = CronSchedule::parse("0 * * * * *", "UTC").unwrap();
        for missed in Missed::ALL {
            // Due at T, seen 20 ms later.
            assert_eq!(
                plan(&every_min, T, missed, T + 20),
                Step {
                    fire: Some(T),
                    next: T + 60_000
                }
            );
            // Seen 59 s late: still on time.
            assert_eq!(
                plan(&every_min, T, missed, T + 59_000),
                Step {
                    fire: Some(T),
                    next: T + 60_000
                }
            );
        }
        // After downtime, the latest occurrence fires when it is on time,
        // whatever the policy; the ones before it are not fired.
        let every_sec = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(
            plan(&every_sec, T, Missed::Skip, T + 600_500),
            Step {
                fire: Some(T + 600_000),
                next: T + 601_000
            }
        );
    }

    #[test]
    fn missed_occurrences_are_skipped_or_caught_up_once() {
        let hourly = CronSchedule::parse("0 0 * * * *", "UTC").unwrap();
        // Down from before T until T + 2.5 h: T, T+1h, T+2h were missed.
        let now = T + 9_000_000;
        assert_eq!(
            plan(&hourly, T, Missed::Skip, now),
            Step {
                fire: None,
                next: T + 10_800_000
            }
        );
        assert_eq!(
            plan(&hourly, T, Missed::CatchUp, now),
            Step {
                fire: Some(T + 7_200_000),
                next: T + 10_800_000
            }
        );
        // Just past the tolerance is missed.
        assert_eq!(plan(&hourly, T, Missed::Skip, T + 60_001).fire, None);
        assert_eq!(plan(&hourly, T, Missed::Skip, T + 60_000).fire, Some(T));
    }

    #[test]
    fn a_clock_that_jumps_never_fires_an_occurrence_twice() {
        let every_sec = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        // One schedule, advanced by compare-and-set, seen by ticks whose
        // clock moves forwards and backwards.
        let clock = [
            0, 20, 1_000, 1_020, 1_500, 400, 900, 1_000, 2_100, 90_000, 3_000, 90_500, 91_000,
            91_000, 50_000, 92_000,
        ];
        for missed in Missed::ALL {
            let mut next_fire_at = every_sec.next_after(T - 1).unwrap();
            let mut fired = Vec::new();
            for dt in clock {
                let now = T + dt;
                let mut passes = 0;
                while next_fire_at <= now {
                    passes += 1;
                    assert!(passes < 2, "one pass moves the schedule past now");
                    let step = plan(&every_sec, next_fire_at, missed, now);
                    assert!(step.next > now && step.next > next_fire_at);
                    fired.extend(step.fire);
                    next_fire_at = step.next;
                }
            }
            let unique: HashSet<_> = fired.iter().collect();
            assert_eq!(unique.len(), fired.len(), "{missed}: {fired:?}");
            assert_eq!(
                fired,
                vec![T, T + 1_000, T + 2_000, T + 90_000, T + 91_000, T + 92_000],
                "{missed}"
            );
        }
    }

    #[test]
    fn occurrence_keys_name_the_schedule_and_the_instant() {
        assert_eq!(occurrence_key("sch_1", T), "schedule:sch_1:1767225600000");
    }
}
