//! Scripts and their versions: save, list, fetch, diff, the approval
//! workflow (submit, approve, reject), rollback, the tenant's script
//! settings, and the built-in templates.

use std::sync::Arc;

use citadel_analyzer::{Diagnostic, Language, MAX_SOURCE_BYTES, Severity};
use citadel_domain::ScriptKind;
use citadel_scripts::{
    Bump, CapabilitySpec, LimitOverrides, ReviewAction, ReviewError, SemVer, TEMPLATES, Template,
    TenantSettings, VersionState, content_hash, unified_diff,
};
use citadel_store::{
    NewVersion, SaveOutcome, Script, ScriptVersion, StoreError, VersionTransition, now_ms,
};
use serde_json::{Value, json};

use crate::access::Permission;
use crate::access::{CapabilityNeed, Principal};
use crate::authn::person_grants;
use crate::error::scope_list;
use crate::{App, AppError, AppResult, Caller, ErrorCode, checked_name};

/// The longest change note or rejection reason, in bytes.
pub const MAX_CHANGE_NOTE: usize = 4096;

/// A version to save.
#[derive(Debug, Clone)]
pub struct SaveScript {
    /// A path such as `billing/on-paid`.
    pub name: String,
    pub source: String,
    pub language: Language,
    pub capabilities: CapabilitySpec,
    pub limits: LimitOverrides,
    pub change_note: String,
    pub bump: Bump,
}

/// A version and whether it is the one that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionOf {
    pub version: ScriptVersion,
    pub live: bool,
}

/// What saving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// False when the content equals the latest version's (nothing stored).
    pub created: bool,
    pub version: VersionOf,
}

/// Saves a new immutable version. Blocking analyzer findings reject the
/// save (`rejected`, with located diagnostics); identical content returns
/// the existing version; without required approval the version goes live
/// at once, with it, it starts as a draft.
pub async fn save(app: &App, caller: &Caller, body: SaveScript) -> AppResult<Saved> {
    if !body.language.is_script() {
        return Err(AppError::invalid(
            "language `workflow` is not a script's: save workflows with POST /v1/workflows",
        ));
    }
    save_entry(app, caller, body).await
}

/// Saves a version of a script or (language `workflow`) a workflow: the
/// catalog, review and audit are the same for both; what checks the source
/// differs.
pub(crate) async fn save_entry(app: &App, caller: &Caller, body: SaveScript) -> AppResult<Saved> {
    let engine = app.engine()?;
    checked_name(&body.name)?;
    refuse_reserved(&body.name)?;
    let tenant = caller
        .tenant_with(app, Permission::ScriptWrite, Some(&body.name))
        .await?;
    checked_source_size(&body.source)?;
    if body.change_note.len() > MAX_CHANGE_NOTE {
        return Err(AppError::invalid(format!(
            "change_note is longer than {MAX_CHANGE_NOTE} bytes"
        )));
    }
    body.capabilities.validate().map_err(AppError::invalid)?;
    if let Some(need) = caller
        .principal
        .missing_for_grant(&body.capabilities, &body.name)
    {
        let scopes = caller.principal.scopes_of(need.permission);
        return Err(refuse_grant(app, caller, &tenant, &body.name, need, &scopes, None).await);
    }
    engine
        .platform()
        .check(&body.limits)
        .map_err(|e| AppError::invalid(format!("limits.{e}")))?;

    let settings = engine.settings(&tenant).await?;
    let diagnostics = if body.language.is_script() {
        settings
            .policy
            .apply(&engine.analyze(&body.source, body.language))
    } else {
        crate::workflows::diagnostics(engine, &settings, &body.source)
    };
    if settings.policy.blocks(&diagnostics) {
        return Err(rejected(
            app,
            caller,
            &tenant,
            &body.name,
            body.language,
            &diagnostics,
        )
        .await);
    }

    let language = body.language.as_str();
    let needs_approval = settings.approval_required_for(&body.name);
    let new = NewVersion {
        tenant_id: tenant.clone(),
        name: body.name.clone(),
        hash: content_hash(&body.source, language, &body.capabilities, &body.limits),
        language: body.language,
        kind: ScriptKind::of(body.language),
        capabilities: serde_json::to_string(&body.capabilities).map_err(AppError::internal)?,
        limits: serde_json::to_string(&body.limits).map_err(AppError::internal)?,
        diagnostics: serde_json::to_string(&diagnostics).map_err(AppError::internal)?,
        source: body.source,
        change_note: body.change_note,
        author: caller.principal.person.clone(),
        state: if needs_approval {
            VersionState::Draft
        } else {
            VersionState::Approved
        },
        make_live: !needs_approval,
    };
    let bump = body.bump;
    let next = move |latest: Option<&str>| SemVer::next(latest, bump).to_string();
    let outcome = app
        .store
        .save_version(&new, &next)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::conflict("another save of this script won the race; retry")
            }
            other => other.into(),
        })?;
    match outcome {
        SaveOutcome::OtherKind(kind) => Err(AppError::conflict(format!(
            "`{}` is a {kind}: a name keeps the kind of its first version",
            body.name
        ))),
        SaveOutcome::Unchanged(v) => {
            let live_seq = app
                .store
                .script(&tenant, &body.name)
                .await?
                .and_then(|s| s.live_seq);
            Ok(Saved {
                created: false,
                version: VersionOf {
                    live: live_seq == Some(v.seq),
                    version: v,
                },
            })
        }
        SaveOutcome::Created(v) => {
            engine.invalidate_live(&tenant, &body.name);
            caller
                .record_change(
                    app,
                    &tenant,
                    save_action(body.language),
                    &body.name,
                    json!({ "version": v.version, "hash": v.hash, "state": v.state, "live": new.make_live }),
                )
                .await?;
            Ok(Saved {
                created: true,
                version: VersionOf {
                    live: new.make_live,
                    version: v,
                },
            })
        }
    }
}

