//! The server at its socket: slow or incomplete requests are cut off, and
//! failed authentication is limited and audited per client address. Each
//! test serves on a free local port with small configured limits and talks
//! raw HTTP/1.1, asserting what the server answers (or that it closes the
//! connection) before a generous bound; nothing measures durations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use citadel_app::authn::generate_token;
use citadel_server::{AppState, HttpSettings};
use citadel_store::Store;
use citadel_testkit::TestDb;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any configured limit here: reaching it means the server
/// never acted.
const BOUND: Duration = Duration::from_secs(20);

struct Server {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    owner: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    _db: TestDb,
}

impl Server {
    /// Stops serving (which audits the open failure windows).
    async fn stop(mut self) -> Arc<dyn Store> {
        let _ = self.stop.take().unwrap().send(());
        self.served.await.unwrap().unwrap();
        Arc::clone(&self.store)
    }
}

async fn serve(config: HttpSettings) -> Server {
    let db = TestDb::new().await;
    let store = Arc::clone(&db.store);
    let acme = db.tenant("acme").await;
    let owner = citadel_testkit::token(store.as_ref(), &acme, "owner")
        .await
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(Arc::clone(&store), None);
    let served = tokio::spawn(async move {
        citadel_server::serve_with(listener, state, &config, async move {
            let _ = stopped.await;
        })
        .await
    });
    Server {
        addr,
        store,
        owner,
        stop: Some(stop),
        served,
        _db: db,
    }
}

/// Reads until the server closes the connection (or `BOUND` passes, which
/// fails the test).
async fn read_to_close(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, conn.read_to_end(&mut out))
        .await
        .expect("the server neither answered nor closed the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

/// One request on its own connection: (status, headers, JSON body).
async fn request(addr: SocketAddr, raw: &str) -> (u16, String, Value) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(raw.as_bytes()).await.unwrap();
    let text = read_to_close(&mut conn).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn get(path: &str, token: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_headers_are_cut_off() {
    let server = serve(HttpSettings {
        header_read_timeout_ms: 200,
        ..HttpSettings::default()
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    // Half a request: the headers never end.
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut conn).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // An idle connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // The server still serves.
    let (status, _, body) = request(server.addr, &get("/health", "-")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_body_is_answered_408() {
    let server = serve(HttpSettings {
        body_read_timeout_ms: 200,
        ..HttpSettings::default()
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"name\":",
        server.owner
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut conn).await;
    let (status_line, body) = answer.split_once("\r\n").unwrap_or((&answer, ""));
    assert!(status_line.starts_with("HTTP/1.1 408"), "{answer}");
    let json = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    assert_eq!(v["error"]["code"], "timeout", "{answer}");
    assert_eq!(
        v["error"]["message"],
        "the request body did not arrive within 200 ms"
    );
    server.stop().await;
}

async fn auth_failures(store: &dyn Store) -> Vec<citadel_store::AuditEntry> {
    citadel_testkit::audit(store, "auth.failed").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_limited_and_audited_per_address() {
    let server = serve(HttpSettings {
        auth_failure_limit: 3,
        auth_failure_window_ms: 600_000,
        ..HttpSettings::default()
    })
    .await;
    let bad = generate_token();
    for _ in 0..3 {
        let (status, _, v) = request(server.addr, &get("/v1/roles", &bad)).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (401, Some("unauthorized"))
        );
    }
    // Past the limit: 429 with Retry-After, and no row per attempt.
    let (status, head, v) = request(server.addr, &get("/v1/roles", &bad)).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    assert!(head.contains("\r\nretry-after: "), "{head}");
    let (status, _, _) = request(server.addr, &get("/v1/roles", "ctk_malformed")).await;
    assert_eq!(status, 429);
    // Guessing passwords from there costs no password hash either.
    let login = r#"{"tenant":"acme","username":"alice","password":"correct horse battery"}"#;
    let (status, _, v) = request(
        server.addr,
        &format!(
            "POST /v1/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
            login.len()
        ),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // A valid token from the same address still works.
    let (status, _, _) = request(server.addr, &get("/v1/roles", &server.owner)).await;
    assert_eq!(status, 200);
    assert_eq!(auth_failures(server.store.as_ref()).await.len(), 0);
    // One entry for the window, with the count.
    let store = server.stop().await;
    let entries = auth_failures(store.as_ref()).await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0].entry;
    assert_eq!(
        (e.target.as_str(), e.outcome.as_str()),
        ("127.0.0.1", "denied")
    );
    let details: Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["count"], 6, "{details}");
    assert_eq!(details["rate_limited"], 3, "{details}");
    assert_eq!(details["reasons"]["unknown token"], 4, "{details}");
    assert_eq!(details["reasons"]["malformed bearer token"], 1, "{details}");
    assert_eq!(details["reasons"]["invalid credentials"], 1, "{details}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_is_audited_while_serving() {
    let server = serve(HttpSettings {
        auth_failure_limit: 100,
        auth_failure_window_ms: 100,
        ..HttpSettings::default()
    })
    .await;
    let bad = generate_token();
    for _ in 0..2 {
        let (status, _, _) = request(server.addr, &get("/v1/roles", &bad)).await;
        assert_eq!(status, 401);
    }
    // The window closes and the server writes it without further requests.
    let mut entries = Vec::new();
    for _ in 0..2000 {
        entries = auth_failures(server.store.as_ref()).await;
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(entries.len(), 1, "the closed window was not audited");
    let details: Value = serde_json::from_str(&entries[0].entry.details).unwrap();
    assert_eq!(details["count"], 2, "{details}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_timeout_answers_in_the_json_error_shape() {
    // The request deadline comes before the body's: the framework answers.
    let server = serve(HttpSettings {
        request_timeout_ms: 200,
        body_read_timeout_ms: 600_000,
        ..HttpSettings::default()
    })
    .await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{",
        server.owner
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let json = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    assert_eq!(v["error"]["code"], "timeout", "{answer}");
    server.stop().await;
}
