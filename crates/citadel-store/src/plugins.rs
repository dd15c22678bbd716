//! [`PluginStore`]: installed plugins. A plugin's handler module is a
//! catalog entry of kind `plugin` (its versions in `script_versions`, the
//! live one the version in use), so hooks, routes and jobs run as runs of
//! it. This store keeps the rest: each version's manifest and bundle, and
//! per tenant the version in use, whether the plugin is enabled, its
//! configuration and the event patterns it hooks. Switching a plugin (to
//! another version, on or off, a new configuration) changes its row, its
//! entry's live version and its jobs' schedules in one transaction, so
//! routes, hooks and schedules never see two versions at once.

use std::sync::LazyLock;

use serde::Serialize;

use crate::sql::{Dialect, SqlStore, conflict};
use crate::{Schedule, StoreError, StoreFuture};

/// One tenant's installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Plugin {
    pub tenant_id: String,
    pub slug: String,
    /// The catalog entry of its handler module (`plugins/{slug}`).
    pub script_id: String,
    /// The version in use.
    pub version: String,
    pub enabled: bool,
    /// JSON object: the configuration, valid for the version's schema.
    pub config: String,
    /// JSON array: the event patterns its handlers hook.
    pub hooks: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One uploaded version of a plugin (its bundle is read on its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PluginVersion {
    pub tenant_id: String,
    pub slug: String,
    pub version: String,
    /// `citadel-plugin.json` or `citadel-plugin.yaml`.
    pub manifest_file: String,
    /// The manifest's text as uploaded.
    pub manifest: String,
    /// SHA-256 of the canonical bundle, hex.
    pub sha256: String,
    pub installed_by: String,
    pub created_at: i64,
}

/// What a plugin is switched to: its row as it will be, and its jobs'
/// schedules (named `plugins/{slug}/{job}`), which replace the ones it had.
#[derive(Debug, Clone)]
pub struct PluginSwitch<'a> {
    pub plugin: &'a Plugin,
    pub schedules: &'a [Schedule],
    /// True for an install: the plugin must not exist yet.
    pub create: bool,
}

/// Installed plugins, each scoped by tenant.
pub trait PluginStore: Send + Sync {
    /// Stores an uploaded version; `Conflict` when the plugin already has
    /// this version with other content (the same content is a no-op).
    fn put_plugin_version<'a>(
        &'a self,
        version: &'a PluginVersion,
        bundle: &'a [u8],
    ) -> StoreFuture<'a, ()>;
    fn plugin_version<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<PluginVersion>>;
    /// A plugin's versions, oldest first.
    fn plugin_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
    ) -> StoreFuture<'a, Vec<PluginVersion>>;
    /// The canonical `.tar.gz` of a version.
    fn plugin_bundle<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<Vec<u8>>>;
    fn plugin<'a>(&'a self, tenant_id: &'a str, slug: &'a str) -> StoreFuture<'a, Option<Plugin>>;
    /// A tenant's plugins, by slug.
    fn plugins<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Plugin>>;
    /// Writes a plugin's row, makes its version the entry's live one and
    /// replaces its schedules, in one transaction. `Conflict` for an install
    /// of a plugin that exists, `NotFound` for a switch of one that does not
    /// (or to a version its entry does not have).
    fn switch_plugin<'a>(&'a self, switch: &'a PluginSwitch<'a>) -> StoreFuture<'a, ()>;
    /// Removes a plugin: its row, versions, schedules, its entry and the
    /// entry's versions (its runs stay), and the tenant's key-value entries
    /// under `kv_prefix`, in one transaction. False when it is not installed.
    fn uninstall_plugin<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        kv_prefix: &'a str,
    ) -> StoreFuture<'a, bool>;
}

const PLUGIN_COLUMNS: &str =
    "tenant_id, slug, script_id, version, enabled, config, hooks, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "tenant_id, slug, version, manifest_file, manifest, sha256, installed_by, created_at";

