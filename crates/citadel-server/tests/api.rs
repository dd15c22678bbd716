//! The API at its edge, through the router (`oneshot`), on a fresh SQLite
//! file per test. A table walks every endpoint with every kind of bad
//! credential and bad body, asserting status, error code and audit entry.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use citadel_app::authn::generate_token;
use citadel_server::HttpSettings;
use citadel_store::{Store, now_ms};
use citadel_testkit::{Api, TestDb, TokenSpec, mint};
use serde_json::{Value, json};

struct World {
    api: Api,
    store: Arc<dyn Store>,
    acme: String,
    owner: String,
    viewer: String,
    expired: String,
    revoked: String,
    platform: String,
    /// A token id and a custom role of another tenant.
    other_token_id: String,
    _db: TestDb,
}

async fn token(
    store: &dyn Store,
    tenant: Option<&str>,
    role: Option<&str>,
    expires_at: Option<i64>,
) -> (String, String) {
    let t = mint(
        store,
        TokenSpec {
            tenant,
            name: "t",
            role,
            expires_at,
            ..TokenSpec::default()
        },
    )
    .await;
    (t.secret, t.id)
}

async fn world() -> World {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let other = db.tenant("other").await;
    let (owner, _) = token(store.as_ref(), Some(&acme), Some("owner"), None).await;
    let (viewer, _) = token(store.as_ref(), Some(&acme), Some("viewer"), None).await;
    let (expired, _) = token(
        store.as_ref(),
        Some(&acme),
        Some("owner"),
        Some(now_ms() + 50),
    )
    .await;
    let (revoked, revoked_id) = token(store.as_ref(), Some(&acme), Some("owner"), None).await;
    store
        .revoke_token(&acme, &revoked_id, now_ms())
        .await
        .unwrap();
    let (platform, _) = token(store.as_ref(), None, None, None).await;
    let (_, other_token_id) = token(store.as_ref(), Some(&other), Some("owner"), None).await;
    store
        .put_role(&citadel_store::CustomRole {
            tenant_id: other.clone(),
            name: "secret-role".into(),
            permissions: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    // Let the expiring token expire.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let config = HttpSettings {
        body_limit_bytes: 4096,
        // Every request here comes from one source: the walk of every
        // endpoint with every bad credential must not hit the limit.
        auth_failure_limit: 10_000,
        ..HttpSettings::default()
    };
    let api = Api::new(Arc::clone(&store), None, &config);
    World {
        api,
        store,
        acme,
        owner,
        viewer,
        expired,
        revoked,
        platform,
        other_token_id,
        _db: db,
    }
}

/// A request with `authorization` as the header's value, if any.
async fn call(
    api: &Api,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    api.call_with_header(authorization, method, path, body.map(str::to_owned))
        .await
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

async fn audit_count(store: &dyn Store, action: &str) -> usize {
    citadel_testkit::audit(store, action).await.len()
}

/// (method, path, body, the permission a viewer lacks; `None` if a viewer may).
fn endpoints() -> Vec<(
    Method,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
)> {
    vec![
        (
            Method::POST,
            "/v1/tenants",
            Some(r#"{"name":"newco"}"#),
            Some("platform.admin"),
        ),
        (Method::GET, "/v1/tenants", None, Some("platform.admin")),
        (
            Method::POST,
            "/v1/tokens",
            Some(r#"{"name":"x","role":"viewer"}"#),
            Some("token.write"),
        ),
        (Method::GET, "/v1/tokens", None, Some("token.read")),
        (
            Method::DELETE,
            "/v1/tokens/tok_nope",
            None,
            Some("token.write"),
        ),
        (Method::GET, "/v1/roles", None, Some("role.read")),
        (
            Method::PUT,
            "/v1/roles/auditor",
            Some(r#"{"permissions":["audit.read"]}"#),
            Some("role.write"),
        ),
        (
            Method::DELETE,
            "/v1/roles/auditor",
            None,
            Some("role.write"),
        ),
        (Method::GET, "/v1/audit", None, Some("audit.read")),
        (
            Method::POST,
            "/v1/users",
            Some(r#"{"username":"bob","password":"correct horse battery","role":"viewer"}"#),
            Some("user.write"),
        ),
        (Method::GET, "/v1/users", None, Some("user.read")),
        (
            Method::DELETE,
            "/v1/users/usr_nope",
            None,
            Some("user.write"),
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_refuses_bad_credentials() {
    let w = world().await;
    let cases: Vec<(&str, Option<String>, &str, bool)> = vec![
        ("no token", None, "missing bearer token", false),
        (
            "malformed token",
            Some("Bearer nope".into()),
            "malformed bearer token",
            true,
        ),
        (
            "not bearer",
            Some(format!("Basic {}", w.owner)),
            "malformed bearer token",
            true,
        ),
        (
            "unknown token",
            Some(bearer(&generate_token())),
            "unknown token",
            true,
        ),
        (
            "expired token",
            Some(bearer(&w.expired)),
            "token expired",
            true,
        ),
        (
            "revoked token",
            Some(bearer(&w.revoked)),
            "token revoked",
            true,
        ),
    ];
    let mut reasons: std::collections::BTreeMap<(Option<String>, &str), u64> =
        std::collections::BTreeMap::new();
    for (method, path, body, _) in endpoints() {
        for (what, auth, message, audited) in &cases {
            let before = audit_count(w.store.as_ref(), "auth.failed").await;
            let (status, v) = call(&w.api, method.clone(), path, auth.as_deref(), body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {what}: {v}"
            );
            assert_eq!(
                v["error"]["code"], "unauthorized",
                "{method} {path} with {what}"
            );
            assert_eq!(
                v["error"]["message"], *message,
                "{method} {path} with {what}"
            );
            // Failures are counted, not written one row each.
            assert_eq!(
                audit_count(w.store.as_ref(), "auth.failed").await,
                before,
                "{method} {path} with {what}: no audit row per failure"
            );
            if *audited {
                // Revoked and expired tokens name their tenant.
                let tenant = message.starts_with("token ").then(|| w.acme.clone());
                *reasons.entry((tenant, *message)).or_default() += 1;
            }
        }
    }
    // The window's failures are one entry per tenant they name, with counts.
    w.api.state().flush_auth_failures(true).await;
    let entries = citadel_testkit::audit(w.store.as_ref(), "auth.failed").await;
    assert_eq!(entries.len(), 2, "one entry for the tenant, one without");
    for e in &entries {
        let details: Value = serde_json::from_str(&e.entry.details).unwrap();
        assert_eq!(e.entry.target, "local");
        assert_eq!(e.entry.outcome, "denied");
        for ((tenant, reason), count) in &reasons {
            if *tenant == e.entry.tenant_id {
                assert_eq!(details["reasons"][*reason], *count, "{details}");
            }
        }
        let total: u64 = reasons
            .iter()
            .filter(|((t, _), _)| *t == e.entry.tenant_id)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(details["count"], total, "{details}");
        assert_eq!(details["rate_limited"], 0);
    }
}

#[tokio::test]
async fn a_role_without_the_permission_gets_403_naming_it() {
    let w = world().await;
    for (method, path, body, missing) in endpoints() {
        let Some(missing) = missing else { continue };
        let before = audit_count(w.store.as_ref(), "permission.denied").await;
        let (status, v) = call(&w.api, method.clone(), path, Some(&bearer(&w.viewer)), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "forbidden");
        assert_eq!(
            v["error"]["details"]["permission"], missing,
            "{method} {path}"
        );
        assert_eq!(
            audit_count(w.store.as_ref(), "permission.denied").await - before,
            1,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn another_tenants_ids_are_not_found() {
    let w = world().await;
    let owner = bearer(&w.owner);
    let (status, v) = call(
        &w.api,
        Method::DELETE,
        &format!("/v1/tokens/{}", w.other_token_id),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, _) = call(
        &w.api,
        Method::DELETE,
        "/v1/roles/secret-role",
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, roles) = call(&w.api, Method::GET, "/v1/roles", Some(&owner), None).await;
    assert!(!roles.to_string().contains("secret-role"), "{roles}");
    let (_, tokens) = call(&w.api, Method::GET, "/v1/tokens", Some(&owner), None).await;
    assert!(!tokens.to_string().contains(&w.other_token_id));
    let (_, audit) = call(&w.api, Method::GET, "/v1/audit", Some(&owner), None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"] == json!(w.acme)),
        "{audit}"
    );
}

#[tokio::test]
async fn bad_bodies_get_typed_errors() {
    let w = world().await;
    let owner = bearer(&w.owner);
    let big = format!(r#"{{"name":"{}","role":"viewer"}}"#, "x".repeat(10_000));
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "POST",
            "/v1/tokens",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            r#"{"name":5,"role":"viewer"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            r#"{"name":"x","role":"viewer","admin":true}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            r#"{"name":"x","role":"emperor"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            r#"{"name":"x","role":"viewer","path_prefix":"../etc/"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            r#"{"name":"x","role":"viewer","expires_in_seconds":0}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "POST",
            "/v1/tokens",
            big,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "PUT",
            "/v1/roles/auditor",
            r#"{"permissions":["root"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "PUT",
            "/v1/roles/owner",
            r#"{"permissions":[]}"#.into(),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            "PUT",
            "/v1/roles/auditor",
            r#"{"permissions":"audit.read"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET",
            "/v1/audit?limit=0",
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET",
            "/v1/audit?limit=abc",
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET",
            "/v1/audit?sort=up",
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "GET",
            "/v1/nowhere",
            String::new(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let body = (!body.is_empty()).then_some(body.as_str());
        let (got, v) = call(&w.api, method.parse().unwrap(), path, Some(&owner), body).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {v}");
        assert_eq!(v["error"]["code"], code, "{method} {path} {body:?}");
    }
    // A platform admin creating a tenant with a bad name.
    let (status, v) = call(
        &w.api,
        Method::POST,
        "/v1/tenants",
        Some(&bearer(&w.platform)),
        Some(r#"{"name":"Bad Name"}"#),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid"))
    );
    // Still healthy.
    let (status, _) = call(&w.api, Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn tokens_roles_and_audit_work_for_an_owner() {
    let w = world().await;
    let owner = bearer(&w.owner);
    let (status, created) = call(
        &w.api,
        Method::POST,
        "/v1/tokens",
        Some(&owner),
        Some(r#"{"name":"ci","role":"developer","path_prefix":"billing/"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ctk_") && secret.len() == 68);
    // The new token works, with the developer's permissions only.
    let (status, v) = call(
        &w.api,
        Method::GET,
        "/v1/tokens",
        Some(&bearer(&secret)),
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"]["details"]["permission"].clone()),
        (StatusCode::FORBIDDEN, json!("token.read"))
    );
    // A developer cannot mint an owner.
    let (status, _) = call(
        &w.api,
        Method::POST,
        "/v1/tokens",
        Some(&owner),
        Some(r#"{"name":"dev2","role":"developer"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Custom roles.
    let (status, _) = call(
        &w.api,
        Method::PUT,
        "/v1/roles/auditor",
        Some(&owner),
        Some(r#"{"permissions":["audit.read"]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, auditor) = call(
        &w.api,
        Method::POST,
        "/v1/tokens",
        Some(&owner),
        Some(r#"{"name":"aud","role":"auditor"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, page) = call(
        &w.api,
        Method::GET,
        "/v1/audit?limit=2",
        Some(&bearer(auditor["secret"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_i64().unwrap();
    let (_, older) = call(
        &w.api,
        Method::GET,
        &format!("/v1/audit?limit=2&before={next}"),
        Some(&owner),
        None,
    )
    .await;
    assert!(older["entries"][0]["seq"].as_i64().unwrap() < next);
    // Revoking: the token stops working.
    let id = created["id"].as_str().unwrap();
    let (status, _) = call(
        &w.api,
        Method::DELETE,
        &format!("/v1/tokens/{id}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &w.api,
        Method::GET,
        "/v1/roles",
        Some(&bearer(&secret)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for action in ["token.create", "role.put", "token.revoke"] {
        assert!(
            audit_count(w.store.as_ref(), action).await >= 1,
            "{action} was not audited"
        );
    }
    assert!(matches!(
        w.store.verify_audit().await.unwrap(),
        citadel_store::AuditVerdict::Intact { .. }
    ));
}

#[tokio::test]
async fn a_scoped_owner_cannot_hand_out_more_than_it_has() {
    let w = world().await;
    // An owner scoped to billing/ cannot mint a tenant-wide token.
    let secret = mint(
        w.store.as_ref(),
        TokenSpec {
            tenant: Some(&w.acme),
            name: "scoped",
            role: Some("owner"),
            path_prefix: "billing/",
            ..TokenSpec::default()
        },
    )
    .await
    .secret;
    let (status, v) = call(
        &w.api,
        Method::POST,
        "/v1/tokens",
        Some(&bearer(&secret)),
        Some(r#"{"name":"x","role":"viewer"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, _) = call(
        &w.api,
        Method::POST,
        "/v1/tokens",
        Some(&bearer(&secret)),
        Some(r#"{"name":"x","role":"viewer","path_prefix":"billing/eu/"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let w = world().await;
    let (status, doc) = call(&w.api, Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _, _) in endpoints() {
        let template = path
            .replace("tok_nope", "{id}")
            .replace("usr_nope", "{id}")
            .replace("/v1/roles/auditor", "/v1/roles/{name}");
        let op = paths
            .get(&template)
            .unwrap_or_else(|| panic!("{template} is not documented"));
        assert!(
            op.get(method.as_str().to_lowercase()).is_some(),
            "{method} {template} is not documented"
        );
    }
    for path in ["/health", "/ready", "/metrics"] {
        assert!(paths.contains_key(path), "{path}");
    }
}

#[tokio::test]
async fn users_log_in_for_a_session_with_their_roles() {
    let w = world().await;
    let owner = bearer(&w.owner);
    let body = r#"{"username":"alice","password":"correct horse battery","role":"operator"}"#;
    let (status, user) = call(&w.api, Method::POST, "/v1/users", Some(&owner), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
    let (status, v) = call(&w.api, Method::POST, "/v1/users", Some(&owner), Some(body)).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict"))
    );
    let weak = r#"{"username":"bob","password":"short","role":"viewer"}"#;
    let (status, _) = call(&w.api, Method::POST, "/v1/users", Some(&owner), Some(weak)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let login = |tenant: &str, user: &str, pw: &str| {
        format!(r#"{{"tenant":"{tenant}","username":"{user}","password":"{pw}"}}"#)
    };
    let (status, session) = call(
        &w.api,
        Method::POST,
        "/v1/login",
        None,
        Some(&login("acme", "alice", "correct horse battery")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = bearer(session["token"].as_str().unwrap());
    assert!(session["expires_at"].as_i64().unwrap() > now_ms());
    // The session carries the operator role: scripts yes, tokens no.
    let (status, v) = call(&w.api, Method::GET, "/v1/tokens", Some(&token), None).await;
    assert_eq!(
        (status, v["error"]["details"]["permission"].clone()),
        (StatusCode::FORBIDDEN, json!("token.read"))
    );

    // Every failure is the same 401, and audited.
    let before = audit_count(w.store.as_ref(), "auth.login_failed").await;
    for bad in [
        login("acme", "alice", "wrong password!!"),
        login("acme", "nobody", "correct horse battery"),
        login("nope", "alice", "correct horse battery"),
    ] {
        let (status, v) = call(&w.api, Method::POST, "/v1/login", None, Some(&bad)).await;
        assert_eq!(
            (status, v["error"]["message"].clone()),
            (StatusCode::UNAUTHORIZED, json!("invalid credentials")),
            "{bad}"
        );
    }
    assert_eq!(
        audit_count(w.store.as_ref(), "auth.login_failed").await - before,
        3
    );
    let (status, _) = call(
        &w.api,
        Method::POST,
        "/v1/login",
        None,
        Some(r#"{"tenant":"acme","username":"alice"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Disabling the user ends its session and its logins.
    let id = user["id"].as_str().unwrap();
    let (status, _) = call(
        &w.api,
        Method::DELETE,
        &format!("/v1/users/{id}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, v) = call(&w.api, Method::GET, "/v1/roles", Some(&token), None).await;
    assert_eq!(
        (status, v["error"]["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("token revoked"))
    );
    let (status, _) = call(
        &w.api,
        Method::POST,
        "/v1/login",
        None,
        Some(&login("acme", "alice", "correct horse battery")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for action in ["user.create", "auth.login", "user.disable"] {
        assert!(
            audit_count(w.store.as_ref(), action).await >= 1,
            "{action} was not audited"
        );
    }
}
