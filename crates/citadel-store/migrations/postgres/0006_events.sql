-- Events, the subscriptions that route them to scripts, and one delivery
-- row per (event, subscription) naming the run it became.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    event_type  TEXT NOT NULL,
    data        TEXT NOT NULL,                -- JSON
    depth       BIGINT NOT NULL,                  -- 0 from the API, +1 per events.emit hop
    source      TEXT NOT NULL,                -- who sent it: a principal or run_…
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, created_at DESC, id DESC);

CREATE TABLE subscriptions (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    pattern     TEXT NOT NULL,                -- event type glob, e.g. order.*
    script_name TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE deliveries (
    event_id     TEXT NOT NULL REFERENCES events(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    subscription TEXT NOT NULL,
    script_name  TEXT NOT NULL,
    run_id       TEXT,                        -- the run (job) it became
    error        TEXT,                        -- why it did not become one
    PRIMARY KEY (event_id, subscription)
);
