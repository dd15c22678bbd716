-- The capabilities' state: secrets (envelope-encrypted: a data key per
-- tenant wrapped by the master key, each value sealed by the data key),
-- who read them, each tenant's key-value store, and its data sources.

CREATE TABLE data_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    master_key_id TEXT NOT NULL,             -- fingerprint of the wrapping key
    nonce         BYTEA NOT NULL,
    wrapped       BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX data_keys_master ON data_keys(master_key_id);

CREATE TABLE secrets (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    version      BIGINT NOT NULL,            -- the version served
    created_at   BIGINT NOT NULL,
    rotated_at   BIGINT,
    expires_at   BIGINT,
    last_used_at BIGINT,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX secrets_expiry ON secrets(expires_at);

CREATE TABLE secret_versions (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    key_id     TEXT NOT NULL,                -- the data key that sealed it
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name, version),
    FOREIGN KEY (tenant_id, name) REFERENCES secrets(tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE secret_usage (
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     BIGINT NOT NULL,             -- the secret's version read
    script_name TEXT NOT NULL,
    script_version TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX secret_usage_by_name ON secret_usage(tenant_id, name, at);

CREATE TABLE kv (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    key        TEXT COLLATE "C" NOT NULL,     -- bytewise order for paging
    value      TEXT NOT NULL,                -- JSON
    version    BIGINT NOT NULL,              -- 1 on creation, +1 per write
    bytes      BIGINT NOT NULL,              -- key + value, against the quota
    expires_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX kv_expiry ON kv(tenant_id, expires_at);

-- Bytes each tenant's KV holds, kept in the transaction of every write so
-- the quota holds without summing rows.
CREATE TABLE kv_usage (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    bytes     BIGINT NOT NULL
);

CREATE TABLE datasources (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,           -- sqlite | postgres
    location        TEXT NOT NULL,           -- a path under the root, or a URL without password
    password_secret TEXT,                    -- the secret holding the password
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
