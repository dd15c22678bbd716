//! [`WorkflowStore`]: the steps of workflow runs. A workflow run is a run
//! like a script's (its record in `runs`, its job in `jobs`); what it adds
//! is one row per step, written by the node holding the run's job as each
//! step starts and ends, and by the approval endpoints, which settle a
//! waiting step by compare-and-set and wake the run's job.

use std::sync::LazyLock;

use citadel_domain::StepStatus;
use serde::Serialize;

use crate::StoreFuture;
use crate::sql::{Dialect, SqlStore, Stmt};
use crate::text::Text;

/// One step of a workflow run as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkflowStep {
    pub run_id: String,
    pub tenant_id: String,
    pub step_id: String,
    /// The step's place in the workflow (0, 1, …).
    pub position: i64,
    /// Its type: `script`, `shell`, `approval`, ….
    pub kind: String,
    #[sqlx(try_from = "Text<StepStatus>")]
    pub status: StepStatus,
    /// Attempts started (retries count).
    pub attempts: i64,
    /// JSON: what the step produced (`{"error": …}` when it failed).
    pub output: String,
    pub exit_code: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// When a waiting approval times out.
    pub deadline_at: Option<i64>,
    /// The person that approved or rejected an approval step.
    pub decided_by: Option<String>,
}

/// A decision on a waiting approval step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDecision<'a> {
    pub tenant_id: &'a str,
    pub run_id: &'a str,
    pub step_id: &'a str,
    /// `Succeeded` (approved), `Rejected`, or `TimedOut`.
    pub status: StepStatus,
    /// JSON.
    pub output: &'a str,
    pub decided_by: Option<&'a str>,
    pub at: i64,
}

/// The steps of workflow runs. Every method is scoped by tenant.
pub trait WorkflowStore: Send + Sync {
    /// Inserts or replaces a step's row while `node` holds the run's job
    /// (running, its lease `node`'s); false, and nothing written, when it
    /// does not: another node owns the run now.
    fn put_step<'a>(&'a self, step: &'a WorkflowStep, node: &'a str) -> StoreFuture<'a, bool>;
    /// Writes the steps a re-run starts with, before its job exists (so no
    /// node holds it yet), in one transaction.
    fn seed_steps<'a>(&'a self, steps: &'a [WorkflowStep]) -> StoreFuture<'a, ()>;
    /// A run's steps in the workflow's order.
    fn workflow_steps<'a>(
        &'a self,
        tenant_id: &'a str,
        run_id: &'a str,
    ) -> StoreFuture<'a, Vec<WorkflowStep>>;
    /// Settles a step that is `waiting` (false, and nothing changed, when it
    /// is not: decided already, or timed out), and in the same transaction
    /// makes the run's job due now if it is queued, so a node picks the run
    /// up again.
    fn decide_step<'a>(&'a self, decision: &'a StepDecision<'a>) -> StoreFuture<'a, bool>;
    /// Puts a running job `node` holds back in the queue until `run_at`
    /// without spending an attempt: a workflow run that waits for the
    /// approval steps `waiting` holds no worker meanwhile. When one of them
    /// was decided since (before the job was queued, so its decision could
    /// not wake it), the job is due `now` instead. False when the node no
    /// longer holds the job.
    fn suspend_job<'a>(
        &'a self,
        id: &'a str,
        node: &'a str,
        run_at: i64,
        waiting: &'a [String],
        now: i64,
    ) -> StoreFuture<'a, bool>;
}

const STEP_COLUMNS: &str = "run_id, tenant_id, step_id, position, kind, status, attempts, \
     output, exit_code, started_at, finished_at, deadline_at, decided_by";

