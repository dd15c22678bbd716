//! The capability gateway: every call a script makes to the world comes
//! here, in the supervisor, never inside the sandbox. Each call is checked
//! against the version's grant (the sandbox hides what is not granted, but a
//! host process is not trusted to), the run's state (a run stopped by a kill
//! switch or a cancel gets nothing more), and the tenant's quotas; its
//! arguments are validated before use; it is counted by capability and
//! outcome with a latency histogram; and a denied call is audited once per
//! run and capability, so a script cannot flood the audit chain.
//!
//! What a run reads from the vault is remembered by its run, which redacts
//! those values from everything the run leaves behind (see
//! `InFlight::redactor`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use citadel_domain::Capability;
use citadel_egress::{Allowlist, EgressError, FetchRequest, FetchResponse};
use citadel_pool::{Gateway, GatewayFuture};
use citadel_sandbox::{HostCall, HostError, LogLine};
use citadel_secrets::VaultError;
use citadel_store::{KvEntry, KvOutcome, KvWrite, NewAuditEntry, SecretUse, now_ms};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::events::{MAX_EVENT_DEPTH, matches, validate_event_type};
use crate::{Engine, EngineInner, InFlight, LiveScript, STOP_NONE, lock, upgrade};

/// Entries one `kv.list` answers at most.
pub const KV_LIST_MAX: i64 = 1000;
/// Entries `kv.list` answers when no limit is given.
pub const KV_LIST_DEFAULT: i64 = 100;
/// The longest TTL a KV entry may have: ten years, in seconds.
pub const KV_MAX_TTL_S: i64 = 10 * 365 * 24 * 3600;

/// The run a gateway serves.
pub(crate) struct RunGateway {
    pub(crate) engine: Weak<EngineInner>,
    pub(crate) call: Arc<CallContext>,
}

/// What every call of one run needs to know.
pub(crate) struct CallContext {
    pub(crate) tenant_id: String,
    pub(crate) run_id: String,
    pub(crate) depth: i64,
    /// The version that runs: its grant decides every call.
    pub(crate) live: Arc<LiveScript>,
    /// The run itself: its log lines, its stop flag, what it revealed.
    pub(crate) flight: Arc<InFlight>,
    /// When the run's wall-clock limit ends: no call outlives it.
    pub(crate) deadline: Instant,
    /// The tenant's ceiling on outgoing HTTP (its settings' `http_allow`).
    pub(crate) http_ceiling: Option<Vec<String>>,
}

impl Gateway for RunGateway {
    fn logs(&self, lines: Vec<LogLine>) {
        self.call.flight.push_logs(lines);
    }

    fn call(&self, call: HostCall) -> GatewayFuture {
        let (engine, ctx) = (self.engine.clone(), Arc::clone(&self.call));
        Box::pin(async move {
            let Some(engine) = upgrade(&engine) else {
                return Err(HostError::unavailable("the node is stopping"));
            };
            let capability = call.capability();
            let started = Instant::now();
            let answer = engine.serve(&ctx, call).await;
            engine
                .gateway_metrics
                .observe(capability, &answer, started.elapsed());
            if let Err(e) = &answer
                && AUDITED.contains(&e.code.as_str())
            {
                engine.audit_denial(&ctx, capability, e).await;
            }
            answer
        })
    }
}

/// The refusals that are security events, audited (once per run and
/// capability): outside the grant, aimed at a private address, or SQL that
/// would write or escape.
const AUDITED: [&str; 3] = ["capability_denied", "private_address", "statement_refused"];

/// The longest `timeout_ms` a fetch may ask for (the run's deadline
/// bounds it anyway).
const MAX_FETCH_TIMEOUT_MS: u64 = 300_000;

