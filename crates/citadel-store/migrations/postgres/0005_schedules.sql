-- Cron schedules on scripts. `next_fire_at` is the next occurrence to fire;
-- the node that fires it advances it by compare-and-set.
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    script_name   TEXT NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,              -- IANA name
    input         TEXT NOT NULL,              -- JSON
    missed        TEXT NOT NULL,              -- skip, catch_up
    enabled       BOOLEAN NOT NULL,
    next_fire_at  BIGINT  NOT NULL,           -- Unix ms
    last_fired_at BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);
-- Due schedules, across tenants.
CREATE INDEX schedules_due ON schedules(enabled, next_fire_at);
