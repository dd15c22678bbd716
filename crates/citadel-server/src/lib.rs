//! The HTTP API (`citadel serve`). Only this crate knows HTTP and the
//! API's JSON.
//!
//! Each handler extracts a request (the caller through [`auth::Authed`],
//! the body through the JSON extractor), calls one use case of
//! `citadel_app` — which checks permissions, audits, and scopes everything
//! by the tenant of the caller's token — and maps its answer to a response
//! and its error to a status ([`error::ApiError`]).

pub mod auth;
mod console;
pub mod edge;
pub mod error;
mod json;
mod metrics;
mod openapi;
mod page;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use citadel_app::App;
use citadel_engine::Engine;
use citadel_pool::Pool;
use citadel_store::Store;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use metrics::Metrics;

/// What the HTTP layer needs of the node's configuration; the binary loads
/// the rest (and the layering of file, environment and flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Address the HTTP API listens on.
    pub listen: std::net::SocketAddr,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_ms: u64,
    /// A client that has not sent a whole request line and headers this
    /// long after starting (or after its previous request) is disconnected.
    pub header_read_timeout_ms: u64,
    /// A request body not received whole this long after its headers is
    /// answered 408 `timeout`.
    pub body_read_timeout_ms: u64,
    /// Failed authentications a client address may make per window before
    /// it is answered 429 `rate_limited`.
    pub auth_failure_limit: u64,
    pub auth_failure_window_ms: u64,
    /// The header a reverse proxy appends each client's address to, whose
    /// last entry then counts as the client's address (else the peer's).
    pub client_address_header: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 1 << 20,
            request_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 10_000,
            auth_failure_limit: 20,
            auth_failure_window_ms: 60_000,
            client_address_header: None,
        }
    }
}

/// The request-id header, set on every request and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

pub struct StateInner {
    /// The use cases.
    pub app: App,
    /// The sandbox hosts, when the engine runs isolates in them.
    pub pool: Option<Pool>,
    pub metrics: Metrics,
    pub(crate) sources: auth::Sources,
}

impl std::ops::Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, engine: Option<Engine>) -> Self {
        let pool = engine.as_ref().and_then(|e| e.executor().pool().cloned());
        let metrics = Metrics::new(engine.as_ref());
        AppState(Arc::new(StateInner {
            app: App::new(store, engine),
            pool,
            metrics,
            sources: auth::Sources::default(),
        }))
    }

    /// Writes the audit entries of the failed-authentication windows that
    /// have closed (every window, with `all`: at shutdown, and in tests).
    pub async fn flush_auth_failures(&self, all: bool) {
        citadel_app::authn::flush_failures(&self.app, all).await;
    }
}

#[derive(Clone, Copy)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        citadel_store::new_id("req")
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// The router and its OpenAPI document, generated from the same handlers.
pub fn router(state: AppState, config: &HttpSettings) -> (Router, utoipa::openapi::OpenApi) {
    state.sources.trust_address_header(
        config
            .client_address_header
            .as_deref()
            .and_then(|h| HeaderName::try_from(h.to_ascii_lowercase()).ok()),
    );
    state.app.limit_auth_failures(citadel_app::FailureLimit {
        limit: config.auth_failure_limit,
        window_ms: config.auth_failure_window_ms.min(i64::MAX as u64) as i64,
    });
    let (api, mut openapi) = routes::all().split_for_parts();
    openapi::finish(&mut openapi);
    let spec = openapi.clone();
    let app = api
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || std::future::ready(axum::Json(spec.clone()))),
        )
        // Plugins' own routes: each plugin declares them, so they are not
        // in the document.
        .route(
            "/ext/{tenant}/{slug}",
            axum::routing::any(routes::plugins::ext_route),
        )
        .route(
            "/ext/{tenant}/{slug}/{*path}",
            axum::routing::any(routes::plugins::ext_route),
        )
        .route(
            "/hooks/{tenant}/{name}",
            axum::routing::post(routes::webhooks::receive_inbound),
        )
        .merge(console::routes())
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            error::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here; the `Allow` header lists what is"),
            )
        })
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(config.body_read_timeout_ms),
            edge::body_deadline,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(config.request_timeout_ms),
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeId))
        .with_state(state);
    (app, openapi)
}

/// Serves until SIGTERM or SIGINT; requests in flight finish first.
pub async fn serve(state: AppState, config: &HttpSettings) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "citadel is serving");
    serve_with(listener, state, config, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` resolves: the router, the
/// connection timeouts of `config`, and the audit of failed
/// authentications as their windows close (the rest at shutdown).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    config: &HttpSettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (app, _) = router(state.clone(), config);
    let every = Duration::from_millis(config.auth_failure_window_ms.clamp(10, 1_000));
    let sweeper = tokio::spawn({
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                state.flush_auth_failures(false).await;
            }
        }
    });
    let served = edge::serve_on(
        listener,
        app,
        Duration::from_millis(config.header_read_timeout_ms),
        shutdown,
    )
    .await;
    sweeper.abort();
    state.flush_auth_failures(true).await;
    served
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
