//! Secrets: how their values are kept (envelope encryption, [`envelope`],
//! sealed into the store by the [`vault`]) and how they are kept from
//! leaving through a run ([`redact`]). Knows nothing of HTTP or the
//! sandbox: the store keeps the sealed bytes, the engine opens them for a
//! run that is granted them and redacts what the run hands back.

pub mod envelope;
pub mod redact;
pub mod vault;

pub use envelope::{DataKey, EnvelopeError, MasterKey, Sealed};
pub use redact::{MIN_SECRET_BYTES, Redactor};
pub use vault::{KEPT_VERSIONS, Revealed, Vault, VaultError, rewrap_all};
