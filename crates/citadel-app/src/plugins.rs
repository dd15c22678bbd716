//! Plugins: a tenant's extensions. A bundle is validated as a whole
//! (citadel-plugin), its permissions checked against the tenant's ceiling,
//! and installed disabled; the tenant sets its configuration and secrets,
//! enables it, upgrades it to a higher version, rolls it back to an earlier
//! one, disables or uninstalls it. Each step is audited and published as a
//! `plugin.*` event.
//!
//! A plugin's handler module is the catalog entry `plugins/{slug}` (kind
//! `plugin`, one version per plugin version, the live one the version in
//! use), so its hooks (queued runs for matching events, see the engine's
//! `events.rs`), routes (`/ext/{tenant}/{slug}/…`, runs waited for here) and
//! jobs (schedules `plugins/{slug}/{job}`) are runs like any other: the same
//! sandbox, limits, run records and kill switches. Its key-value entries
//! and secrets live in its own namespace of the tenant's (the gateway maps
//! them), and go with it when it is uninstalled.
//!
//! Managing plugins needs `plugin.install`; reading them `script.read` on
//! `plugins/{slug}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use citadel_domain::{Missed, ScriptKind, Trigger, VersionState};
use citadel_engine::{Engine, JobRequest, LiveScript, RunSpec};
use citadel_plugin::{Diagnostic, Manifest, Method, RouteAuth, RouteMatch, ValidPlugin};
use citadel_scripts::{
    CronSchedule, LimitOverrides, SemVer, TenantSettings, content_hash, plugin_entry,
    plugin_kv_prefix, plugin_secret_name,
};
use citadel_secrets::VaultError;
use citadel_store::{
    KvOutcome, KvWrite, NewVersion, Plugin, PluginSwitch, PluginVersion, Run, SaveOutcome,
    Schedule, SecretChange, SecretMeta, StoreError, new_id, new_time_ordered_id, now_ms,
    plugin_schedule_prefix,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::access::Permission;
use crate::error::ErrorCode;
use crate::{App, AppError, AppResult, Caller};

/// The largest bundle accepted (as uploaded).
pub const MAX_BUNDLE_BYTES: usize = 16 << 20;
/// The largest request body a route handler is given.
pub const MAX_ROUTE_BODY_BYTES: usize = 1 << 20;
/// Response headers a route handler may set.
const MAX_RESPONSE_HEADERS: usize = 64;

/// An installed plugin as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginView {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The version in use.
    pub version: String,
    pub enabled: bool,
    pub config: Value,
    /// The version in use's manifest.
    pub manifest: Manifest,
    /// Its secrets and whether each is set (never a value).
    pub secrets: Vec<SecretState>,
    /// Its jobs' schedules.
    pub jobs: Vec<JobState>,
    /// What keeps it from being enabled (config problems, unset secrets).
    pub problems: Vec<String>,
    /// Warnings from validating the uploaded bundle (installs and upgrades).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Diagnostic>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretState {
    pub name: String,
    pub set: bool,
    /// The secret's version when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobState {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    /// The schedule that fires it (`plugins/{slug}/{job}`).
    pub schedule: String,
    /// Unix ms of its next occurrence, while the plugin is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_at: Option<i64>,
}

/// A version of a plugin, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub version: String,
    pub sha256: String,
    pub installed_by: String,
    pub created_at: i64,
    /// True for the version in use.
    pub current: bool,
}

/// Manifests already read, by tenant, slug and version (a version never
/// changes once stored).
#[derive(Default)]
pub(crate) struct Manifests(Mutex<HashMap<(String, String, String), Arc<Manifest>>>);

impl Manifests {
    const CAPACITY: usize = 1024;

    fn get(&self, key: &(String, String, String)) -> Option<Arc<Manifest>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: (String, String, String), m: Arc<Manifest>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(key, m);
    }
}

/// A bundle validated, or `rejected` with every located diagnostic.
fn read_bundle(bytes: &[u8]) -> AppResult<ValidPlugin> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!("a bundle is at most {MAX_BUNDLE_BYTES} bytes"),
        ));
    }
    let limits = citadel_plugin::Limits::default();
    let diagnostics = match citadel_plugin::Bundle::from_bytes(bytes, &limits) {
        Ok(bundle) => match citadel_plugin::validate(&bundle) {
            Ok(valid) => return Ok(valid),
            Err(d) => d,
        },
        Err(d) => vec![d],
    };
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
    let first = errors.first().map_or(String::new(), |d| format!(": {d}"));
    Err(AppError::new(
        ErrorCode::Rejected,
        format!(
            "the bundle is not a valid plugin ({} error{}){first}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
    )
    .with_details(json!({ "diagnostics": diagnostics })))
}

/// Whether a host pattern of a plugin is within the tenant's `http_allow`.
fn host_allowed(pattern: &str, allow: &[String]) -> bool {
    let bare = |p: &str| -> String {
        let p = p
            .strip_prefix("https://")
            .or_else(|| p.strip_prefix("http://"))
            .unwrap_or(p);
        p.to_owned()
    };
    let wanted = bare(pattern);
    allow.iter().any(|a| {
        if a == "*" || a == pattern || bare(a) == wanted {
            return true;
        }
        match bare(a).strip_prefix("*.") {
            Some(domain) => wanted
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.') && !rest.starts_with('*')),
            None => false,
        }
    })
}

/// Refuses permissions beyond the tenant's ceiling (its
/// `plugin_capabilities` and `http_allow`), and route permissions that are
/// not permissions.
fn check_ceiling(settings: &TenantSettings, manifest: &Manifest) -> AppResult<()> {
    let mut beyond = Vec::new();
    if let Some(allowed) = &settings.plugin_capabilities {
        for capability in manifest.permissions.grants().iter() {
            if !allowed.iter().any(|a| a == capability.name()) {
                beyond.push(format!(
                    "capability `{}` (plugin_capabilities allows {})",
                    capability.name(),
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ));
            }
        }
    }
    if let (Some(allow), Some(http)) = (&settings.http_allow, &manifest.permissions.http) {
        for host in &http.allow {
            if !host_allowed(host, allow) {
                beyond.push(format!(
                    "http host `{host}` (not in the tenant's http_allow)"
                ));
            }
        }
    }
    for route in &manifest.routes {
        if let RouteAuth::Token { permission } = &route.auth
            && permission.parse::<Permission>().is_err()
        {
            beyond.push(format!(
                "route {} {}: `{permission}` is not a permission",
                route.method.as_str(),
                route.path
            ));
        }
    }
    if beyond.is_empty() {
        return Ok(());
    }
    Err(AppError::forbidden_with(
        format!(
            "the plugin asks for more than the tenant allows: {}",
            beyond.join("; ")
        ),
        json!({ "beyond": beyond }),
    ))
}

