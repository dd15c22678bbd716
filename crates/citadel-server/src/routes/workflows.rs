//! `/v1/workflows` and a workflow run's steps: versions saved, reviewed,
//! diffed and rolled back as scripts' are (same views), checking and
//! planning without running, durable runs, their step timeline, and
//! decisions on approval steps. A workflow run is a run: `GET /v1/runs/{id}`,
//! its event stream and `POST /v1/runs/{id}/cancel` serve it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use citadel_analyzer::Diagnostic;
use citadel_app::workflows::{self, SaveWorkflow, StartWorkflow};
use citadel_engine::Priority;
use citadel_scripts::{Bump, ReviewAction};
use citadel_store::WorkflowStep;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::Accepted;
use super::scripts::{
    Diff, DiffQuery, Rejection, RollbackBody, ScriptDetail, ScriptView, VersionView,
};
use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiResult, ErrorBody};
use crate::json::ApiJson;
use crate::routes::{json_text, parse_json};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(save_workflow, list_workflows))
        .routes(routes!(check_workflow))
        .routes(routes!(get_workflow))
        .routes(routes!(list_workflow_versions))
        .routes(routes!(get_workflow_version))
        .routes(routes!(diff_workflow_versions))
        .routes(routes!(submit_workflow_version))
        .routes(routes!(approve_workflow_version))
        .routes(routes!(reject_workflow_version))
        .routes(routes!(rollback_workflow))
        .routes(routes!(plan_workflow))
        .routes(routes!(run_workflow))
        .routes(routes!(run_steps))
        .routes(routes!(run_graph))
        .routes(routes!(approve_step))
        .routes(routes!(reject_step))
        .routes(routes!(rerun))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SaveBody {
    /// A path such as `ops/deploy`.
    name: String,
    /// The workflow's YAML.
    source: String,
    #[serde(default)]
    change_note: String,
    /// Which part of the semantic version to bump: `patch` (default),
    /// `minor` or `major`.
    #[serde(default)]
    #[schema(value_type = crate::openapi::Bump)]
    bump: Bump,
}

/// Saves a new immutable workflow version. A definition with problems is
/// refused (422 `rejected`, every problem located in `details.diagnostics`);
/// identical content answers the existing version (200); otherwise 201.
/// Without required approval the version goes live at once.
#[utoipa::path(post, path = "/v1/workflows", request_body = SaveBody,
    responses((status = 201, body = VersionView), (status = 200, body = VersionView),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<SaveBody>,
) -> ApiResult<(StatusCode, axum::Json<VersionView>)> {
    let name = body.name.clone();
    let save = SaveWorkflow {
        name: body.name,
        source: body.source,
        change_note: body.change_note,
        bump: body.bump,
    };
    let saved = workflows::save(&state.app, &caller, save).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(VersionView::new(&name, saved.version, true)),
    ))
}

/// Lists the workflows the caller may read.
#[utoipa::path(get, path = "/v1/workflows", responses((status = 200, body = Vec<ScriptView>), (status = 403, body = ErrorBody)))]
async fn list_workflows(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<axum::Json<Vec<ScriptView>>> {
    let list = workflows::list(&state.app, &caller).await?;
    Ok(axum::Json(list.into_iter().map(ScriptView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    /// The workflow's YAML.
    source: String,
}

#[derive(Serialize, ToSchema)]
struct Checked {
    /// True when the definition would save.
    valid: bool,
    /// Every problem, with its line and column in the YAML.
    #[schema(value_type = Vec<serde_json::Value>)]
    diagnostics: Vec<Diagnostic>,
}

/// Checks a workflow definition without saving it, under the tenant's
/// highest profile.
#[utoipa::path(post, path = "/v1/workflows:validate", request_body = CheckBody,
    responses((status = 200, body = Checked), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn check_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(body): ApiJson<CheckBody>,
) -> ApiResult<axum::Json<Checked>> {
    let diagnostics = workflows::check(&state.app, &caller, &body.source).await?;
    Ok(axum::Json(Checked {
        valid: diagnostics.is_empty(),
        diagnostics,
    }))
}

/// A workflow and its live version.
#[utoipa::path(get, path = "/v1/workflows/{name}", params(("name" = String, Path, description = "The workflow's name; `/` in it as %2F")),
    responses((status = 200, body = ScriptDetail), (status = 404, body = ErrorBody)))]
async fn get_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<ScriptDetail>> {
    let (script, live) = workflows::get(&state.app, &caller, &name).await?;
    Ok(axum::Json(ScriptDetail::new(name, script, live)))
}

/// Every version of a workflow, oldest first (without sources).
#[utoipa::path(get, path = "/v1/workflows/{name}/versions", params(("name" = String, Path)),
    responses((status = 200, body = Vec<VersionView>), (status = 404, body = ErrorBody)))]
async fn list_workflow_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    let versions = workflows::versions(&state.app, &caller, &name).await?;
    Ok(axum::Json(
        versions
            .into_iter()
            .map(|v| VersionView::new(&name, v, false))
            .collect(),
    ))
}

