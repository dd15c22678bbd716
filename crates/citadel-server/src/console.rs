//! The web console: one page and its assets, built from `console/` and
//! embedded in the binary (nothing needs Node at run time). The page talks
//! to the same `/v1` API as any client.
//!
//! Every console response carries a strict Content-Security-Policy (only
//! this origin's scripts and styles, no inline script, no `eval`), refuses
//! to be framed, and sends no referrer.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// The built bundle, committed under `crates/citadel-server/console/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/style.css"),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/uplot.css"),
    ),
];

const INDEX: &[u8] = include_bytes!("../console/index.html");

/// The console's policy for its assets.
pub(crate) const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the page's style nonce goes in `index.html`.
const NONCE_SLOT: &str = "__STYLE_NONCE__";

/// The page's policy: as the assets', plus one style nonce per response.
/// The editor writes its theme into a `<style>` element, which only a
/// nonce admits; scripts stay `'self'` only.
fn page_csp(nonce: &str, frame_ancestors: &str, img_src: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; \
         img-src {img_src}; font-src 'self'; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// A fresh nonce: 128 random bits, hex.
fn nonce() -> String {
    let id = citadel_store::new_id("n");
    id.trim_start_matches("n_").to_owned()
}

/// `index.html` with a fresh style nonce, and its policy.
fn index_page(frame_ancestors: &str, img_src: &str) -> (String, String) {
    let nonce = nonce();
    let html = String::from_utf8_lossy(INDEX).replace(NONCE_SLOT, &nonce);
    (html, page_csp(&nonce, frame_ancestors, img_src))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", axum::routing::get(index))
        .route("/console/{file}", axum::routing::get(asset))
        .route("/embed/{tenant}", axum::routing::get(embed))
}

async fn index() -> Response {
    let (html, csp) = index_page("'none'", "'self' data:");
    page(html, "text/html; charset=utf-8", &csp, true)
}

/// The embedded editor: the same page, framable only by the tenant's
/// `embed.origins` (by none when it has none). Its logo may come from any
/// `https:` host, as the tenant's theme names it.
async fn embed(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    let origins = match citadel_app::embed::frame_origins(&state.app, &tenant).await {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Each origin was checked to be exactly `scheme://host[:port]` when the
    // settings were saved, so none can break out of the header.
    let ancestors = if origins.is_empty() {
        "'none'".to_owned()
    } else {
        origins.join(" ")
    };
    let (html, csp) = index_page(&ancestors, "'self' data: https:");
    page(html, "text/html; charset=utf-8", &csp, origins.is_empty())
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, bytes)) => page(*bytes, kind, CONSOLE_CSP, true),
        None => ApiError::not_found("no such console asset").into_response(),
    }
}

/// A console response with the security headers; `deny_framing` false
/// leaves framing to the policy's `frame-ancestors` (the embed pages).
pub(crate) fn page(
    body: impl Into<axum::body::Body>,
    kind: &str,
    csp: &str,
    deny_framing: bool,
) -> Response {
    let mut res = (StatusCode::OK, body.into()).into_response();
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, kind);
    set(h, header::CONTENT_SECURITY_POLICY, csp);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-cache");
    if deny_framing {
        set(h, header::X_FRAME_OPTIONS, "DENY");
    }
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}
