//! The parts of the OpenAPI document no single handler states: the bearer
//! security scheme, the error answers (declared once as components and
//! attached to every operation that can give them, by what the operation
//! takes), a description on every response, and the enums of the wire's
//! statuses and states. Rules rather than per-handler lists, so a new
//! route cannot forget the answers every route can give.

use citadel_domain as domain;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, ContentBuilder, Header, OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The name of the security scheme in `components.securitySchemes`.
pub(crate) const BEARER: &str = "bearer";

/// A string schema listing `values`: the wire's enums are generated from
/// the domain's, so the document cannot list a value the server does not
/// use, or miss one.
/// `doc` is the doc comment's lines, joined as derived schemas join them.
fn strings(doc: &[&str], values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    let description: Vec<&str> = doc.iter().map(|l| l.trim()).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description.join("\n")))
        .enum_values(Some(values))
        .into()
}

/// One schema component per closed set of names the API uses, each listing
/// the domain enum's strings.
macro_rules! domain_enum_schemas {
    ($($(#[doc = $doc:literal])+ $name:ident => $values:expr;)+) => {$(
        $(#[doc = $doc])+
        pub(crate) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                strings(&[$($doc),+], $values)
            }
        }

        impl ToSchema for $name {}
    )+};
}

domain_enum_schemas! {
    /// A run's status (`GET /v1/runs?status=` filters by it).
    RunStatus => domain::RunStatus::ALL.map(domain::RunStatus::as_str);
    /// A queue job's state (`dead`: out of attempts, in the dead-letter queue).
    JobState => domain::JobState::ALL.map(domain::JobState::as_str);
    /// A delivery's progress: its run's status once the run is recorded, its
    /// queue job's state before.
    DeliveryStatus => delivery_statuses();
    /// A version's review state.
    ReviewState => domain::VersionState::ALL.map(domain::VersionState::as_str);
    /// A script's language.
    Language => domain::Language::ALL.map(domain::Language::as_str);
    /// What started a run (`GET /v1/runs?trigger=` filters by it).
    Trigger => domain::Trigger::ALL.map(domain::Trigger::as_str);
    /// A queue priority.
    Priority => domain::Priority::ALL.map(domain::Priority::as_str);
    /// Which part of a semantic version a save bumps.
    Bump => ["patch", "minor", "major"];
    /// What a schedule does about occurrences missed while no node ran it.
    Missed => domain::Missed::ALL.map(domain::Missed::as_str);
    /// A node's state.
    NodeState => domain::NodeState::ALL.map(domain::NodeState::as_str);
    /// A workflow step's state: `running` or `waiting` (an approval) until
    /// it has a result.
    StepStatus => domain::StepStatus::ALL.map(domain::StepStatus::as_str);
    /// A workflow step's type.
    StepType => citadel_app::workflows::StepType::ALL.map(citadel_app::workflows::StepType::name);
    /// Where an outgoing webhook delivery stands.
    DeliveryState => domain::DeliveryState::ALL.map(domain::DeliveryState::as_str);
}

/// Every run status, then the job states that are not also run statuses.
fn delivery_statuses() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = domain::RunStatus::ALL.map(|s| s.as_str()).to_vec();
    for s in domain::JobState::ALL.map(|s| s.as_str()) {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    all
}

/// The error answers: (status, component name, description, whether it
/// carries `Retry-After`).
const ERRORS: [(&str, &str, &str, bool); 15] = [
    (
        "400",
        "BadRequest",
        "The request is invalid (`invalid`): a malformed body or parameter, named in the message and `details.field`.",
        false,
    ),
    (
        "401",
        "Unauthorized",
        "No valid bearer token (`unauthorized`): missing, unknown, expired or revoked.",
        false,
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the permission (`forbidden`); `details.permission` names it.",
        false,
    ),
    (
        "404",
        "NotFound",
        "No such resource in the caller's tenant (`not_found`).",
        false,
    ),
    (
        "408",
        "RequestTimeout",
        "The request or its body took too long (`timeout`).",
        false,
    ),
    (
        "409",
        "Conflict",
        "The request conflicts with the current state (`conflict`, `no_live_version`, `already_finished`, `invalid_state`, …).",
        false,
    ),
    (
        "412",
        "PreconditionFailed",
        "A compare-and-set found the entry at another version (`version_mismatch`); `details.version` is the current one.",
        false,
    ),
    (
        "413",
        "PayloadTooLarge",
        "The request body is larger than the server accepts (`too_large`).",
        false,
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).",
        false,
    ),
    (
        "422",
        "UnprocessableEntity",
        "The script does not pass analysis (`rejected`); the findings are in `details.diagnostics`.",
        false,
    ),
    (
        "423",
        "Locked",
        "A kill switch stops runs of this script (`killed`).",
        false,
    ),
    (
        "429",
        "TooManyRequests",
        "Too many requests (`rate_limited`, `concurrency_limit`, `too_many_streams`); retry after `Retry-After` seconds.",
        true,
    ),
    (
        "500",
        "InternalError",
        "An internal error (`internal`); the server's log has the cause.",
        false,
    ),
    (
        "503",
        "Unavailable",
        "The database or the sandboxes are unavailable (`unavailable`); retry after `Retry-After` seconds.",
        true,
    ),
    (
        "507",
        "InsufficientStorage",
        "The tenant's key-value store is full (`quota_exceeded`).",
        false,
    ),
];