/// A save refused by static analysis: audited, and answered `rejected`
/// with the first blocking finding in the message and all of them in the
/// details.
async fn rejected(
    app: &App,
    caller: &Caller,
    tenant: &str,
    name: &str,
    language: Language,
    diagnostics: &[Diagnostic],
) -> AppError {
    let blocking: Vec<&Diagnostic> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let first = blocking.first().map_or(String::new(), |d| {
        format!(": {}:{}: {} [{}]", d.line, d.column, d.message, d.rule)
    });
    let rules: Vec<&str> = blocking.iter().map(|d| d.rule.as_str()).collect();
    app.audit_event(
        Some(&caller.principal),
        Some(tenant),
        save_action(language),
        name,
        "rejected",
        &caller.request_id,
        json!({ "rules": rules }),
    )
    .await;
    AppError::new(
        ErrorCode::Rejected,
        format!(
            "static analysis rejected the {} ({} blocking finding{}){first}",
            ScriptKind::of(language),
            blocking.len(),
            if blocking.len() == 1 { "" } else { "s" }
        ),
    )
    .with_details(json!({ "diagnostics": diagnostics }))
}

/// The audit action of saving a version in `language`.
fn save_action(language: Language) -> &'static str {
    match ScriptKind::of(language) {
        ScriptKind::Workflow => "workflow.save",
        ScriptKind::Script | ScriptKind::Plugin => "script.save",
    }
}

/// Refuses a name in the plugins' folder: only installing a plugin puts
/// anything there.
pub(crate) fn refuse_reserved(name: &str) -> AppResult<()> {
    if citadel_scripts::is_reserved_name(name) {
        return Err(AppError::invalid(format!(
            "`{name}` is in the `{}` folder, which holds installed plugins (manage them with /v1/plugins)",
            citadel_scripts::PLUGIN_FOLDER
        )));
    }
    Ok(())
}

/// A script and its live version's semantic version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSummary {
    pub script: Script,
    pub live_version: Option<String>,
}

/// The scripts the caller may read, by name.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<ScriptSummary>> {
    list_kind(app, caller, ScriptKind::Script).await
}

/// The catalog entries of one kind the caller may read, by name.
pub(crate) async fn list_kind(
    app: &App,
    caller: &Caller,
    kind: ScriptKind,
) -> AppResult<Vec<ScriptSummary>> {
    let tenant = caller.tenant(app).await?;
    let readable: Vec<Script> = app
        .store
        .list_scripts(&tenant)
        .await?
        .into_iter()
        .filter(|s| {
            s.kind == kind
                && caller
                    .principal
                    .allows(Permission::ScriptRead, Some(&s.name))
        })
        .collect();
    if readable.is_empty() {
        caller
            .require_somewhere(app, Permission::ScriptRead)
            .await?;
    }
    let mut out = Vec::with_capacity(readable.len());
    for script in readable {
        let live_version = match script.live_seq {
            Some(_) => app
                .store
                .live_version(&tenant, &script.name)
                .await?
                .map(|(_, v)| v.version),
            None => None,
        };
        out.push(ScriptSummary {
            script,
            live_version,
        });
    }
    Ok(out)
}

