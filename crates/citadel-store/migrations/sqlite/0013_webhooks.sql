-- Outgoing webhook endpoints as code, their versions, and their
-- deliveries with every attempt. A delivery's retries are a queue job of
-- kind `webhook` whose id is the delivery's.
CREATE TABLE webhook_endpoints (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    version         BIGINT NOT NULL,          -- 1, 2, … one per change
    source          TEXT NOT NULL,            -- the endpoint document (YAML or JSON)
    transform       TEXT,                     -- the transform script's source
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT,                     -- why it was disabled (410, failing too long, by hand)
    failing_since   BIGINT,                   -- first failure after the last success
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE webhook_endpoint_versions (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    source     TEXT NOT NULL,
    transform  TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    endpoint    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,                -- JSON: the event as delivered
    state       TEXT NOT NULL,                -- pending, delivered, failed
    attempts    BIGINT NOT NULL,
    last_status BIGINT,                       -- the last answer's HTTP status
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries(tenant_id, endpoint, created_at);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    attempt     BIGINT NOT NULL,              -- 1, 2, …
    at          BIGINT NOT NULL,
    status      BIGINT,                       -- NULL: no answer (timeout, refused, network)
    latency_ms  BIGINT NOT NULL,
    response    TEXT NOT NULL,                -- the first bytes of the answer
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- Inbound webhooks: a script or workflow exposed at /hooks/{tenant}/{name},
-- each request verified before it runs.
CREATE TABLE inbound_webhooks (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    name             TEXT NOT NULL,
    target           TEXT NOT NULL,           -- the script's or workflow's name
    verify           TEXT NOT NULL,           -- standard_webhooks, hmac
    secret           TEXT NOT NULL,           -- the tenant secret it verifies with
    signature_header TEXT,                    -- hmac: the header with the signature
    id_header        TEXT,                    -- hmac: the header de-duplicated on
    mode             TEXT NOT NULL,           -- sync, async
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