fn error_component(status: &str) -> Option<&'static str> {
    ERRORS
        .iter()
        .find(|(s, ..)| *s == status)
        .map(|(_, name, ..)| *name)
}

/// Completes the generated document; see the module's comment.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::new);
    components.security_schemes.insert(
        BEARER.into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("citadel token")
                .build(),
        )),
    );
    for (_, name, description, retry) in ERRORS {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if retry {
            let seconds = utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::Integer)
                .minimum(Some(1))
                .build();
            response = response.header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::from(Header::new(seconds))
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            );
        }
        components
            .responses
            .insert(name.into(), RefOr::T(response.build()));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            complete(path, op);
        }
    }
}

/// Routes that need no token.
fn is_public(path: &str) -> bool {
    !path.starts_with("/v1/") || path == "/v1/login" || path == "/v1/embed/exchange"
}

/// Routes any valid token may call (no permission is checked).
fn checks_no_permission(path: &str) -> bool {
    matches!(path, "/v1/templates" | "/v1/me" | "/v1/logout")
}

fn complete(path: &str, op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or(&[]);
    let has = |place: ParameterIn| {
        params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let (path_params, query_params) = (has(ParameterIn::Path), has(ParameterIn::Query));
    let body = op.request_body.is_some();
    let mut errors: Vec<&str> = Vec::new();
    if !is_public(path) {
        op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        errors.extend(["401", "429", "503"]);
        if !checks_no_permission(path) {
            errors.push("403");
        }
    } else if path == "/v1/login" || path == "/v1/embed/exchange" {
        // Failed logins are counted per client, like bad tokens.
        errors.extend(["401", "429", "503"]);
    }
    if path_params {
        // A malformed name is 400; a missing resource 404.
        errors.extend(["400", "404"]);
    }
    if query_params {
        errors.push("400");
    }
    if body {
        errors.extend(["400", "413", "415"]);
    }
    if path.starts_with("/v1/") {
        errors.extend(["408", "500"]);
    }
    let responses = &mut op.responses.responses;
    // Errors a handler declared itself point at the shared components too.
    for (status, response) in responses.iter_mut() {
        if let Some(name) = error_component(status) {
            *response = RefOr::Ref(Ref::from_response_name(name));
        }
    }
    for status in errors {
        if let Some(name) = error_component(status) {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(r) = response
            && r.description.is_empty()
        {
            r.description = describe(status).to_owned();
        }
    }
}

/// A success answer's description when its handler gave none.
fn describe(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// The schema enums list what the server accepts and answers.
    #[test]
    fn the_enums_match_the_values_the_server_uses() {
        assert_eq!(values::<RunStatus>(), citadel_engine::RUN_STATUSES);
        assert_eq!(
            values::<JobState>(),
            [
                "queued",
                "running",
                "succeeded",
                "failed",
                "cancelled",
                "dead"
            ]
        );
        assert_eq!(
            values::<DeliveryStatus>(),
            [
                "queued",
                "running",
                "succeeded",
                "failed",
                "timed_out",
                "cancelled",
                "killed",
                "dead"
            ]
        );
        assert_eq!(values::<Missed>(), ["skip", "catch_up"]);
        assert_eq!(
            values::<Bump>(),
            [
                citadel_scripts::Bump::Patch,
                citadel_scripts::Bump::Minor,
                citadel_scripts::Bump::Major
            ]
            .map(|b| serde_json::to_value(b)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned())
        );
        let schema = serde_json::to_value(ReviewState::schema()).unwrap();
        assert_eq!(schema["description"], "A version's review state.");
        assert_eq!(schema["type"], "string");
    }
}