static PUT_STEP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO workflow_steps ({STEP_COLUMNS}) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
         WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND tenant_id = $2 \
         AND state = 'running' AND lease_owner = $14) \
         ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, \
         attempts = excluded.attempts, output = excluded.output, \
         exit_code = excluded.exit_code, started_at = excluded.started_at, \
         finished_at = excluded.finished_at, deadline_at = excluded.deadline_at, \
         decided_by = excluded.decided_by \
         WHERE workflow_steps.tenant_id = excluded.tenant_id"
    )
});
static SEED_STEP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO workflow_steps ({STEP_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
});
static STEPS_OF_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {STEP_COLUMNS} FROM workflow_steps WHERE tenant_id = $1 AND run_id = $2 \
         ORDER BY position, step_id"
    )
});

/// A step's thirteen columns bound as `$1`…`$13`, in [`STEP_COLUMNS`] order.
fn bind_step<'q, D: Dialect>(stmt: Stmt<'q, D>, s: &'q WorkflowStep) -> Stmt<'q, D> {
    stmt.bind(&s.run_id)
        .bind(&s.tenant_id)
        .bind(&s.step_id)
        .bind(s.position)
        .bind(&s.kind)
        .bind(s.status.as_str())
        .bind(s.attempts)
        .bind(&s.output)
        .bind(s.exit_code)
        .bind(s.started_at)
        .bind(s.finished_at)
        .bind(s.deadline_at)
        .bind(s.decided_by.as_deref())
}

impl<D: Dialect> WorkflowStore for SqlStore<D> {
    fn put_step<'a>(&'a self, s: &'a WorkflowStep, node: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let written = bind_step(D::query(&PUT_STEP), s)
                .bind(node)
                .execute(&mut conn)
                .await?;
            Ok(written == 1)
        })
    }

    fn seed_steps<'a>(&'a self, steps: &'a [WorkflowStep]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            for s in steps {
                bind_step(D::query(&SEED_STEP), s).execute(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn workflow_steps<'a>(
        &'a self,
        tenant_id: &'a str,
        run_id: &'a str,
    ) -> StoreFuture<'a, Vec<WorkflowStep>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&STEPS_OF_RUN)
                .bind(tenant_id)
                .bind(run_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn decide_step<'a>(&'a self, d: &'a StepDecision<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let settled = D::query(
                "UPDATE workflow_steps SET status = $1, output = $2, decided_by = $3, \
                 finished_at = $4 \
                 WHERE tenant_id = $5 AND run_id = $6 AND step_id = $7 AND status = 'waiting'",
            )
            .bind(d.status.as_str())
            .bind(d.output)
            .bind(d.decided_by)
            .bind(d.at)
            .bind(d.tenant_id)
            .bind(d.run_id)
            .bind(d.step_id)
            .execute(&mut tx)
            .await?;
            if settled == 1 {
                D::query(
                    "UPDATE jobs SET run_at = $1, updated_at = $1 \
                     WHERE tenant_id = $2 AND id = $3 AND state = 'queued' AND run_at > $1",
                )
                .bind(d.at)
                .bind(d.tenant_id)
                .bind(d.run_id)
                .execute(&mut tx)
                .await?;
            }
            tx.commit().await?;
            Ok(settled == 1)
        })
    }

    fn suspend_job<'a>(
        &'a self,
        id: &'a str,
        node: &'a str,
        run_at: i64,
        waiting: &'a [String],
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            // The job's row first: a decision committed after this reads the
            // job queued and wakes it; one committed before is read below.
            let done = D::query(
                "UPDATE jobs SET state = 'queued', run_at = $1, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
                 lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 \
                 WHERE id = $3 AND state = 'running' AND lease_owner = $4",
            )
            .bind(run_at)
            .bind(now)
            .bind(id)
            .bind(node)
            .execute(&mut tx)
            .await?;
            if done == 1 {
                let statuses: Vec<(String, String)> =
                    D::query("SELECT step_id, status FROM workflow_steps WHERE run_id = $1")
                        .bind(id)
                        .fetch_all(&mut tx)
                        .await?;
                let decided = statuses.iter().any(|(step, status)| {
                    waiting.contains(step) && status != StepStatus::Waiting.as_str()
                });
                if decided {
                    D::query("UPDATE jobs SET run_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(&mut tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(done == 1)
        })
    }
}