/// The configuration with the schema's top-level defaults filled in.
fn with_defaults(schema: Option<&Value>, config: &Value) -> Value {
    let mut out = config.as_object().cloned().unwrap_or_default();
    if let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (key, prop) in props {
            if let Some(default) = prop.get("default")
                && !out.contains_key(key)
            {
                out.insert(key.clone(), default.clone());
            }
        }
    }
    Value::Object(out)
}

fn config_problems(manifest: &Manifest, config: &Value) -> Vec<String> {
    match &manifest.config {
        Some(schema) => citadel_plugin::validate_config(schema, config),
        None if config.as_object().is_some_and(Map::is_empty) => Vec::new(),
        None => vec!["the plugin takes no configuration".into()],
    }
}

/// The event patterns the handler module hooks.
fn hooks_of(plugin: &ValidPlugin) -> Vec<String> {
    let mut hooks: Vec<String> = plugin
        .registrations
        .iter()
        .filter(|r| r.kind == citadel_plugin::RegistrationKind::Hook)
        .map(|r| r.name.clone())
        .collect();
    hooks.dedup();
    hooks
}

/// The schedules of a plugin's jobs, for its row as it will be.
fn schedules_of(manifest: &Manifest, plugin: &Plugin, at: i64) -> AppResult<Vec<Schedule>> {
    let config: Value = serde_json::from_str(&plugin.config).unwrap_or_default();
    manifest
        .jobs
        .iter()
        .map(|job| {
            let cron = CronSchedule::parse(&job.cron, &job.timezone)
                .map_err(|e| AppError::invalid(format!("job `{}`: {e}", job.name)))?;
            Ok(Schedule {
                id: new_id("sch"),
                tenant_id: plugin.tenant_id.clone(),
                name: format!("{}{}", plugin_schedule_prefix(&plugin.slug), job.name),
                script_name: plugin_entry(&plugin.slug),
                cron: job.cron.clone(),
                timezone: job.timezone.clone(),
                input: citadel_plugin::job_input(&job.name, config.clone()).to_string(),
                missed: Missed::Skip,
                enabled: plugin.enabled,
                next_fire_at: cron.next_after(at).unwrap_or(i64::MAX),
                last_fired_at: None,
                created_at: at,
                updated_at: at,
            })
        })
        .collect()
}

/// The tenant's plugin `slug`, or `not_found`.
async fn installed(app: &App, tenant: &str, slug: &str) -> AppResult<Plugin> {
    app.store
        .plugin(tenant, slug)
        .await?
        .ok_or_else(|| AppError::not_found(format!("plugin `{slug}` is not installed")))
}

/// The preamble of managing a plugin: the caller's tenant once it holds
/// `plugin.install`, the plugin, and the manifest of its version in use.
async fn managed(
    app: &App,
    caller: &Caller,
    slug: &str,
) -> AppResult<(String, Plugin, Arc<Manifest>)> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let plugin = installed(app, &tenant, slug).await?;
    let m = manifest_of(app, &tenant, slug, &plugin.version).await?;
    Ok((tenant, plugin, m))
}

/// The manifest of one stored version.
async fn manifest_of(
    app: &App,
    tenant: &str,
    slug: &str,
    version: &str,
) -> AppResult<Arc<Manifest>> {
    let key = (tenant.to_owned(), slug.to_owned(), version.to_owned());
    if let Some(m) = app.manifests.get(&key) {
        return Ok(m);
    }
    let stored = app
        .store
        .plugin_version(tenant, slug, version)
        .await?
        .ok_or_else(|| AppError::not_found(format!("plugin `{slug}` has no version {version}")))?;
    let manifest = Manifest::parse(&stored.manifest_file, &stored.manifest).map_err(|d| {
        AppError::internal(format!(
            "the stored manifest of {slug} {version} does not decode: {}",
            d.first().map(ToString::to_string).unwrap_or_default()
        ))
    })?;
    let manifest = Arc::new(manifest);
    app.manifests.put(key, manifest.clone());
    Ok(manifest)
}

