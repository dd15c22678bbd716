-- One row per node, rewritten by its readiness checks: a write that
-- succeeds proves the database takes writes now (reads alone cannot tell a
-- read-only file or a full disk).
CREATE TABLE write_probes (
    node TEXT PRIMARY KEY,
    at   BIGINT NOT NULL
);
