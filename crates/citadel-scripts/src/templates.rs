//! Built-in templates new scripts start from.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    pub language: &'static str,
    /// The capability grant the template needs, as JSON.
    pub capabilities: &'static str,
    pub source: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "event-handler",
        description: "React to an event (e.g. order.paid) and emit a follow-up event.",
        language: "ts",
        capabilities: r#"{"events": {"emit": ["order.*"]}}"#,
        source: include_str!("../templates/event-handler.ts"),
    },
    Template {
        name: "scheduled-report",
        description: "Build a periodic summary from the key-value store.",
        language: "ts",
        capabilities: r#"{"kv": true}"#,
        source: include_str!("../templates/scheduled-report.ts"),
    },
    Template {
        name: "webhook-transform",
        description: "Reshape an incoming webhook payload before it is forwarded.",
        language: "ts",
        capabilities: "{}",
        source: include_str!("../templates/webhook-transform.ts"),
    },
    Template {
        name: "data-query",
        description: "Run a parameterised read-only query against a data source.",
        language: "ts",
        capabilities: r#"{"db": ["reporting"]}"#,
        source: include_str!("../templates/data-query.ts"),
    },
];

pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}