/// Stores an uploaded version: its bundle and manifest, and its handler
/// module as a version of the plugin's entry. Returns the entry's id.
async fn store_version(
    app: &App,
    caller: &Caller,
    tenant: &str,
    valid: &ValidPlugin,
) -> AppResult<String> {
    let engine = app.engine()?;
    let m = &valid.manifest;
    let version = m.version.to_string();
    let entry = plugin_entry(&m.slug);
    if let Some(existing) = app.store.script(tenant, &entry).await?
        && existing.kind != ScriptKind::Plugin
    {
        return Err(AppError::conflict(format!(
            "the slug `{}` collides with the {} `{entry}`",
            m.slug, existing.kind
        )));
    }
    let source = citadel_plugin::handler_module(valid);
    let language = m.language.analyzer();
    let settings = engine.settings(tenant).await?;
    let diagnostics = settings.policy.apply(&engine.analyze(&source, language));
    if settings.policy.blocks(&diagnostics) {
        return Err(AppError::new(
            ErrorCode::Rejected,
            "the tenant's policy refuses the plugin's entry module",
        )
        .with_details(json!({ "diagnostics": diagnostics })));
    }
    let bundle = citadel_plugin::pack(&valid.bundle);
    let sha256: String = Sha256::digest(&bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let manifest_text = valid
        .bundle
        .manifest_text()
        .map_err(|d| AppError::internal(d.to_string()))?;
    let row = PluginVersion {
        tenant_id: tenant.to_owned(),
        slug: m.slug.clone(),
        version: version.clone(),
        manifest_file: valid.bundle.manifest.clone(),
        manifest: manifest_text.to_owned(),
        sha256,
        installed_by: caller.principal.actor().to_owned(),
        created_at: now_ms(),
    };
    app.store
        .put_plugin_version(&row, &bundle)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AppError::conflict(format!(
                "plugin `{}` has a version {version} with other content; give the new bundle a higher version",
                m.slug
            )),
            other => other.into(),
        })?;
    // The entry already has this version when the same bundle was stored
    // before (a reinstall of a version, a retried upload).
    if let Some(script) = app.store.script(tenant, &entry).await?
        && app
            .store
            .version(tenant, &script.id, &version)
            .await?
            .is_some()
    {
        return Ok(script.id);
    }
    let limits = LimitOverrides::default();
    let new = NewVersion {
        tenant_id: tenant.to_owned(),
        name: entry.clone(),
        kind: ScriptKind::Plugin,
        hash: content_hash(&source, language.as_str(), &m.permissions, &limits),
        language,
        capabilities: serde_json::to_string(&m.permissions).map_err(AppError::internal)?,
        limits: serde_json::to_string(&limits).map_err(AppError::internal)?,
        diagnostics: serde_json::to_string(&diagnostics).map_err(AppError::internal)?,
        source,
        change_note: format!("plugin {} {version}", m.slug),
        author: caller.principal.person.clone(),
        state: VersionState::Approved,
        make_live: false,
    };
    let next = |_: Option<&str>| version.clone();
    match app.store.save_version(&new, &next).await {
        Ok(SaveOutcome::Created(_) | SaveOutcome::Unchanged(_)) => {}
        Ok(SaveOutcome::OtherKind(kind)) => {
            return Err(AppError::conflict(format!(
                "the slug `{}` collides with the {kind} `{entry}`",
                m.slug
            )));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(AppError::conflict(
                "another change of this plugin won the race; retry",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let script = app
        .store
        .script(tenant, &entry)
        .await?
        .ok_or_else(|| AppError::internal(format!("`{entry}` vanished after its save")))?;
    Ok(script.id)
}

/// Whether each of the manifest's secrets is set.
async fn secret_states(
    app: &App,
    tenant: &str,
    slug: &str,
    m: &Manifest,
) -> AppResult<Vec<SecretState>> {
    let mut out = Vec::with_capacity(m.secrets.len());
    for name in &m.secrets {
        let meta = app
            .store
            .secret(tenant, &plugin_secret_name(slug, name))
            .await?;
        out.push(SecretState {
            name: name.clone(),
            set: meta.is_some(),
            version: meta.map(|s| s.version),
        });
    }
    Ok(out)
}

/// What keeps a plugin from running: configuration problems and unset
/// secrets.
fn problems(m: &Manifest, config: &Value, secrets: &[SecretState]) -> Vec<String> {
    let mut out: Vec<String> = config_problems(m, config)
        .into_iter()
        .map(|p| format!("config: {p}"))
        .collect();
    for s in secrets.iter().filter(|s| !s.set) {
        out.push(format!(
            "secret `{}` is not set (POST /v1/plugins/{}/secrets)",
            s.name, m.slug
        ));
    }
    out
}

async fn view(app: &App, plugin: Plugin, warnings: Vec<Diagnostic>) -> AppResult<PluginView> {
    let schedules = app.store.list_schedules(&plugin.tenant_id).await?;
    view_with(app, plugin, warnings, &schedules).await
}

/// [`view`] with the tenant's schedules already read (a listing reads them
/// once for all its plugins).
async fn view_with(
    app: &App,
    plugin: Plugin,
    warnings: Vec<Diagnostic>,
    schedules: &[Schedule],
) -> AppResult<PluginView> {
    let m = manifest_of(app, &plugin.tenant_id, &plugin.slug, &plugin.version).await?;
    let config: Value = serde_json::from_str(&plugin.config).unwrap_or_default();
    let secrets = secret_states(app, &plugin.tenant_id, &plugin.slug, &m).await?;
    let prefix = plugin_schedule_prefix(&plugin.slug);
    let jobs = m
        .jobs
        .iter()
        .map(|j| {
            let schedule = format!("{prefix}{}", j.name);
            let next_fire_at = schedules
                .iter()
                .find(|s| s.name == schedule && s.enabled)
                .map(|s| s.next_fire_at);
            JobState {
                name: j.name.clone(),
                cron: j.cron.clone(),
                timezone: j.timezone.clone(),
                schedule,
                next_fire_at,
            }
        })
        .collect();
    Ok(PluginView {
        slug: plugin.slug.clone(),
        name: m.name.clone(),
        description: m.description.clone(),
        version: plugin.version.clone(),
        enabled: plugin.enabled,
        problems: problems(&m, &config, &secrets),
        config,
        manifest: (*m).clone(),
        secrets,
        jobs,
        warnings,
        created_at: plugin.created_at,
        updated_at: plugin.updated_at,
    })
}

/// Writes a plugin's new state with its schedules, then forgets the cached
/// live version of its entry.
async fn switch(app: &App, manifest: &Manifest, plugin: &Plugin, create: bool) -> AppResult<()> {
    let schedules = schedules_of(manifest, plugin, plugin.updated_at)?;
    app.store
        .switch_plugin(&PluginSwitch {
            plugin,
            schedules: &schedules,
            create,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) if create => AppError::conflict(format!(
                "plugin `{}` is installed already; upgrade it with POST /v1/plugins/{}/versions",
                plugin.slug, plugin.slug
            )),
            other => other.into(),
        })?;
    if let Ok(engine) = app.engine() {
        engine.invalidate_live(&plugin.tenant_id, &plugin_entry(&plugin.slug));
        engine.forget_extensions(&plugin.tenant_id);
    }
    Ok(())
}

/// Audits a change and publishes it as event `plugin.{what}`.
async fn changed(
    app: &App,
    caller: &Caller,
    tenant: &str,
    action: &str,
    event: &str,
    slug: &str,
    details: Value,
) -> AppResult<()> {
    caller
        .record_change(
            app,
            tenant,
            action,
            &format!("plugin:{slug}"),
            details.clone(),
        )
        .await?;
    if let Ok(engine) = app.engine() {
        let mut data = details;
        if let Some(obj) = data.as_object_mut() {
            obj.insert("slug".into(), Value::String(slug.to_owned()));
        }
        if let Err(e) = engine
            .publish(tenant, event, data.to_string(), 0, caller.principal.actor())
            .await
        {
            tracing::warn!(error = %e, event, "cannot publish a plugin event");
        }
    }
    Ok(())
}

/// Installs a plugin from a bundle (`.zip` or `.tar.gz` bytes), disabled,
/// with its configuration's defaults.
pub async fn install(app: &App, caller: &Caller, bytes: &[u8]) -> AppResult<PluginView> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let engine = app.engine()?;
    let valid = read_bundle(bytes)?;
    let m = &valid.manifest;
    if app.store.plugin(&tenant, &m.slug).await?.is_some() {
        return Err(AppError::conflict(format!(
            "plugin `{}` is installed already; upgrade it with POST /v1/plugins/{}/versions",
            m.slug, m.slug
        )));
    }
    check_ceiling(&*engine.settings(&tenant).await?, m)?;
    let script_id = store_version(app, caller, &tenant, &valid).await?;
    let now = now_ms();
    let plugin = Plugin {
        tenant_id: tenant.clone(),
        slug: m.slug.clone(),
        script_id,
        version: m.version.to_string(),
        enabled: false,
        config: with_defaults(m.config.as_ref(), &json!({})).to_string(),
        hooks: serde_json::to_string(&hooks_of(&valid)).map_err(AppError::internal)?,
        created_at: now,
        updated_at: now,
    };
    switch(app, m, &plugin, true).await?;
    changed(
        app,
        caller,
        &tenant,
        "plugin.install",
        "plugin.installed",
        &m.slug,
        json!({ "version": plugin.version }),
    )
    .await?;
    view(app, plugin, valid.warnings.clone()).await
}

/// Upgrades a plugin to a bundle of a higher version: its configuration
/// (with the new version's defaults) and secrets are kept, its routes,
/// hooks and schedules switch at once. An enabled plugin whose
/// configuration does not fit the new version's schema is not switched.
pub async fn upgrade(
    app: &App,
    caller: &Caller,
    slug: &str,
    bytes: &[u8],
) -> AppResult<PluginView> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let engine = app.engine()?;
    let current = installed(app, &tenant, slug).await?;
    let valid = read_bundle(bytes)?;
    let m = &valid.manifest;
    if m.slug != slug {
        return Err(AppError::invalid(format!(
            "the bundle is plugin `{}`, not `{slug}`",
            m.slug
        )));
    }
    let from = SemVer::parse(&current.version);
    if from.is_some_and(|v| m.version <= v) {
        return Err(AppError::conflict(format!(
            "an upgrade needs a version above {} (the bundle is {}); roll back with POST /v1/plugins/{slug}/rollback",
            current.version, m.version
        )));
    }
    check_ceiling(&*engine.settings(&tenant).await?, m)?;
    let config = with_defaults(
        m.config.as_ref(),
        &serde_json::from_str(&current.config).unwrap_or_default(),
    );
    if current.enabled {
        refuse_unready(app, &tenant, m, &config).await?;
    }
    store_version(app, caller, &tenant, &valid).await?;
    let plugin = Plugin {
        version: m.version.to_string(),
        config: config.to_string(),
        hooks: serde_json::to_string(&hooks_of(&valid)).map_err(AppError::internal)?,
        updated_at: now_ms(),
        ..current.clone()
    };
    switch(app, m, &plugin, false).await?;
    changed(
        app,
        caller,
        &tenant,
        "plugin.upgrade",
        "plugin.upgraded",
        slug,
        json!({ "from": current.version, "to": plugin.version }),
    )
    .await?;
    view(app, plugin, valid.warnings.clone()).await
}

