-- Installed plugins. A plugin's handler module is a catalog entry of kind
-- `plugin` (`plugins/{slug}`, one version per plugin version, the live one
-- the version in use), so its runs are runs like any other; what the plugin
-- adds is kept here: each version's bundle and manifest, and per tenant
-- which version is in use, whether it is enabled, and its configuration.
CREATE TABLE plugin_versions (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    slug          TEXT NOT NULL,
    version       TEXT NOT NULL,              -- semantic version
    manifest_file TEXT NOT NULL,              -- citadel-plugin.json or .yaml
    manifest      TEXT NOT NULL,              -- the manifest's text
    bundle        BYTEA NOT NULL,              -- the canonical .tar.gz
    sha256        TEXT NOT NULL,              -- of bundle, hex
    installed_by  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, slug, version)
);

CREATE TABLE plugins (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    slug       TEXT NOT NULL,
    script_id  TEXT NOT NULL,                 -- the handler module's entry
    version    TEXT NOT NULL,                 -- the version in use
    enabled    BOOLEAN NOT NULL,
    config     TEXT NOT NULL,                 -- JSON object
    hooks      TEXT NOT NULL,                 -- JSON: the event patterns its handlers hook
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, slug)
);
