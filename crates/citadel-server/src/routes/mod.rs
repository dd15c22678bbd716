//! The routes, one module per resource. Each handler extracts the request,
//! calls one use case of `citadel_app`, and maps the answer to its JSON
//! view; each is annotated for OpenAPI, so `/v1/openapi.json` is generated
//! from the routes that serve.

mod audit;
mod datasources;
mod embed;
mod events;
mod jobs;
mod killswitch;
mod kv;
pub(crate) mod plugins;
mod roles;
mod runs;
mod schedules;
mod scripts;
mod secrets;
mod system;
mod tenants;
mod tokens;
mod users;
pub(crate) mod webhooks;
mod workflows;

use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "Citadel",
    description = "Runs tenants' code safely, fast, and on the record."
))]
struct ApiDoc;

pub(crate) fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .merge(system::routes())
        .merge(tenants::routes())
        .merge(tokens::routes())
        .merge(roles::routes())
        .merge(audit::routes())
        .merge(users::routes())
        .merge(embed::routes())
        .merge(scripts::routes())
        .merge(runs::routes())
        .merge(killswitch::routes())
        .merge(jobs::routes())
        .merge(events::routes())
        .merge(schedules::routes())
        .merge(secrets::routes())
        .merge(kv::routes())
        .merge(datasources::routes())
        .merge(workflows::routes())
        .merge(plugins::routes())
        .merge(webhooks::routes())
        .merge(webhooks::inbound_routes())
}

/// JSON `null`.
pub(crate) fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("`null` is JSON")
}

/// Stored JSON text passed through as it is (`null` if it is not JSON).
pub(crate) fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| null())
}

/// Stored JSON text as a value (`null` if it is not JSON).
pub(crate) fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A body's optional JSON value as text (`null` when absent).
pub(crate) fn json_text(value: Option<Box<RawValue>>) -> String {
    value.map_or_else(|| "null".to_owned(), |r| r.get().to_owned())
}
