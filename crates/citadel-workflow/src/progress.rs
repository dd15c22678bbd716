//! A workflow run as a state machine: which steps are ready, which are
//! skipped and why, and how the run ends. Pure: whoever runs the steps (the
//! CLI's local runner, the engine's durable one) asks [`Progress::ready`]
//! for the next steps, runs them however it runs things, and hands each
//! result back with [`Progress::finish`]. The rules are the plan's, decided
//! with real results instead of "at run time".

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::expr::{Scope, StepResult, StepStatus};
use crate::model::{Step, Workflow};
use crate::profile::Profile;

/// What [`Progress::ready`] decided about a step.
#[derive(Debug)]
pub enum Ready<'w> {
    /// Run it, its templates evaluated in `scope` (its upstream steps'
    /// results only).
    Run { step: &'w Step, scope: Scope },
    /// Not run: a dependency was skipped or failed, or its `when` is false.
    /// Recorded as `skipped` already.
    Skipped { step: &'w Step, reason: String },
    /// Not run and failed: the profile forbids it, or its `when` could not
    /// be evaluated. Recorded as `failed` already, `{"error": reason}` its
    /// output.
    Refused { step: &'w Step, reason: String },
}

/// How a workflow run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// `succeeded`, or `failed` when a step failed (timed out, was
    /// cancelled or rejected) without `continue_on_error`, or an output
    /// could not be rendered.
    pub status: StepStatus,
    /// The first step that failed the run, in the workflow's order.
    pub failed_step: Option<String>,
    pub outputs: Map<String, Value>,
    /// Outputs that could not be rendered, with why.
    pub output_errors: BTreeMap<String, String>,
}

/// One workflow run's progress.
pub struct Progress<'w> {
    workflow: &'w Workflow,
    profile: Profile,
    scope: Scope,
    started: BTreeSet<&'w str>,
}

impl<'w> Progress<'w> {
    /// A run of `workflow` with checked `inputs` ([`crate::check_inputs`])
    /// under `profile` (already the effective one). `env` and `secrets` of
    /// the scope are empty: set what is granted with [`Progress::grant`].
    pub fn new(workflow: &'w Workflow, inputs: Map<String, Value>, profile: Profile) -> Self {
        Progress {
            workflow,
            profile,
            scope: Scope::with_inputs(inputs),
            started: BTreeSet::new(),
        }
    }

    /// Resumes a run whose steps in `results` have finished (read back
    /// from where a durable runner keeps them). A step that was started but
    /// has no result is ready again.
    pub fn resume(
        workflow: &'w Workflow,
        inputs: Map<String, Value>,
        profile: Profile,
        results: BTreeMap<String, StepResult>,
    ) -> Self {
        let mut p = Progress::new(workflow, inputs, profile);
        for step in &workflow.steps {
            if results.contains_key(&step.id) {
                p.started.insert(&step.id);
            }
        }
        p.scope.steps = results
            .into_iter()
            .filter(|(id, _)| workflow.step(id).is_some())
            .collect();
        p
    }

    /// The environment variables and secrets templates may read.
    pub fn grant(&mut self, env: BTreeMap<String, String>, secrets: BTreeMap<String, String>) {
        self.scope.env = env;
        self.scope.secrets = secrets;
    }