/// Refuses a plugin that could not run: configuration problems or unset
/// secrets (`invalid_state`, each problem in the details).
async fn refuse_unready(app: &App, tenant: &str, m: &Manifest, config: &Value) -> AppResult<()> {
    let secrets = secret_states(app, tenant, &m.slug, m).await?;
    let found = problems(m, config, &secrets);
    if found.is_empty() {
        return Ok(());
    }
    Err(AppError::new(
        ErrorCode::InvalidState,
        format!("plugin `{}` cannot run yet: {}", m.slug, found.join("; ")),
    )
    .with_details(json!({ "problems": found })))
}

/// Rolls a plugin back (or forward) to one of its stored versions.
pub async fn rollback(
    app: &App,
    caller: &Caller,
    slug: &str,
    version: &str,
) -> AppResult<PluginView> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let current = installed(app, &tenant, slug).await?;
    if SemVer::parse(version).is_none() {
        return Err(AppError::invalid(format!(
            "`{version}` is not a version (MAJOR.MINOR.PATCH)"
        )));
    }
    let m = manifest_of(app, &tenant, slug, version).await?;
    let config = with_defaults(
        m.config.as_ref(),
        &serde_json::from_str(&current.config).unwrap_or_default(),
    );
    if current.enabled {
        refuse_unready(app, &tenant, &m, &config).await?;
    }
    // The version's hooks: read from its handler module's registrations
    // again would need the bundle; its manifest's events are what it may
    // hook, and the stored module was validated against them.
    let bundle = app
        .store
        .plugin_bundle(&tenant, slug, version)
        .await?
        .ok_or_else(|| AppError::not_found(format!("plugin `{slug}` has no version {version}")))?;
    let valid = read_bundle(&bundle)?;
    let plugin = Plugin {
        version: version.to_owned(),
        config: config.to_string(),
        hooks: serde_json::to_string(&hooks_of(&valid)).map_err(AppError::internal)?,
        updated_at: now_ms(),
        ..current.clone()
    };
    switch(app, &m, &plugin, false).await?;
    changed(
        app,
        caller,
        &tenant,
        "plugin.rollback",
        "plugin.rolled_back",
        slug,
        json!({ "from": current.version, "to": version }),
    )
    .await?;
    view(app, plugin, Vec::new()).await
}

