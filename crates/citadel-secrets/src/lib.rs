//! Secrets: how their values are kept (envelope encryption, [`envelope`])
//! and how they are kept from leaving through a run ([`redact`]). Knows
//! nothing of tenants' stores, HTTP or the sandbox: the store keeps the
//! sealed bytes, the engine opens them for a run that is granted them and
//! redacts what the run hands back.

pub mod envelope;
pub mod redact;

pub use envelope::{DataKey, EnvelopeError, MasterKey, Sealed};
pub use redact::{MIN_SECRET_BYTES, Redactor};