/// One workflow version with its source.
#[utoipa::path(get, path = "/v1/workflows/{name}/versions/{version}", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
async fn get_workflow_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = workflows::version(&state.app, &caller, &name, &version).await?;
    Ok(axum::Json(VersionView::new(&name, v, true)))
}

/// The difference between two workflow versions.
#[utoipa::path(get, path = "/v1/workflows/{name}/diff", params(("name" = String, Path), DiffQuery),
    responses((status = 200, body = Diff), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn diff_workflow_versions(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<axum::Json<Diff>> {
    let Query(q) = query?;
    let d = workflows::diff(&state.app, &caller, &name, &q.from, &q.to).await?;
    Ok(axum::Json(Diff::from(d)))
}

async fn review(
    state: &AppState,
    caller: &citadel_app::Caller,
    name: &str,
    version: &str,
    action: ReviewAction,
    reason: Option<&str>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = workflows::review(&state.app, caller, name, version, action, reason).await?;
    Ok(axum::Json(VersionView::new(name, v, false)))
}

/// Submits a workflow draft for review.
#[utoipa::path(post, path = "/v1/workflows/{name}/versions/{version}/submit", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn submit_workflow_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    review(&state, &caller, &name, &version, ReviewAction::Submit, None).await
}

/// Approves a submitted workflow version (not your own); it goes live.
#[utoipa::path(post, path = "/v1/workflows/{name}/versions/{version}/approve", params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_workflow_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let action = ReviewAction::Approve;
    review(&state, &caller, &name, &version, action, None).await
}

/// Rejects a submitted workflow version (not your own), with a reason.
#[utoipa::path(post, path = "/v1/workflows/{name}/versions/{version}/reject", params(("name" = String, Path), ("version" = String, Path)),
    request_body = Rejection,
    responses((status = 200, body = VersionView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_workflow_version(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path((name, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Rejection>,
) -> ApiResult<axum::Json<VersionView>> {
    let reason = Some(body.reason.as_str());
    review(
        &state,
        &caller,
        &name,
        &version,
        ReviewAction::Reject,
        reason,
    )
    .await
}

/// Makes an earlier approved workflow version live again.
#[utoipa::path(post, path = "/v1/workflows/{name}/rollback", params(("name" = String, Path)), request_body = RollbackBody,
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rollback_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<axum::Json<VersionView>> {
    let v = workflows::rollback(&state.app, &caller, &name, &body.version).await?;
    Ok(axum::Json(VersionView::new(&name, v, false)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanBody {
    /// The inputs, a JSON object (`{}` if absent).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    input: Option<Box<RawValue>>,
}

/// The dry run of the live version: the resolved DAG in order, which steps
/// would run and why, templates rendered with the inputs; nothing runs.
#[utoipa::path(post, path = "/v1/workflows/{name}/plan", params(("name" = String, Path)), request_body = PlanBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn plan_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PlanBody>,
) -> ApiResult<axum::Json<Value>> {
    let input = body
        .input
        .map_or_else(|| "{}".to_owned(), |r| r.get().to_owned());
    let plan = workflows::plan(&state.app, &caller, &name, &input).await?;
    Ok(axum::Json(
        serde_json::to_value(&plan).map_err(citadel_app::AppError::internal)?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// The inputs, a JSON object (`{}` if absent).
    #[serde(default)]
    #[schema(value_type = serde_json::Value)]
    input: Option<Box<RawValue>>,
    /// Queue priority: `low`, `normal` (default), `high` or `critical`.
    #[serde(default)]
    #[schema(value_type = crate::openapi::Priority)]
    priority: Priority,
    /// A second request with the same key (per tenant) answers the first
    /// run's id instead of starting another.
    idempotency_key: Option<String>,
}

/// Starts a durable run of the live version and answers 202 with its id
/// once it is queued (inputs are checked first: 400 `invalid`, each
/// problem in `details.inputs`). Follow it with `GET /v1/runs/{id}`, its
/// steps and its event stream.
#[utoipa::path(post, path = "/v1/workflows/{name}/run", params(("name" = String, Path)), request_body = RunBody,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn run_workflow(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let input_json = match body.input {
        None => "{}".to_owned(),
        some => json_text(some),
    };
    let start = StartWorkflow {
        input_json,
        priority: body.priority,
        idempotency_key: body.idempotency_key,
    };
    let (run_id, created) = workflows::start(&state.app, &caller, &name, start).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            run_id,
            duplicate: !created,
        }),
    ))
}

/// One step of a workflow run.
#[derive(Serialize, ToSchema)]
struct StepView {
    id: String,
    /// Its type: `script`, `shell`, `http`, `approval`, ….
    kind: String,
    #[schema(value_type = crate::openapi::StepStatus)]
    status: String,
    attempts: i64,
    /// What it produced (`{"error": …}` when it failed; an approval
    /// waiting shows its `message`).
    #[schema(value_type = serde_json::Value)]
    output: Value,
    exit_code: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    /// When a waiting approval times out.
    deadline_at: Option<i64>,
    /// Who approved or rejected an approval step.
    decided_by: Option<String>,
}

impl From<WorkflowStep> for StepView {
    fn from(s: WorkflowStep) -> Self {
        StepView {
            output: parse_json(&s.output),
            id: s.step_id,
            kind: s.kind,
            status: s.status.as_str().to_owned(),
            attempts: s.attempts,
            exit_code: s.exit_code,
            started_at: s.started_at,
            finished_at: s.finished_at,
            deadline_at: s.deadline_at,
            decided_by: s.decided_by,
        }
    }
}

/// A workflow run's steps as they stand, in the workflow's order (steps
/// not reached yet are absent).
#[utoipa::path(get, path = "/v1/runs/{id}/steps", params(("id" = String, Path)),
    responses((status = 200, body = Vec<StepView>), (status = 404, body = ErrorBody)))]
