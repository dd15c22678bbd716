//! The client: one `reqwest::Client` whose DNS resolver is the address
//! guard, and the fetch loop that checks every hop.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::{Host, Url};

use crate::allowlist::{Allowlist, Denied};
use crate::error::EgressError;
use crate::guard::{self, AddressClass};

/// Limits and settings of the platform (not of a tenant).
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Skip the address guard (never the allowlists): for tests and for
    /// platforms whose receivers live on a private network.
    pub allow_private: bool,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes; a longer one is cut and refused.
    pub max_response_bytes: usize,
    /// Redirects followed; one more is `too_many_redirects`.
    pub max_redirects: usize,
    /// Time to open one connection (the whole call has its own timeout).
    pub connect_timeout: Duration,
    /// `User-Agent` sent unless the request sets its own.
    pub user_agent: String,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_request_bytes: 1 << 20,
            max_response_bytes: 5 << 20,
            max_redirects: 5,
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("citadel-egress/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// One request from a script.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// `GET`, `POST`, ...; the usual ones in any case. `CONNECT` and
    /// `TRACE` are refused.
    pub method: String,
    /// An absolute `http` or `https` URL, without user name or password.
    pub url: String,
    /// Header names and values, sent in order. `Host`, `Connection`,
    /// `Keep-Alive`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade`,
    /// `Content-Length`, `Expect` and `Proxy-*` belong to the client and
    /// are refused (`invalid_request`) rather than dropped, so a script
    /// learns they are not sent.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// Bound on the whole call: every connect, redirect and body.
    pub timeout: Duration,
}

impl FetchRequest {
    /// A `GET` of `url` with no headers, bounded by `timeout`.
    pub fn get(url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout,
        }
    }
}

/// The answer to a request, after redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// The HTTP status.
    pub status: u16,
    /// The final URL, after redirects.
    pub url: String,
    /// Header names (lower case) and values (not UTF-8: lossily decoded).
    pub headers: Vec<(String, String)>,
    /// The body, at most `max_response_bytes`.
    pub body: Vec<u8>,
}

