//! The lifecycles of runs, jobs, versions and nodes, and how runs start.

string_enum! {
    /// Where a run is in its life. The last five are final.
    RunStatus, "run status" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// The script threw, broke a limit other than time, or could not run.
        Failed = "failed",
        /// The wall-clock or CPU deadline passed.
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        /// Stopped by a kill switch.
        Killed = "killed",
    }
}

impl RunStatus {
    /// True once the run can change no more.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

string_enum! {
    /// Where a queued job is in its life.
    JobState, "job state" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        /// Failed its last attempt; not retried again.
        Dead = "dead",
    }
}

string_enum! {
    /// The review state of a version: draft → submitted → approved or
    /// rejected. Only an approved version can go live.
    VersionState, "version state" {
        Draft = "draft",
        Submitted = "submitted",
        Approved = "approved",
        Rejected = "rejected",
    }
}

string_enum! {
    /// What started a run.
    Trigger, "trigger" {
        /// A synchronous `POST …/runs` that waits for the result.
        Api = "api",
        /// A `POST …/runs` that queues the run and returns at once.
        ApiAsync = "api_async",
        Schedule = "schedule",
        /// A schedule run by hand.
        Manual = "manual",
        Event = "event",
        /// A step of a workflow run.
        Workflow = "workflow",
        /// A verified request to an inbound webhook.
        Webhook = "webhook",
    }
}

string_enum! {
    /// What a schedule does about occurrences missed while no node ran it.
    #[derive(Default)]
    Missed, "missed-run policy" {
        /// Drop them; the next occurrence runs as usual.
        #[default]
        Skip = "skip",
        /// One run for all of them (at the most recent one), then as usual.
        CatchUp = "catch_up",
    }
}

string_enum! {
    /// A worker node as the cluster sees it.
    NodeState, "node state" {
        Up = "up",
        /// Finishing its runs, claiming no new ones.
        Draining = "draining",
        Down = "down",
    }
}

string_enum! {
    /// How soon a queued job runs relative to the tenant's others. Stored as
    /// its number (0 low … 3 critical).
    #[derive(Default)]
    Priority, "priority" {
        Low = "low",
        #[default]
        Normal = "normal",
        High = "high",
        Critical = "critical",
    }
}

impl Priority {
    /// The number the store orders by.
    pub fn as_i64(self) -> i64 {
        self as i64
    }
}

string_enum! {
    /// The language a version's source is written in: a script's
    /// JavaScript or TypeScript, or a workflow's YAML. Scripts and
    /// workflows share a tenant's catalog (names, versions, review); the
    /// language tells them apart.
    Language, "language" {
        Js = "js",
        Ts = "ts",
        Workflow = "workflow",
    }
}