    /// The steps whose dependencies have all finished and that were not
    /// handed out before, in the workflow's order. Skipped and refused
    /// steps are recorded at once, and the steps they unblock are decided
    /// in the same call, so an empty answer with [`Progress::is_finished`]
    /// false means steps are still running.
    pub fn ready(&mut self) -> Vec<Ready<'w>> {
        let mut out = Vec::new();
        loop {
            let mut decided_any = false;
            for step in &self.workflow.steps {
                if self.started.contains(step.id.as_str()) {
                    continue;
                }
                let deps: Option<Vec<(&Step, &StepResult)>> = step
                    .depends_on
                    .iter()
                    .map(|d| Some((self.workflow.step(d)?, self.scope.steps.get(d)?)))
                    .collect();
                let Some(deps) = deps else { continue };
                self.started.insert(&step.id);
                decided_any = true;
                let ready = self.decide(step, &deps);
                match &ready {
                    Ready::Skipped { .. } => self.record(step, skipped()),
                    Ready::Refused { reason, .. } => self.record(step, refused(reason)),
                    Ready::Run { .. } => {}
                }
                out.push(ready);
            }
            if !decided_any {
                return out;
            }
        }
    }

    fn decide(&self, step: &'w Step, deps: &[(&Step, &StepResult)]) -> Ready<'w> {
        if let Some(reason) = step.forbidden_by(self.profile) {
            return Ready::Refused { step, reason };
        }
        for (dep, result) in deps {
            let reason = match result.status {
                StepStatus::Succeeded => continue,
                StepStatus::Skipped => format!("`{}` is skipped", dep.id),
                _ if dep.continue_on_error => continue,
                status => format!("`{}` {}", dep.id, ended(status)),
            };
            return Ready::Skipped { step, reason };
        }
        let scope = self.scope.for_step(self.workflow, &step.id);
        if let Some(when) = &step.when {
            match when.eval_bool(&scope) {
                Ok(true) => {}
                Ok(false) => {
                    let reason = format!("`when: {}` is false", when.source());
                    return Ready::Skipped { step, reason };
                }
                Err(e) => {
                    let reason = format!("`when` fails: {e}");
                    return Ready::Refused { step, reason };
                }
            }
        }
        Ready::Run { step, scope }
    }

    fn record(&mut self, step: &Step, result: StepResult) {
        self.scope.steps.insert(step.id.clone(), result);
    }

    /// Records how a step handed out by [`Progress::ready`] ended. A result
    /// for a step not handed out, or recorded already, is ignored (`false`):
    /// a runner that lost track answers nothing twice.
    pub fn finish(&mut self, id: &str, result: StepResult) -> bool {
        let handed_out = self.started.contains(id) && !self.scope.steps.contains_key(id);
        if handed_out {
            self.scope.steps.insert(id.to_owned(), result);
        }
        handed_out
    }

    /// Every step has a result.
    pub fn is_finished(&self) -> bool {
        self.scope.steps.len() == self.workflow.steps.len()
    }

    /// The results so far, by step id.
    pub fn results(&self) -> &BTreeMap<String, StepResult> {
        &self.scope.steps
    }

    /// How the run ended (call once [`Progress::is_finished`]): its status
    /// and its outputs rendered over every step's result.
    pub fn outcome(&self) -> Outcome {
        let failed_step = self
            .workflow
            .steps
            .iter()
            .find(|s| {
                !s.continue_on_error
                    && self.scope.steps.get(&s.id).is_some_and(|r| {
                        !matches!(r.status, StepStatus::Succeeded | StepStatus::Skipped)
                    })
            })
            .map(|s| s.id.clone());
        let mut outputs = Map::new();
        let mut output_errors = BTreeMap::new();
        for o in &self.workflow.outputs {
            match o.template.render_value(&self.scope) {
                Ok(v) => {
                    outputs.insert(o.name.clone(), v);
                }
                Err(e) => {
                    output_errors.insert(o.name.clone(), e.to_string());
                }
            }
        }
        let status = if failed_step.is_none() && output_errors.is_empty() {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        Outcome {
            status,
            failed_step,
            outputs,
            output_errors,
        }
    }
}

fn ended(status: StepStatus) -> &'static str {
    match status {
        StepStatus::TimedOut => "timed out",
        StepStatus::Cancelled => "was cancelled",
        StepStatus::Rejected => "was rejected",
        _ => "failed",
    }
}

fn skipped() -> StepResult {
    StepResult {
        status: StepStatus::Skipped,
        output: Value::Null,
        exit_code: None,
    }
}

fn refused(reason: &str) -> StepResult {
    StepResult {
        status: StepStatus::Failed,
        output: serde_json::json!({ "error": reason }),
        exit_code: None,
    }
}
