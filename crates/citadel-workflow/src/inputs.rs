//! Checking a run's JSON input against the workflow's typed inputs:
//! defaults applied, unknown names refused, and every violation reported
//! at once, each named by its input.

use serde_json::{Map, Value};

use crate::model::{InputSpec, InputType, Workflow};

/// Codes of input violations.
pub mod input_codes {
    pub const NOT_OBJECT: &str = "input.not_object";
    pub const MISSING: &str = "input.missing";
    pub const UNKNOWN: &str = "input.unknown";
    pub const TYPE: &str = "input.type";
    pub const PATTERN: &str = "input.pattern";
    pub const ENUM: &str = "input.enum";
    pub const MIN: &str = "input.min";
    pub const MAX: &str = "input.max";
    pub const MIN_LENGTH: &str = "input.min_length";
    pub const MAX_LENGTH: &str = "input.max_length";
}

/// One input that does not satisfy its declaration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("input `{input}`: {message}")]
pub struct InputError {
    /// The input's name (empty when the input as a whole is not an object).
    pub input: String,
    pub code: &'static str,
    pub message: String,
}

/// Why a value does not satisfy one input's type and rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub code: &'static str,
    pub message: String,
}

fn violation(code: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        code,
        message: message.into(),
    }
}

fn type_matches(ty: InputType, value: &Value) -> bool {
    match ty {
        InputType::String => value.is_string(),
        InputType::Number => value.is_number(),
        InputType::Integer => value.is_i64() || value.is_u64(),
        InputType::Boolean => value.is_boolean(),
        InputType::Object => value.is_object(),
        InputType::Array => value.is_array(),
    }
}

/// Checks one value against one input's type and `validation`.
pub fn check_value(spec: &InputSpec, value: &Value) -> Result<(), Violation> {
    use input_codes as c;
    if !type_matches(spec.ty, value) {
        return Err(violation(
            c::TYPE,
            format!("expected {}, got {}", spec.ty.name(), json_kind(value)),
        ));
    }
    let v = &spec.validation;
    if let (Some(re), Some(s)) = (&v.pattern, value.as_str())
        && !re.is_match(s)
    {
        return Err(violation(
            c::PATTERN,
            format!(
                "{} does not match the pattern `{}`",
                short(value),
                re.as_str()
            ),
        ));
    }
    if let Some(allowed) = &v.one_of
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        return Err(violation(
            c::ENUM,
            format!("{} is not one of {}", short(value), list.join(", ")),
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = v.min
            && n < min
        {
            return Err(violation(c::MIN, format!("{n} is below the minimum {min}")));
        }
        if let Some(max) = v.max
            && n > max
        {
            return Err(violation(c::MAX, format!("{n} is above the maximum {max}")));
        }
    }
    let len = match value {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        _ => None,
    };
    if let Some(len) = len {
        if let Some(min) = v.min_length
            && len < min
        {
            return Err(violation(
                c::MIN_LENGTH,
                format!("the length {len} is below the minimum {min}"),
            ));
        }
        if let Some(max) = v.max_length
            && len > max
        {
            return Err(violation(
                c::MAX_LENGTH,
                format!("the length {len} is above the maximum {max}"),
            ));
        }
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value for a message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Checks a run's input (a JSON object, or null for none) against the
/// workflow's inputs: returns the inputs with defaults applied, or every
/// violation.
pub fn check_inputs(
    workflow: &Workflow,
    input: &Value,
) -> Result<Map<String, Value>, Vec<InputError>> {
    let empty = Map::new();
    let given = match input {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => {
            return Err(vec![InputError {
                input: String::new(),
                code: input_codes::NOT_OBJECT,
                message: format!("the input must be an object, got {}", json_kind(other)),
            }]);
        }
    };
    let mut errors = Vec::new();
    let mut out = Map::new();
    for name in given.keys() {
        if workflow.input(name).is_none() {
            let mut message = "the workflow has no such input".to_owned();
            if let Some(near) =
                crate::validate::did_you_mean(name, workflow.inputs.iter().map(|i| i.name.as_str()))
            {
                message.push_str(&format!(" (did you mean `{near}`?)"));
            }
            errors.push(InputError {
                input: name.clone(),
                code: input_codes::UNKNOWN,
                message,
            });
        }
    }
    for spec in &workflow.inputs {
        let value = match given.get(&spec.name) {
            Some(Value::Null) | None => match &spec.default {
                Some(default) => default.clone(),
                None if spec.required => {
                    errors.push(InputError {
                        input: spec.name.clone(),
                        code: input_codes::MISSING,
                        message: format!("a {} is required", spec.ty.name()),
                    });
                    continue;
                }
                None => continue,
            },
            Some(value) => value.clone(),
        };
        match check_value(spec, &value) {
            Ok(()) => {
                out.insert(spec.name.clone(), value);
            }
            Err(v) => errors.push(InputError {
                input: spec.name.clone(),
                code: v.code,
                message: v.message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