/// The request a script's `http.fetch(url, options)` asks for, bounded by
/// the run's deadline (shared with `citadel run --allow-net`).
pub fn fetch_request(
    url: String,
    options: &Value,
    deadline: Instant,
) -> Result<FetchRequest, HostError> {
    let options = options_object(options, "http.fetch")?;
    let method = match options.get("method") {
        None | Some(Value::Null) => "GET".to_owned(),
        Some(Value::String(m)) => m.to_ascii_uppercase(),
        Some(_) => return Err(invalid("http.fetch: `method` must be a string")),
    };
    let mut headers = Vec::new();
    match options.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(invalid(format!(
                        "http.fetch: header `{name}` must be a string"
                    )));
                };
                headers.push((name.clone(), value.clone()));
            }
        }
        Some(Value::Array(pairs)) => {
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(n), Value::String(v)]) => {
                        headers.push((n.clone(), v.clone()))
                    }
                    _ => {
                        return Err(invalid(
                            "http.fetch: `headers` pairs are [name, value] strings",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "http.fetch: `headers` must be an object or [name, value] pairs",
            ));
        }
    }
    let body = match options.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone().into_bytes()),
        // An object or array goes as JSON, as most APIs want it.
        Some(v) => {
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".into(), "application/json".into()));
            }
            Some(v.to_string().into_bytes())
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let timeout = match int_option(options, "timeout_ms", "http.fetch")? {
        Some(ms) => Duration::from_millis((ms as u64).min(MAX_FETCH_TIMEOUT_MS)).min(left),
        None => left,
    };
    if timeout.is_zero() {
        return Err(HostError::new("timeout", "the run's deadline has passed"));
    }
    Ok(FetchRequest {
        method,
        url,
        headers,
        body,
        timeout,
    })
}

/// A response as the script gets it: the body as text when it is UTF-8,
/// else base64 (`body_encoding` says which).
pub fn response_json(r: FetchResponse) -> Value {
    let (body, encoding) = match String::from_utf8(r.body) {
        Ok(text) => (text, "utf8"),
        Err(e) => {
            use base64::Engine as _;
            (
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                "base64",
            )
        }
    };
    let headers: Vec<Value> = r.headers.into_iter().map(|(n, v)| json!([n, v])).collect();
    json!({
        "status": r.status,
        "url": r.url,
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
    })
}

fn denied(message: String) -> HostError {
    HostError::new("capability_denied", message)
}

fn invalid(message: impl Into<String>) -> HostError {
    HostError::invalid_argument(message)
}

fn store_unavailable(e: impl std::fmt::Display) -> HostError {
    HostError::unavailable(format!("the database is unavailable: {e}"))
}

/// An optional non-negative integer field of an options object.
fn int_option(options: &Value, field: &str, what: &str) -> Result<Option<i64>, HostError> {
    match options.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| invalid(format!("{what}: `{field}` must be a non-negative integer"))),
    }
}

/// An options argument: absent, `undefined` or an object.
fn options_object<'a>(options: &'a Value, what: &str) -> Result<&'a Value, HostError> {
    match options {
        Value::Null | Value::Object(_) => Ok(options),
        _ => Err(invalid(format!("{what}: options must be an object"))),
    }
}

/// The key prefix a run's key-value calls are confined to: a plugin's
/// runs see only their plugin's entries, under keys without the prefix.
fn kv_scope(ctx: &CallContext) -> String {
    if ctx.live.script.kind != citadel_domain::ScriptKind::Plugin {
        return String::new();
    }
    citadel_scripts::plugin_of_entry(&ctx.live.script.name)
        .map(citadel_scripts::plugin_kv_prefix)
        .unwrap_or_default()
}

fn scoped(scope: &str, key: String) -> String {
    if scope.is_empty() {
        key
    } else {
        format!("{scope}{key}")
    }
}

fn entry_json(e: KvEntry, scope: &str) -> Result<Value, HostError> {
    let value: Value = serde_json::from_str(&e.value)
        .map_err(|err| HostError::new("internal", format!("a stored value is not JSON: {err}")))?;
    Ok(json!({
        "key": e.key.strip_prefix(scope).unwrap_or(&e.key),
        "value": value,
        "version": e.version,
        "expires_at": e.expires_at,
    }))
}

