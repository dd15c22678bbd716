-- Embedded editor sessions. A host product mints a one-time code for one
-- of its end users; exchanging it (once, before it expires) creates a
-- short-lived token scoped to a folder. `end_user` on a token names that
-- end user, as the host product gave it, in the audit log and on runs.
ALTER TABLE tokens ADD COLUMN end_user TEXT;

CREATE TABLE embed_codes (
    code_hash   TEXT PRIMARY KEY,        -- SHA-256 of the code, hex
    tenant_id   TEXT NOT NULL,
    end_user    TEXT NOT NULL,
    folder      TEXT NOT NULL,
    role        TEXT NOT NULL,
    session_ms  BIGINT NOT NULL,         -- how long the session's token lives
    created_by  TEXT NOT NULL,           -- the token that minted the code
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL          -- the code's own deadline
);
CREATE INDEX embed_codes_expiry ON embed_codes(expires_at);