/// Enables or disables a plugin. Enabling needs a valid configuration and
/// every secret set.
pub async fn set_enabled(
    app: &App,
    caller: &Caller,
    slug: &str,
    enabled: bool,
) -> AppResult<PluginView> {
    let (tenant, current, m) = managed(app, caller, slug).await?;
    if enabled {
        let config: Value = serde_json::from_str(&current.config).unwrap_or_default();
        refuse_unready(app, &tenant, &m, &config).await?;
    }
    if current.enabled == enabled {
        return view(app, current, Vec::new()).await;
    }
    let plugin = Plugin {
        enabled,
        updated_at: now_ms(),
        ..current
    };
    switch(app, &m, &plugin, false).await?;
    let (action, event) = if enabled {
        ("plugin.enable", "plugin.enabled")
    } else {
        ("plugin.disable", "plugin.disabled")
    };
    changed(
        app,
        caller,
        &tenant,
        action,
        event,
        slug,
        json!({ "version": plugin.version }),
    )
    .await?;
    view(app, plugin, Vec::new()).await
}

/// Replaces a plugin's configuration (checked against its schema, with the
/// schema's defaults filled in); its jobs' schedules get it at once.
pub async fn configure(
    app: &App,
    caller: &Caller,
    slug: &str,
    config: Value,
) -> AppResult<PluginView> {
    let (tenant, current, m) = managed(app, caller, slug).await?;
    if !config.is_object() {
        return Err(AppError::invalid(
            "a plugin's configuration is a JSON object",
        ));
    }
    let config = with_defaults(m.config.as_ref(), &config);
    let found = config_problems(&m, &config);
    if !found.is_empty() {
        return Err(AppError::invalid(format!(
            "the configuration does not fit the plugin's schema: {}",
            found.join("; ")
        ))
        .with_details(json!({ "problems": found })));
    }
    let plugin = Plugin {
        config: config.to_string(),
        updated_at: now_ms(),
        ..current
    };
    switch(app, &m, &plugin, false).await?;
    // The values are the tenant's; the audit keeps which keys changed.
    let keys: Vec<&String> = config
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    changed(
        app,
        caller,
        &tenant,
        "plugin.configure",
        "plugin.configured",
        slug,
        json!({ "keys": keys }),
    )
    .await?;
    view(app, plugin, Vec::new()).await
}

/// Sets one of a plugin's secrets (creating or rotating the tenant secret
/// that holds it). The value is never answered nor audited.
pub async fn put_secret(
    app: &App,
    caller: &Caller,
    slug: &str,
    name: &str,
    value: &str,
) -> AppResult<PluginView> {
    let (tenant, current, m) = managed(app, caller, slug).await?;
    if !m.secrets.iter().any(|s| s == name) {
        return Err(AppError::invalid(format!(
            "plugin `{slug}` declares no secret `{}` (it declares: {})",
            name.chars().take(64).collect::<String>(),
            if m.secrets.is_empty() {
                "none".to_owned()
            } else {
                m.secrets.join(", ")
            }
        ))
        .with_details(json!({ "field": "name" })));
    }
    crate::secrets::checked_value(value)?;
    let vault = crate::secrets::vault(app)?;
    let stored = plugin_secret_name(slug, name);
    let now = now_ms();
    let meta = SecretMeta {
        tenant_id: tenant.clone(),
        name: stored.clone(),
        description: format!("secret {name} of plugin {slug}"),
        version: 1,
        created_at: now,
        rotated_at: None,
        expires_at: None,
        last_used_at: None,
    };
    let version = match vault.create(&meta, value).await {
        Ok(()) => 1,
        Err(VaultError::Store(StoreError::Conflict(_))) => vault
            .rotate(&tenant, &stored, value, &SecretChange::default(), now)
            .await
            .map_err(crate::secrets::vault_error)?,
        Err(e) => return Err(crate::secrets::vault_error(e)),
    };
    if let Ok(engine) = app.engine() {
        engine.forget_secret(&tenant, &stored);
    }
    caller
        .record_change(
            app,
            &tenant,
            "plugin.secret.set",
            &format!("plugin:{slug}"),
            json!({ "secret": name, "version": version }),
        )
        .await?;
    view(app, current, Vec::new()).await
}

/// Uninstalls a plugin: its schedules, hooks, routes, key-value entries
/// and secrets go with it (its runs stay on record).
pub async fn uninstall(app: &App, caller: &Caller, slug: &str) -> AppResult<()> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let current = installed(app, &tenant, slug).await?;
    let mut secrets = Vec::new();
    for v in app.store.plugin_versions(&tenant, slug).await? {
        if let Ok(m) = manifest_of(app, &tenant, slug, &v.version).await {
            secrets.extend(m.secrets.iter().cloned());
        }
    }
    secrets.sort();
    secrets.dedup();
    if !app
        .store
        .uninstall_plugin(&tenant, slug, &plugin_kv_prefix(slug))
        .await?
    {
        return Err(AppError::not_found(format!(
            "plugin `{slug}` is not installed"
        )));
    }
    for name in &secrets {
        app.store
            .delete_secret(&tenant, &plugin_secret_name(slug, name))
            .await?;
    }
    if let Ok(engine) = app.engine() {
        engine.invalidate_live(&tenant, &plugin_entry(slug));
        engine.forget_extensions(&tenant);
    }
    changed(
        app,
        caller,
        &tenant,
        "plugin.uninstall",
        "plugin.uninstalled",
        slug,
        json!({ "version": current.version, "secrets_deleted": secrets.len() }),
    )
    .await
}

/// The caller's tenant once it may read plugin `slug` (`script.read` on
/// its entry).
async fn readable(app: &App, caller: &Caller, slug: &str) -> AppResult<String> {
    caller
        .tenant_with(app, Permission::ScriptRead, Some(&plugin_entry(slug)))
        .await
}