impl Engine {
    /// Serves one call of a run, or says why not.
    async fn serve(&self, ctx: &CallContext, call: HostCall) -> Result<Value, HostError> {
        let capability = call.capability();
        if ctx.flight.stop.load(Ordering::SeqCst) != STOP_NONE {
            return Err(HostError::new(
                "cancelled",
                "the run is stopping: it may not call the host any more",
            ));
        }
        if let Some(switch) = self.kill_switch_for(&ctx.tenant_id, &ctx.live.script.name) {
            return Err(HostError::new(
                "killed",
                format!(
                    "stopped by the {} kill switch: {}",
                    switch.scope, switch.reason
                ),
            ));
        }
        if !ctx.live.capabilities.grants().allows(capability) {
            return Err(HostError::denied(capability.name()));
        }
        match call {
            HostCall::Echo { value } => Ok(value),
            HostCall::EventEmit { event_type, data } => self.emit(ctx, event_type, data).await,
            HostCall::SecretGet { name } => self.secret_get(ctx, name).await,
            HostCall::KvGet { key } => {
                self.kv_key(&key)?;
                let scope = kv_scope(ctx);
                let key = scoped(&scope, key);
                let entry = self
                    .store()
                    .kv_get(&ctx.tenant_id, &key, now_ms())
                    .await
                    .map_err(store_unavailable)?;
                entry.map_or(Ok(Value::Null), |e| entry_json(e, &scope))
            }
            HostCall::KvSet {
                key,
                value,
                options,
            } => self.kv_set(ctx, key, value, options).await,
            HostCall::KvDelete { key, options } => {
                self.kv_key(&key)?;
                let key = scoped(&kv_scope(ctx), key);
                let options = options_object(&options, "kv.delete")?;
                let if_version = int_option(options, "if_version", "kv.delete")?;
                let outcome = self
                    .store()
                    .kv_delete(&ctx.tenant_id, &key, if_version, now_ms())
                    .await
                    .map_err(store_unavailable)?;
                Ok(match outcome {
                    KvOutcome::Done { .. } => json!({ "ok": true, "version": 0 }),
                    KvOutcome::Missing => json!({ "ok": false, "version": 0 }),
                    KvOutcome::VersionMismatch { current } => {
                        json!({ "ok": false, "version": current })
                    }
                    KvOutcome::QuotaExceeded { .. } => json!({ "ok": false, "version": 0 }),
                })
            }
            HostCall::KvList { options } => self.kv_list(ctx, options).await,
            HostCall::HttpFetch { url, options } => self.http_fetch(ctx, url, options).await,
            HostCall::DbQuery {
                sql,
                params,
                options,
            } => self.db_query(ctx, sql, params, options).await,
        }
    }

    pub(crate) async fn emit(
        &self,
        ctx: &CallContext,
        event_type: String,
        data: Value,
    ) -> Result<Value, HostError> {
        validate_event_type(&event_type).map_err(HostError::invalid_argument)?;
        let emit: &[String] = ctx
            .live
            .capabilities
            .events
            .as_ref()
            .map_or(&[], |e| e.emit.as_slice());
        if !emit.iter().any(|p| matches(p, &event_type)) {
            return Err(denied(format!(
                "this version may not emit `{event_type}` (grant: {})",
                emit.join(", ")
            )));
        }
        if ctx.depth + 1 > MAX_EVENT_DEPTH {
            return Err(HostError::new(
                "depth_limit",
                format!("events may chain at most {MAX_EVENT_DEPTH} deep"),
            ));
        }
        self.take_emit(&ctx.tenant_id, &ctx.flight)?;
        // What a run read from the vault does not leave it in an event.
        let data = ctx.flight.redact_json(data.to_string());
        match self
            .publish(
                &ctx.tenant_id,
                &event_type,
                data,
                ctx.depth + 1,
                &ctx.run_id,
            )
            .await
        {
            Ok((event, deliveries)) => {
                Ok(json!({ "id": event.id, "deliveries": deliveries.len() }))
            }
            Err(e) => Err(HostError::unavailable(e.to_string())),
        }
    }

