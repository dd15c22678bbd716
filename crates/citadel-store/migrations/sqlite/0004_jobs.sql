-- The durable job queue and the nodes that work it.
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    kind             TEXT NOT NULL,           -- run, …
    payload          TEXT NOT NULL,           -- JSON
    priority         INTEGER NOT NULL,        -- 0 low … 3 critical
    state            TEXT NOT NULL,           -- queued, running, succeeded, failed, cancelled, dead
    run_at           INTEGER NOT NULL,        -- not claimed before
    attempts         INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER NOT NULL,
    idempotency_key  TEXT,                    -- NULL keys never collide
    lease_owner      TEXT,                    -- node id while running
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL,        -- 0 or 1
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (tenant_id, idempotency_key)
);
-- Claiming: the tenants with queued jobs, then each one's next jobs in
-- claim order.
CREATE INDEX jobs_queued ON jobs(tenant_id, priority DESC, run_at, created_at, id)
    WHERE state = 'queued';
-- Expired leases, and the running jobs of a node.
CREATE INDEX jobs_lease ON jobs(state, lease_expires_at);
-- Listing newest first.
CREATE INDEX jobs_tenant ON jobs(tenant_id, created_at DESC, id DESC);

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,               -- serve, worker
    version      TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    running      INTEGER NOT NULL,            -- jobs in flight at the last heartbeat
    state        TEXT NOT NULL                -- up, draining, down
);