/// The tenant's plugins the caller may read, by slug.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<PluginView>> {
    let tenant = caller.tenant(app).await?;
    caller
        .require_somewhere(app, Permission::ScriptRead)
        .await?;
    let schedules = app.store.list_schedules(&tenant).await?;
    let mut out = Vec::new();
    for p in app.store.plugins(&tenant).await? {
        if caller
            .principal
            .allows(Permission::ScriptRead, Some(&plugin_entry(&p.slug)))
        {
            out.push(view_with(app, p, Vec::new(), &schedules).await?);
        }
    }
    Ok(out)
}

pub async fn get(app: &App, caller: &Caller, slug: &str) -> AppResult<PluginView> {
    let tenant = readable(app, caller, slug).await?;
    let plugin = installed(app, &tenant, slug).await?;
    view(app, plugin, Vec::new()).await
}

/// A plugin's stored versions, oldest first.
pub async fn versions(app: &App, caller: &Caller, slug: &str) -> AppResult<Vec<VersionView>> {
    let tenant = readable(app, caller, slug).await?;
    let plugin = installed(app, &tenant, slug).await?;
    Ok(app
        .store
        .plugin_versions(&tenant, slug)
        .await?
        .into_iter()
        .map(|v| VersionView {
            current: v.version == plugin.version,
            version: v.version,
            sha256: v.sha256,
            installed_by: v.installed_by,
            created_at: v.created_at,
        })
        .collect())
}

/// The summary `GET /v1/plugins/status` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub installed: usize,
    pub enabled: usize,
    /// Outgoing webhook endpoints enabled.
    pub webhooks_active: usize,
    /// Jobs of enabled plugins, each a schedule.
    pub jobs_scheduled: usize,
    pub plugins: Vec<PluginStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub slug: String,
    pub version: String,
    pub enabled: bool,
    pub hooks: usize,
    pub routes: usize,
    pub jobs: usize,
    /// What keeps it from running (empty when it can).
    pub problems: Vec<String>,
}

pub async fn status(app: &App, caller: &Caller) -> AppResult<Status> {
    let plugins = list(app, caller).await?;
    let enabled = plugins.iter().filter(|p| p.enabled).count();
    let tenant = caller.tenant(app).await?;
    let webhooks_active = app
        .store
        .endpoints(&tenant)
        .await?
        .iter()
        .filter(|e| e.enabled)
        .count();
    let jobs_scheduled = plugins
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.manifest.jobs.len())
        .sum();
    Ok(Status {
        installed: plugins.len(),
        enabled,
        webhooks_active,
        jobs_scheduled,
        plugins: plugins
            .into_iter()
            .map(|p| PluginStatus {
                hooks: p.manifest.events.len(),
                routes: p.manifest.routes.len(),
                jobs: p.manifest.jobs.len(),
                slug: p.slug,
                version: p.version,
                enabled: p.enabled,
                problems: p.problems,
            })
            .collect(),
    })
}

/// The live version of a plugin's entry, which is the version in use.
async fn live_of(engine: &Engine, plugin: &Plugin) -> AppResult<Arc<LiveScript>> {
    engine
        .live(&plugin.tenant_id, &plugin_entry(&plugin.slug))
        .await?
        .ok_or_else(|| {
            AppError::internal(format!("plugin `{}` has no version in use", plugin.slug))
        })
}

/// Queues a run of one of a plugin's jobs now (as its schedule would).
pub async fn run_job(app: &App, caller: &Caller, slug: &str, job: &str) -> AppResult<String> {
    let engine = app.engine()?;
    let (tenant, plugin, m) = managed(app, caller, slug).await?;
    if !m.jobs.iter().any(|j| j.name == job) {
        return Err(AppError::not_found(format!(
            "plugin `{slug}` has no job `{job}`"
        )));
    }
    if !plugin.enabled {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            format!("plugin `{slug}` is disabled; enable it first"),
        ));
    }
    let config: Value = serde_json::from_str(&plugin.config).unwrap_or_default();
    let spec = RunSpec {
        tenant_id: tenant.clone(),
        live: live_of(engine, &plugin).await?,
        input_json: citadel_plugin::job_input(job, config).to_string(),
        trigger: Trigger::Manual,
        principal: Some(caller.principal.actor().to_owned()),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let (run_id, _) = engine
        .enqueue_run(spec, JobRequest::default())
        .await
        .map_err(|e| crate::runs::refusal(e, &plugin_entry(slug)))?;
    caller
        .record_change(
            app,
            &tenant,
            "plugin.job.run",
            &format!("plugin:{slug}"),
            json!({ "job": job, "run_id": run_id }),
        )
        .await?;
    Ok(run_id)
}

/// What one plugin's hooks did with a test event.
#[derive(Debug, Clone, Serialize)]
pub struct HookOutcome {
    pub slug: String,
    /// The hooks that matched (they ran in one run).
    pub hooks: Vec<String>,
    pub run_id: String,
    pub status: String,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub logs: Value,
    pub duration_ms: Option<i64>,
}

/// Delivers a synthetic event to the hooks of the tenant's enabled plugins
/// (or of plugin `only`, enabled or not) and waits for what each did. The
/// event is not stored and reaches no subscription; the hooks run with
/// their grants as they would for a real event.
pub async fn test_event(
    app: &App,
    caller: &Caller,
    event_type: &str,
    data: Value,
    only: Option<&str>,
) -> AppResult<Vec<HookOutcome>> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    let engine = app.engine()?;
    citadel_engine::validate_event_type(event_type).map_err(AppError::invalid)?;
    let plugins = match only {
        Some(slug) => vec![installed(app, &tenant, slug).await?],
        None => app
            .store
            .plugins(&tenant)
            .await?
            .into_iter()
            .filter(|p| p.enabled)
            .collect(),
    };
    let id = new_time_ordered_id("evt");
    let mut out = Vec::new();
    for plugin in plugins {
        let hooks: Vec<String> = serde_json::from_str::<Vec<String>>(&plugin.hooks)
            .unwrap_or_default()
            .into_iter()
            .filter(|h| citadel_plugin::event_matches(h, event_type))
            .collect();
        if hooks.is_empty() {
            continue;
        }
        let config: Value = serde_json::from_str(&plugin.config).unwrap_or_default();
        let input = citadel_plugin::hook_input(
            &hooks,
            json!({ "id": id, "type": event_type, "data": data, "test": true }),
            config,
        );
        let spec = RunSpec {
            tenant_id: tenant.clone(),
            live: live_of(engine, &plugin).await?,
            input_json: input.to_string(),
            trigger: Trigger::Event,
            principal: Some(caller.principal.actor().to_owned()),
            timeout_ms: None,
            run_id: None,
            created_at: None,
        };
        let run = engine
            .run_sync(spec)
            .await
            .map_err(|e| crate::runs::refusal(e, &plugin_entry(&plugin.slug)))?;
        out.push(HookOutcome {
            slug: plugin.slug.clone(),
            hooks,
            status: run.status.as_str().to_owned(),
            result: run
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            error: run
                .error
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            logs: serde_json::from_str(&run.logs).unwrap_or_default(),
            duration_ms: run.duration_ms,
            run_id: run.id,
        });
    }
    Ok(out)
}