async fn run_steps(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<StepView>>> {
    let steps = workflows::steps(&state.app, &caller, &id).await?;
    Ok(axum::Json(steps.into_iter().map(StepView::from).collect()))
}

/// One step of a run's graph.
#[derive(Serialize, ToSchema)]
struct GraphStepView {
    id: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::openapi::StepType)]
    step_type: &'static str,
    /// One more than its deepest dependency's (0 for a root).
    level: usize,
    /// The steps it waits for (the graph's edges point from them to it).
    depends_on: Vec<String>,
    /// `null` until the run reaches the step.
    #[schema(value_type = Option<crate::openapi::StepStatus>)]
    status: Option<&'static str>,
}

/// The DAG of the version a workflow run runs.
#[derive(Serialize, ToSchema)]
struct RunGraphView {
    workflow: String,
    version: String,
    /// Every step of the version, in the file's order.
    steps: Vec<GraphStepView>,
}

/// A workflow run's DAG: every step of the version it runs, with its
/// dependencies and, once reached, its state (what the console draws).
/// 404 for a run that is not a workflow's.
#[utoipa::path(get, path = "/v1/runs/{id}/graph", params(("id" = String, Path)),
    responses((status = 200, body = RunGraphView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn run_graph(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunGraphView>> {
    let graph = workflows::graph(&state.app, &caller, &id).await?;
    Ok(axum::Json(RunGraphView {
        workflow: graph.workflow,
        version: graph.version,
        steps: graph
            .steps
            .into_iter()
            .map(|s| GraphStepView {
                id: s.id,
                step_type: s.step_type.name(),
                level: s.level,
                depends_on: s.depends_on,
                status: s.status.map(|st| st.as_str()),
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Decision {
    /// Why, kept with the step and in the audit log.
    reason: Option<String>,
}

async fn decide(
    state: &AppState,
    caller: &citadel_app::Caller,
    (id, step): (String, String),
    approve: bool,
    reason: Option<String>,
) -> ApiResult<axum::Json<StepView>> {
    let decided =
        workflows::decide(&state.app, caller, &id, &step, approve, reason.as_deref()).await?;
    Ok(axum::Json(StepView::from(decided)))
}

/// Approves an approval step that waits (`script.approve` on the
/// workflow); the run goes on at once. 409 when the step is not waiting.
#[utoipa::path(post, path = "/v1/runs/{id}/steps/{step}/approve", params(("id" = String, Path), ("step" = String, Path)),
    request_body = Decision,
    responses((status = 200, body = StepView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve_step(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(at): Path<(String, String)>,
    ApiJson(body): ApiJson<Decision>,
) -> ApiResult<axum::Json<StepView>> {
    decide(&state, &caller, at, true, body.reason).await
}

/// Rejects an approval step that waits, with a reason; the step fails the
/// run unless it has `continue_on_error`.
#[utoipa::path(post, path = "/v1/runs/{id}/steps/{step}/reject", params(("id" = String, Path), ("step" = String, Path)),
    request_body = Rejection,
    responses((status = 200, body = StepView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reject_step(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(at): Path<(String, String)>,
    ApiJson(body): ApiJson<Rejection>,
) -> ApiResult<axum::Json<StepView>> {
    decide(&state, &caller, at, false, Some(body.reason)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RerunBody {
    /// The step to start from; by default the step that failed the run.
    from_step: Option<String>,
}

/// Re-runs a finished workflow run from a step (by default the one that
/// failed it): a new run of the same version and input that keeps the old
/// run's results for every step not downstream of it. 202 with the new
/// run's id; 409 when the run has not finished, is a script's, or has no
/// failed step and none is named.
#[utoipa::path(post, path = "/v1/runs/{id}/rerun", params(("id" = String, Path)), request_body = RerunBody,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rerun(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RerunBody>,
) -> ApiResult<(StatusCode, axum::Json<Accepted>)> {
    let run_id = workflows::rerun(&state.app, &caller, &id, body.from_step.as_deref()).await?;
    let accepted = Accepted {
        run_id,
        duplicate: false,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}