    pub(crate) async fn secret_get(
        &self,
        ctx: &CallContext,
        name: String,
    ) -> Result<Value, HostError> {
        if !citadel_scripts::is_secret_name(&name) {
            return Err(invalid(format!(
                "`{}` is not a secret name (A-Z, 0-9 and _, starting with a letter)",
                name.chars().take(64).collect::<String>()
            )));
        }
        if !ctx.live.capabilities.secrets.contains(&name) {
            return Err(denied(format!(
                "secret `{name}` is not in this version's grant"
            )));
        }
        // A run reads each secret once: later reads see the same value.
        if let Some(value) = ctx.flight.revealed_value(&name) {
            return Ok(Value::String(value));
        }
        // A plugin's secrets are the tenant's secrets in its own namespace.
        let stored = match ctx.live.script.kind {
            citadel_domain::ScriptKind::Plugin => {
                citadel_scripts::plugin_of_entry(&ctx.live.script.name).map_or_else(
                    || name.clone(),
                    |slug| citadel_scripts::plugin_secret_name(slug, &name),
                )
            }
            _ => name.clone(),
        };
        let Some(vault) = self.config.vault.as_ref() else {
            return Err(HostError::unavailable(
                "secrets are not configured on this node (no master key)",
            ));
        };
        let now = now_ms();
        let revealed = match vault.reveal(&ctx.tenant_id, &stored, now).await {
            Ok(r) => r,
            Err(VaultError::NotFound(_)) => {
                return Err(HostError::new(
                    "secret_not_found",
                    format!("the tenant has no secret `{name}`"),
                ));
            }
            Err(VaultError::Expired(_)) => {
                return Err(HostError::new(
                    "secret_expired",
                    format!("secret `{name}` has expired"),
                ));
            }
            Err(e) => return Err(HostError::unavailable(format!("secret `{name}`: {e}"))),
        };
        let used = SecretUse {
            name: stored,
            version: revealed.version,
            script_name: ctx.live.script.name.clone(),
            script_version: ctx.live.version.version.clone(),
            run_id: ctx.run_id.clone(),
            at: now,
        };
        // The read is on record before the script has the value.
        self.store()
            .record_secret_uses(&ctx.tenant_id, std::slice::from_ref(&used))
            .await
            .map_err(store_unavailable)?;
        let value = revealed.value.to_string();
        ctx.flight.reveal(name, &revealed.value);
        Ok(Value::String(value))
    }

    pub(crate) async fn http_fetch(
        &self,
        ctx: &CallContext,
        url: String,
        options: Value,
    ) -> Result<Value, HostError> {
        let Some(egress) = self.config.egress.as_ref() else {
            return Err(HostError::unavailable(
                "outgoing HTTP is not configured on this node",
            ));
        };
        let quotas = &self.config.quotas;
        let request = fetch_request(url, &options, ctx.deadline)?;
        let grant = ctx
            .live
            .capabilities
            .http
            .as_ref()
            .map_or(&[][..], |h| h.allow.as_slice());
        let grant = Allowlist::parse(grant).map_err(|e| denied(format!("http.allow: {e}")))?;
        let ceiling = match &ctx.http_ceiling {
            Some(c) => Some(
                Allowlist::parse(c).map_err(|e| denied(format!("the tenant's http_allow: {e}")))?,
            ),
            None => None,
        };
        // Checked before anything is spent on it: a refused host costs the
        // tenant no quota and is audited as what it is.
        let parsed = citadel_egress::Url::parse(&request.url)
            .map_err(|e| HostError::new("invalid_url", format!("`{}`: {e}", request.url)))?;
        for (list, whose) in [
            (Some(&grant), "this version's grant"),
            (ceiling.as_ref(), "the tenant's http_allow"),
        ] {
            if let Some(list) = list
                && let Err(why) = list.check(&parsed)
            {
                let host = parsed.host_str().unwrap_or("");
                let why = match why {
                    citadel_egress::Denied::Host => {
                        format!("host `{host}` is not allowed by {whose}")
                    }
                    citadel_egress::Denied::Scheme => format!(
                        "plain http to `{host}` is not allowed by {whose} (grant `http://{host}` to allow it)"
                    ),
                };
                return Err(denied(why));
            }
        }
        let calls = ctx.flight.http_calls.fetch_add(1, Ordering::Relaxed);
        if calls >= quotas.http_calls_per_run {
            return Err(HostError::new(
                "limit_exceeded",
                format!(
                    "a run may make at most {} HTTP requests",
                    quotas.http_calls_per_run
                ),
            ));
        }
        self.quota
            .take_http(&ctx.tenant_id, quotas, self.nodes_up())
            .map_err(|wait| {
                HostError::new(
                    "rate_limited",
                    format!(
                        "the tenant's HTTP requests per minute ({}) are used up; retry in {} ms",
                        quotas.http_requests_per_minute,
                        wait.as_millis().max(1)
                    ),
                )
            })?;
        let mut lists = vec![&grant];
        if let Some(c) = &ceiling {
            lists.push(c);
        }
        match egress.fetch(&lists, request).await {
            Ok(response) => Ok(response_json(response)),
            Err(e) => {
                let code = match &e {
                    EgressError::HostNotAllowed(_) | EgressError::SchemeNotAllowed(_) => {
                        "capability_denied"
                    }
                    other => other.code(),
                };
                Err(HostError::new(code, e.to_string()))
            }
        }
    }

