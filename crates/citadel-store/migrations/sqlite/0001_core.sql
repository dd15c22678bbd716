-- Tenants, principals (API tokens), roles and bindings, and the audit chain.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT REFERENCES tenants(id),  -- NULL: a platform admin
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,         -- SHA-256 of the secret, hex
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX tokens_tenant ON tokens(tenant_id);

CREATE TABLE roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    permissions TEXT NOT NULL,                -- JSON array of permission names
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE role_bindings (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    token_id    TEXT NOT NULL REFERENCES tokens(id),
    role        TEXT NOT NULL,
    path_prefix TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE INDEX role_bindings_token ON role_bindings(token_id);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    tenant_id   TEXT,
    principal   TEXT,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_tenant ON audit(tenant_id, seq);
