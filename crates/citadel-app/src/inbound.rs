//! Inbound webhooks: a tenant exposes one of its scripts or workflows at
//! `/hooks/{tenant}/{name}` for a service that signs its requests, either
//! per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`) or with a shared-secret HMAC header
//! (`X-Hub-Signature-256: sha256=…` and the like). A request is verified
//! before anything runs; a message id seen within the tolerance window is
//! refused as a replay (recorded in the tenant's key-value store, so every
//! node sees it). A `sync` hook answers the run's result, an `async` one
//! 202 with the run's id (workflows are always queued).
//!
//! Managing them needs `plugin.install` and `script.run` on the target:
//! whoever exposes a script lets the service run it.

use citadel_domain::Trigger;
use citadel_engine::{JobRequest, RunSpec};
use citadel_plugin::signature::{self, SignedHeaders};
use citadel_scripts::is_secret_name;
use citadel_store::{InboundWebhook, KvOutcome, KvWrite, now_ms};
use serde_json::{Map, Value, json};

use crate::access::Permission;
use crate::error::ErrorCode;
use crate::{App, AppError, AppResult, Caller, checked_name};

/// How an inbound webhook is set up.
#[derive(Debug, Clone)]
pub struct InboundSpec {
    pub target: String,
    /// `standard_webhooks` or `hmac`.
    pub verify: String,
    pub secret: String,
    pub signature_header: Option<String>,
    pub id_header: Option<String>,
    /// `sync` or `async`.
    pub mode: String,
}

fn checked_hook_name(name: &str) -> AppResult<()> {
    crate::checked_short_name(name, "an inbound webhook")
}

fn header_name(h: &str, field: &str) -> AppResult<String> {
    let lower = h.to_ascii_lowercase();
    let ok = (1..=64).contains(&lower.len())
        && lower
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(lower)
    } else {
        Err(AppError::invalid(format!("`{field}` is not a header name"))
            .with_details(json!({ "field": field })))
    }
}

/// Creates or replaces an inbound webhook.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    spec: InboundSpec,
) -> AppResult<InboundWebhook> {
    checked_hook_name(name)?;
    checked_name(&spec.target)?;
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    caller
        .require(app, Permission::ScriptRun, Some(&spec.target))
        .await?;
    if app.store.script(&tenant, &spec.target).await?.is_none() {
        return Err(AppError::not_found(format!(
            "script or workflow `{}` not found",
            spec.target
        )));
    }
    crate::scripts::refuse_reserved(&spec.target)?;
    if !is_secret_name(&spec.secret) {
        return Err(
            AppError::invalid("`secret` is not a secret name (A-Z, 0-9, _)")
                .with_details(json!({ "field": "secret" })),
        );
    }
    let (signature_header, id_header) = match spec.verify.as_str() {
        "standard_webhooks" => {
            if spec.signature_header.is_some() || spec.id_header.is_some() {
                return Err(AppError::invalid(
                    "standard_webhooks reads its own headers: `signature_header` and `id_header` are for `hmac`",
                ));
            }
            (None, None)
        }
        "hmac" => {
            let sig = spec.signature_header.as_deref().ok_or_else(|| {
                AppError::invalid("`hmac` needs `signature_header` (e.g. X-Hub-Signature-256)")
                    .with_details(json!({ "field": "signature_header" }))
            })?;
            (
                Some(header_name(sig, "signature_header")?),
                spec.id_header
                    .as_deref()
                    .map(|h| header_name(h, "id_header"))
                    .transpose()?,
            )
        }
        other => {
            return Err(AppError::invalid(format!(
                "`verify` is `standard_webhooks` or `hmac`, not `{other}`"
            ))
            .with_details(json!({ "field": "verify" })));
        }
    };
    if !matches!(spec.mode.as_str(), "sync" | "async") {
        return Err(AppError::invalid("`mode` is `sync` or `async`")
            .with_details(json!({ "field": "mode" })));
    }
    let now = now_ms();
    let created_at = app
        .store
        .inbound(&tenant, name)
        .await?
        .map_or(now, |h| h.created_at);
    let hook = InboundWebhook {
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        target: spec.target,
        verify: spec.verify,
        secret: spec.secret,
        signature_header,
        id_header,
        mode: spec.mode,
        created_at,
        updated_at: now,
    };
    let stored = app.store.put_inbound(&hook).await?;
    caller
        .record_change(
            app,
            &tenant,
            "inbound.put",
            &format!("inbound:{name}"),
            json!({ "target": stored.target, "verify": stored.verify, "mode": stored.mode }),
        )
        .await?;
    Ok(stored)
}

pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<InboundWebhook>> {
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    Ok(app.store.inbounds(&tenant).await?)
}

pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    checked_hook_name(name)?;
    let tenant = caller
        .tenant_with(app, Permission::PluginInstall, None)
        .await?;
    if !app.store.delete_inbound(&tenant, name).await? {
        return Err(AppError::not_found(format!(
            "inbound webhook `{name}` not found"
        )));
    }
    caller
        .record_change(
            app,
            &tenant,
            "inbound.delete",
            &format!("inbound:{name}"),
            json!({}),
        )
        .await
}

/// A request to an inbound webhook, as the edge received it.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    pub tenant: String,
    pub name: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an inbound request started.
#[derive(Debug, Clone)]
pub enum Received {
    /// A sync hook's finished run.
    Finished(Box<citadel_store::Run>),
    /// A queued run's id.
    Queued(String),
}

fn refuse(code: &str, message: String) -> AppError {
    AppError::unauthorized(message).with_details(json!({ "reason": code }))
}