/// What [`Lookup::lookup`] returns.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Name resolution, before the guard. [`SystemLookup`] in production;
/// [`StaticLookup`] or one's own in tests.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses of `host` (a domain name, never an IP literal).
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The system resolver (`getaddrinfo`, through `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests: an unknown name does not resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticLookup {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticLookup {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// `host` resolves to `addrs` (names compared as the guard sees them:
    /// lower case, without trailing dot).
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.names.insert(normal_name(host), addrs.to_vec());
        self
    }
}

fn normal_name(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

impl Lookup for StaticLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        let found = self.names.get(&normal_name(&host)).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        })
    }
}

/// The guard's refusal, carried through reqwest's error chain.
#[derive(Debug)]
struct Blocked(AddressClass);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "only non-public addresses ({})", self.0)
    }
}

impl StdError for Blocked {}

/// The name did not resolve, carried through reqwest's error chain.
#[derive(Debug)]
struct Unresolved;

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the name does not resolve")
    }
}

impl StdError for Unresolved {}

type Classify = fn(IpAddr) -> Option<AddressClass>;

/// reqwest's resolver: looks the name up once and hands reqwest only the
/// addresses that passed the guard, so what is connected to is exactly
/// what was checked (no second lookup for a rebinding DNS to answer).
struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    classify: Option<Classify>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let classify = self.classify;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = lookup
                .lookup(host)
                .await
                .map_err(|_| Box::new(Unresolved) as Box<dyn StdError + Send + Sync>)?;
            let mut refused = None;
            let checked: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|ip| match classify.and_then(|c| c(*ip)) {
                    None => true,
                    Some(class) => {
                        refused.get_or_insert(class);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if checked.is_empty() {
                return Err(match refused {
                    Some(class) => Box::new(Blocked(class)) as Box<dyn StdError + Send + Sync>,
                    None => Box::new(Unresolved),
                });
            }
            Ok(Box::new(checked.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why the client could not be built (TLS set-up).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct BuildError(String);

/// The outgoing HTTP client. Cheap to share (`Arc` it); one per process.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    config: EgressConfig,
    classify: Option<Classify>,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Header names a script may not set.
fn reserved_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
            | "expect"
    ) || name.starts_with("proxy-")
}

fn parse_method(raw: &str) -> Result<Method, EgressError> {
    const USUAL: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
    let upper = raw.to_ascii_uppercase();
    let name = if USUAL.contains(&upper.as_str()) {
        upper.as_str()
    } else {
        raw
    };
    if name.eq_ignore_ascii_case("CONNECT") || name.eq_ignore_ascii_case("TRACE") {
        return Err(EgressError::InvalidRequest(format!(
            "method {name} is not allowed"
        )));
    }
    Method::from_bytes(name.as_bytes())
        .map_err(|_| EgressError::InvalidRequest(format!("{raw:?} is not a method")))
}

fn parse_headers(raw: &[(String, String)]) -> Result<HeaderMap, EgressError> {
    let mut map = HeaderMap::new();
    for (name, value) in raw {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EgressError::InvalidRequest(format!("{name:?} is not a header name")))?;
        if reserved_header(name.as_str()) {
            return Err(EgressError::InvalidRequest(format!(
                "header {name} is set by the client, not by scripts"
            )));
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            EgressError::InvalidRequest(format!("the value of header {name} is not valid"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// The host as written, with the port when it is not the default.
fn host_label(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

fn parse_url(raw: &str) -> Result<Url, EgressError> {
    let url = Url::parse(raw).map_err(|e| EgressError::InvalidUrl(format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressError::SchemeNotAllowed(format!(
            "{}: only https (and http where granted)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(EgressError::InvalidUrl(format!("{raw:?}: no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EgressError::InvalidUrl(
            "user names and passwords go in an Authorization header, not the URL".into(),
        ));
    }
    Ok(url)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn has_source<E: StdError + 'static>(err: &reqwest::Error) -> Option<&E> {
    let mut cur: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

impl Egress {
    /// A client resolving names with the system resolver.
    pub fn new(config: EgressConfig) -> Result<Self, BuildError> {
        Self::with_lookup(config, Arc::new(SystemLookup))
    }

    /// A client resolving names with `lookup`; the guard still checks
    /// every address it answers.
    pub fn with_lookup(config: EgressConfig, lookup: Arc<dyn Lookup>) -> Result<Self, BuildError> {
        Self::build(config, lookup, guard::classify)
    }

    fn build(
        config: EgressConfig,
        lookup: Arc<dyn Lookup>,
        classify: Classify,
    ) -> Result<Self, BuildError> {
        let classify = (!config.allow_private).then_some(classify);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .dns_resolver(Arc::new(GuardedResolver { lookup, classify }))
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Self {
            client,
            config,
            classify,
        })
    }

    /// The settings it was built with.
    pub fn config(&self) -> &EgressConfig {
        &self.config
    }

    /// Checks a URL before a hop: scheme, every allowlist, and a literal
    /// address against the guard (names are checked by the resolver).
    fn check_url(&self, allow: &[&Allowlist], url: &Url) -> Result<(), EgressError> {
        if allow.is_empty() {
            return Err(EgressError::HostNotAllowed(format!(
                "{}: no host is granted",
                host_label(url)
            )));
        }
        for list in allow {
            match list.check(url) {
                Ok(()) => {}
                Err(Denied::Scheme) => {
                    return Err(EgressError::SchemeNotAllowed(format!(
                        "{}://{} is granted for https only",
                        url.scheme(),
                        host_label(url)
                    )));
                }
                Err(Denied::Host) => {
                    return Err(EgressError::HostNotAllowed(host_label(url)));
                }
            }
        }
        // The client connects to an IP literal without asking the resolver.
        // The `url` crate already turned every IPv4 spelling into
        // `Host::Ipv4`; a domain the client would still read as an address
        // is checked too, in case the two parsers ever disagree.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => d.trim_end_matches('.').parse().ok(),
            None => None,
        };
        if let (Some(ip), Some(classify)) = (literal, self.classify)
            && let Some(class) = classify(ip)
        {
            return Err(EgressError::PrivateAddress {
                host: host_label(url),
                class,
            });
        }
        Ok(())
    }

    fn transport_error(err: &reqwest::Error, url: &Url) -> EgressError {
        let host = host_label(url);
        if let Some(Blocked(class)) = has_source::<Blocked>(err) {
            return EgressError::PrivateAddress {
                host,
                class: *class,
            };
        }
        if err.is_timeout() {
            return EgressError::Timeout;
        }
        let reason = if has_source::<Unresolved>(err).is_some() {
            "the name does not resolve".to_owned()
        } else if let Some(io) = has_source::<io::Error>(err) {
            io.to_string()
        } else if err.is_connect() {
            "the connection failed".to_owned()
        } else if err.is_body() || err.is_decode() {
            "the response broke off".to_owned()
        } else {
            "the exchange failed".to_owned()
        };
        EgressError::ConnectFailed { host, reason }
    }

    /// Fetches `req`, following redirects by hand. Every hop's URL must be
    /// allowed by every list in `allow` (the version's grant, and the
    /// tenant's ceiling when it has one; an empty slice allows nothing)
    /// and must reach only public addresses, unless `allow_private`.
    pub async fn fetch(
        &self,
        allow: &[&Allowlist],
        req: FetchRequest,
    ) -> Result<FetchResponse, EgressError> {
        // A timeout too large to add is no bound at all.
        let Some(deadline) = tokio::time::Instant::now().checked_add(req.timeout) else {
            return self.fetch_inner(allow, req).await;
        };
        match tokio::time::timeout_at(deadline, self.fetch_inner(allow, req)).await {
            Ok(result) => result,
            Err(_) => Err(EgressError::Timeout),
        }
    }

    async fn fetch_inner(
        &self,
        allow: &[&Allowlist],
        req: FetchRequest,
    ) -> Result<FetchResponse, EgressError> {
        let mut method = parse_method(&req.method)?;
        let mut headers = parse_headers(&req.headers)?;
        let mut body = req.body;
        if let Some(b) = &body
            && b.len() > self.config.max_request_bytes
        {
            return Err(EgressError::RequestTooLarge {
                size: b.len(),
                max: self.config.max_request_bytes,
            });
        }
        let mut url = parse_url(&req.url)?;
        url.set_fragment(None);
        let mut redirects = 0;
        loop {
            self.check_url(allow, &url)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                builder = builder.body(b.clone());
            }
            let mut resp = builder
                .send()
                .await
                .map_err(|e| Self::transport_error(&e, &url))?;
            let status = resp.status();
            let location = resp.headers().get(header::LOCATION).cloned();
            if let (true, Some(location)) = (is_redirect(status), location) {
                if redirects >= self.config.max_redirects {
                    return Err(EgressError::TooManyRedirects(self.config.max_redirects));
                }
                redirects += 1;
                let location = location.to_str().map_err(|_| {
                    EgressError::InvalidUrl("a redirect's Location is not text".into())
                })?;
                let mut next = url.join(location).map_err(|e| {
                    EgressError::InvalidUrl(format!("a redirect's Location {location:?}: {e}"))
                })?;
                next.set_fragment(None);
                let next = parse_url(next.as_str())?;
                let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
                    || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == Method::POST);
                if to_get {
                    method = Method::GET;
                    body = None;
                    for h in [
                        header::CONTENT_TYPE,
                        header::CONTENT_ENCODING,
                        header::CONTENT_LANGUAGE,
                        header::CONTENT_LOCATION,
                    ] {
                        headers.remove(h);
                    }
                }
                if !same_origin(&url, &next) {
                    headers.remove(header::AUTHORIZATION);
                    headers.remove(header::COOKIE);
                }
                url = next;
                continue;
            }
            let max = self.config.max_response_bytes;
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err(EgressError::ResponseTooLarge { max });
            }
            let headers_out = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut out = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| Self::transport_error(&e, &url))?
            {
                if out.len() + chunk.len() > max {
                    return Err(EgressError::ResponseTooLarge { max });
                }
                out.extend_from_slice(&chunk);
            }
            return Ok(FetchResponse {
                status: status.as_u16(),
                url: url.to_string(),
                headers: headers_out,
                body: out,
            });
        }
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

#[cfg(test)]
mod tests {
    //! The guard at work across redirects. The only server a test can run
    //! is on loopback, so here (and only here) the guard lets exactly
    //! `127.0.0.1` through and judges every other address as usual.

    use super::*;
    use std::net::Ipv4Addr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn all_but_test_server(ip: IpAddr) -> Option<AddressClass> {
        if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
            None
        } else {
            guard::classify(ip)
        }
    }

    /// Answers `/end` with 200 and every other path `/to/<url>` with a
    /// redirect to `<url>` (`PORT` replaced by its own port).
    async fn server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let reply = match path.strip_prefix("/to/") {
                        Some(to) => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            to.replace("PORT", &port.to_string())
                        ),
                        None => {
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                                .to_owned()
                        }
                    };
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        port
    }

    fn egress() -> Egress {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lookup = StaticLookup::new()
            .with("public.test", &[ip("127.0.0.1")])
            .with("internal.test", &[ip("10.0.0.5")])
            .with("metadata.test", &[ip("169.254.169.254")])
            .with(
                "mixed.test",
                &[ip("10.0.0.5"), ip("fd00::1"), ip("127.0.0.1")],
            );
        let config = EgressConfig {
            connect_timeout: Duration::from_secs(2),
            ..EgressConfig::default()
        };
        Egress::build(config, Arc::new(lookup), all_but_test_server).unwrap()
    }

    async fn code(egress: &Egress, port: u16, url: &str) -> String {
        let allow = Allowlist::parse(&["http://*".to_owned(), format!("http://*:{port}")]).unwrap();
        let url = url.replace("PORT", &port.to_string());
        match egress
            .fetch(&[&allow], FetchRequest::get(url, Duration::from_secs(5)))
            .await
        {
            Ok(r) => format!("ok {}", r.status),
            Err(e) => e.code().to_owned(),
        }
    }

    #[tokio::test]
    async fn the_test_server_is_reachable_by_address_and_by_name() {
        let port = server().await;
        let e = egress();
        assert_eq!(code(&e, port, "http://127.0.0.1:PORT/end").await, "ok 200");
        assert_eq!(
            code(&e, port, "http://public.test:PORT/end").await,
            "ok 200"
        );
        assert_eq!(
            code(
                &e,
                port,
                "http://127.0.0.1:PORT/to/http://public.test:PORT/end"
            )
            .await,
            "ok 200"
        );
    }

    #[tokio::test]
    async fn a_redirect_to_a_non_public_address_is_refused() {
        let port = server().await;
        let e = egress();
        for to in [
            "http://internal.test:PORT/end",
            "http://metadata.test/latest/meta-data/",
            "http://10.0.0.5:PORT/end",
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706434:PORT/end",
            "http://[::ffff:127.0.0.1]:PORT/end",
            "http://[::1]:PORT/end",
            "http://0.0.0.0:PORT/end",
        ] {
            let url = format!("http://public.test:PORT/to/{to}");
            assert_eq!(code(&e, port, &url).await, "private_address", "{to}");
        }
    }

    #[tokio::test]
    async fn only_the_checked_addresses_are_connected_to() {
        // decoy.test answers 127.0.0.2 first, where a decoy listens on the
        // same port, then the test server's 127.0.0.1. The guard drops
        // 127.0.0.2 and the client connects to what is left: a client that
        // looked the name up again, or tried every answer, would reach the
        // decoy.
        let port = server().await;
        let decoy = TcpListener::bind(("127.0.0.2", port)).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = decoy.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 418 Decoy\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lookup = StaticLookup::new().with("decoy.test", &[ip("127.0.0.2"), ip("127.0.0.1")]);
        let guarded = Egress::build(
            EgressConfig::default(),
            Arc::new(lookup.clone()),
            all_but_test_server,
        )
        .unwrap();
        assert_eq!(
            code(&guarded, port, "http://decoy.test:PORT/end").await,
            "ok 200"
        );
        // The same lookup without the guard does reach the decoy.
        let open = Egress::with_lookup(
            EgressConfig {
                allow_private: true,
                ..EgressConfig::default()
            },
            Arc::new(lookup),
        )
        .unwrap();
        assert_eq!(
            code(&open, port, "http://decoy.test:PORT/end").await,
            "ok 418"
        );
        // Private and unique-local answers are dropped the same way.
        assert_eq!(
            code(&egress(), port, "http://mixed.test:PORT/end").await,
            "ok 200"
        );
    }

    #[tokio::test]
    async fn the_refusal_names_the_class_not_the_address() {
        let port = server().await;
        let allow = Allowlist::parse(&["http://*".to_owned(), format!("http://*:{port}")]).unwrap();
        let url = format!("http://public.test:{port}/to/http://metadata.test/");
        let err = egress()
            .fetch(&[&allow], FetchRequest::get(url, Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            EgressError::PrivateAddress {
                host: "metadata.test".into(),
                class: AddressClass::LinkLocal,
            }
        );
        let text = err.to_string();
        assert!(text.contains("link-local"), "{text}");
        assert!(!text.contains("169.254"), "{text}");
    }
}
