//! From YAML text to a [`Workflow`], reporting every problem at once.
//!
//! Parsing stops at the first YAML-level problem (a syntax error, a
//! refused bomb): past that nothing can be located. Everything after is
//! checked in full, each problem with the line and column of its node: the
//! schema (unknown fields with a did-you-mean, missing and mistyped ones),
//! the inputs' types and rules, every expression and template, the step
//! graph (duplicate ids, unknown dependencies, cycles named step by step,
//! templates reading steps that do not run before them), the security
//! profile's step types, `foreach` caps and, given a resolver,
//! sub-workflows (unknown, cyclic, too deep).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::diag::{Diagnostic, Pos, codes};
use crate::expr::{Expr, ExprError, Ref, Template};
use crate::inputs::check_value;
use crate::model::*;
use crate::profile::Profile;
use crate::shell::ShellCommand;
use crate::yaml::{self, Key, Node, NodeKind, Scalar};

/// How deep sub-workflows may nest, the top workflow not counted.
pub const MAX_SUBWORKFLOW_DEPTH: usize = 8;

/// Finds a sub-workflow by name (the store, or files next to the CLI's).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<Workflow>;

/// Validates a workflow for `profile` (the tenant's maximum; the
/// workflow's own `profile:` may lower it).
pub fn validate(text: &str, profile: Profile) -> Result<Workflow, Vec<Diagnostic>> {
    validate_with(text, profile, None)
}

/// As [`validate`], also following `workflow` steps through `resolver`.
pub fn validate_with(
    text: &str,
    profile: Profile,
    resolver: Option<Resolver<'_>>,
) -> Result<Workflow, Vec<Diagnostic>> {
    let (root, duplicates) = yaml::load(text).map_err(|d| vec![d])?;
    let mut c = Checker {
        diags: duplicates,
        profile,
    };
    let workflow = match root {
        None => {
            c.err(codes::FIELD_TYPE, Pos::new(1, 1), "the document is empty");
            None
        }
        Some(root) => c.workflow(&root),
    };
    if let (Some(wf), Some(resolve)) = (&workflow, resolver) {
        check_subworkflows(wf, resolve, &mut c.diags);
    }
    let mut diags = c.diags;
    if diags.is_empty()
        && let Some(wf) = workflow
    {
        return Ok(wf);
    }
    diags.sort_by_key(|d| (d.line, d.column));
    diags.dedup();
    Err(diags)
}

/// The closest of `candidates` to `name`, if one is close enough to be
/// what was meant.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

struct Checker {
    diags: Vec<Diagnostic>,
    profile: Profile,
}

struct Fields<'n> {
    pos: Pos,
    entries: Vec<(&'n Key, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| *v)
    }
}

const WORKFLOW_FIELDS: &[&str] = &[
    "name",
    "version",
    "description",
    "profile",
    "inputs",
    "env",
    "secrets",
    "steps",
    "outputs",
];
const INPUT_FIELDS: &[&str] = &["type", "required", "default", "description", "validation"];
const VALIDATION_FIELDS: &[&str] = &["pattern", "enum", "min", "max", "min_length", "max_length"];
const STEP_FIELDS: &[&str] = &[
    "id",
    "type",
    "name",
    "description",
    "depends_on",
    "when",
    "timeout",
    "retry",
    "continue_on_error",
];
const RETRY_FIELDS: &[&str] = &["attempts", "delay", "backoff"];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

fn action_fields(ty: StepType) -> &'static [&'static str] {
    match ty {
        StepType::Script => &["script", "code", "input"],
        StepType::Assert => &["condition", "message"],
        StepType::Http => &["method", "url", "headers", "body"],
        StepType::Emit => &["event", "payload"],
        StepType::Approval => &["message"],
        StepType::Sleep => &["seconds"],
        StepType::Shell => &["command"],
        StepType::Workflow => &["workflow", "inputs"],
        StepType::Foreach => &["items", "do", "parallelism", "max_items"],
    }
}

fn article(word: &str) -> String {
    let an = word.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {word}", if an { "an" } else { "a" })
}

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.len() <= max
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

impl Checker {
    fn err(&mut self, code: &'static str, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(code, pos, message));
    }

