//! The dry run: the resolved DAG in order and in levels (the steps of one
//! level may run in parallel), which steps would run and why, and every
//! template rendered with the inputs where the inputs alone decide it.
//! Nothing is executed, no secret is read: what depends on a step's
//! result, the environment or a secret is "decided at run time".

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::expr::{Ref, Scope};
use crate::inputs::{InputError, check_inputs};
use crate::model::{Action, Field, Items, StepType, Workflow};
use crate::profile::{Profile, Rules};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub workflow: String,
    pub version: String,
    /// The profile the run would get, and what it allows.
    pub profile: Profile,
    pub rules: Rules,
    /// The inputs, defaults applied.
    pub inputs: Map<String, Value>,
    /// Step ids by level: a step's level is one more than its deepest
    /// dependency's.
    pub levels: Vec<Vec<String>>,
    /// The steps in topological order.
    pub steps: Vec<PlannedStep>,
    pub outputs: Vec<PlannedField>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedStep {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    pub level: usize,
    pub depends_on: Vec<String>,
    pub decision: Decision,
    pub fields: Vec<PlannedField>,
}

/// Whether a step would run, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    Runs(String),
    Skipped(String),
    /// Depends on what earlier steps do.
    AtRunTime(String),
    /// Would be refused: the profile forbids it, its assertion fails, its
    /// `foreach` is over the cap…
    Refused(String),
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::Runs(r)
            | Decision::Skipped(r)
            | Decision::AtRunTime(r)
            | Decision::Refused(r) => r,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedField {
    pub field: String,
    /// As written.
    pub template: Value,
    pub rendered: Rendered,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum Rendered {
    Value(Value),
    AtRunTime(String),
    Error(String),
}

/// What a field reads that the plan cannot know, if anything.
fn run_time_reason(refs: &[Ref]) -> Option<String> {
    let mut reads = Vec::new();
    for r in refs {
        let what = match r {
            Ref::Input(_) => continue,
            Ref::Step(Some(id)) => format!("steps.{id}"),
            Ref::Step(None) => "steps".to_owned(),
            Ref::Env(_) => "env".to_owned(),
            Ref::Secret(_) => "secrets".to_owned(),
            Ref::Item => "the foreach item".to_owned(),
        };
        if !reads.contains(&what) {
            reads.push(what);
        }
    }
    (!reads.is_empty()).then(|| format!("reads {}: decided at run time", reads.join(", ")))
}

fn render(field: &str, f: Field<'_>, scope: &Scope) -> PlannedField {
    let refs = f.refs();
    let rendered = match run_time_reason(&refs) {
        Some(reason) => Rendered::AtRunTime(reason),
        None => match f.render(scope) {
            Ok(v) => Rendered::Value(v),
            Err(e) => Rendered::Error(e.to_string()),
        },
    };
    let template = match f {
        Field::Templated(_) => {
            serde_json::from_str(&f.source()).unwrap_or(Value::String(f.source()))
        }
        _ => Value::String(f.source()),
    };
    PlannedField {
        field: field.to_owned(),
        template,
        rendered,
    }
}

/// Plans `workflow` with `inputs` (a JSON object) for a tenant whose
/// maximum profile is `tenant_max`. Fails only if the inputs do not
/// satisfy the workflow's declarations.
pub fn plan(
    workflow: &Workflow,
    inputs: &Value,
    tenant_max: Profile,
) -> Result<Plan, Vec<InputError>> {
    let inputs = check_inputs(workflow, inputs)?;
    let profile = Profile::effective(tenant_max, workflow.profile);
    let scope = Scope::with_inputs(inputs.clone());

    let level: HashMap<&str, usize> = workflow
        .levels()
        .iter()
        .enumerate()
        .flat_map(|(l, ids)| ids.iter().map(move |id| (*id, l)))
        .collect();
    let mut order: Vec<_> = workflow.steps.iter().enumerate().collect();
    order.sort_by_key(|(i, s)| (level.get(s.id.as_str()).copied().unwrap_or(usize::MAX), *i));
    let mut levels: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    // Each planned step's decision and whether it continues on error.
    let mut decided: HashMap<&str, (Decision, bool)> = HashMap::new();
    let mut steps = Vec::new();
    for (_, step) in order {
        let Some(&lvl) = level.get(step.id.as_str()) else {
            // Only a workflow that did not validate has a cycle.
            steps.push(PlannedStep {
                id: step.id.clone(),
                step_type: step.step_type(),
                level: usize::MAX,
                depends_on: step.depends_on.clone(),
                decision: Decision::Refused("in a dependency cycle".into()),
                fields: Vec::new(),
            });
            continue;
        };
        levels.entry(lvl).or_default().push(step.id.clone());
        let decision = decide(step, profile, &scope, &decided);
        let mut fields: Vec<PlannedField> = Vec::new();
        if let Some(when) = &step.when {
            fields.push(render("when", Field::Expr(when), &scope));
        }
        fields.extend(
            step.action
                .fields()
                .into_iter()
                .map(|(name, f)| render(&name, f, &scope)),
        );
        decided.insert(&step.id, (decision.clone(), step.continue_on_error));
        steps.push(PlannedStep {
            id: step.id.clone(),
            step_type: step.step_type(),
            level: lvl,
            depends_on: step.depends_on.clone(),
            decision,
            fields,
        });
    }
    let outputs = workflow
        .outputs
        .iter()
        .map(|o| render(&o.name, Field::Template(&o.template), &scope))
        .collect();
    Ok(Plan {
        workflow: workflow.name.clone(),
        version: workflow.version.clone(),
        profile,
        rules: profile.rules(),
        inputs,
        levels: levels.into_values().collect(),
        steps,
        outputs,
    })
}

fn decide(
    step: &crate::model::Step,
    profile: Profile,
    scope: &Scope,
    decided: &HashMap<&str, (Decision, bool)>,
) -> Decision {
    if let Some(reason) = step.forbidden_by(profile) {
        return Decision::Refused(reason);
    }
    // Its own condition first: a `when` the inputs make false skips the
    // step whatever happens upstream.
    let mut why = "no condition".to_owned();
    let mut when_at_run_time = false;
    if let Some(when) = &step.when {
        match run_time_reason(when.refs()) {
            Some(reason) => {
                why = format!("`when` {reason}");
                when_at_run_time = true;
            }
            None => match when.eval_bool(scope) {
                Ok(true) => why = format!("`when: {}` is true", when.source()),
                Ok(false) => {
                    return Decision::Skipped(format!("`when: {}` is false", when.source()));
                }
                Err(e) => return Decision::Refused(format!("`when` fails: {e}")),
            },
        }
    }
    for dep in &step.depends_on {
        match decided.get(dep.as_str()) {
            Some((Decision::Skipped(_), _)) => {
                return Decision::Skipped(format!("`{dep}` is skipped"));
            }
            // A dependency that would fail stops this step, unless it
            // continues on error.
            Some((Decision::Refused(_), false)) => {
                return Decision::Skipped(format!("`{dep}` would be refused"));
            }
            _ => {}
        }
    }
    let waits: Vec<&str> = step
        .depends_on
        .iter()
        .filter(|d| matches!(decided.get(d.as_str()), Some((Decision::AtRunTime(_), _))))
        .map(String::as_str)
        .collect();
    if when_at_run_time {
        return Decision::AtRunTime(why);
    }
    match &step.action {
        Action::Assert { condition, message } if run_time_reason(condition.refs()).is_none() => {
            match condition.eval_bool(scope) {
                Ok(true) => why = "the assertion holds".into(),
                Ok(false) => {
                    let text = message
                        .as_ref()
                        .and_then(|m| m.render(scope).ok())
                        .unwrap_or_else(|| format!("`{}` is false", condition.source()));
                    return Decision::Refused(format!("the assertion fails: {text}"));
                }
                Err(e) => return Decision::Refused(format!("the assertion fails: {e}")),
            }
        }
        Action::Foreach {
            items, max_items, ..
        } => {
            let static_items = match items {
                Items::List(_) => true,
                Items::Template(t) => {
                    run_time_reason(&t.refs().cloned().collect::<Vec<_>>()).is_none()
                }
            };
            if !static_items {
                return Decision::AtRunTime("its items are decided at run time".into());
            }
            match items.resolve(scope, *max_items) {
                Ok(list) => why = format!("{why}; {} items", list.len()),
                Err(e) => return Decision::Refused(e.to_string()),
            }
        }
        _ => {}
    }
    if !waits.is_empty() {
        return Decision::AtRunTime(format!(
            "runs if {} run{}",
            waits
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(" and "),
            if waits.len() == 1 { "s" } else { "" }
        ));
    }
    Decision::Runs(why)
}

impl Rendered {
    fn text(&self) -> String {
        match self {
            Rendered::Value(Value::String(s)) => s.clone(),
            Rendered::Value(v) => v.to_string(),
            Rendered::AtRunTime(why) => format!("({why})"),
            Rendered::Error(e) => format!("(error: {e})"),
        }
    }
}

/// The plan as the CLI prints it.
impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.rules;
        writeln!(
            f,
            "{} {}: profile {} ({}; network: {}; shell: {})",
            self.workflow,
            self.version,
            self.profile,
            if r.executes {
                "executes"
            } else {
                "plans only, never executes"
            },
            match r.network {
                crate::profile::Network::None => "none",
                crate::profile::Network::AllowlistedDomains => "allowlisted domains",
            },
            if r.shell { "in the jail" } else { "no" },
        )?;
        if !self.inputs.is_empty() {
            let inputs: Vec<String> = self
                .inputs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(f, "inputs: {}", inputs.join(", "))?;
        }
        let mut level = None;
        for step in &self.steps {
            if level != Some(step.level) {
                level = Some(step.level);
                if step.level == usize::MAX {
                    writeln!(f, "not ordered")?;
                } else {
                    writeln!(f, "level {}", step.level)?;
                }
            }
            let after = if step.depends_on.is_empty() {
                String::new()
            } else {
                format!(" after {}", step.depends_on.join(", "))
            };
            let (what, why) = match &step.decision {
                Decision::Runs(why) => ("runs", why),
                Decision::Skipped(why) => ("skipped", why),
                Decision::AtRunTime(why) => ("decided at run time", why),
                Decision::Refused(why) => ("refused", why),
            };
            writeln!(
                f,
                "  {} ({}){after}: {what}: {why}",
                step.id,
                step.step_type.name()
            )?;
            for field in &step.fields {
                writeln!(f, "      {}: {}", field.field, field.rendered.text())?;
            }
        }
        if !self.outputs.is_empty() {
            writeln!(f, "outputs")?;
            for o in &self.outputs {
                writeln!(f, "  {}: {}", o.field, o.rendered.text())?;
            }
        }
        Ok(())
    }
}
