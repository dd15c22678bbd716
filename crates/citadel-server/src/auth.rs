//! Who a request comes from: the bearer token it carries, authenticated by
//! the use cases (`citadel_app::authn`), and the source its failures count
//! against — the client's address, or behind a trusted reverse proxy the
//! last address of the proxy's header.

use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use axum::extract::FromRequestParts;
use axum::http::HeaderName;
use axum::http::request::Parts;
use citadel_app::Caller;

use crate::error::ApiError;
use crate::{AppState, REQUEST_ID};

/// An authenticated request: the use cases' [`Caller`].
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

impl std::ops::Deref for Authed {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

pub(crate) fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request_id = request_id(parts);
        let authorization = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let source = state.sources.source(parts);
        let principal =
            citadel_app::authn::authenticate(&state.app, authorization, &source).await?;
        Ok(Authed(Caller {
            principal,
            request_id,
        }))
    }
}

/// The source a request's failed authentications count against.
pub(crate) struct Source(pub String);

impl FromRequestParts<AppState> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Source(state.sources.source(parts)))
    }
}

/// How a request's source is found.
#[derive(Default)]
pub(crate) struct Sources {
    /// Behind a reverse proxy: the header it appends the client's address
    /// to (its last entry is what the proxy saw).
    address_header: RwLock<Option<HeaderName>>,
}

impl Sources {
    pub(crate) fn trust_address_header(&self, header: Option<HeaderName>) {
        *self
            .address_header
            .write()
            .unwrap_or_else(|p| p.into_inner()) = header;
    }

    /// The source of a request: the connection's peer, or, where a proxy's
    /// header is trusted, the last address in it.
    pub(crate) fn source(&self, parts: &Parts) -> String {
        let header = self
            .address_header
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let forwarded = header.and_then(|h| {
            let value = parts.headers.get_all(h).iter().next_back()?.to_str().ok()?;
            let last = value.rsplit(',').next()?.trim();
            last.parse::<IpAddr>().ok()
        });
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        source_of(forwarded.map(|ip| SocketAddr::new(ip, 0)).or(peer))
    }
}

/// The source an address counts as: itself, an IPv6 address by its /64.
pub(crate) fn source_of(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        None => "local".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            // One host usually holds a whole /64.
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_proxy_header_names_the_source() {
        let f = Sources::default();
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let request = |forwarded: Option<&str>| {
            let mut req = axum::http::Request::builder().uri("/");
            if let Some(v) = forwarded {
                req = req.header("x-forwarded-for", v);
            }
            let (mut parts, ()) = req.body(()).unwrap().into_parts();
            parts.extensions.insert(axum::extract::ConnectInfo(peer));
            parts
        };
        // Untrusted: a client cannot pick its own source.
        assert_eq!(f.source(&request(Some("198.51.100.9"))), "10.0.0.1");
        f.trust_address_header(Some(HeaderName::from_static("x-forwarded-for")));
        // The proxy appends what it saw; what the client wrote comes first.
        assert_eq!(
            f.source(&request(Some("1.2.3.4, 198.51.100.9"))),
            "198.51.100.9"
        );
        assert_eq!(f.source(&request(Some("garbage"))), "10.0.0.1");
        assert_eq!(f.source(&request(None)), "10.0.0.1");
    }

    #[test]
    fn sources_are_addresses_and_ipv6_slash_64s() {
        let v4: SocketAddr = "203.0.113.7:5000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:203.0.113.7]:1".parse().unwrap();
        assert_eq!(source_of(Some(v4)), "203.0.113.7");
        assert_eq!(source_of(Some(v6)), "2001:db8:1:2::/64");
        assert_eq!(source_of(Some(mapped)), "203.0.113.7");
        assert_eq!(source_of(None), "local");
    }
}
