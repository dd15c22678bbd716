//! The plugin's configuration schema, and a configuration checked against
//! it.
//!
//! The schema is JSON Schema, of which a documented subset is enforced
//! here: `type` (`object`, `array`, `string`, `number`, `integer`,
//! `boolean`, `null`, or a list of them), `properties`, `required`,
//! `additionalProperties` (`false` or a schema), `items`, `enum`, `const`,
//! `minLength`/`maxLength`, `minimum`/`maximum`, `minItems`/`maxItems`;
//! annotations (`title`, `description`, `default`, `examples`, `$schema`,
//! `format`, …) are accepted and ignored. A full validator would be a large
//! dependency for a document a tenant fills in by hand; the subset covers
//! what such forms use, and a keyword outside it is never silently
//! mistaken for a constraint that holds.

use serde_json::Value;

/// The largest schema accepted, serialised.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// The deepest a schema may nest.
const MAX_SCHEMA_DEPTH: usize = 16;

const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// Checks a manifest's `config`: an object schema (`"type": "object"`) of
/// bounded size whose keywords have the right shapes.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    let size = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "the schema is {size} bytes, more than {MAX_SCHEMA_BYTES}"
        ));
    }
    let Value::Object(map) = schema else {
        return Err("must be a JSON schema object".into());
    };
    if map.get("type").and_then(Value::as_str) != Some("object") {
        return Err("must be an object schema (`\"type\": \"object\"`)".into());
    }
    check_node(schema, "config", 0)
}

fn check_node(schema: &Value, at: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!("{at}: nests deeper than {MAX_SCHEMA_DEPTH} levels"));
    }
    let Value::Object(map) = schema else {
        return Err(format!("{at}: a schema must be an object"));
    };
    if let Some(t) = map.get("type") {
        let ok = match t {
            Value::String(s) => TYPES.contains(&s.as_str()),
            Value::Array(list) => list
                .iter()
                .all(|v| v.as_str().is_some_and(|s| TYPES.contains(&s))),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{at}.type: must be one of {} (or a list of them)",
                TYPES.join(", ")
            ));
        }
    }
    if let Some(props) = map.get("properties") {
        let Value::Object(props) = props else {
            return Err(format!("{at}.properties: must be an object"));
        };
        for (name, sub) in props {
            check_node(sub, &format!("{at}.properties.{name}"), depth + 1)?;
        }
    }
    if let Some(required) = map.get("required") {
        let names: Option<Vec<&str>> = required
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect());
        let Some(names) = names else {
            return Err(format!("{at}.required: must be a list of property names"));
        };
        for name in names {
            if map.get("properties").and_then(|p| p.get(name)).is_none() {
                return Err(format!(
                    "{at}.required: `{name}` is not one of the properties"
                ));
            }
        }
    }
    match map.get("additionalProperties") {
        None | Some(Value::Bool(_)) => {}
        Some(sub) => check_node(sub, &format!("{at}.additionalProperties"), depth + 1)?,
    }
    if let Some(items) = map.get("items") {
        check_node(items, &format!("{at}.items"), depth + 1)?;
    }
    if map.get("enum").is_some_and(|e| !e.is_array()) {
        return Err(format!("{at}.enum: must be a list"));
    }
    for key in [
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
    ] {
        if map.get(key).is_some_and(|v| !v.is_number()) {
            return Err(format!("{at}.{key}: must be a number"));
        }
    }
    Ok(())
}

/// Checks a configuration value against a schema that passed
/// [`check_schema`]; every violation, as `path: message`.
pub fn validate_config(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, value, "config", &mut out);
    out
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let Value::Object(s) = schema else {
        return;
    };
    if let Some(t) = s.get("type") {
        let actual = type_of(value);
        let allowed: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = allowed
            .iter()
            .any(|a| *a == actual || (*a == "number" && actual == "integer"));
        if !fits {
            out.push(format!(
                "{at}: must be {}, not {actual}",
                allowed.join(" or ")
            ));
            return;
        }
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        out.push(format!(
            "{at}: must be one of {}",
            Value::Array(options.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        out.push(format!("{at}: must be {c}"));
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    match value {
        Value::String(text) => {
            let n = text.chars().count() as f64;
            if num("minLength").is_some_and(|m| n < m) {
                out.push(format!("{at}: shorter than {} characters", s["minLength"]));
            }
            if num("maxLength").is_some_and(|m| n > m) {
                out.push(format!("{at}: longer than {} characters", s["maxLength"]));
            }
        }
        Value::Number(x) => {
            let x = x.as_f64().unwrap_or(0.0);
            if num("minimum").is_some_and(|m| x < m) {
                out.push(format!("{at}: less than {}", s["minimum"]));
            }
            if num("maximum").is_some_and(|m| x > m) {
                out.push(format!("{at}: more than {}", s["maximum"]));
            }
        }
        Value::Array(items) => {
            let n = items.len() as f64;
            if num("minItems").is_some_and(|m| n < m) {
                out.push(format!("{at}: fewer than {} items", s["minItems"]));
            }
            if num("maxItems").is_some_and(|m| n > m) {
                out.push(format!("{at}: more than {} items", s["maxItems"]));
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{at}[{i}]"), out);
                }
            }
        }
        Value::Object(fields) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(required)) = s.get("required") {
                for name in required.iter().filter_map(Value::as_str) {
                    if !fields.contains_key(name) {
                        out.push(format!("{at}.{name}: is required"));
                    }
                }
            }
            for (name, v) in fields {
                let path = format!("{at}.{name}");
                match props.and_then(|p| p.get(name)) {
                    Some(sub) => walk(sub, v, &path, out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            out.push(format!("{path}: is not a known setting"));
                        }
                        Some(sub @ Value::Object(_)) => walk(sub, v, &path, out),
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_and_values() {
        let schema = json!({
            "type": "object",
            "properties": {
                "channel": {"type": "string", "minLength": 2},
                "threshold": {"type": "integer", "minimum": 0, "maximum": 100},
                "mode": {"enum": ["daily", "weekly"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}
            },
            "required": ["channel"],
            "additionalProperties": false
        });
        assert_eq!(check_schema(&schema), Ok(()));
        assert!(validate_config(&schema, &json!({"channel": "#ops", "threshold": 5})).is_empty());
        assert_eq!(
            validate_config(
                &schema,
                &json!({"threshold": 500, "mode": "hourly", "tags": ["a", 1, "c"], "x": 1})
            ),
            vec![
                "config.channel: is required",
                "config.mode: must be one of [\"daily\",\"weekly\"]",
                "config.tags: more than 2 items",
                "config.tags[1]: must be string, not integer",
                "config.threshold: more than 100",
                "config.x: is not a known setting",
            ]
        );
        for bad in [
            json!([]),
            json!({"type": "string"}),
            json!({"type": "object", "properties": []}),
            json!({"type": "object", "required": ["missing"]}),
            json!({"type": "object", "properties": {"a": {"type": "text"}}}),
            json!({"type": "object", "properties": {"a": {"maxLength": "3"}}}),
        ] {
            assert!(check_schema(&bad).is_err(), "{bad}");
        }
        let big = json!({"type": "object", "description": "x".repeat(MAX_SCHEMA_BYTES)});
        assert!(check_schema(&big).unwrap_err().contains("bytes"));
    }
}
