//! Outgoing HTTP for scripts (`api.http.fetch`), safe against SSRF.
//!
//! A script's request leaves only if it passes every check, at every hop:
//!
//! 1. **Allowlists** ([`Allowlist`]): the URL's scheme, host and port must
//!    be allowed by the version's grant and, when the tenant has one, by
//!    the tenant's ceiling ([`Egress::fetch`] takes both and needs every
//!    list to agree). Plain `http` only where a pattern says `http://`.
//! 2. **The address guard** ([`is_public`]): a script reaches public
//!    unicast addresses only. Loopback, private, link-local (cloud
//!    metadata), CGNAT, multicast, documentation, reserved and the IPv6
//!    forms that embed one of them are refused as `private_address`,
//!    naming the address class, never the address.
//!    * An IP literal is checked after WHATWG parsing, so `2130706433`,
//!      `0x7f000001`, `017700000001` and `127.1` are all `127.0.0.1`.
//!    * A name is checked inside the client's DNS resolver: it is looked up
//!      once, every non-public address is dropped, and the client connects
//!      only to what is left. There is no second lookup, so a DNS answer
//!      that changes between check and connect (rebinding) cannot slip in.
//!    * No proxy is used (the environment's proxy settings are ignored):
//!      a proxy would make the connected address someone else's choice.
//! 3. **Redirects** are followed by hand, each `Location` going through 1
//!    and 2 again, at most [`EgressConfig::max_redirects`]. `303` (and
//!    `301`/`302` after a `POST`) become a `GET` without body;
//!    `Authorization` and `Cookie` are dropped when the origin changes.
//! 4. **Caps**: the request body, the response body (streamed and cut, and
//!    refused early when `Content-Length` announces too much) and the time
//!    of the whole call, connects, redirects and bodies included.
//!
//! Headers that belong to the client (`Host`, `Connection`,
//! `Transfer-Encoding`, `Content-Length`, `Proxy-*`, ...) are refused as
//! `invalid_request` rather than silently dropped, so a script learns they
//! are not sent. Responses are not decompressed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use citadel_egress::{Allowlist, Egress, EgressConfig, FetchRequest};
//!
//! let egress = Egress::new(EgressConfig::default())?;
//! let grant = Allowlist::parse(&["api.example.com".into(), "*.cdn.example".into()])?;
//! let ceiling = Allowlist::parse(&["*".into()])?;
//! let req = FetchRequest::get("https://api.example.com/v1/items", Duration::from_secs(10));
//! match egress.fetch(&[&grant, &ceiling], req).await {
//!     Ok(resp) => println!("{} {} bytes", resp.status, resp.body.len()),
//!     Err(e) => println!("{}: {e}", e.code()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`EgressConfig::allow_private`] turns off the address guard only (tests,
//! platforms whose receivers are on a private network), never the
//! allowlists. The crate knows nothing of tenants, SQL or the sandbox: it
//! is handed allowlists and a request and answers a response or an
//! [`EgressError`] with a stable [`code`](EgressError::code).

pub mod allowlist;
pub mod error;
pub mod fetch;
pub mod guard;

pub use allowlist::{Allowlist, Denied, is_valid_pattern, validate_pattern};
pub use error::EgressError;
pub use fetch::{
    BuildError, Egress, EgressConfig, FetchRequest, FetchResponse, Lookup, LookupFuture,
    StaticLookup, SystemLookup,
};
pub use guard::{AddressClass, classify, is_public};
/// The URL type [`Allowlist::allows`] takes.
pub use url::Url;