/// Verifies a request and starts its run.
pub async fn receive(app: &App, req: InboundRequest) -> AppResult<Received> {
    let engine = app.engine()?;
    let unknown = || {
        AppError::not_found(format!(
            "no inbound webhook at /hooks/{}/{}",
            req.tenant, req.name
        ))
    };
    let Some(tenant) = app.store.tenant_by_name(&req.tenant).await? else {
        return Err(unknown());
    };
    let Some(hook) = app.store.inbound(&tenant.id, &req.name).await? else {
        return Err(unknown());
    };
    if req.body.len() > crate::plugins::MAX_ROUTE_BODY_BYTES {
        return Err(AppError::new(
            ErrorCode::TooLarge,
            format!(
                "an inbound request body is at most {} bytes",
                crate::plugins::MAX_ROUTE_BODY_BYTES
            ),
        ));
    }
    let now = now_ms();
    let secret = crate::secrets::reveal_to_verify(app, &tenant.id, &hook.secret, || {
        format!(
            "the secret `{}` this webhook verifies with is not set",
            hook.secret
        )
    })
    .await?;
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let message_id = if hook.verify == "hmac" {
        let name = hook
            .signature_header
            .as_deref()
            .unwrap_or("x-hub-signature-256");
        let sig = header(name).ok_or_else(|| {
            refuse(
                "missing_signature_header",
                format!("the request has no `{name}` header"),
            )
        })?;
        // The secret as it is, or (during a rotation) each of its keys.
        std::iter::once(secret.as_str())
            .chain(secret.split_whitespace())
            .map(|key| signature::verify_shared_hmac(key.as_bytes(), sig, &req.body))
            .find(Result::is_ok)
            .unwrap_or(Err(signature::SignatureError::NoMatch))
            .map_err(|e| {
                refuse(
                    e.code(),
                    format!("the signature does not verify: {}", e.code()),
                )
            })?;
        hook.id_header
            .as_deref()
            .and_then(header)
            .map(str::to_owned)
    } else {
        let signed =
            SignedHeaders::from_pairs(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| {
                    refuse(e.code(), format!("the request is not signed: {}", e.code()))
                })?;
        signature::verify(
            // A secret being rotated holds the new and the old key.
            &secret.split_whitespace().collect::<Vec<_>>(),
            &signed,
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
        Some(signed.id.to_owned())
    };
    if let Some(id) = &message_id {
        if id.is_empty() || id.len() > 256 {
            return Err(refuse(
                "invalid_id",
                "a message id is 1 to 256 bytes".into(),
            ));
        }
        // Remembered for twice the tolerance: past it the timestamp check
        // refuses the message anyway (and an HMAC hook's ids as long).
        let key = format!("inbound:{}:{id}", hook.name);
        let write = KvWrite {
            tenant_id: &tenant.id,
            key: &key,
            value: "true",
            expires_at: Some(now + 2 * signature::DEFAULT_TOLERANCE.as_millis() as i64),
            if_version: Some(0),
            quota_bytes: engine.quotas().kv_bytes as i64,
            now,
        };
        match app.store.kv_set(&write).await? {
            KvOutcome::Done { .. } => {}
            KvOutcome::VersionMismatch { .. } => {
                return Err(refuse(
                    "replayed",
                    format!("message `{id}` was received already"),
                ));
            }
            KvOutcome::QuotaExceeded { .. } => {
                return Err(AppError::new(
                    ErrorCode::QuotaExceeded,
                    "the tenant's key-value store is full: replays cannot be recorded",
                ));
            }
            KvOutcome::Missing => return Err(AppError::internal("a write answered `missing`")),
        }
    }
    let live = crate::runs::live_or_refuse(app, engine, &tenant.id, &hook.target).await?;
    let mut headers = Map::new();
    for (k, v) in &req.headers {
        if k == "authorization" || k == "cookie" {
            continue;
        }
        headers
            .entry(k.clone())
            .or_insert_with(|| Value::String(v.clone()));
    }
    let body = match std::str::from_utf8(&req.body) {
        Ok("") => Value::Null,
        Ok(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        Err(_) => Value::Null,
    };
    let input = json!({ "webhook": hook.name, "id": message_id, "headers": headers, "body": body });
    let is_script = live.language.is_script();
    let spec = RunSpec {
        tenant_id: tenant.id.clone(),
        live,
        // A workflow gets the same object as its inputs.
        input_json: input.to_string(),
        trigger: Trigger::Webhook,
        principal: Some(format!("inbound:{}", hook.name)),
        timeout_ms: None,
        run_id: None,
        created_at: None,
    };
    let forget = || async {
        // A request whose run did not happen may be sent again.
        if let Some(id) = &message_id {
            let key = format!("inbound:{}:{id}", hook.name);
            let _ = app.store.kv_delete(&tenant.id, &key, None, now_ms()).await;
        }
    };
    if hook.mode == "sync" && is_script {
        let run = match engine.run_sync(spec).await {
            Ok(run) => run,
            Err(e) => {
                forget().await;
                return Err(crate::runs::refusal(e, &hook.target));
            }
        };
        if run.status != citadel_domain::RunStatus::Succeeded {
            forget().await;
        }
        return Ok(Received::Finished(Box::new(run)));
    }
    let request = JobRequest {
        idempotency_key: message_id
            .as_ref()
            .map(|id| format!("inbound:{}:{id}", hook.name)),
        ..JobRequest::default()
    };
    match engine.enqueue_run(spec, request).await {
        Ok((run_id, _)) => Ok(Received::Queued(run_id)),
        Err(e) => {
            forget().await;
            Err(crate::runs::refusal(e, &hook.target))
        }
    }
}
