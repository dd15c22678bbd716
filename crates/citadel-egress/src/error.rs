//! What a refused or failed fetch answers: a stable code for scripts and
//! logs, and a message that names the host or the address class but never
//! a resolved address.

use crate::guard::AddressClass;

/// Why a fetch gave no response. [`code`](Self::code) is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The URL does not parse, has no host, or a redirect's `Location`
    /// does not.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Not http(s), or plain http to a host granted for https only.
    #[error("scheme not allowed: {0}")]
    SchemeNotAllowed(String),
    /// The host (and port) is in no grant, or outside the tenant's ceiling.
    #[error("host not allowed: {0}")]
    HostNotAllowed(String),
    /// The host is, or resolves only to, an address that is not public.
    #[error("{host} is not a public address ({class}); scripts may not reach it")]
    PrivateAddress {
        /// The host as written in the URL.
        host: String,
        /// The class of the (first) refused address.
        class: AddressClass,
    },
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// The request body is larger than allowed.
    #[error("request body of {size} bytes is over the {max} byte limit")]
    RequestTooLarge {
        /// Bytes in the body.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The response body is (or announces itself) larger than allowed.
    #[error("response body is over the {max} byte limit")]
    ResponseTooLarge {
        /// The limit.
        max: usize,
    },
    /// The whole call (connects, redirects and bodies) ran out of time.
    #[error("the request did not complete in time")]
    Timeout,
    /// The host could not be resolved or reached, or the exchange broke.
    #[error("could not fetch from {host}: {reason}")]
    ConnectFailed {
        /// The host as written in the URL.
        host: String,
        /// What went wrong, without addresses.
        reason: String,
    },
    /// A bad method, or a header name or value that is invalid or reserved.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl EgressError {
    /// The stable code: `invalid_url`, `scheme_not_allowed`,
    /// `host_not_allowed`, `private_address`, `too_many_redirects`,
    /// `request_too_large`, `response_too_large`, `timeout`,
    /// `connect_failed` or `invalid_request`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::SchemeNotAllowed(_) => "scheme_not_allowed",
            Self::HostNotAllowed(_) => "host_not_allowed",
            Self::PrivateAddress { .. } => "private_address",
            Self::TooManyRedirects(_) => "too_many_redirects",
            Self::RequestTooLarge { .. } => "request_too_large",
            Self::ResponseTooLarge { .. } => "response_too_large",
            Self::Timeout => "timeout",
            Self::ConnectFailed { .. } => "connect_failed",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }
}