    async fn db_query(
        &self,
        ctx: &CallContext,
        sql: String,
        params: Value,
        options: Value,
    ) -> Result<Value, HostError> {
        let Some(config) = self.config.datasources.as_ref() else {
            return Err(HostError::unavailable(
                "data sources are not configured on this node",
            ));
        };
        let options = options_object(&options, "db.query")?;
        let granted = &ctx.live.capabilities.db;
        let name = match options.get("source") {
            Some(Value::String(n)) => n.clone(),
            None | Some(Value::Null) => match granted.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(invalid(format!(
                        "db.query: name the data source in `options.source` (granted: {})",
                        granted.join(", ")
                    )));
                }
            },
            Some(_) => return Err(invalid("db.query: `source` must be a string")),
        };
        if !granted.contains(&name) {
            return Err(denied(format!(
                "data source `{name}` is not in this version's grant"
            )));
        }
        let params = match params {
            Value::Null => Vec::new(),
            Value::Array(p) => p,
            _ => return Err(invalid("db.query: `params` must be an array")),
        };
        let queries = ctx.flight.db_calls.fetch_add(1, Ordering::Relaxed);
        if queries >= self.config.quotas.db_queries_per_run {
            return Err(HostError::new(
                "limit_exceeded",
                format!(
                    "a run may make at most {} queries",
                    self.config.quotas.db_queries_per_run
                ),
            ));
        }
        let source = self.datasource(ctx, &name, &config.root).await?;
        let left = ctx.deadline.saturating_duration_since(Instant::now());
        let mut limits = config.limits;
        limits.timeout = limits.timeout.min(left);
        if let Some(ms) = int_option(options, "timeout_ms", "db.query")? {
            limits.timeout = limits.timeout.min(Duration::from_millis(ms as u64));
        }
        if limits.timeout.is_zero() {
            return Err(HostError::new("timeout", "the run's deadline has passed"));
        }
        match self.db_pools.query(&source, &sql, &params, &limits).await {
            Ok(result) => Ok(json!({ "columns": result.columns, "rows": result.rows })),
            Err(e) => Err(HostError::new(e.code(), e.to_string())),
        }
    }

    /// The data source `name` of the run's tenant, ready to connect to: a
    /// SQLite file confined to `root`, or a PostgreSQL URL with its
    /// password from the vault.
    async fn datasource(
        &self,
        ctx: &CallContext,
        name: &str,
        root: &std::path::Path,
    ) -> Result<citadel_datasource::Source, HostError> {
        let Some(ds) = self
            .store()
            .datasource(&ctx.tenant_id, name)
            .await
            .map_err(store_unavailable)?
        else {
            return Err(HostError::new(
                "datasource_not_found",
                format!("the tenant has no data source `{name}`"),
            ));
        };
        let unavailable =
            |e: citadel_datasource::QueryError| HostError::new(e.code(), e.to_string());
        match ds.kind.as_str() {
            "sqlite" => {
                let path = citadel_datasource::resolve_sqlite_path(root, &ds.location)
                    .map_err(unavailable)?;
                Ok(citadel_datasource::Source::Sqlite { path })
            }
            "postgres" => {
                let mut url = citadel_egress::Url::parse(&ds.location).map_err(|e| {
                    HostError::new("source_unavailable", format!("data source `{name}`: {e}"))
                })?;
                if let Some(secret) = &ds.password_secret {
                    let vault = self.config.vault.as_ref().ok_or_else(|| {
                        HostError::unavailable(
                            "secrets are not configured on this node (no master key)",
                        )
                    })?;
                    let password = vault
                        .reveal(&ctx.tenant_id, secret, now_ms())
                        .await
                        .map_err(|e| {
                            HostError::new(
                                "source_unavailable",
                                format!(
                                    "data source `{name}`: its password secret `{secret}`: {e}"
                                ),
                            )
                        })?;
                    // The password also never leaves through the run.
                    ctx.flight.reveal(secret.clone(), &password.value);
                    let _ = url.set_password(Some(&password.value));
                }
                Ok(citadel_datasource::Source::Postgres { url: url.into() })
            }
            other => Err(HostError::new(
                "source_unavailable",
                format!("data source `{name}` has an unknown kind `{other}`"),
            )),
        }
    }

    fn kv_key(&self, key: &str) -> Result<(), HostError> {
        let max = self.config.quotas.kv_key_bytes;
        if key.is_empty() {
            return Err(invalid("a KV key may not be empty"));
        }
        if key.len() as u64 > max {
            return Err(HostError::new(
                "kv_key_too_large",
                format!("the key is {} bytes; keys are at most {max}", key.len()),
            ));
        }
        Ok(())
    }

    async fn kv_set(
        &self,
        ctx: &CallContext,
        key: String,
        value: Value,
        options: Value,
    ) -> Result<Value, HostError> {
        self.kv_key(&key)?;
        let key = scoped(&kv_scope(ctx), key);
        let options = options_object(&options, "kv.set")?;
        let ttl_s = int_option(options, "ttl_s", "kv.set")?;
        let if_version = int_option(options, "if_version", "kv.set")?;
        if ttl_s == Some(0) || ttl_s.is_some_and(|t| t > KV_MAX_TTL_S) {
            return Err(invalid(format!(
                "kv.set: `ttl_s` must be 1..={KV_MAX_TTL_S} seconds"
            )));
        }
        let text = ctx.flight.redact_json(value.to_string());
        let quotas = &self.config.quotas;
        if text.len() as u64 > quotas.kv_value_bytes {
            return Err(HostError::new(
                "kv_value_too_large",
                format!(
                    "the value is {} bytes of JSON; values are at most {}",
                    text.len(),
                    quotas.kv_value_bytes
                ),
            ));
        }
        let now = now_ms();
        let write = KvWrite {
            tenant_id: &ctx.tenant_id,
            key: &key,
            value: &text,
            expires_at: ttl_s.map(|t| now + t * 1000),
            if_version,
            quota_bytes: quotas.kv_bytes as i64,
            now,
        };
        match self
            .store()
            .kv_set(&write)
            .await
            .map_err(store_unavailable)?
        {
            KvOutcome::Done { version } => Ok(json!({ "ok": true, "version": version })),
            KvOutcome::VersionMismatch { current } => {
                Ok(json!({ "ok": false, "version": current }))
            }
            KvOutcome::QuotaExceeded { used, quota } => Err(HostError::new(
                "kv_quota_exceeded",
                format!(
                    "the tenant's KV store holds {used} of {quota} bytes; this write does not fit"
                ),
            )),
            KvOutcome::Missing => Ok(json!({ "ok": false, "version": 0 })),
        }
    }

    async fn kv_list(&self, ctx: &CallContext, options: Value) -> Result<Value, HostError> {
        let options = options_object(&options, "kv.list")?;
        let text = |field: &str| -> Result<Option<String>, HostError> {
            match options.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("kv.list: `{field}` must be a string"))),
            }
        };
        let scope = kv_scope(ctx);
        let prefix = scoped(&scope, text("prefix")?.unwrap_or_default());
        let cursor = text("cursor")?.map(|c| scoped(&scope, c));
        let max = self.config.quotas.kv_key_bytes as usize;
        if prefix.len() > max || cursor.as_ref().is_some_and(|c| c.len() > max) {
            return Err(HostError::new(
                "kv_key_too_large",
                format!("a prefix or cursor is at most {max} bytes"),
            ));
        }
        let limit = int_option(options, "limit", "kv.list")?.unwrap_or(KV_LIST_DEFAULT);
        if !(1..=KV_LIST_MAX).contains(&limit) {
            return Err(invalid(format!(
                "kv.list: `limit` must be 1..={KV_LIST_MAX}"
            )));
        }
        let page = self
            .store()
            .kv_list(&ctx.tenant_id, &prefix, cursor.as_deref(), limit, now_ms())
            .await
            .map_err(store_unavailable)?;
        // A full page may have more after it: its last key is the cursor.
        let next = (page.len() as i64 == limit).then(|| {
            page.last()
                .map(|e| e.key.strip_prefix(&scope).unwrap_or(&e.key).to_owned())
        });
        let entries = page
            .into_iter()
            .map(|e| entry_json(e, &scope))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "entries": entries, "cursor": next.flatten() }))
    }

    /// Audits a refused call, once per run and capability.
    async fn audit_denial(&self, ctx: &CallContext, capability: Capability, refusal: &HostError) {
        if !ctx.flight.first_denial(capability) {
            return;
        }
        let principal = lock(&ctx.flight.run).principal.clone();
        let entry = NewAuditEntry {
            at: now_ms(),
            tenant_id: Some(ctx.tenant_id.clone()),
            principal,
            action: "capability.denied".into(),
            target: format!("script:{}", ctx.live.script.name),
            outcome: "denied".into(),
            request_id: ctx.run_id.clone(),
            details: json!({
                "capability": capability.name(),
                "run_id": ctx.run_id,
                "version": ctx.live.version.version,
                "code": refusal.code,
                "reason": ctx.flight.redact(&refusal.message),
            })
            .to_string(),
        };
        if let Err(e) = self.store().append_audit(&entry).await {
            tracing::error!(error = %e, run = %ctx.run_id, "could not audit a denied capability call");
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    capability: &'static str,
    /// `ok`, or the error code the call answered.
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapabilityLabel {
    capability: &'static str,
}

/// Upper bounds of the capability latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Capability calls by capability and outcome, and their latency.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<CapabilityLabel, Histogram, fn() -> Histogram>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        }
    }
}

impl GatewayMetrics {
    fn observe(&self, capability: Capability, answer: &Result<Value, HostError>, took: Duration) {
        let outcome = match answer {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code.clone(),
        };
        self.calls
            .get_or_create(&CallLabels {
                capability: capability.name(),
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&CapabilityLabel {
                capability: capability.name(),
            })
            .observe(took.as_secs_f64());
    }

    /// Adds these metrics to `registry` (they stay shared with the engine).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "citadel_capability_calls",
            "Capability calls from scripts by capability and outcome",
            self.calls.clone(),
        );
        registry.register(
            "citadel_capability_call_duration_seconds",
            "Capability call latency by capability",
            self.latency.clone(),
        );
    }

    /// Calls counted for `capability` with `outcome` (for tests and benches).
    pub fn count(&self, capability: Capability, outcome: &str) -> u64 {
        self.calls
            .get(&CallLabels {
                capability: capability.name(),
                outcome: outcome.to_owned(),
            })
            .map_or(0, |c| c.get())
    }
}