/// A request to a plugin's route, as the HTTP edge received it.
#[derive(Debug, Clone)]
pub struct RouteRequest {
    /// The tenant's name (as in `/ext/{tenant}/…`).
    pub tenant: String,
    pub slug: String,
    pub method: String,
    /// The path below the plugin (`/messages/42`).
    pub path: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// Header names lower case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The `Authorization` header, for `token` routes.
    pub authorization: Option<String>,
    /// What failed authentications count against.
    pub source: String,
    pub request_id: String,
}

/// A route handler's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteResponse {
    pub status: u16,
    /// Lower-case names, `content-type` always among them when there is a
    /// body.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The run that answered.
    pub run_id: String,
}

/// Headers a handler's response may not set: the server's framing and
/// connection management, and cookies of Citadel's own origin.
const RESERVED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Runs the route handler a request reaches and answers its response.
pub async fn call_route(app: &App, req: RouteRequest) -> AppResult<RouteResponse> {
    let engine = app.engine()?;
    let unknown = || {
        AppError::not_found(format!(
            "no plugin route at /ext/{}/{}{}",
            req.tenant, req.slug, req.path
        ))
    };
    // Both cached for the engine's cache TTL: a route is the hot path.
    let Some(tenant) = engine.tenant_named(&req.tenant).await? else {
        return Err(unknown());
    };
    let plugins = engine.tenant_plugins(&tenant.id).await?;
    let Some(plugin) = plugins.iter().find(|p| p.slug == req.slug).cloned() else {
        return Err(unknown());
    };
    if !plugin.enabled {
        return Err(unknown());
    }
    let m = manifest_of(app, &tenant.id, &req.slug, &plugin.version).await?;
    let method = Method::parse(&req.method).ok_or_else(|| {
        AppError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {} is not served", req.method),
        )
    })?;
    let (decl, params) = match citadel_plugin::match_route(&m.routes, method, &req.path) {
        RouteMatch::Found(decl, params) => (decl, params),
        RouteMatch::MethodNotAllowed(allowed) => {
            let allowed: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            return Err(AppError::new(
                ErrorCode::MethodNotAllowed,
                format!(
                    "{} is not served here (allowed: {})",
                    method.as_str(),
                    allowed.join(", ")
                ),
            )
            .with_details(json!({ "allowed": allowed })));
        }
        RouteMatch::NotFound => return Err(unknown()),
    };
    let principal = match &decl.auth {
        RouteAuth::Public => format!("route:{}", req.slug),
        RouteAuth::Token { permission } => {
            let principal =
                crate::authn::authenticate(app, req.authorization.as_deref(), &req.source).await?;
            let caller = Caller {
                principal,
                request_id: req.request_id.clone(),
            };
            let permission: Permission = permission
                .parse()
                .map_err(|_| AppError::internal("a route's permission does not parse"))?;
            let theirs = caller.tenant(app).await?;
            if theirs != tenant.id {
                return Err(AppError::forbidden(Permission::TenantMember));
            }
            caller
                .require(app, permission, Some(&plugin_entry(&req.slug)))
                .await?;
            caller.principal.actor().to_owned()
        }
        RouteAuth::Signature { secret } => {
            verify_signature(app, engine, &tenant.id, &req, secret).await?
        }
    };
    if req.body.len() > MAX_ROUTE_BODY_BYTES {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!("a route's request body is at most {MAX_ROUTE_BODY_BYTES} bytes"),
        ));
    }
    let request = request_json(&req, method, &params);
    let config: Value = serde_json::from_str(&plugin.config).unwrap_or_default();
    let spec = RunSpec {
        tenant_id: tenant.id.clone(),
        live: live_of(engine, &plugin).await?,
        input_json: citadel_plugin::route_input(method, &decl.path, request, config).to_string(),
        trigger: Trigger::Api,
        principal: Some(principal),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let run = engine
        .run_sync(spec)
        .await
        .map_err(|e| crate::runs::refusal(e, &plugin_entry(&req.slug)))?;
    response_of(&run)
}

