-- Users: principals that log in with a password and get expiring session
-- tokens carrying the user's roles.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,              -- argon2id, PHC string
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    UNIQUE (tenant_id, username)
);

CREATE TABLE user_roles (
    user_id     TEXT NOT NULL REFERENCES users(id),
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    role        TEXT NOT NULL,
    path_prefix TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, role, path_prefix)
);

-- A session token belongs to the user who logged in.
ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users(id);