/// The caller's tenant and the script, once the caller holds `permission`
/// on it; `not_found` for a script the tenant does not have.
async fn script_with(
    app: &App,
    caller: &Caller,
    permission: Permission,
    name: &str,
) -> AppResult<(String, Script)> {
    checked_name(name)?;
    let tenant = caller.tenant_with(app, permission, Some(name)).await?;
    let script = app
        .store
        .script(&tenant, name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("script `{name}` not found")))?;
    // A plugin's handler module can be read here; it changes only with its
    // plugin.
    if script.kind == ScriptKind::Plugin && permission != Permission::ScriptRead {
        return Err(AppError::invalid(format!(
            "`{name}` is a plugin's handler module: manage it with /v1/plugins"
        )));
    }
    Ok((tenant, script))
}

pub(crate) async fn version_of(
    app: &App,
    tenant: &str,
    script: &Script,
    version: &str,
) -> AppResult<ScriptVersion> {
    if SemVer::parse(version).is_none() {
        return Err(AppError::invalid(format!(
            "`{version}` is not a version (MAJOR.MINOR.PATCH)"
        )));
    }
    app.store
        .version(tenant, &script.id, version)
        .await?
        .ok_or_else(|| {
            AppError::not_found(format!("version {version} of `{}` not found", script.name))
        })
}

/// A script and its live version.
pub async fn get(
    app: &App,
    caller: &Caller,
    name: &str,
) -> AppResult<(Script, Option<ScriptVersion>)> {
    let (tenant, script) = script_with(app, caller, Permission::ScriptRead, name).await?;
    let live = app.store.live_version(&tenant, name).await?;
    Ok((script, live.map(|(_, v)| v)))
}

/// Every version of a script, oldest first.
pub async fn versions(app: &App, caller: &Caller, name: &str) -> AppResult<Vec<VersionOf>> {
    let (tenant, script) = script_with(app, caller, Permission::ScriptRead, name).await?;
    let versions = app.store.versions(&tenant, &script.id).await?;
    Ok(versions
        .into_iter()
        .map(|v| VersionOf {
            live: script.live_seq == Some(v.seq),
            version: v,
        })
        .collect())
}

/// One version.
pub async fn version(
    app: &App,
    caller: &Caller,
    name: &str,
    version: &str,
) -> AppResult<VersionOf> {
    let (tenant, script) = script_with(app, caller, Permission::ScriptRead, name).await?;
    let v = version_of(app, &tenant, &script, version).await?;
    Ok(VersionOf {
        live: script.live_seq == Some(v.seq),
        version: v,
    })
}

/// The difference between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDiff {
    pub from: String,
    pub to: String,
    /// A unified line diff of the sources; empty when they are equal.
    pub diff: String,
    pub capabilities_changed: bool,
    pub limits_changed: bool,
}

pub async fn diff(
    app: &App,
    caller: &Caller,
    name: &str,
    from: &str,
    to: &str,
) -> AppResult<VersionDiff> {
    let (tenant, script) = script_with(app, caller, Permission::ScriptRead, name).await?;
    let from = version_of(app, &tenant, &script, from).await?;
    let to = version_of(app, &tenant, &script, to).await?;
    Ok(VersionDiff {
        diff: unified_diff(
            &format!("{name}@{}", from.version),
            &from.source,
            &format!("{name}@{}", to.version),
            &to.source,
        ),
        capabilities_changed: from.capabilities != to.capabilities,
        limits_changed: from.limits != to.limits,
        from: from.version,
        to: to.version,
    })
}

/// Refuses a grant that exceeds what its author may do: audited, and
/// answered `forbidden` naming the capability, the permission it needs, and
/// the folders the author is confined to (if that is why).
async fn refuse_grant(
    app: &App,
    caller: &Caller,
    tenant: &str,
    target: &str,
    need: CapabilityNeed,
    scopes: &[&str],
    author: Option<&str>,
) -> AppError {
    app.audit_event(
        Some(&caller.principal),
        Some(tenant),
        "permission.denied",
        target,
        "denied",
        &caller.request_id,
        json!({ "permission": need.permission, "capability": need.capability, "author": author }),
    )
    .await;
    let place = if need.tenant_wide {
        "across the tenant"
    } else {
        "on the script"
    };
    let who = match author {
        Some(a) => format!("its author (`{a}`)"),
        None => "this token".to_owned(),
    };
    let why = if scopes.is_empty() {
        format!("{who} does not hold it")
    } else {
        format!("{who} may only act on scripts under {}", scope_list(scopes))
    };
    let message = match author {
        Some(_) => format!(
            "the version grants `{}`, which needs permission `{}` {place}, and {why}",
            need.capability, need.permission
        ),
        None => format!(
            "granting `{}` needs permission `{}` {place}: {why}",
            need.capability, need.permission
        ),
    };
    AppError::new(ErrorCode::Forbidden, message).with_details(json!({
        "permission": need.permission,
        "capability": need.capability,
        "scopes": scopes,
        "author": author,
    }))
}