/// Verifies a `signature` route's Standard Webhooks headers with the
/// plugin's secret, and refuses a message id seen within the tolerance
/// (recorded in the plugin's key-value namespace, so every node sees it).
async fn verify_signature(
    app: &App,
    engine: &Engine,
    tenant: &str,
    req: &RouteRequest,
    secret: &str,
) -> AppResult<String> {
    use citadel_plugin::signature::{self, SignedHeaders};
    let refuse = |code: &str, message: String| {
        AppError::unauthorized(message).with_details(json!({ "reason": code }))
    };
    let headers =
        SignedHeaders::from_pairs(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .map_err(|e| refuse(e.code(), format!("the request is not signed: {}", e.code())))?;
    let now = now_ms();
    let value = crate::secrets::reveal_to_verify(
        app,
        tenant,
        &plugin_secret_name(&req.slug, secret),
        || {
            format!(
                "plugin `{}` has no secret `{secret}` set to verify signatures with",
                req.slug
            )
        },
    )
    .await?;
    signature::verify(
        // A secret being rotated holds the new and the old key.
        &value.split_whitespace().collect::<Vec<_>>(),
        &headers,
        &req.body,
        now / 1000,
        signature::DEFAULT_TOLERANCE,
    )
    .map_err(|e| {
        refuse(
            e.code(),
            format!("the signature does not verify: {}", e.code()),
        )
    })?;
    let id = headers.id;
    if id.is_empty() || id.len() > 256 {
        return Err(refuse(
            "invalid_id",
            "a webhook-id is 1 to 256 bytes".into(),
        ));
    }
    let key = format!("{}webhook-id:{id}", plugin_kv_prefix(&req.slug));
    let tolerance = signature::DEFAULT_TOLERANCE.as_millis() as i64;
    let write = KvWrite {
        tenant_id: tenant,
        key: &key,
        value: "true",
        expires_at: Some(now + 2 * tolerance),
        if_version: Some(0),
        quota_bytes: engine.quotas().kv_bytes as i64,
        now,
    };
    match app.store.kv_set(&write).await? {
        KvOutcome::Done { .. } => Ok(format!("webhook:{id}")),
        KvOutcome::VersionMismatch { .. } => Err(refuse(
            "replayed",
            format!("message `{id}` was delivered already"),
        )),
        KvOutcome::QuotaExceeded { .. } => Err(AppError::new(
            ErrorCode::QuotaExceeded,
            "the tenant's key-value store is full: replays cannot be recorded",
        )),
        KvOutcome::Missing => Err(AppError::internal("a write answered `missing`")),
    }
}

/// The `req` a route handler receives.
fn request_json(req: &RouteRequest, method: Method, params: &[(String, String)]) -> Value {
    let mut query = Map::new();
    for (k, v) in &req.query {
        query
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    let mut headers = Map::new();
    for (k, v) in &req.headers {
        // Credentials stay with the edge.
        if k == "authorization" || k == "cookie" {
            continue;
        }
        headers
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    let is_json = req
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.to_ascii_lowercase().contains("json"));
    let body = if req.body.is_empty() {
        Value::Null
    } else {
        match std::str::from_utf8(&req.body) {
            Ok(text) if is_json => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            }
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::Null,
        }
    };
    let params: Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "method": method.as_str(),
        "path": req.path,
        "params": params,
        "query": query,
        "headers": headers,
        "body": body,
    })
}

/// The HTTP answer of a route's run: its `{status, headers?, body?}`, or a
/// typed error that names the run (never its stack).
fn response_of(run: &Run) -> AppResult<RouteResponse> {
    use citadel_domain::RunStatus;
    let failed = |code: ErrorCode, message: String, error: Option<&str>| {
        AppError::new(code, message).with_details(json!({
            "run_id": run.id,
            "error": error,
        }))
    };
    let error_code = run
        .error
        .as_deref()
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .and_then(|e| e.get("code").and_then(Value::as_str).map(str::to_owned));
    match run.status {
        RunStatus::Succeeded => {}
        RunStatus::TimedOut => {
            return Err(failed(
                ErrorCode::HandlerTimeout,
                "the route handler did not answer in time".into(),
                error_code.as_deref(),
            ));
        }
        _ => {
            let code = error_code.as_deref().unwrap_or("failed");
            let message = match code {
                "result_too_large" => "the route handler's response is too large".to_owned(),
                _ => format!("the route handler failed ({code}); see run {}", run.id),
            };
            return Err(failed(ErrorCode::HandlerFailed, message, Some(code)));
        }
    }
    let invalid = |why: &str| {
        failed(
            ErrorCode::HandlerFailed,
            format!("the route handler's answer is not a response: {why}"),
            Some("invalid_response"),
        )
    };
    let result: Value = run
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let Some(obj) = result.as_object() else {
        return Err(invalid("it answers an object {status, headers?, body?}"));
    };
    let status = obj
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| invalid("`status` is a number from 200 to 599"))? as u16;
    let mut headers: Vec<(String, String)> = Vec::new();
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            if h.len() > MAX_RESPONSE_HEADERS {
                return Err(invalid("at most 64 headers"));
            }
            for (name, value) in h {
                let name = name.to_ascii_lowercase();
                let Some(value) = value.as_str() else {
                    return Err(invalid("header values are strings"));
                };
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                let clean = value
                    .bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
                if !token || !clean {
                    return Err(invalid("a header is a token name with visible ASCII text"));
                }
                if RESERVED_RESPONSE_HEADERS.contains(&name.as_str()) {
                    continue;
                }
                headers.push((name, value.to_owned()));
            }
        }
        Some(_) => return Err(invalid("`headers` is an object of strings")),
    }
    let has_type = headers.iter().any(|(n, _)| n == "content-type");
    let (body, content_type) = match obj.get("body") {
        None | Some(Value::Null) => (Vec::new(), None),
        Some(Value::String(s)) => (s.clone().into_bytes(), Some("text/plain; charset=utf-8")),
        Some(other) => (other.to_string().into_bytes(), Some("application/json")),
    };
    if let Some(ct) = content_type
        && !has_type
    {
        headers.push(("content-type".into(), ct.into()));
    }
    Ok(RouteResponse {
        status,
        headers,
        body,
        run_id: run.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_hosts_within_the_tenants_allow_list() {
        let allow = vec![
            "*.example.com".to_owned(),
            "http://127.0.0.1:9000".to_owned(),
        ];
        assert!(host_allowed("api.example.com", &allow));
        assert!(host_allowed("https://api.example.com", &allow));
        assert!(host_allowed("http://127.0.0.1:9000", &allow));
        assert!(!host_allowed("example.com", &allow));
        assert!(!host_allowed("*.example.com.evil.org", &allow));
        assert!(!host_allowed("evil.org", &allow));
        assert!(!host_allowed("127.0.0.1:9001", &allow));
        assert!(host_allowed("anything.org", &["*".to_owned()]));
    }

    #[test]
    fn defaults_fill_only_missing_keys() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "default": "x"},
            "b": {"type": "integer", "default": 1},
            "c": {"type": "string"}}});
        assert_eq!(
            with_defaults(Some(&schema), &json!({"b": 5})),
            json!({"a": "x", "b": 5})
        );
        assert_eq!(with_defaults(None, &json!({"z": 1})), json!({"z": 1}));
    }
}
