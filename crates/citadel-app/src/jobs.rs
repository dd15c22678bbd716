//! The durable queue as tenants see it: their jobs (dead letters included)
//! and retrying them by hand; the nodes working the queue (platform
//! admins).

use citadel_domain::JobState;
use citadel_store::{Job, Node, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller, ErrorCode, page_limit};

/// A listing of the tenant's jobs, newest first, read in chunks.
pub struct JobListing {
    tenant: String,
    state: Option<String>,
    before: Option<String>,
    /// The page size asked for.
    pub limit: i64,
    ended: bool,
}

/// Opens a listing of the caller's tenant's jobs, optionally in one
/// `state` (`dead` for the dead-letter queue), older than job `before`.
pub async fn listing(
    app: &App,
    caller: &Caller,
    state: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
) -> AppResult<JobListing> {
    if let Some(s) = &state
        && s.parse::<JobState>().is_err()
    {
        let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(AppError::invalid(format!(
            "unknown state `{s}` (one of {})",
            all.join(", ")
        )));
    }
    let limit = page_limit(limit, 100, "limit must be 1..=1000")?;
    let tenant = caller
        .tenant_with(app, Permission::ScriptRead, None)
        .await?;
    Ok(JobListing {
        tenant,
        state,
        before,
        limit,
        ended: false,
    })
}

impl JobListing {
    /// The next `want` jobs (fewer at the end; none after).
    pub async fn next(&mut self, app: &App, want: i64) -> AppResult<Vec<Job>> {
        if self.ended {
            return Ok(Vec::new());
        }
        let jobs = app
            .store
            .list_jobs(
                &self.tenant,
                self.state.as_deref(),
                self.before.as_deref(),
                want,
            )
            .await?;
        self.ended = (jobs.len() as i64) < want;
        if let Some(last) = jobs.last() {
            self.before = Some(last.id.clone());
        }
        Ok(jobs)
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// Puts a dead job back in the queue with fresh attempts.
pub async fn retry(app: &App, caller: &Caller, id: &str) -> AppResult<Job> {
    let tenant = caller.tenant_with(app, Permission::ScriptRun, None).await?;
    let Some(job) = app.store.job(&tenant, id).await? else {
        return Err(AppError::not_found(format!("job `{id}` not found")));
    };
    if !app.store.retry_dead(&tenant, id, now_ms()).await? {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            format!(
                "job `{id}` is {}; only a dead job can be retried",
                job.state
            ),
        ));
    }
    caller
        .record_change(
            app,
            &tenant,
            "job.retry",
            id,
            json!({ "attempts": job.attempts }),
        )
        .await?;
    app.store
        .job(&tenant, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("job `{id}` not found")))
}

/// The nodes working the queue (platform admins only).
pub async fn nodes(app: &App, caller: &Caller) -> AppResult<Vec<Node>> {
    caller.require_platform_admin(app).await?;
    Ok(app.store.list_nodes().await?)
}