/// Before a version goes live by approval or rollback: its grant must not
/// exceed what its author (the person) may do now.
async fn author_may_grant(
    app: &App,
    caller: &Caller,
    tenant: &str,
    target: &str,
    v: &ScriptVersion,
) -> AppResult<()> {
    let spec: CapabilitySpec = serde_json::from_str(&v.capabilities)
        .map_err(|e| AppError::internal(format!("stored capabilities of {target}: {e}")))?;
    if crate::access::capability_needs(&spec).is_empty() {
        return Ok(());
    }
    let author = Principal {
        token_id: v.author.clone(),
        person: v.author.clone(),
        user_id: None,
        tenant_id: Some(tenant.to_owned()),
        end_user: None,
        grants: person_grants(app, tenant, &v.author).await?,
    };
    let script = target.split_once('@').map_or(target, |(name, _)| name);
    match author.missing_for_grant(&spec, script) {
        None => Ok(()),
        Some(need) => {
            let scopes = author.scopes_of(need.permission);
            Err(refuse_grant(app, caller, tenant, target, need, &scopes, Some(&v.author)).await)
        }
    }
}

/// Applies a review action (submit, approve, reject), auditing it and a
/// refused self-review. `reason` is a rejection's, checked here.
pub async fn review(
    app: &App,
    caller: &Caller,
    name: &str,
    version: &str,
    action: ReviewAction,
    reason: Option<&str>,
) -> AppResult<VersionOf> {
    let reason = match reason.map(str::trim) {
        Some(r) if r.is_empty() || r.len() > MAX_CHANGE_NOTE => {
            return Err(AppError::invalid("reason must be 1–4096 bytes"));
        }
        r => r.map(str::to_owned),
    };
    let permission = match action {
        ReviewAction::Submit => Permission::ScriptWrite,
        ReviewAction::Approve | ReviewAction::Reject => Permission::ScriptApprove,
    };
    let (tenant, script) = script_with(app, caller, permission, name).await?;
    let v = version_of(app, &tenant, &script, version).await?;
    let current = v.state;
    let audit_action = format!("script.{}", action.as_str());
    let target = format!("{name}@{}", v.version);
    // Persons, not tokens: a token the author minted is still the author.
    if let Err(e) = action.apply(current, &v.author, &caller.principal.person) {
        return Err(match e {
            ReviewError::OwnVersion { .. } => {
                app.audit_event(
                    Some(&caller.principal),
                    Some(&tenant),
                    &audit_action,
                    &target,
                    "denied",
                    &caller.request_id,
                    json!({ "reason": "own version" }),
                )
                .await;
                AppError::new(ErrorCode::OwnVersion, e.to_string())
            }
            ReviewError::WrongState { .. } => AppError::new(ErrorCode::InvalidState, e.to_string())
                .with_details(json!({ "state": v.state })),
        });
    }
    if action == ReviewAction::Approve {
        author_may_grant(app, caller, &tenant, &target, &v).await?;
    }
    let reviewing = action != ReviewAction::Submit;
    let t = VersionTransition {
        tenant_id: tenant.clone(),
        script_id: script.id.clone(),
        seq: v.seq,
        from: vec![action.from()],
        to: action.to(),
        reviewed_by: reviewing.then(|| caller.principal.person.clone()),
        review_reason: reason.clone(),
        at: now_ms(),
        make_live: action == ReviewAction::Approve,
    };
    if !app.store.transition_version(&t).await? {
        return Err(AppError::new(
            ErrorCode::InvalidState,
            "the version changed state meanwhile; reload it",
        ));
    }
    app.engine()?.invalidate_live(&tenant, name);
    caller
        .record_change(
            app,
            &tenant,
            &audit_action,
            &target,
            json!({ "from": current.as_str(), "to": t.to, "reason": reason, "live": t.make_live }),
        )
        .await?;
    let v = version_of(app, &tenant, &script, version).await?;
    let live = if t.make_live {
        true
    } else {
        script.live_seq == Some(v.seq)
    };
    Ok(VersionOf { version: v, live })
}

