//! Envelope encryption. Each tenant's secret values are sealed with
//! AES-256-GCM under a data key of that tenant; data keys are sealed (wrapped)
//! under the platform's master key. Rotating the master key re-wraps the data
//! keys only, so no secret value is re-encrypted and none is ever decrypted
//! for it.
//!
//! Every seal binds its context as associated data (the tenant and key id
//! for a data key; the tenant, secret name and version for a value), so a
//! ciphertext moved to another row, tenant or version fails to open instead
//! of decrypting as something else. Nonces are 96 random bits: far below the
//! 2^32 messages per key at which random nonces become a concern.

use std::io::Write as _;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of a key.
const KEY_BYTES: usize = 32;
/// Bytes of a nonce.
const NONCE_BYTES: usize = 12;

/// Why a key could not be loaded or a seal opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("cannot read the master key file `{path}`: {source}")]
    ReadKey {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the master key file `{path}`: {source}")]
    WriteKey {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the master key file `{path}` does not hold a key (64 hex digits, {} random bytes)",
        KEY_BYTES
    )]
    MalformedKey { path: String },
    #[error(
        "the master key file `{path}` may be read by other users (mode {mode:o}); make it 0600"
    )]
    KeyFileOpen { path: String, mode: u32 },
    /// Authentication failed: the wrong key, a tampered ciphertext, or a
    /// ciphertext moved from another context.
    #[error("the sealed data does not open with this key in this context")]
    DoesNotOpen,
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
}

fn random<const N: usize>() -> Result<[u8; N], EnvelopeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| EnvelopeError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Sealed bytes: the nonce and the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// A 256-bit AES-GCM key, wiped from memory when dropped.
struct AeadKey(Zeroizing<[u8; KEY_BYTES]>);

impl AeadKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0))
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, EnvelopeError> {
        let nonce: [u8; NONCE_BYTES] = random()?;
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Encryption fails only for inputs past GCM's size limits.
            .map_err(|_| EnvelopeError::DoesNotOpen)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let nonce: [u8; NONCE_BYTES] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::DoesNotOpen)?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| EnvelopeError::DoesNotOpen)
    }
}

/// `label|part|part…` with each part length-prefixed, so no two contexts
/// encode alike.
fn context(label: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = label.as_bytes().to_vec();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The platform's master key. Its id is a fingerprint (the first 8 bytes
/// of its SHA-256), stored with every data key it wraps, so a wrong key is
/// told apart from corrupt data at start-up.
pub struct MasterKey {
    key: AeadKey,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

impl MasterKey {
    fn from_bytes(bytes: [u8; KEY_BYTES]) -> MasterKey {
        let digest = Sha256::digest(bytes);
        MasterKey {
            id: format!("mk_{}", hex::encode(&digest[..8])),
            key: AeadKey(Zeroizing::new(bytes)),
        }
    }

    /// A new random master key.
    pub fn generate() -> Result<MasterKey, EnvelopeError> {
        Ok(MasterKey::from_bytes(random()?))
    }

    /// The key's fingerprint, e.g. `mk_3f9a…` (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads a key file: 64 hex digits (surrounding whitespace ignored). A
    /// file others may read is refused: the key protects every secret.
    pub fn load(path: &Path) -> Result<MasterKey, EnvelopeError> {
        let shown = path.display().to_string();
        let read_error = |source| EnvelopeError::ReadKey {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(EnvelopeError::KeyFileOpen { path: shown, mode });
            }
        }
        let mut text = Zeroizing::new(std::fs::read_to_string(path).map_err(read_error)?);
        let parsed = hex::decode(text.trim());
        text.zeroize();
        let Ok(mut bytes) = parsed else {
            return Err(EnvelopeError::MalformedKey { path: shown });
        };
        let key: Result<[u8; KEY_BYTES], _> = bytes.as_slice().try_into();
        bytes.zeroize();
        key.map(MasterKey::from_bytes)
            .map_err(|_| EnvelopeError::MalformedKey { path: shown })
    }

    /// Writes this key to a new file readable by its owner only (mode
    /// 0600); refuses to overwrite an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), EnvelopeError> {
        let shown = path.display().to_string();
        let write_error = |source| EnvelopeError::WriteKey {
            path: shown.clone(),
            source,
        };
        // Written whole to a temporary file, then linked into place: a node
        // starting beside this one sees no file or the whole key, never a
        // part of it, and only one of two writers wins.
        let staged = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let _ = std::fs::remove_file(&staged);
        let written = (|| {
            let mut file = options.open(&staged)?;
            let mut text = Zeroizing::new(hex::encode(*self.key.0));
            text.push('\n');
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&staged, path)
        })();
        let _ = std::fs::remove_file(&staged);
        written.map_err(write_error)
    }

    /// Wraps a tenant's data key.
    pub fn wrap(&self, tenant: &str, key: &DataKey) -> Result<Sealed, EnvelopeError> {
        let aad = context("citadel-data-key", &[tenant.as_bytes(), key.id.as_bytes()]);
        self.key.seal(&*key.key.0, &aad)
    }

    /// Unwraps a tenant's data key sealed by [`MasterKey::wrap`] as `key_id`.
    pub fn unwrap(
        &self,
        tenant: &str,
        key_id: &str,
        sealed: &Sealed,
    ) -> Result<DataKey, EnvelopeError> {
        let aad = context("citadel-data-key", &[tenant.as_bytes(), key_id.as_bytes()]);
        let bytes = self.key.open(sealed, &aad)?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::DoesNotOpen)?;
        Ok(DataKey {
            id: key_id.to_owned(),
            key: AeadKey(Zeroizing::new(key)),
        })
    }
}

