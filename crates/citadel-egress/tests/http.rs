//! Against local servers on 127.0.0.1, with `allow_private` on (the guard
//! itself is covered by the corpus and by the crate's own redirect tests):
//! round trips, redirects, caps and time.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citadel_egress::{
    Allowlist, Egress, EgressConfig, EgressError, FetchRequest, FetchResponse, StaticLookup,
};
use common::{Req, closed_port, redirect, respond, serve};
use tokio::io::AsyncWriteExt;

fn config() -> EgressConfig {
    EgressConfig {
        allow_private: true,
        ..EgressConfig::default()
    }
}

fn egress_with(config: EgressConfig) -> Egress {
    Egress::with_lookup(config, Arc::new(StaticLookup::new())).unwrap()
}

fn egress() -> Egress {
    egress_with(config())
}

fn grant(addrs: &[SocketAddr]) -> Allowlist {
    let patterns: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    Allowlist::parse(&patterns).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> FetchRequest {
    FetchRequest::get(format!("http://{addr}{path}"), Duration::from_secs(5))
}

async fn fetch(
    egress: &Egress,
    allow: &Allowlist,
    req: FetchRequest,
) -> Result<FetchResponse, EgressError> {
    egress.fetch(&[allow], req).await
}

fn code(r: Result<FetchResponse, EgressError>) -> String {
    match r {
        Ok(r) => format!("ok {}", r.status),
        Err(e) => e.code().to_owned(),
    }
}

fn header<'a>(r: &'a FetchResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Answers the request it got, as JSON-ish text, plus `x-seen-*` headers.
async fn echo(req: Req, stream: tokio::net::TcpStream) {
    let auth = req.header("authorization").unwrap_or("-").to_owned();
    let ua = req.header("user-agent").unwrap_or("-").to_owned();
    let custom = req.header("x-custom").unwrap_or("-").to_owned();
    let ctype = req.header("content-type").unwrap_or("-").to_owned();
    respond(
        stream,
        200,
        &[
            ("x-seen-method", &req.method),
            ("x-seen-path", &req.path),
            ("x-seen-auth", &auth),
            ("x-seen-ua", &ua),
            ("x-seen-custom", &custom),
            ("x-seen-content-type", &ctype),
        ],
        &req.body,
    )
    .await;
}

#[tokio::test]
async fn get_round_trip() {
    let addr = serve(echo).await;
    let r = fetch(&egress(), &grant(&[addr]), get(addr, "/hello?x=1#frag"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.url, format!("http://{addr}/hello?x=1"));
    assert_eq!(header(&r, "x-seen-method"), Some("GET"));
    assert_eq!(header(&r, "x-seen-path"), Some("/hello?x=1"));
    assert!(
        header(&r, "x-seen-ua")
            .unwrap()
            .starts_with("citadel-egress/")
    );
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn post_with_body_and_headers_round_trip() {
    let addr = serve(echo).await;
    let req = FetchRequest {
        method: "post".into(),
        url: format!("http://{addr}/submit"),
        headers: vec![
            ("X-Custom".into(), "yes".into()),
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), "tenant-script/1".into()),
        ],
        body: Some(br#"{"a":1}"#.to_vec()),
        timeout: Duration::from_secs(5),
    };
    let r = fetch(&egress(), &grant(&[addr]), req).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "x-seen-method"), Some("POST"));
    assert_eq!(header(&r, "x-seen-custom"), Some("yes"));
    assert_eq!(header(&r, "x-seen-content-type"), Some("application/json"));
    assert_eq!(header(&r, "x-seen-ua"), Some("tenant-script/1"));
    assert_eq!(r.body, br#"{"a":1}"#);
}

#[tokio::test]
async fn error_statuses_are_responses() {
    let addr = serve(|_, s| respond(s, 404, &[], b"nope")).await;
    let r = fetch(&egress(), &grant(&[addr]), get(addr, "/"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
    // A 3xx without Location is an answer, not a redirect.
    let addr = serve(|_, s| respond(s, 302, &[], b"")).await;
    let r = fetch(&egress(), &grant(&[addr]), get(addr, "/"))
        .await
        .unwrap();
    assert_eq!(r.status, 302);
}

/// `/r/N` redirects to `/r/N-1`; `/r/0` answers 200.
async fn chain(req: Req, stream: tokio::net::TcpStream) {
    let n: u32 = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
    if n == 0 {
        respond(stream, 200, &[], b"end").await;
    } else {
        redirect(stream, 302, &format!("/r/{}", n - 1)).await;
    }
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let addr = serve(chain).await;
    let allow = grant(&[addr]);
    let r = fetch(&egress(), &allow, get(addr, "/r/5")).await.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"end"[..]));
    assert_eq!(r.url, format!("http://{addr}/r/0"));
    assert_eq!(
        code(fetch(&egress(), &allow, get(addr, "/r/6")).await),
        "too_many_redirects"
    );
    let strict = egress_with(EgressConfig {
        max_redirects: 0,
        ..config()
    });
    assert_eq!(
        code(fetch(&strict, &allow, get(addr, "/r/1")).await),
        "too_many_redirects"
    );
}

#[tokio::test]
async fn every_redirect_is_checked_against_the_allowlist() {
    let other = serve(echo).await;
    let to_other = format!("http://{other}/");
    let addr = serve(move |req, s| {
        let to_other = to_other.clone();
        async move {
            let location = match req.path.as_str() {
                "/other" => to_other.as_str(),
                "/elsewhere" => "http://elsewhere.test/",
                "/https" => "https://127.0.0.1/",
                "/ftp" => "ftp://127.0.0.1/",
                "/bad" => "http://[::1/",
                _ => "/",
            };
            redirect(s, 307, location).await;
        }
    })
    .await;
    let only_first = grant(&[addr]);
    for (path, want) in [
        ("/other", "host_not_allowed"),
        ("/elsewhere", "host_not_allowed"),
        ("/https", "host_not_allowed"),
        ("/ftp", "scheme_not_allowed"),
        ("/bad", "invalid_url"),
    ] {
        assert_eq!(
            code(fetch(&egress(), &only_first, get(addr, path)).await),
            want,
            "{path}"
        );
    }
    // Allowed once the second server is granted too.
    let both = grant(&[addr, other]);
    let r = fetch(&egress(), &both, get(addr, "/other")).await.unwrap();
    assert_eq!(r.url, format!("http://{other}/"));
    // A ceiling that lacks the second server refuses the hop as well.
    let ceiling = grant(&[addr]);
    let r = egress()
        .fetch(&[&both, &ceiling], get(addr, "/other"))
        .await;
    assert_eq!(code(r), "host_not_allowed");
}

#[tokio::test]
async fn redirect_methods_and_bodies() {
    let target = serve(echo).await;
    let addr = serve(move |req, s| async move {
        let status: u16 = req.path.trim_start_matches('/').parse().unwrap();
        redirect(s, status, &format!("http://{target}/to")).await;
    })
    .await;
    let allow = grant(&[addr, target]);
    let post = |status: u16| FetchRequest {
        method: "POST".into(),
        url: format!("http://{addr}/{status}"),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Some(b"payload".to_vec()),
        timeout: Duration::from_secs(5),
    };
    for (status, method, body, ctype) in [
        (301, "GET", &b""[..], "-"),
        (302, "GET", b"", "-"),
        (303, "GET", b"", "-"),
        (307, "POST", b"payload", "text/plain"),
        (308, "POST", b"payload", "text/plain"),
    ] {
        let r = fetch(&egress(), &allow, post(status)).await.unwrap();
        assert_eq!(header(&r, "x-seen-method"), Some(method), "{status}");
        assert_eq!(r.body, body, "{status}");
        assert_eq!(header(&r, "x-seen-content-type"), Some(ctype), "{status}");
    }
    // 303 turns PUT into GET too; 301 keeps a PUT.
    for (status, want) in [(303, "GET"), (301, "PUT")] {
        let mut req = post(status);
        req.method = "PUT".into();
        let r = fetch(&egress(), &allow, req).await.unwrap();
        assert_eq!(header(&r, "x-seen-method"), Some(want), "{status}");
    }
}

#[tokio::test]
async fn authorization_is_dropped_across_origins() {
    let other = serve(echo).await;
    let addr = serve(move |req, s| async move {
        match req.path.as_str() {
            "/cross" => redirect(s, 302, &format!("http://{other}/")).await,
            "/same" => redirect(s, 302, "/echo").await,
            _ => echo(req, s).await,
        }
    })
    .await;
    let allow = grant(&[addr, other]);
    let with_auth = |path: &str| FetchRequest {
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        ..get(addr, path)
    };
    let same = fetch(&egress(), &allow, with_auth("/same")).await.unwrap();
    assert_eq!(header(&same, "x-seen-auth"), Some("Bearer t0ken"));
    let cross = fetch(&egress(), &allow, with_auth("/cross")).await.unwrap();
    assert_eq!(header(&cross, "x-seen-auth"), Some("-"));
}

#[tokio::test]
async fn response_announced_too_large() {
    let addr = serve(|_, mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10485760\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let started = Instant::now();
    let r = fetch(&egress(), &grant(&[addr]), get(addr, "/")).await;
    assert_eq!(code(r), "response_too_large");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn response_over_the_cap_is_cut() {
    let body = vec![b'x'; 2000];
    let addr = serve(move |_, s| {
        let body = body.clone();
        async move { respond(s, 200, &[], &body).await }
    })
    .await;
    let small = egress_with(EgressConfig {
        max_response_bytes: 1999,
        ..config()
    });
    assert_eq!(
        code(fetch(&small, &grant(&[addr]), get(addr, "/")).await),
        "response_too_large"
    );
    let exact = egress_with(EgressConfig {
        max_response_bytes: 2000,
        ..config()
    });
    let r = fetch(&exact, &grant(&[addr]), get(addr, "/"))
        .await
        .unwrap();
    assert_eq!(r.body.len(), 2000);
}

#[tokio::test]
async fn endless_response_hits_the_size_cap() {
    let addr = serve(|_, mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("4000\r\n{}\r\n", "y".repeat(0x4000));
        while s.write_all(chunk.as_bytes()).await.is_ok() {}
    })
    .await;
    let capped = egress_with(EgressConfig {
        max_response_bytes: 256 * 1024,
        ..config()
    });
    let req = FetchRequest {
        timeout: Duration::from_secs(20),
        ..get(addr, "/")
    };
    let started = Instant::now();
    assert_eq!(
        code(fetch(&capped, &grant(&[addr]), req).await),
        "response_too_large"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn slow_loris_body_hits_the_timeout() {
    let addr = serve(|_, mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            .await;
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(b"z").await.is_err() {
                return;
            }
        }
    })
    .await;
    let req = FetchRequest {
        timeout: Duration::from_secs(1),
        ..get(addr, "/")
    };
    let started = Instant::now();
    assert_eq!(
        code(fetch(&egress(), &grant(&[addr]), req).await),
        "timeout"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn slow_loris_headers_hit_the_timeout() {
    let addr = serve(|_, mut s| async move {
        for b in b"HTTP/1.1 200 OK\r\nx-slow: ".iter().cycle().take(10_000) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let req = FetchRequest {
        timeout: Duration::from_secs(1),
        ..get(addr, "/")
    };
    assert_eq!(
        code(fetch(&egress(), &grant(&[addr]), req).await),
        "timeout"
    );
}

#[tokio::test]
async fn the_timeout_covers_the_whole_redirect_chain() {
    // Each hop takes 300 ms; five of them cannot fit in one second.
    let addr = serve(|req, s| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        chain(req, s).await;
    })
    .await;
    let req = FetchRequest {
        timeout: Duration::from_secs(1),
        ..get(addr, "/r/5")
    };
    assert_eq!(
        code(fetch(&egress(), &grant(&[addr]), req).await),
        "timeout"
    );
}

#[tokio::test]
async fn a_timeout_too_large_to_add_is_no_bound() {
    let addr = serve(echo).await;
    let req = FetchRequest {
        timeout: Duration::MAX,
        ..get(addr, "/")
    };
    assert_eq!(code(fetch(&egress(), &grant(&[addr]), req).await), "ok 200");
}

#[tokio::test]
async fn request_body_over_the_cap() {
    let hits = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&hits);
    let addr = serve(move |req, s| {
        *counter.lock().unwrap() += 1;
        echo(req, s)
    })
    .await;
    let small = egress_with(EgressConfig {
        max_request_bytes: 10,
        ..config()
    });
    let req = |len: usize| FetchRequest {
        method: "POST".into(),
        body: Some(vec![b'a'; len]),
        ..get(addr, "/")
    };
    assert_eq!(
        code(fetch(&small, &grant(&[addr]), req(11)).await),
        "request_too_large"
    );
    assert_eq!(*hits.lock().unwrap(), 0, "nothing was sent");
    assert_eq!(
        code(fetch(&small, &grant(&[addr]), req(10)).await),
        "ok 200"
    );
}

#[tokio::test]
async fn bad_methods_and_headers_are_invalid_requests() {
    let addr = serve(echo).await;
    let allow = grant(&[addr]);
    for method in ["CONNECT", "trace", "GE T", "", "G\u{e9}T"] {
        let req = FetchRequest {
            method: method.into(),
            ..get(addr, "/")
        };
        assert_eq!(
            code(fetch(&egress(), &allow, req).await),
            "invalid_request",
            "{method:?}"
        );
    }
    for (name, value) in [
        ("Host", "evil.test"),
        ("connection", "keep-alive"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "5"),
        ("Proxy-Authorization", "Basic eA=="),
        ("proxy-connection", "x"),
        ("Upgrade", "websocket"),
        ("TE", "trailers"),
        ("bad name", "x"),
        ("", "x"),
        ("x-ok", "line\r\nInjected: 1"),
        ("x-ok", "nul\0"),
    ] {
        let req = FetchRequest {
            headers: vec![(name.into(), value.into())],
            ..get(addr, "/")
        };
        assert_eq!(
            code(fetch(&egress(), &allow, req).await),
            "invalid_request",
            "{name:?}: {value:?}"
        );
    }
    // Custom methods pass.
    let req = FetchRequest {
        method: "PURGE".into(),
        ..get(addr, "/")
    };
    let r = fetch(&egress(), &allow, req).await.unwrap();
    assert_eq!(header(&r, "x-seen-method"), Some("PURGE"));
}

#[tokio::test]
async fn nothing_listening_is_connect_failed() {
    let port = closed_port().await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let err = fetch(&egress(), &grant(&[addr]), get(addr, "/"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connect_failed");
    // A name that does not resolve, same code.
    let allow = Allowlist::parse(&["http://nowhere.test".to_string()]).unwrap();
    let req = FetchRequest::get("http://nowhere.test/", Duration::from_secs(5));
    assert_eq!(code(egress().fetch(&[&allow], req).await), "connect_failed");
}

#[tokio::test]
async fn a_server_that_hangs_up_is_connect_failed() {
    let addr = serve(|_, s| async move { drop(s) }).await;
    assert_eq!(
        code(fetch(&egress(), &grant(&[addr]), get(addr, "/")).await),
        "connect_failed"
    );
}