    fn fields<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                codes::FIELD_TYPE,
                node.pos,
                format!("{what} must be a mapping, not {}", node.describe()),
            );
            return None;
        };
        let mut kept = Vec::new();
        for (key, value) in entries {
            if allowed.contains(&key.name.as_str()) {
                kept.push((key, value));
            } else {
                let mut d = Diagnostic::new(
                    codes::FIELD_UNKNOWN,
                    key.pos,
                    format!("unknown field `{}` in {what}", key.name),
                );
                if let Some(near) = did_you_mean(&key.name, allowed.iter().copied()) {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.diags.push(d);
            }
        }
        Some(Fields {
            pos: node.pos,
            entries: kept,
        })
    }

    fn required<'n>(&mut self, f: &Fields<'n>, name: &str, what: &str) -> Option<&'n Node> {
        let node = f.get(name);
        if node.is_none() {
            self.err(
                codes::FIELD_MISSING,
                f.pos,
                format!("{what} needs the field `{name}`"),
            );
        }
        node
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.err(
                    codes::FIELD_TYPE,
                    node.pos,
                    format!("{what} must be a string, not {}", node.describe()),
                );
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<u64> {
        match &node.kind {
            NodeKind::Scalar(Scalar::Int(i)) => match u64::try_from(*i) {
                Ok(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    self.err(
                        codes::FIELD_VALUE,
                        node.pos,
                        format!("{what} must be between {min} and {max}, not {i}"),
                    );
                    None
                }
            },
            _ => {
                self.err(
                    codes::FIELD_TYPE,
                    node.pos,
                    format!("{what} must be a whole number, not {}", node.describe()),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match &node.kind {
            NodeKind::Scalar(Scalar::Int(i)) => Some(*i as f64),
            NodeKind::Scalar(Scalar::Float(f, _)) if f.is_finite() => Some(*f),
            _ => {
                self.err(
                    codes::FIELD_TYPE,
                    node.pos,
                    format!("{what} must be a number, not {}", node.describe()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Scalar(Scalar::Bool(b)) => Some(*b),
            _ => {
                self.err(
                    codes::FIELD_TYPE,
                    node.pos,
                    format!("{what} must be true or false, not {}", node.describe()),
                );
                None
            }
        }
    }

    /// A list of names, or one name alone.
    fn names(&mut self, node: &Node, what: &str) -> Vec<(String, Pos)> {
        match &node.kind {
            NodeKind::Scalar(Scalar::Str(s)) => vec![(s.clone(), node.pos)],
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| self.string(i, what).map(|s| (s, i.pos)))
                .collect(),
            _ => {
                self.err(
                    codes::FIELD_TYPE,
                    node.pos,
                    format!("{what} must be a list of names, not {}", node.describe()),
                );
                Vec::new()
            }
        }
    }

    fn expr_error(&mut self, pos: Pos, field: &str, e: ExprError) {
        self.err(e.code, pos, format!("in `{field}`: {}", e.message));
    }

    fn template(
        &mut self,
        node: &Node,
        field: &str,
        item: bool,
        sites: &mut Vec<Site>,
    ) -> Option<Template> {
        let src = self.string(node, &format!("`{field}`"))?;
        match Template::parse(&src, item) {
            Ok(t) => {
                sites.push(Site {
                    pos: node.pos,
                    field: field.to_owned(),
                    refs: t.refs().cloned().collect(),
                });
                Some(t)
            }
            Err(e) => {
                self.expr_error(node.pos, field, e);
                None
            }
        }
    }

    fn expr(
        &mut self,
        node: &Node,
        field: &str,
        item: bool,
        sites: &mut Vec<Site>,
    ) -> Option<Expr> {
        let src = match &node.kind {
            NodeKind::Scalar(Scalar::Bool(b)) => b.to_string(),
            _ => self.string(node, &format!("`{field}`"))?,
        };
        // `when: "{{ x }}"` is a common slip: the field is an expression.
        let trimmed = src.trim();
        let src = match trimmed
            .strip_prefix("{{")
            .and_then(|s| s.strip_suffix("}}"))
        {
            Some(inner) if !inner.contains("{{") => inner.to_owned(),
            _ => src,
        };
        match Expr::parse(&src, item) {
            Ok(e) => {
                sites.push(Site {
                    pos: node.pos,
                    field: field.to_owned(),
                    refs: e.refs().to_vec(),
                });
                Some(e)
            }
            Err(e) => {
                self.expr_error(node.pos, field, e);
                None
            }
        }
    }

    fn templated(
        &mut self,
        node: &Node,
        field: &str,
        item: bool,
        sites: &mut Vec<Site>,
    ) -> Templated {
        match &node.kind {
            NodeKind::Scalar(Scalar::Str(s))
                if s.contains("{{") || s.contains("{%") || s.contains("{#") =>
            {
                match self.template(node, field, item, sites) {
                    Some(t) => Templated::Template(t),
                    None => Templated::Literal(serde_json::Value::Null),
                }
            }
            NodeKind::Seq(items) => Templated::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.templated(n, &format!("{field}[{i}]"), item, sites))
                    .collect(),
            ),
            NodeKind::Map(entries) => Templated::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.name.clone(),
                            self.templated(v, &format!("{field}.{}", k.name), item, sites),
                        )
                    })
                    .collect(),
            ),
            _ => Templated::Literal(node.to_json()),
        }
    }

    fn workflow(&mut self, root: &Node) -> Option<Workflow> {
        let f = self.fields(root, "a workflow", WORKFLOW_FIELDS)?;
        let name = self.required(&f, "name", "a workflow").and_then(|n| {
            let s = self.string(n, "`name`")?;
            if !valid_name(&s, 128, &['-', '.']) {
                self.err(
                    codes::FIELD_VALUE,
                    n.pos,
                    format!("`{s}` is not a workflow name: a letter, then letters, digits, `-`, `_` or `.`, at most 128"),
                );
            }
            Some(s)
        });
        let version = match f.get("version") {
            None => Some("1".to_owned()),
            Some(n) => match &n.kind {
                NodeKind::Scalar(Scalar::Str(s)) => Some(s.clone()),
                NodeKind::Scalar(Scalar::Int(i)) => Some(i.to_string()),
                NodeKind::Scalar(Scalar::Float(_, raw)) => Some(raw.clone()),
                _ => {
                    self.err(
                        codes::FIELD_TYPE,
                        n.pos,
                        format!("`version` must be a string or number, not {}", n.describe()),
                    );
                    None
                }
            },
        };
        let description = f
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let asked = f.get("profile").and_then(|n| {
            let s = self.string(n, "`profile`")?;
            match s.parse::<Profile>() {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err(codes::PROFILE_UNKNOWN, n.pos, e.to_string());
                    None
                }
            }
        });
        let effective = Profile::effective(self.profile, asked);
        let inputs = f.get("inputs").map(|n| self.inputs(n)).unwrap_or_default();
        let env = f
            .get("env")
            .map(|n| self.declared(n, "`env`"))
            .unwrap_or_default();
        let secrets = f
            .get("secrets")
            .map(|n| self.declared(n, "`secrets`"))
            .unwrap_or_default();
        let mut steps = Vec::new();
        if let Some(n) = self.required(&f, "steps", "a workflow") {
            match &n.kind {
                NodeKind::Seq(items) if items.is_empty() => {
                    self.err(
                        codes::FIELD_VALUE,
                        n.pos,
                        "a workflow needs at least one step",
                    );
                }
                NodeKind::Seq(items) if items.len() > MAX_STEPS => {
                    self.err(
                        codes::FIELD_VALUE,
                        n.pos,
                        format!("a workflow has at most {MAX_STEPS} steps"),
                    );
                }
                NodeKind::Seq(items) => {
                    for item in items {
                        if let Some(step) = self.step(item, effective) {
                            steps.push(step);
                        }
                    }
                }
                _ => self.err(
                    codes::FIELD_TYPE,
                    n.pos,
                    format!("`steps` must be a list, not {}", n.describe()),
                ),
            }
        }
        let mut outputs = Vec::new();
        let mut output_sites = Vec::new();
        if let Some(n) = f.get("outputs") {
            if !matches!(n.kind, NodeKind::Map(_)) {
                self.err(
                    codes::FIELD_TYPE,
                    n.pos,
                    format!(
                        "`outputs` must be a mapping of names to templates, not {}",
                        n.describe()
                    ),
                );
            }
            if let NodeKind::Map(entries) = &n.kind {
                for (k, v) in entries {
                    let mut sites = Vec::new();
                    if let Some(t) =
                        self.template(v, &format!("outputs.{}", k.name), false, &mut sites)
                    {
                        outputs.push(Output {
                            name: k.name.clone(),
                            template: t,
                            pos: v.pos,
                        });
                    }
                    output_sites.extend(sites);
                }
            }
        }
        let wf = Workflow {
            name: name.unwrap_or_default(),
            version: version.unwrap_or_default(),
            description,
            profile: asked,
            inputs,
            env,
            secrets,
            steps,
            outputs,
        };
        self.graph(&wf, &output_sites);
        self.names_read(&wf, &output_sites);
        Some(wf)
    }

    fn declared(&mut self, node: &Node, what: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (name, pos) in self.names(node, what) {
            if !valid_name(&name, 128, &[]) {
                self.err(
                    codes::FIELD_VALUE,
                    pos,
                    format!("`{name}` is not a valid name in {what}"),
                );
            } else if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    fn inputs(&mut self, node: &Node) -> Vec<InputSpec> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                codes::FIELD_TYPE,
                node.pos,
                format!(
                    "`inputs` must be a mapping of names to declarations, not {}",
                    node.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, decl) in entries {
            if !valid_name(&key.name, 64, &[]) {
                let mut d = Diagnostic::new(
                    codes::FIELD_VALUE,
                    key.pos,
                    format!(
                        "`{}` is not an input name: a letter, then letters, digits or `_`",
                        key.name
                    ),
                );
                if key.name.contains('-') {
                    d = d.with_help(format!("try `{}`", key.name.replace('-', "_")));
                }
                self.diags.push(d);
            }
            if let Some(spec) = self.input(key, decl) {
                out.push(spec);
            }
        }
        out
    }

    fn input(&mut self, key: &Key, node: &Node) -> Option<InputSpec> {
        let what = format!("the input `{}`", key.name);
        let f = self.fields(node, &what, INPUT_FIELDS)?;
        let ty = self.required(&f, "type", &what).and_then(|n| {
            let s = self.string(n, "`type`")?;
            let ty = InputType::parse(&s);
            if ty.is_none() {
                let mut d = Diagnostic::new(
                    codes::INPUT_TYPE,
                    n.pos,
                    format!("unknown input type `{s}` (expected string, number, integer, boolean, object or array)"),
                );
                if let Some(near) = did_you_mean(&s, InputType::ALL.iter().map(|t| t.name())) {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                self.diags.push(d);
            }
            ty
        })?;
        let required = f
            .get("required")
            .and_then(|n| self.boolean(n, "`required`"))
            .unwrap_or(false);
        let description = f
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let validation = f
            .get("validation")
            .and_then(|n| self.validation(n, ty, &what))
            .unwrap_or_default();
        let mut spec = InputSpec {
            name: key.name.clone(),
            ty,
            required,
            default: None,
            description,
            validation,
            pos: key.pos,
        };
        if let Some(n) = f.get("default") {
            let value = n.to_json();
            if let Err(v) = check_value(&spec, &value) {
                self.err(
                    codes::INPUT_DEFAULT,
                    n.pos,
                    format!("the default of `{}` is invalid: {}", key.name, v.message),
                );
            }
            spec.default = Some(value);
        }
        Some(spec)
    }

    fn validation(&mut self, node: &Node, ty: InputType, what: &str) -> Option<Validation> {
        let f = self.fields(
            node,
            &format!("the validation of {what}"),
            VALIDATION_FIELDS,
        )?;
        let mut v = Validation::default();
        let not_for = |c: &mut Checker, field: &str, pos: Pos, types: &str| {
            c.err(
                codes::INPUT_VALIDATION,
                pos,
                format!(
                    "`{field}` applies to {types} inputs, not to {} input",
                    article(ty.name())
                ),
            );
        };
        for (key, n) in &f.entries {
            match key.name.as_str() {
                "pattern" => {
                    if ty != InputType::String {
                        not_for(self, "pattern", key.pos, "string");
                        continue;
                    }
                    let Some(src) = self.string(n, "`pattern`") else {
                        continue;
                    };
                    match regex::RegexBuilder::new(&src).size_limit(1 << 20).build() {
                        Ok(re) if src.len() <= 1024 => v.pattern = Some(re),
                        Ok(_) => self.err(
                            codes::INPUT_VALIDATION,
                            n.pos,
                            "the pattern is over 1024 bytes",
                        ),
                        Err(e) => {
                            let msg = e.to_string();
                            let last = msg.lines().last().unwrap_or("invalid").trim().to_owned();
                            self.err(
                                codes::INPUT_VALIDATION,
                                n.pos,
                                format!("invalid pattern: {last}"),
                            );
                        }
                    }
                }
                "enum" => match &n.kind {
                    NodeKind::Seq(items) if !items.is_empty() => {
                        v.one_of = Some(items.iter().map(Node::to_json).collect());
                    }
                    _ => self.err(
                        codes::INPUT_VALIDATION,
                        n.pos,
                        "`enum` must be a non-empty list of values",
                    ),
                },
                "min" | "max" => {
                    if !matches!(ty, InputType::Number | InputType::Integer) {
                        not_for(self, &key.name, key.pos, "number and integer");
                        continue;
                    }
                    let x = self.number(n, &format!("`{}`", key.name));
                    if key.name == "min" {
                        v.min = x
                    } else {
                        v.max = x
                    }
                }
                _ => {
                    if !matches!(ty, InputType::String | InputType::Array) {
                        not_for(self, &key.name, key.pos, "string and array");
                        continue;
                    }
                    let x = self
                        .uint(n, &format!("`{}`", key.name), 0, u32::MAX.into())
                        .map(|x| x as usize);
                    if key.name == "min_length" {
                        v.min_length = x
                    } else {
                        v.max_length = x
                    }
                }
            }
        }
        if let (Some(min), Some(max)) = (v.min, v.max)
            && min > max
        {
            self.err(
                codes::INPUT_VALIDATION,
                f.pos,
                format!("`min` ({min}) is above `max` ({max})"),
            );
        }
        if let (Some(min), Some(max)) = (v.min_length, v.max_length)
            && min > max
        {
            self.err(
                codes::INPUT_VALIDATION,
                f.pos,
                format!("`min_length` ({min}) is above `max_length` ({max})"),
            );
        }
        if let Some(one_of) = &v.one_of {
            let probe = InputSpec {
                name: String::new(),
                ty,
                required: false,
                default: None,
                description: None,
                validation: Validation {
                    one_of: None,
                    ..v.clone()
                },
                pos: f.pos,
            };
            if let Some(bad) = one_of.iter().find(|x| check_value(&probe, x).is_err()) {
                self.err(
                    codes::INPUT_VALIDATION,
                    f.pos,
                    format!("the `enum` value {bad} is not {}", article(ty.name())),
                );
            }
        }
        Some(v)
    }

    fn step(&mut self, node: &Node, profile: Profile) -> Option<Step> {
        let NodeKind::Map(entries) = &node.kind else {
            self.err(
                codes::FIELD_TYPE,
                node.pos,
                format!("a step must be a mapping, not {}", node.describe()),
            );
            return None;
        };
        let type_node = entries
            .iter()
            .find(|(k, _)| k.name == "type")
            .map(|(_, v)| v);
        let ty = match type_node {
            None => {
                self.err(
                    codes::FIELD_MISSING,
                    node.pos,
                    "a step needs a `type` field",
                );
                None
            }
            Some(n) => self.step_type(n),
        };
        let id_node = entries.iter().find(|(k, _)| k.name == "id").map(|(_, v)| v);
        let id = match id_node {
            None => {
                self.err(codes::FIELD_MISSING, node.pos, "a step needs an `id` field");
                None
            }
            Some(n) => self.string(n, "a step's `id`").inspect(|s| {
                if !valid_name(s, 64, &['-']) {
                    self.err(
                        codes::FIELD_VALUE,
                        n.pos,
                        format!("`{s}` is not a step id: a letter, then letters, digits, `-` or `_`, at most 64"),
                    );
                }
            }),
        };
        let what = match &id {
            Some(id) => format!("the step `{id}`"),
            None => "a step".to_owned(),
        };
        let f = match ty {
            Some(ty) => {
                let allowed: Vec<&str> = STEP_FIELDS
                    .iter()
                    .chain(action_fields(ty))
                    .copied()
                    .collect();
                self.fields(node, &what, &allowed)?
            }
            // With no known type, unknown fields cannot be told apart.
            None => self.fields(
                node,
                &what,
                &entries
                    .iter()
                    .map(|(k, _)| k.name.as_str())
                    .collect::<Vec<_>>(),
            )?,
        };
        let mut sites = Vec::new();
        let depends_on = f
            .get("depends_on")
            .map(|n| self.names(n, "`depends_on`"))
            .unwrap_or_default();
        let when = f
            .get("when")
            .and_then(|n| self.expr(n, "when", false, &mut sites));
        let timeout = f
            .get("timeout")
            .and_then(|n| self.uint(n, "`timeout`", 1, MAX_STEP_SECONDS));
        let retry = f.get("retry").and_then(|n| self.retry(n));
        let continue_on_error = f
            .get("continue_on_error")
            .and_then(|n| self.boolean(n, "`continue_on_error`"))
            .unwrap_or(false);
        let ty = ty?;
        let type_pos = type_node.map_or(node.pos, |n| n.pos);
        let action = self.action(ty, &f, &what, false, &mut sites, profile, type_pos);
        let mut step = Step {
            id: id?,
            pos: node.pos,
            // A step whose own fields are wrong still takes part in the
            // graph checks; its problems are reported, so this stand-in
            // never leaves validation.
            action: action.unwrap_or(Action::Approval { message: None }),
            depends_on: Vec::new(),
            dependency_pos: Vec::new(),
            when,
            timeout,
            retry,
            continue_on_error,
            sites,
        };
        step.depends_on = depends_on.iter().map(|(d, _)| d.clone()).collect();
        step.dependency_pos = depends_on.iter().map(|(_, p)| *p).collect();
        Some(step)
    }

    fn step_type(&mut self, node: &Node) -> Option<StepType> {
        let s = self.string(node, "a step's `type`")?;
        let ty = StepType::parse(&s);
        if ty.is_none() {
            let mut d = Diagnostic::new(
                codes::STEP_TYPE,
                node.pos,
                format!("unknown step type `{s}`"),
            );
            if let Some(near) = did_you_mean(&s, StepType::ALL.iter().map(|t| t.name())) {
                d = d.with_help(format!("did you mean `{near}`?"));
            }
            self.diags.push(d);
        }
        ty
    }

    fn retry(&mut self, node: &Node) -> Option<Retry> {
        let f = self.fields(node, "`retry`", RETRY_FIELDS)?;
        let attempts = self
            .required(&f, "attempts", "`retry`")
            .and_then(|n| self.uint(n, "`attempts`", 1, MAX_RETRY_ATTEMPTS.into()));
        let delay = match f.get("delay") {
            Some(n) => self.uint(n, "`delay`", 0, 3600),
            None => Some(1),
        };
        let backoff = match f.get("backoff") {
            None => Some(Backoff::Fixed),
            Some(n) => match self.string(n, "`backoff`").as_deref() {
                Some("fixed") => Some(Backoff::Fixed),
                Some("linear") => Some(Backoff::Linear),
                Some("exponential") => Some(Backoff::Exponential),
                Some(other) => {
                    self.err(
                        codes::FIELD_VALUE,
                        n.pos,
                        format!(
                            "unknown backoff `{other}` (expected fixed, linear or exponential)"
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        let (attempts, delay, backoff) = (attempts?, delay?, backoff?);
        Some(Retry {
            attempts: attempts as u32,
            delay,
            backoff,
        })
    }

    #[allow(clippy::too_many_arguments)] // One call site per nesting level; a struct would only rename them.
    fn action(
        &mut self,
        ty: StepType,
        f: &Fields<'_>,
        what: &str,
        item: bool,
        sites: &mut Vec<Site>,
        profile: Profile,
        type_pos: Pos,
    ) -> Option<Action> {
        if !profile.allows(ty) {
            self.err(
                codes::STEP_FORBIDDEN,
                type_pos,
                format!(
                    "{} steps are not allowed under the `{profile}` profile (the lowest that allows them is `{}`)",
                    ty.name(),
                    Profile::lowest_allowing(ty)
                ),
            );
        }
        Some(match ty {
            StepType::Script => {
                let source = match (f.get("script"), f.get("code")) {
                    (Some(n), None) => ScriptSource::Saved(self.string(n, "`script`")?),
                    (None, Some(n)) => ScriptSource::Inline(self.string(n, "`code`")?),
                    (Some(_), Some(n)) => {
                        self.err(
                            codes::FIELD_VALUE,
                            n.pos,
                            format!("{what} has both `script` and `code`: give one"),
                        );
                        return None;
                    }
                    (None, None) => {
                        self.err(
                            codes::FIELD_MISSING,
                            f.pos,
                            format!("{what} needs `script` (a saved script's name) or `code`"),
                        );
                        return None;
                    }
                };
                let input = f
                    .get("input")
                    .map(|n| self.templated(n, "input", item, sites));
                Action::Script { source, input }
            }
            StepType::Assert => {
                let condition = self
                    .required(f, "condition", what)
                    .and_then(|n| self.expr(n, "condition", item, sites));
                let message = f
                    .get("message")
                    .and_then(|n| self.template(n, "message", item, sites));
                Action::Assert {
                    condition: condition?,
                    message,
                }
            }
            StepType::Http => {
                let method = match f.get("method") {
                    None => "GET".to_owned(),
                    Some(n) => {
                        let m = self.string(n, "`method`")?.to_ascii_uppercase();
                        if !HTTP_METHODS.contains(&m.as_str()) {
                            self.err(
                                codes::FIELD_VALUE,
                                n.pos,
                                format!("unknown HTTP method `{m}`"),
                            );
                        }
                        m
                    }
                };
                let url = self.required(f, "url", what).and_then(|n| {
                    let t = self.template(n, "url", item, sites)?;
                    let scheme_ok =
                        t.source().starts_with("https://") || t.source().starts_with("http://");
                    if !scheme_ok && !t.source().starts_with("{{") {
                        self.err(
                            codes::FIELD_VALUE,
                            n.pos,
                            "an http step's `url` starts with https:// or http://",
                        );
                    }
                    Some(t)
                });
                let mut headers = Vec::new();
                if let Some(n) = f.get("headers") {
                    match &n.kind {
                        NodeKind::Map(entries) => {
                            for (k, v) in entries {
                                if let Some(t) =
                                    self.template(v, &format!("headers.{}", k.name), item, sites)
                                {
                                    headers.push((k.name.clone(), t));
                                }
                            }
                        }
                        _ => self.err(
                            codes::FIELD_TYPE,
                            n.pos,
                            format!("`headers` must be a mapping, not {}", n.describe()),
                        ),
                    }
                }
                let body = f
                    .get("body")
                    .map(|n| self.templated(n, "body", item, sites));
                Action::Http {
                    method,
                    url: url?,
                    headers,
                    body,
                }
            }
            StepType::Emit => {
                let event = self
                    .required(f, "event", what)
                    .and_then(|n| self.string(n, "`event`"));
                let payload = f
                    .get("payload")
                    .map(|n| self.templated(n, "payload", item, sites));
                Action::Emit {
                    event: event?,
                    payload,
                }
            }
            StepType::Approval => Action::Approval {
                message: f
                    .get("message")
                    .and_then(|n| self.template(n, "message", item, sites)),
            },
            StepType::Sleep => Action::Sleep {
                seconds: self
                    .required(f, "seconds", what)
                    .and_then(|n| self.uint(n, "`seconds`", 0, MAX_STEP_SECONDS))
                    .unwrap_or(0),
            },
            StepType::Shell => {
                let n = self.required(f, "command", what)?;
                let src = self.string(n, "`command`")?;
                match ShellCommand::parse_in(&src, item) {
                    Ok(command) => {
                        sites.push(Site {
                            pos: n.pos,
                            field: "command".into(),
                            refs: command.template().refs().cloned().collect(),
                        });
                        Action::Shell { command }
                    }
                    Err(e) => {
                        self.expr_error(n.pos, "command", e);
                        return None;
                    }
                }
            }
            StepType::Workflow => {
                let workflow = self
                    .required(f, "workflow", what)
                    .and_then(|n| self.string(n, "`workflow`"));
                let inputs = f
                    .get("inputs")
                    .map(|n| self.templated(n, "inputs", item, sites));
                Action::Workflow {
                    workflow: workflow?,
                    inputs,
                }
            }
            StepType::Foreach => {
                if item {
                    self.err(
                        codes::FIELD_VALUE,
                        type_pos,
                        "a foreach cannot run a foreach: use a sub-workflow",
                    );
                    return None;
                }
                let max_items = match f.get("max_items") {
                    None => DEFAULT_FOREACH_ITEMS,
                    Some(n) => match &n.kind {
                        NodeKind::Scalar(Scalar::Int(i))
                            if *i >= 1 && (*i as u64) <= MAX_FOREACH_ITEMS as u64 =>
                        {
                            *i as usize
                        }
                        NodeKind::Scalar(Scalar::Int(i)) => {
                            self.err(
                                codes::FOREACH_CAP,
                                n.pos,
                                format!("`max_items` is {i}; it must be between 1 and the cap of {MAX_FOREACH_ITEMS} items"),
                            );
                            return None;
                        }
                        _ => {
                            self.err(
                                codes::FIELD_TYPE,
                                n.pos,
                                format!("`max_items` must be a whole number, not {}", n.describe()),
                            );
                            return None;
                        }
                    },
                };
                let parallelism = match f.get("parallelism") {
                    None => 1,
                    Some(n) => self
                        .uint(n, "`parallelism`", 1, MAX_FOREACH_PARALLELISM.into())
                        .unwrap_or(1) as u32,
                };
                let items = self.required(f, "items", what).and_then(|n| match &n.kind {
                    NodeKind::Seq(list) => {
                        if list.len() > max_items {
                            self.err(
                                codes::FOREACH_CAP,
                                n.pos,
                                format!(
                                    "the foreach has {} items, over its cap of {max_items} items",
                                    list.len()
                                ),
                            );
                        }
                        Some(Items::List(list.iter().map(Node::to_json).collect()))
                    }
                    _ => self.template(n, "items", false, sites).map(Items::Template),
                });
                let body = self.required(f, "do", what)?;
                let NodeKind::Map(entries) = &body.kind else {
                    self.err(
                        codes::FIELD_TYPE,
                        body.pos,
                        format!("`do` must be a mapping, not {}", body.describe()),
                    );
                    return None;
                };
                let body_type_node = entries
                    .iter()
                    .find(|(k, _)| k.name == "type")
                    .map(|(_, v)| v);
                let Some(body_type_node) = body_type_node else {
                    self.err(codes::FIELD_MISSING, body.pos, "`do` needs a `type` field");
                    return None;
                };
                let body_ty = self.step_type(body_type_node)?;
                let allowed: Vec<&str> = std::iter::once("type")
                    .chain(action_fields(body_ty).iter().copied())
                    .collect();
                let bf = self.fields(body, "`do`", &allowed)?;
                let action = self.action(
                    body_ty,
                    &bf,
                    "`do`",
                    true,
                    sites,
                    profile,
                    body_type_node.pos,
                )?;
                Action::Foreach {
                    items: items?,
                    action: Box::new(action),
                    parallelism,
                    max_items,
                }
            }
        })
    }
}

impl Checker {
    /// Duplicate ids, unknown dependencies, cycles, and templates that
    /// read steps which do not run before them.
    fn graph(&mut self, wf: &Workflow, output_sites: &[Site]) {
        let mut first: HashMap<&str, &Step> = HashMap::new();
        for step in &wf.steps {
            if let Some(prev) = first.get(step.id.as_str()) {
                self.err(
                    codes::STEP_DUPLICATE_ID,
                    step.pos,
                    format!(
                        "the id `{}` is already used by the step at line {}",
                        step.id, prev.pos.line
                    ),
                );
            } else {
                first.insert(&step.id, step);
            }
        }
        let ids: Vec<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
        for step in &wf.steps {
            for (dep, pos) in step.depends_on.iter().zip(&step.dependency_pos) {
                if !first.contains_key(dep.as_str()) {
                    let mut d = Diagnostic::new(
                        codes::STEP_UNKNOWN_DEPENDENCY,
                        *pos,
                        format!(
                            "the step `{}` depends on `{dep}`, which is not a step",
                            step.id
                        ),
                    );
                    if let Some(near) = did_you_mean(dep, ids.iter().copied()) {
                        d = d.with_help(format!("did you mean `{near}`?"));
                    }
                    self.diags.push(d);
                }
            }
        }
        for cycle in cycles(wf) {
            let at = wf.step(&cycle[0]).map_or(Pos::new(1, 1), |s| s.pos);
            let message = if cycle.len() == 1 {
                format!("the step `{}` depends on itself", cycle[0])
            } else {
                let mut names: Vec<String> = cycle.iter().map(|c| format!("`{c}`")).collect();
                names.push(format!("`{}`", cycle[0]));
                format!(
                    "the steps form a cycle: {} (each depends on the next)",
                    names.join(" → ")
                )
            };
            self.err(codes::STEP_CYCLE, at, message);
        }
        for step in &wf.steps {
            let before = wf.upstream_of(&step.id);
            for site in &step.sites {
                for r in &site.refs {
                    let Ref::Step(Some(id)) = r else { continue };
                    if !first.contains_key(id.as_str()) {
                        self.unknown_step(site, id, &ids);
                    } else if id == &step.id {
                        self.err(
                            codes::TEMPLATE_NOT_UPSTREAM,
                            site.pos,
                            format!("`{}` of the step `{id}` reads its own result", site.field),
                        );
                    } else if !before.contains(id.as_str()) {
                        self.diags.push(
                            Diagnostic::new(
                                codes::TEMPLATE_NOT_UPSTREAM,
                                site.pos,
                                format!(
                                    "`{}` of the step `{}` reads `steps.{id}`, which does not run before it",
                                    site.field, step.id
                                ),
                            )
                            .with_help(format!("add `{id}` to its depends_on")),
                        );
                    }
                }
            }
        }
        for site in output_sites {
            for r in &site.refs {
                if let Ref::Step(Some(id)) = r
                    && !first.contains_key(id.as_str())
                {
                    self.unknown_step(site, id, &ids);
                }
            }
        }
    }

    fn unknown_step(&mut self, site: &Site, id: &str, ids: &[&str]) {
        let mut d = Diagnostic::new(
            codes::TEMPLATE_UNKNOWN_STEP,
            site.pos,
            format!("`{}` reads `steps.{id}`, which is not a step", site.field),
        );
        if let Some(near) = did_you_mean(id, ids.iter().copied()) {
            d = d.with_help(format!("did you mean `{near}`?"));
        }
        self.diags.push(d);
    }

    /// Inputs, env variables and secrets read but not declared.
    fn names_read(&mut self, wf: &Workflow, output_sites: &[Site]) {
        let sites = wf
            .steps
            .iter()
            .flat_map(|s| s.sites.iter())
            .chain(output_sites);
        for site in sites {
            for r in &site.refs {
                match r {
                    Ref::Input(Some(name)) if wf.input(name).is_none() => {
                        let mut d = Diagnostic::new(
                            codes::TEMPLATE_UNKNOWN_INPUT,
                            site.pos,
                            format!(
                                "`{}` reads `inputs.{name}`, which the workflow does not declare",
                                site.field
                            ),
                        );
                        if let Some(near) =
                            did_you_mean(name, wf.inputs.iter().map(|i| i.name.as_str()))
                        {
                            d = d.with_help(format!("did you mean `{near}`?"));
                        }
                        self.diags.push(d);
                    }
                    Ref::Env(Some(name)) if !wf.env.contains(name) => self.diags.push(
                        Diagnostic::new(
                            codes::TEMPLATE_UNDECLARED,
                            site.pos,
                            format!(
                                "`{}` reads `env.{name}`, which the workflow does not declare",
                                site.field
                            ),
                        )
                        .with_help("list it under the top-level `env:`".to_string()),
                    ),
                    Ref::Secret(Some(name)) if !wf.secrets.contains(name) => self.diags.push(
                        Diagnostic::new(
                            codes::TEMPLATE_UNDECLARED,
                            site.pos,
                            format!(
                                "`{}` reads `secrets.{name}`, which the workflow does not declare",
                                site.field
                            ),
                        )
                        .with_help("list it under the top-level `secrets:`".to_string()),
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// The dependency cycles, each as the steps along it, starting from the
/// one first in the file; every step is in at most one reported cycle.
pub(crate) fn cycles(wf: &Workflow) -> Vec<Vec<String>> {
    let known: BTreeSet<&str> = wf.steps.iter().map(|s| s.id.as_str()).collect();
    let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in &wf.steps {
        deps.entry(s.id.as_str()).or_default().extend(
            s.depends_on
                .iter()
                .map(String::as_str)
                .filter(|d| known.contains(d)),
        );
    }
    let order: Vec<&str> = {
        let mut seen = BTreeSet::new();
        wf.steps
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| seen.insert(*id))
            .collect()
    };
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    loop {
        // Settle every step whose dependencies are all settled.
        loop {
            let before = done.len();
            for id in &order {
                if !done.contains(id) && deps[id].iter().all(|d| done.contains(d)) {
                    done.insert(id);
                }
            }
            if done.len() == before {
                break;
            }
        }
        let Some(start) = order.iter().find(|id| !done.contains(*id)) else {
            break;
        };
        // Every unsettled step has an unsettled dependency: walking them
        // must come back to a step already on the path.
        let mut path: Vec<&str> = vec![start];
        let cycle = loop {
            let last = path[path.len() - 1];
            let Some(next) = deps[last].iter().find(|d| !done.contains(*d)) else {
                break Vec::new();
            };
            if let Some(at) = path.iter().position(|p| p == next) {
                break path[at..].to_vec();
            }
            path.push(next);
        };
        if cycle.is_empty() {
            done.insert(start);
            continue;
        }
        // Report it from the step that comes first in the file.
        let first = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, id)| order.iter().position(|o| o == *id))
            .map_or(0, |(i, _)| i);
        let rotated: Vec<String> = cycle[first..]
            .iter()
            .chain(&cycle[..first])
            .map(|s| s.to_string())
            .collect();
        for id in &cycle {
            done.insert(id);
        }
        found.push(rotated);
    }
    found
}

/// Follows `workflow` steps through `resolve`: unknown sub-workflows,
/// cycles (`a → b → a`) and nesting deeper than
/// [`MAX_SUBWORKFLOW_DEPTH`], each reported at the top workflow's step
/// the chain starts from.
fn check_subworkflows(wf: &Workflow, resolve: Resolver<'_>, diags: &mut Vec<Diagnostic>) {
    fn called(wf: &Workflow) -> Vec<(&str, Pos, Option<&Templated>)> {
        wf.steps
            .iter()
            .filter_map(|s| {
                let action = match &s.action {
                    Action::Foreach { action, .. } => action,
                    a => a,
                };
                match action {
                    Action::Workflow { workflow, inputs } => {
                        Some((workflow.as_str(), s.pos, inputs.as_ref()))
                    }
                    _ => None,
                }
            })
            .collect()
    }
    /// The inputs a step hands a sub-workflow, against its declarations
    /// (when they are a literal mapping; a single template is checked
    /// when it runs).
    fn check_inputs_given(
        name: &str,
        at: Pos,
        given: Option<&Templated>,
        sub: &Workflow,
        diags: &mut Vec<Diagnostic>,
    ) {
        let keys: Vec<&str> = match given {
            None => Vec::new(),
            Some(Templated::Map(entries)) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            Some(_) => return,
        };
        for key in &keys {
            if sub.input(key).is_none() {
                let mut d = Diagnostic::new(
                    codes::FIELD_UNKNOWN,
                    at,
                    format!("the workflow `{name}` has no input `{key}`"),
                );
                if let Some(near) = did_you_mean(key, sub.inputs.iter().map(|i| i.name.as_str())) {
                    d = d.with_help(format!("did you mean `{near}`?"));
                }
                diags.push(d);
            }
        }
        for input in &sub.inputs {
            if input.required && input.default.is_none() && !keys.contains(&input.name.as_str()) {
                diags.push(Diagnostic::new(
                    codes::FIELD_MISSING,
                    at,
                    format!("the workflow `{name}` needs the input `{}`", input.name),
                ));
            }
        }
    }
    fn walk(
        chain: &mut Vec<String>,
        wf: &Workflow,
        at: Option<Pos>,
        resolve: Resolver<'_>,
        diags: &mut Vec<Diagnostic>,
    ) {
        for (name, pos, given) in called(wf) {
            let direct = at.is_none();
            let at = at.unwrap_or(pos);
            let show = |chain: &[String], last: &str| {
                let mut names: Vec<String> = chain.iter().map(|c| format!("`{c}`")).collect();
                names.push(format!("`{last}`"));
                names.join(" → ")
            };
            if chain.iter().any(|c| c == name) {
                diags.push(Diagnostic::new(
                    codes::WORKFLOW_CYCLE,
                    at,
                    format!("the sub-workflows form a cycle: {}", show(chain, name)),
                ));
                continue;
            }
            if chain.len() > MAX_SUBWORKFLOW_DEPTH {
                diags.push(Diagnostic::new(
                    codes::WORKFLOW_DEPTH,
                    at,
                    format!(
                        "sub-workflows nest deeper than {MAX_SUBWORKFLOW_DEPTH} levels: {}",
                        show(chain, name)
                    ),
                ));
                continue;
            }
            match resolve(name) {
                None => diags.push(Diagnostic::new(
                    codes::WORKFLOW_UNKNOWN,
                    at,
                    if chain.len() == 1 {
                        format!("there is no workflow `{name}`")
                    } else {
                        format!(
                            "there is no workflow `{name}` (called by {})",
                            show(&chain[..chain.len() - 1], &chain[chain.len() - 1])
                        )
                    },
                )),
                Some(sub) => {
                    if direct {
                        check_inputs_given(name, at, given, &sub, diags);
                    }
                    chain.push(name.to_owned());
                    walk(chain, &sub, Some(at), resolve, diags);
                    chain.pop();
                }
            }
        }
    }
    let mut chain = vec![wf.name.clone()];
    walk(&mut chain, wf, None, resolve, diags);
}