/// Makes an earlier approved version live again. Where approval is
/// required this takes `script.approve`, else `script.write`.
pub async fn rollback(
    app: &App,
    caller: &Caller,
    name: &str,
    version: &str,
) -> AppResult<VersionOf> {
    checked_name(name)?;
    let engine = app.engine()?;
    let tenant = caller.tenant(app).await?;
    let settings = engine.settings(&tenant).await?;
    let permission = if settings.approval_required_for(name) {
        Permission::ScriptApprove
    } else {
        Permission::ScriptWrite
    };
    let (tenant, script) = script_with(app, caller, permission, name).await?;
    let v = version_of(app, &tenant, &script, version).await?;
    if v.state != VersionState::Approved {
        return Err(AppError::new(
            ErrorCode::NotApproved,
            format!(
                "version {} is {}; only an approved version can go live",
                v.version, v.state
            ),
        ));
    }
    author_may_grant(app, caller, &tenant, &format!("{name}@{}", v.version), &v).await?;
    let from = app
        .store
        .live_version(&tenant, name)
        .await?
        .map(|(_, live)| live.version);
    if !app
        .store
        .set_live(&tenant, &script.id, v.seq, now_ms())
        .await?
    {
        return Err(AppError::not_found(format!(
            "version {} of `{name}` not found",
            v.version
        )));
    }
    engine.invalidate_live(&tenant, name);
    caller
        .record_change(
            app,
            &tenant,
            "script.rollback",
            name,
            json!({ "from": from, "to": v.version }),
        )
        .await?;
    Ok(VersionOf {
        version: v,
        live: true,
    })
}

/// The tenant's script settings.
pub async fn settings(app: &App, caller: &Caller) -> AppResult<TenantSettings> {
    let tenant = caller
        .tenant_with(app, Permission::ScriptRead, None)
        .await?;
    let settings = app.engine()?.settings(&tenant).await?;
    Ok(Arc::unwrap_or_clone(settings))
}

/// Replaces the tenant's script settings: approval, default limits (within
/// the platform maxima), analyzer policy.
pub async fn put_settings(
    app: &App,
    caller: &Caller,
    settings: TenantSettings,
) -> AppResult<TenantSettings> {
    let tenant = caller
        .tenant_with(app, Permission::SettingsWrite, None)
        .await?;
    let engine = app.engine()?;
    settings.validate().map_err(AppError::invalid)?;
    engine
        .platform()
        .check(&settings.limits)
        .map_err(|e| AppError::invalid(format!("limits.{e}")))?;
    engine.put_settings(&tenant, &settings).await?;
    caller
        .record_change(
            app,
            &tenant,
            "settings.update",
            "",
            serde_json::to_value(&settings).unwrap_or(Value::Null),
        )
        .await?;
    Ok(settings)
}

/// The built-in templates to start a script from.
pub fn templates() -> &'static [Template] {
    TEMPLATES
}

/// Refuses a source over the analyzer's size limit before any parsing.
fn checked_source_size(source: &str) -> AppResult<()> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!("the source is larger than {MAX_SOURCE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// What analyzing a source without saving it finds: every diagnostic as
/// the tenant's policy grades it, and whether a save would be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub diagnostics: Vec<Diagnostic>,
    pub blocked: bool,
}

/// Analyzes a source as saving it would, and saves nothing (the editor's
/// diagnostics as one types). Needs the right to save a script: at `name`
/// when given, else somewhere.
pub async fn analyze(
    app: &App,
    caller: &Caller,
    name: Option<&str>,
    source: &str,
    language: Language,
) -> AppResult<Analysis> {
    let engine = app.engine()?;
    let tenant = match name {
        Some(name) => {
            checked_name(name)?;
            caller
                .tenant_with(app, Permission::ScriptWrite, Some(name))
                .await?
        }
        None => {
            let tenant = caller.tenant(app).await?;
            caller
                .require_somewhere(app, Permission::ScriptWrite)
                .await?;
            tenant
        }
    };
    checked_source_size(source)?;
    let settings = engine.settings(&tenant).await?;
    let diagnostics = if language.is_script() {
        settings.policy.apply(&engine.analyze(source, language))
    } else {
        crate::workflows::diagnostics(engine, &settings, source)
    };
    Ok(Analysis {
        blocked: settings.policy.blocks(&diagnostics),
        diagnostics,
    })
}
