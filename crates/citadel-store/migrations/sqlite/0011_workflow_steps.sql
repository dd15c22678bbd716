-- Scripts and workflows share a tenant's catalog (names, versions,
-- review); a name keeps the kind of its first save.
ALTER TABLE scripts ADD COLUMN kind TEXT NOT NULL DEFAULT 'script';

-- The steps of workflow runs. A workflow run is a run (in `runs`, its job
-- in `jobs`, both keyed by the run's id); each of its steps keeps its state,
-- attempts and output here, so whichever node holds the run's job resumes
-- it from the steps that finished.
CREATE TABLE workflow_steps (
    run_id      TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    step_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,             -- the step's place in the workflow
    kind        TEXT NOT NULL,                -- script, shell, approval, …
    status      TEXT NOT NULL,                -- running, waiting, succeeded, failed, …
    attempts    INTEGER NOT NULL,
    output      TEXT NOT NULL,                -- JSON
    exit_code   INTEGER,
    started_at  INTEGER,
    finished_at INTEGER,
    deadline_at INTEGER,                      -- an approval's timeout
    decided_by  TEXT,                         -- who approved or rejected it
    PRIMARY KEY (run_id, step_id)
);