/// A tenant's data key: it seals the tenant's secret values.
pub struct DataKey {
    id: String,
    key: AeadKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish()
    }
}

impl DataKey {
    /// A new random data key with the id `id` (stored with its ciphertexts).
    pub fn generate(id: impl Into<String>) -> Result<DataKey, EnvelopeError> {
        Ok(DataKey {
            id: id.into(),
            key: AeadKey(Zeroizing::new(random()?)),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn value_context(tenant: &str, name: &str, version: i64) -> Vec<u8> {
        context(
            "citadel-secret-value",
            &[tenant.as_bytes(), name.as_bytes(), &version.to_le_bytes()],
        )
    }

    /// Seals version `version` of a tenant's secret `name`.
    pub fn seal(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
        value: &[u8],
    ) -> Result<Sealed, EnvelopeError> {
        self.key
            .seal(value, &DataKey::value_context(tenant, name, version))
    }

    /// Opens what [`DataKey::seal`] sealed for the same tenant, name and
    /// version; the plaintext is wiped when dropped.
    pub fn open(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        self.key
            .open(sealed, &DataKey::value_context(tenant, name, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_in_their_own_context() {
        let master = MasterKey::generate().unwrap();
        let dk = DataKey::generate("dk_1").unwrap();
        let wrapped = master.wrap("t1", &dk).unwrap();
        let dk = master.unwrap("t1", "dk_1", &wrapped).unwrap();
        let sealed = dk.seal("t1", "STRIPE_KEY", 1, b"sk_live_123").unwrap();
        assert_ne!(sealed.ciphertext.as_slice(), b"sk_live_123");
        assert_eq!(
            dk.open("t1", "STRIPE_KEY", 1, &sealed).unwrap().as_slice(),
            b"sk_live_123"
        );
        for (tenant, name, version) in [
            ("t2", "STRIPE_KEY", 1),
            ("t1", "OTHER", 1),
            ("t1", "STRIPE_KEY", 2),
        ] {
            assert!(matches!(
                dk.open(tenant, name, version, &sealed),
                Err(EnvelopeError::DoesNotOpen)
            ));
        }
        // A data key moved to another tenant or id does not unwrap.
        assert!(matches!(
            master.unwrap("t2", "dk_1", &wrapped),
            Err(EnvelopeError::DoesNotOpen)
        ));
        assert!(matches!(
            master.unwrap("t1", "dk_2", &wrapped),
            Err(EnvelopeError::DoesNotOpen)
        ));
        // Nor with another master key, nor tampered.
        let other = MasterKey::generate().unwrap();
        assert_ne!(other.id(), master.id());
        assert!(matches!(
            other.unwrap("t1", "dk_1", &wrapped),
            Err(EnvelopeError::DoesNotOpen)
        ));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(matches!(
            dk.open("t1", "STRIPE_KEY", 1, &tampered),
            Err(EnvelopeError::DoesNotOpen)
        ));
        // Two seals of one value differ (fresh nonces).
        let again = dk.seal("t1", "STRIPE_KEY", 1, b"sk_live_123").unwrap();
        assert_ne!(again.nonce, sealed.nonce);
    }

    #[test]
    fn key_files_round_trip_and_refuse_what_is_not_a_key() {
        let dir = std::env::temp_dir().join(format!("citadel-mk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let key = MasterKey::generate().unwrap();
        key.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(MasterKey::load(&path).unwrap().id(), key.id());
        // Never overwritten.
        assert!(matches!(
            MasterKey::generate().unwrap().write_new(&path),
            Err(EnvelopeError::WriteKey { .. })
        ));
        let bad = dir.join("bad.key");
        for text in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            let _ = std::fs::remove_file(&bad);
            std::fs::write(&bad, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            assert!(
                matches!(
                    MasterKey::load(&bad),
                    Err(EnvelopeError::MalformedKey { .. })
                ),
                "{text:?}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::load(&path),
                Err(EnvelopeError::KeyFileOpen { mode: 0o644, .. })
            ));
        }
        assert!(matches!(
            MasterKey::load(&dir.join("missing.key")),
            Err(EnvelopeError::ReadKey { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