impl Language {
    /// Picks the language from a file name: `.ts`/`.mts`/`.cts` is TypeScript.
    pub fn from_path(path: &std::path::Path) -> Language {
        match path.extension().and_then(|e| e.to_str()) {
            Some("ts" | "mts" | "cts") => Language::Ts,
            _ => Language::Js,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::{Capability, UnknownVariant};

    /// Every variant goes to its string and back, by `FromStr` and by serde,
    /// and a string naming none is refused with its value.
    fn round_trips<T>(all: &[T], strings: &[&str], kind: &str)
    where
        T: Copy + Eq + Debug + std::fmt::Display + FromStr<Err = UnknownVariant>,
        T: Serialize + DeserializeOwned,
    {
        let shown: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, strings);
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>(), Ok(*v));
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
        }
        let bad = "Bogus".parse::<T>().unwrap_err();
        assert_eq!((bad.kind, bad.value.as_str()), (kind, "Bogus"));
        assert_eq!(
            "Bogus".parse::<T>().unwrap_err().to_string(),
            format!("unknown {kind} `Bogus`")
        );
        assert!(serde_json::from_str::<T>("\"Bogus\"").is_err());
    }

    #[test]
    fn every_variant_round_trips() {
        round_trips(
            &RunStatus::ALL,
            &[
                "queued",
                "running",
                "succeeded",
                "failed",
                "timed_out",
                "cancelled",
                "killed",
            ],
            "run status",
        );
        round_trips(
            &JobState::ALL,
            &[
                "queued",
                "running",
                "succeeded",
                "failed",
                "cancelled",
                "dead",
            ],
            "job state",
        );
        round_trips(
            &VersionState::ALL,
            &["draft", "submitted", "approved", "rejected"],
            "version state",
        );
        round_trips(
            &Trigger::ALL,
            &[
                "api",
                "api_async",
                "schedule",
                "manual",
                "event",
                "workflow",
                "webhook",
            ],
            "trigger",
        );
        round_trips(
            &DeliveryState::ALL,
            &["pending", "delivered", "failed"],
            "delivery state",
        );
        round_trips(&ScriptKind::ALL, &["script", "workflow", "plugin"], "kind");
        round_trips(
            &StepStatus::ALL,
            &[
                "succeeded",
                "failed",
                "skipped",
                "timed_out",
                "cancelled",
                "rejected",
                "running",
                "waiting",
            ],
            "step status",
        );
        round_trips(&NodeState::ALL, &["up", "draining", "down"], "node state");
        round_trips(&Missed::ALL, &["skip", "catch_up"], "missed-run policy");
        round_trips(
            &Priority::ALL,
            &["low", "normal", "high", "critical"],
            "priority",
        );
        round_trips(&Language::ALL, &["js", "ts", "workflow"], "language");
        round_trips(
            &Capability::ALL,
            &["http", "secrets", "kv", "db", "events", "sleep", "echo"],
            "capability",
        );
    }

    #[test]
    fn priorities_store_as_their_rank() {
        let ranks: Vec<i64> = Priority::ALL.iter().map(|p| p.as_i64()).collect();
        assert_eq!(ranks, [0, 1, 2, 3]);
        assert_eq!(Priority::default(), Priority::Normal);
    }

    #[test]
    fn only_queued_and_running_are_not_final() {
        let open: Vec<RunStatus> = RunStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect();
        assert_eq!(open, [RunStatus::Queued, RunStatus::Running]);
    }

    #[test]
    fn the_language_follows_the_file_name() {
        for (name, language) in [
            ("a.ts", Language::Ts),
            ("a.mts", Language::Ts),
            ("a.cts", Language::Ts),
            ("a.js", Language::Js),
            ("a", Language::Js),
        ] {
            assert_eq!(Language::from_path(std::path::Path::new(name)), language);
        }
    }
}

string_enum! {
    /// What a kill switch stops: every run of the platform, of a tenant,
    /// of a folder of scripts, or of one script.
    KillScope, "kill switch scope" {
        Platform = "platform",
        Tenant = "tenant",
        Folder = "folder",
        Script = "script",
    }
}

impl JobState {
    /// The status a job's run has while the job has not recorded one: the
    /// same name, except that a dead job's run failed.
    pub const fn run_status(self) -> RunStatus {
        match self {
            JobState::Queued => RunStatus::Queued,
            JobState::Running => RunStatus::Running,
            JobState::Succeeded => RunStatus::Succeeded,
            JobState::Failed | JobState::Dead => RunStatus::Failed,
            JobState::Cancelled => RunStatus::Cancelled,
        }
    }
}

string_enum! {
    /// How a workflow step ended, as the workflow's expressions see it
    /// (`steps.build.status == 'succeeded'`).
    StepStatus, "step status" {
        Succeeded = "succeeded",
        Failed = "failed",
        Skipped = "skipped",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        /// An approval step that was rejected.
        Rejected = "rejected",
        /// A stored step that started and has no result yet (never what an
        /// expression sees).
        Running = "running",
        /// A stored approval step waiting for a decision (never what an
        /// expression sees).
        Waiting = "waiting",
    }
}

impl StepStatus {
    /// True once the step has a result.
    pub fn is_final(self) -> bool {
        !matches!(self, StepStatus::Running | StepStatus::Waiting)
    }
}

string_enum! {
    /// Where an outgoing webhook delivery stands: attempts left to make, or
    /// done one way or the other.
    DeliveryState, "delivery state" {
        Pending = "pending",
        Delivered = "delivered",
        /// Out of attempts, or its endpoint answered 410 or was disabled.
        Failed = "failed",
    }
}

string_enum! {
    /// What a catalog entry is: a script, a workflow, or an installed
    /// plugin's handler module (`plugins/{slug}`, managed only through the
    /// plugin's lifecycle). A name keeps the kind of its first version.
    ScriptKind, "kind" {
        Script = "script",
        Workflow = "workflow",
        Plugin = "plugin",
    }
}

impl ScriptKind {
    /// The kind of a script or workflow entry whose versions are written in
    /// `language` (a plugin's entry is JavaScript or TypeScript too, and
    /// says so itself).
    pub fn of(language: Language) -> ScriptKind {
        if language.is_script() {
            ScriptKind::Script
        } else {
            ScriptKind::Workflow
        }
    }
}

impl Language {
    /// A script's language (JavaScript or TypeScript), not a workflow's.
    pub fn is_script(self) -> bool {
        !matches!(self, Language::Workflow)
    }
}