static PLUGIN_BY_SLUG: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE tenant_id = $1 AND slug = $2")
});
static PLUGINS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {PLUGIN_COLUMNS} FROM plugins WHERE tenant_id = $1 ORDER BY slug")
});
static VERSION_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VERSION_COLUMNS} FROM plugin_versions \
         WHERE tenant_id = $1 AND slug = $2 AND version = $3"
    )
});
static VERSIONS_OF_PLUGIN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {VERSION_COLUMNS} FROM plugin_versions WHERE tenant_id = $1 AND slug = $2 \
         ORDER BY created_at, version"
    )
});
static INSERT_PLUGIN: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO plugins ({PLUGIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
});
const SCHEDULE_COLUMNS: &str = "id, tenant_id, name, script_name, cron, timezone, input, missed, \
     enabled, next_fire_at, last_fired_at, created_at, updated_at";
static INSERT_SCHEDULE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO schedules ({SCHEDULE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
});

/// The name every schedule of plugin `slug` starts with.
pub fn plugin_schedule_prefix(slug: &str) -> String {
    format!("plugins/{slug}/")
}

impl<D: Dialect> PluginStore for SqlStore<D> {
    fn put_plugin_version<'a>(
        &'a self,
        v: &'a PluginVersion,
        bundle: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let existing: Option<(String,)> = D::query(
                "SELECT sha256 FROM plugin_versions WHERE tenant_id = $1 AND slug = $2 \
                 AND version = $3",
            )
            .bind(&v.tenant_id)
            .bind(&v.slug)
            .bind(&v.version)
            .fetch_optional(&mut tx)
            .await?;
            match existing {
                Some((sha,)) if sha == v.sha256 => {}
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "version {} of plugin `{}` exists with other content",
                        v.version, v.slug
                    )));
                }
                None => {
                    D::query(
                        "INSERT INTO plugin_versions (tenant_id, slug, version, manifest_file, \
                         manifest, bundle, sha256, installed_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&v.tenant_id)
                    .bind(&v.slug)
                    .bind(&v.version)
                    .bind(&v.manifest_file)
                    .bind(&v.manifest)
                    .bind(bundle)
                    .bind(&v.sha256)
                    .bind(&v.installed_by)
                    .bind(v.created_at)
                    .execute(&mut tx)
                    .await
                    .map_err(|e| conflict(e, format!("plugin `{}`", v.slug)))?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn plugin_version<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<PluginVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&VERSION_BY_NAME)
                .bind(tenant_id)
                .bind(slug)
                .bind(version)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn plugin_versions<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
    ) -> StoreFuture<'a, Vec<PluginVersion>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&VERSIONS_OF_PLUGIN)
                .bind(tenant_id)
                .bind(slug)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn plugin_bundle<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let row: Option<(Vec<u8>,)> = D::query(
                "SELECT bundle FROM plugin_versions WHERE tenant_id = $1 AND slug = $2 \
                 AND version = $3",
            )
            .bind(tenant_id)
            .bind(slug)
            .bind(version)
            .fetch_optional(&mut conn)
            .await?;
            Ok(row.map(|(b,)| b))
        })
    }

    fn plugin<'a>(&'a self, tenant_id: &'a str, slug: &'a str) -> StoreFuture<'a, Option<Plugin>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&PLUGIN_BY_SLUG)
                .bind(tenant_id)
                .bind(slug)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn plugins<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Plugin>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&PLUGINS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn switch_plugin<'a>(&'a self, s: &'a PluginSwitch<'a>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let p = s.plugin;
            let mut tx = self.write_tx().await?;
            if s.create {
                D::query(&INSERT_PLUGIN)
                    .bind(&p.tenant_id)
                    .bind(&p.slug)
                    .bind(&p.script_id)
                    .bind(&p.version)
                    .bind(p.enabled)
                    .bind(&p.config)
                    .bind(&p.hooks)
                    .bind(p.created_at)
                    .bind(p.updated_at)
                    .execute(&mut tx)
                    .await
                    .map_err(|e| conflict(e, format!("plugin `{}`", p.slug)))?;
            } else {
                let updated = D::query(
                    "UPDATE plugins SET version = $1, enabled = $2, config = $3, hooks = $4, \
                     updated_at = $5 WHERE tenant_id = $6 AND slug = $7",
                )
                .bind(&p.version)
                .bind(p.enabled)
                .bind(&p.config)
                .bind(&p.hooks)
                .bind(p.updated_at)
                .bind(&p.tenant_id)
                .bind(&p.slug)
                .execute(&mut tx)
                .await?;
                if updated != 1 {
                    return Err(StoreError::NotFound(format!("plugin `{}`", p.slug)));
                }
            }
            let live = D::query(
                "UPDATE scripts SET live_seq = (SELECT seq FROM script_versions \
                 WHERE script_id = $1 AND tenant_id = $2 AND version = $3), updated_at = $4 \
                 WHERE id = $1 AND tenant_id = $2 AND EXISTS (SELECT 1 FROM script_versions \
                 WHERE script_id = $1 AND tenant_id = $2 AND version = $3)",
            )
            .bind(&p.script_id)
            .bind(&p.tenant_id)
            .bind(&p.version)
            .bind(p.updated_at)
            .execute(&mut tx)
            .await?;
            if live != 1 {
                return Err(StoreError::NotFound(format!(
                    "version {} of plugin `{}`",
                    p.version, p.slug
                )));
            }
            let prefix = plugin_schedule_prefix(&p.slug);
            D::query(
                "DELETE FROM schedules WHERE tenant_id = $1 \
                 AND substr(name, 1, CAST($2 AS INTEGER)) = $3",
            )
            .bind(&p.tenant_id)
            .bind(prefix.chars().count() as i64)
            .bind(&prefix)
            .execute(&mut tx)
            .await?;
            for sc in s.schedules {
                D::query(&INSERT_SCHEDULE)
                    .bind(&sc.id)
                    .bind(&sc.tenant_id)
                    .bind(&sc.name)
                    .bind(&sc.script_name)
                    .bind(&sc.cron)
                    .bind(&sc.timezone)
                    .bind(&sc.input)
                    .bind(sc.missed.as_str())
                    .bind(sc.enabled)
                    .bind(sc.next_fire_at)
                    .bind(sc.last_fired_at)
                    .bind(sc.created_at)
                    .bind(sc.updated_at)
                    .execute(&mut tx)
                    .await
                    .map_err(|e| conflict(e, format!("schedule `{}`", sc.name)))?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn uninstall_plugin<'a>(
        &'a self,
        tenant_id: &'a str,
        slug: &'a str,
        kv_prefix: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            let row: Option<(String,)> =
                D::query("SELECT script_id FROM plugins WHERE tenant_id = $1 AND slug = $2")
                    .bind(tenant_id)
                    .bind(slug)
                    .fetch_optional(&mut tx)
                    .await?;
            let Some((script_id,)) = row else {
                tx.commit().await?;
                return Ok(false);
            };
            let prefix = plugin_schedule_prefix(slug);
            D::query(
                "DELETE FROM schedules WHERE tenant_id = $1 \
                 AND substr(name, 1, CAST($2 AS INTEGER)) = $3",
            )
            .bind(tenant_id)
            .bind(prefix.chars().count() as i64)
            .bind(&prefix)
            .execute(&mut tx)
            .await?;
            for sql in [
                "DELETE FROM plugins WHERE tenant_id = $1 AND slug = $2",
                "DELETE FROM plugin_versions WHERE tenant_id = $1 AND slug = $2",
            ] {
                D::query(sql)
                    .bind(tenant_id)
                    .bind(slug)
                    .execute(&mut tx)
                    .await?;
            }
            for sql in [
                "DELETE FROM script_versions WHERE tenant_id = $1 AND script_id = $2",
                "DELETE FROM scripts WHERE tenant_id = $1 AND id = $2",
            ] {
                D::query(sql)
                    .bind(tenant_id)
                    .bind(&script_id)
                    .execute(&mut tx)
                    .await?;
            }
            // Its key-value entries, and the bytes they counted for.
            Self::kv_lock_usage(&mut tx, tenant_id, crate::now_ms()).await?;
            let n = kv_prefix.chars().count() as i64;
            let (bytes,): (Option<i64>,) = D::query(
                "SELECT CAST(SUM(bytes) AS BIGINT) FROM kv WHERE tenant_id = $1 \
                 AND substr(key, 1, CAST($2 AS INTEGER)) = $3",
            )
            .bind(tenant_id)
            .bind(n)
            .bind(kv_prefix)
            .fetch_one(&mut tx)
            .await?;
            if let Some(bytes) = bytes {
                D::query(
                    "DELETE FROM kv WHERE tenant_id = $1 \
                     AND substr(key, 1, CAST($2 AS INTEGER)) = $3",
                )
                .bind(tenant_id)
                .bind(n)
                .bind(kv_prefix)
                .execute(&mut tx)
                .await?;
                Self::kv_add_usage(&mut tx, tenant_id, -bytes).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
