//! Kill switches: stop a script, a folder, a tenant or the platform at
//! once. Platform switches (and switches on another tenant) are for
//! platform admins; a tenant's own switches need `killswitch.write` on the
//! target.

use citadel_domain::KillScope;
use citadel_scripts::{validate_folder, validate_name};
use citadel_store::{KillSwitch, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller};

/// A switch as asked for.
#[derive(Debug, Clone, Default)]
pub struct SwitchRequest {
    /// `platform`, `tenant`, `folder` or `script`.
    pub scope: String,
    /// The folder (ending in `/`) or the script name.
    pub target: String,
    /// Platform admins only: the tenant (by name) a tenant, folder or
    /// script switch is for.
    pub tenant: Option<String>,
    /// Why (required to engage).
    pub reason: String,
}

/// Resolves and authorises a switch request: (scope, tenant id, target).
async fn resolve(
    app: &App,
    caller: &Caller,
    req: &SwitchRequest,
) -> AppResult<(KillScope, String, String)> {
    let Ok(scope) = req.scope.parse::<KillScope>() else {
        return Err(AppError::invalid(format!(
            "unknown scope `{}` (platform, tenant, folder or script)",
            req.scope
        )));
    };
    match scope {
        KillScope::Platform | KillScope::Tenant if !req.target.is_empty() => {
            return Err(AppError::invalid(format!(
                "a {} switch has no target",
                scope.as_str()
            )));
        }
        KillScope::Folder => {
            validate_folder(&req.target).map_err(|e| AppError::invalid(format!("target: {e}")))?
        }
        KillScope::Script => {
            validate_name(&req.target).map_err(|e| AppError::invalid(format!("target: {e}")))?
        }
        _ => {}
    }
    if scope == KillScope::Platform {
        caller.require_platform_admin(app).await?;
        return Ok((scope, String::new(), String::new()));
    }
    if caller.principal.is_platform_admin() {
        let Some(name) = &req.tenant else {
            return Err(AppError::invalid(
                "a platform admin names the tenant of a tenant, folder or script switch",
            ));
        };
        let tenant = app
            .store
            .tenant_by_name(name)
            .await?
            .ok_or_else(|| AppError::not_found(format!("tenant `{name}` not found")))?;
        return Ok((scope, tenant.id, req.target.clone()));
    }
    if req.tenant.is_some() {
        return Err(AppError::invalid(
            "`tenant` is for platform admins; a tenant token acts on its own tenant",
        ));
    }
    let path = (!req.target.is_empty()).then_some(req.target.as_str());
    let tenant = caller
        .tenant_with(app, Permission::KillswitchWrite, path)
        .await?;
    Ok((scope, tenant, req.target.clone()))
}

/// Engaged switches: a tenant sees its own and the platform's; a platform
/// admin sees all.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<KillSwitch>> {
    let engine = app.engine()?;
    let switches = engine.store().kill_switches().await?;
    let mine = caller.principal.tenant_id.clone();
    Ok(switches
        .into_iter()
        .filter(|k| {
            mine.as_ref()
                .is_none_or(|t| k.tenant_id.is_empty() || &k.tenant_id == t)
        })
        .collect())
}

/// Engages a kill switch: new runs it covers are refused with `killed`, and
/// runs in flight are aborted. Answers the switch and true when engaged
/// now, the switch as first engaged and false when it already was.
pub async fn engage(
    app: &App,
    caller: &Caller,
    req: &SwitchRequest,
) -> AppResult<(KillSwitch, bool)> {
    let engine = app.engine()?;
    let (scope, tenant_id, target) = resolve(app, caller, req).await?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 1024 {
        return Err(AppError::invalid("reason must be 1–1024 bytes"));
    }
    let switch = KillSwitch {
        scope,
        tenant_id: tenant_id.clone(),
        target: target.clone(),
        reason: reason.to_owned(),
        engaged_by: Some(caller.principal.actor().to_owned()),
        engaged_at: now_ms(),
    };
    if !engine.engage(switch.clone()).await? {
        let current = engine
            .kill_switches()
            .iter()
            .find(|k| k.scope == switch.scope && k.tenant_id == tenant_id && k.target == target)
            .cloned()
            .unwrap_or(switch);
        return Ok((current, false));
    }
    app.record(
        Some(&caller.principal),
        (!tenant_id.is_empty()).then_some(tenant_id.as_str()),
        "killswitch.engage",
        &format!("{}:{target}", scope.as_str()),
        "ok",
        &caller.request_id,
        json!({ "reason": reason }),
    )
    .await?;
    Ok((switch, true))
}

/// Releases a kill switch; `not_found` when it was not engaged.
pub async fn release(app: &App, caller: &Caller, req: &SwitchRequest) -> AppResult<()> {
    let engine = app.engine()?;
    let (scope, tenant_id, target) = resolve(app, caller, req).await?;
    if !engine.release(scope.as_str(), &tenant_id, &target).await? {
        return Err(AppError::not_found(format!(
            "no {} kill switch engaged on `{target}`",
            scope.as_str()
        )));
    }
    app.record(
        Some(&caller.principal),
        (!tenant_id.is_empty()).then_some(tenant_id.as_str()),
        "killswitch.release",
        &format!("{}:{target}", scope.as_str()),
        "ok",
        &caller.request_id,
        json!({}),
    )
    .await?;
    Ok(())
}
