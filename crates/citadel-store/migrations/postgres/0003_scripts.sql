-- Scripts and their immutable versions, runs, tenant settings and kill
-- switches.
CREATE TABLE tenant_settings (
    tenant_id   TEXT PRIMARY KEY REFERENCES tenants(id),
    settings    TEXT NOT NULL,                -- JSON object
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE scripts (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,                -- a path, e.g. billing/on-paid
    live_seq    BIGINT,                       -- NULL until a version goes live
    latest_seq  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE script_versions (
    script_id     TEXT NOT NULL REFERENCES scripts(id),
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    seq           BIGINT  NOT NULL,           -- 1, 2, 3… in save order
    version       TEXT NOT NULL,              -- semantic version
    hash          TEXT NOT NULL,              -- SHA-256 of the content, hex
    source        TEXT NOT NULL,
    language      TEXT NOT NULL,
    capabilities  TEXT NOT NULL,              -- JSON
    limits        TEXT NOT NULL,              -- JSON
    diagnostics   TEXT NOT NULL,              -- JSON
    change_note   TEXT NOT NULL,
    author        TEXT NOT NULL,
    state         TEXT NOT NULL,              -- draft, submitted, approved, rejected
    reviewed_by   TEXT,
    review_reason TEXT,
    reviewed_at   BIGINT,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (script_id, seq),
    UNIQUE (script_id, version)
);

CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    script_id         TEXT NOT NULL,
    script_name       TEXT NOT NULL,
    version           TEXT NOT NULL,
    status            TEXT NOT NULL,
    trigger_kind      TEXT NOT NULL,          -- api, api_async, …
    principal         TEXT,
    input             TEXT NOT NULL,          -- JSON
    result            TEXT,                   -- JSON
    logs              TEXT NOT NULL,          -- JSON array of lines
    logs_truncated    BOOLEAN NOT NULL,
    error             TEXT,                   -- JSON
    duration_ms       BIGINT,
    cpu_ms            BIGINT,
    peak_memory_bytes BIGINT,
    created_at        BIGINT  NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT
);
-- Listing newest first: per tenant, per script, per status.
CREATE INDEX runs_tenant ON runs(tenant_id, created_at DESC, id DESC);
CREATE INDEX runs_tenant_script ON runs(tenant_id, script_name, created_at DESC, id DESC);
CREATE INDEX runs_tenant_status ON runs(tenant_id, status, created_at DESC, id DESC);

CREATE TABLE kill_switches (
    scope       TEXT NOT NULL,                -- platform, tenant, folder, script
    tenant_id   TEXT NOT NULL DEFAULT '',     -- '' for the platform
    target      TEXT NOT NULL DEFAULT '',     -- folder prefix or script name
    reason      TEXT NOT NULL,
    engaged_by  TEXT,
    engaged_at  BIGINT  NOT NULL,
    PRIMARY KEY (scope, tenant_id, target)
);
