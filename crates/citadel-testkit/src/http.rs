//! The API through the axum router, one request at a time
//! (`tower::ServiceExt::oneshot`), with no socket: named callers, an
//! optional JSON body, and the answer as (status, JSON), or the raw
//! response for headers and event streams.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, request};
use citadel_engine::Engine;
use citadel_server::{AppState, HttpSettings};
use citadel_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::Token;

/// The router of a server on `store` (and `engine`, if it runs scripts),
/// and the callers a test speaks as, by name.
#[derive(Clone)]
pub struct Api {
    app: Router,
    state: AppState,
    callers: HashMap<String, Token>,
}

impl Api {
    pub fn new(store: Arc<dyn Store>, engine: Option<Engine>, settings: &HttpSettings) -> Api {
        let state = AppState::new(store, engine);
        let (app, _) = citadel_server::router(state.clone(), settings);
        Api {
            app,
            state,
            callers: HashMap::new(),
        }
    }

    pub fn router(&self) -> &Router {
        &self.app
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The same, with `callers` added.
    pub fn with_callers<N: Into<String>>(
        mut self,
        callers: impl IntoIterator<Item = (N, Token)>,
    ) -> Api {
        for (name, token) in callers {
            self.add_caller(name, token);
        }
        self
    }

    /// Lets `name` call with `token` (replacing any token it had).
    pub fn add_caller(&mut self, name: impl Into<String>, token: Token) {
        self.callers.insert(name.into(), token);
    }

    /// The token of the caller `name`.
    pub fn token(&self, name: &str) -> &Token {
        self.callers
            .get(name)
            .unwrap_or_else(|| panic!("no token `{name}`"))
    }

    /// `@name` in an expected value of a scenario, alone or in an array,
    /// stands for the token id of the caller `name`.
    pub fn expand_ids(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if s.starts_with('@') => Value::String(self.token(&s[1..]).id.clone()),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.expand_ids(v)).collect()),
            other => other.clone(),
        }
    }

    /// A request as `caller` (`None`: without credentials), to add headers
    /// and a body to.
    pub fn builder(&self, caller: Option<&str>, method: Method, path: &str) -> request::Builder {
        let req = Request::builder().method(method).uri(path);
        match caller {
            Some(name) => req.header(
                "authorization",
                format!("Bearer {}", self.token(name).secret),
            ),
            None => req,
        }
    }

    /// A request as `caller` with `body` as JSON text, if any.
    pub fn request(
        &self,
        caller: Option<&str>,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Request<Body> {
        with_body(self.builder(caller, method, path), body)
    }

    /// Sends one request through the router.
    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(req).await.unwrap()
    }

    /// The raw answer to a request as `caller`.
    pub async fn response(
        &self,
        caller: Option<&str>,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Response<Body> {
        self.send(self.request(caller, method, path, body)).await
    }

    /// A request as the caller `caller`: (status, body as JSON, or `null`).
    pub async fn call(
        &self,
        caller: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        json(self.response(Some(caller), method, path, body).await).await
    }

    /// [`Api::call`] with a body given as a JSON value.
    pub async fn call_json(
        &self,
        caller: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(caller, method, path, body.map(|b| b.to_string()))
            .await
    }

    /// A request without credentials: (status, body as JSON, or `null`).
    pub async fn call_anonymous(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        json(self.response(None, method, path, body).await).await
    }

    /// A request with `authorization` as the header's whole value (`None`:
    /// no header), for credentials no caller holds: (status, body as JSON,
    /// or `null`).
    pub async fn call_with_header(
        &self,
        authorization: Option<&str>,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        json(self.send(with_body(req, body)).await).await
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        text(self.response(None, Method::GET, "/metrics", None).await).await
    }
}

fn with_body(req: request::Builder, body: Option<String>) -> Request<Body> {
    match body {
        Some(body) => req
            .header("content-type", "application/json")
            .body(Body::from(body)),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

/// A whole response: (status, body as JSON, or `null` if it is not JSON).
pub async fn json(res: Response<Body>) -> (StatusCode, Value) {
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A whole response's body as text.
pub async fn text(res: Response<Body>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// One step of a data-driven API scenario (`tests/api/*.json`): who calls
/// (`as`), the request (`method`, `path`, and `body` as JSON or `raw_body`
/// as text), and the audit entry it must leave (`audit`: action, outcome).
/// What a step expects of the answer stays with the suite that walks it.
#[derive(Debug)]
pub struct Step<'a> {
    pub name: &'a str,
    pub caller: &'a str,
    pub method: Method,
    pub path: &'a str,
    pub body: Option<String>,
    /// (action, outcome).
    pub audit: Option<(String, String)>,
}

impl<'a> Step<'a> {
    /// Reads `step`, passing a JSON `body` through `expand` first.
    pub fn parse(step: &'a Value, expand: impl Fn(&Value) -> Value) -> Step<'a> {
        let body = match (step.get("body"), step.get("raw_body")) {
            (Some(b), _) => Some(expand(b).to_string()),
            (None, Some(raw)) => Some(raw.as_str().unwrap().to_owned()),
            (None, None) => None,
        };
        let audit = step.get("audit").map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        });
        Step {
            name: step["step"].as_str().unwrap(),
            caller: step["as"].as_str().unwrap(),
            method: step["method"].as_str().unwrap().parse().unwrap(),
            path: step["path"].as_str().unwrap(),
            body,
            audit,
        }
    }
}
