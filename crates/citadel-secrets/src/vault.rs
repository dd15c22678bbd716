//! The vault: secrets sealed into the store and opened from it, with the
//! tenants' data keys created on first use and kept unwrapped in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use citadel_store::{
    DataKeyRow, SealedVersion, SecretChange, SecretMeta, Store, StoreError, new_id,
};
use zeroize::Zeroizing;

use crate::envelope::{DataKey, EnvelopeError, MasterKey, Sealed};

/// Why the vault could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The data keys in the database were wrapped by other master keys.
    #[error(
        "the master key {given} is not the one the secrets are sealed with ({}); \
         point `secrets.master_key_file` (or CITADEL_MASTER_KEY_FILE) at that key",
        .found.join(", ")
    )]
    WrongMasterKey { given: String, found: Vec<String> },
    #[error("secret `{0}` not found")]
    NotFound(String),
    #[error("secret `{0}` has expired")]
    Expired(String),
    /// A stored value that opens but is not text.
    #[error("secret `{0}` does not hold text")]
    NotText(String),
}

/// A secret's value, wiped from memory when dropped.
pub struct Revealed {
    pub value: Zeroizing<String>,
    /// The version that was read.
    pub version: i64,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revealed")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Versions of a secret kept for rolling back to.
pub const KEPT_VERSIONS: i64 = 5;

/// Seals and opens secrets of every tenant under one master key.
pub struct Vault {
    store: Arc<dyn Store>,
    master: MasterKey,
    /// Unwrapped data keys by (tenant, key id).
    keys: Mutex<HashMap<(String, String), Arc<DataKey>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

fn sealed_of(v: &SealedVersion) -> Sealed {
    Sealed {
        nonce: v.nonce.clone(),
        ciphertext: v.ciphertext.clone(),
    }
}

impl Vault {
    /// A vault on `store` with `master`, once every data key in the
    /// database is known to be wrapped by it (and one opens with it):
    /// with another key nothing is touched and start-up can refuse
    /// clearly.
    pub async fn open(store: Arc<dyn Store>, master: MasterKey) -> Result<Vault, VaultError> {
        let found: Vec<String> = store
            .master_key_ids()
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if found.iter().any(|id| id != master.id()) {
            return Err(VaultError::WrongMasterKey {
                given: master.id().to_owned(),
                found,
            });
        }
        // The fingerprint matches; a key that still does not unwrap means
        // corrupt rows, refused as clearly.
        if let Some(k) = store.all_data_keys().await?.first() {
            master.unwrap(&k.tenant_id, &k.id, &row_sealed(k))?;
        }
        Ok(Vault {
            store,
            master,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// Whether any secret was ever sealed (any data key exists).
    pub async fn in_use(store: &dyn Store) -> Result<bool, StoreError> {
        Ok(!store.master_key_ids().await?.is_empty())
    }

    pub fn master_key_id(&self) -> &str {
        self.master.id()
    }

    fn cached(&self, tenant: &str, id: &str) -> Option<Arc<DataKey>> {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant.to_owned(), id.to_owned()))
            .cloned()
    }

    fn remember(&self, tenant: &str, key: DataKey) -> Arc<DataKey> {
        let key = Arc::new(key);
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant.to_owned(), key.id().to_owned()), Arc::clone(&key));
        key
    }

    fn unwrap_row(&self, row: &DataKeyRow) -> Result<DataKey, VaultError> {
        if row.master_key_id != self.master.id() {
            return Err(VaultError::WrongMasterKey {
                given: self.master.id().to_owned(),
                found: vec![row.master_key_id.clone()],
            });
        }
        Ok(self
            .master
            .unwrap(&row.tenant_id, &row.id, &row_sealed(row))?)
    }

    /// The tenant's data key for sealing, made on first use.
    async fn sealing_key(&self, tenant: &str) -> Result<Arc<DataKey>, VaultError> {
        if let Some(row) = self.store.data_key(tenant).await? {
            if let Some(k) = self.cached(tenant, &row.id) {
                return Ok(k);
            }
            let key = self.unwrap_row(&row)?;
            return Ok(self.remember(tenant, key));
        }
        let key = DataKey::generate(new_id("dk"))?;
        let wrapped = self.master.wrap(tenant, &key)?;
        let row = DataKeyRow {
            tenant_id: tenant.to_owned(),
            id: key.id().to_owned(),
            master_key_id: self.master.id().to_owned(),
            nonce: wrapped.nonce,
            wrapped: wrapped.ciphertext,
            created_at: citadel_store::now_ms(),
        };
        self.store.put_data_key(&row).await?;
        Ok(self.remember(tenant, key))
    }

    async fn key_by_id(&self, tenant: &str, id: &str) -> Result<Arc<DataKey>, VaultError> {
        if let Some(k) = self.cached(tenant, id) {
            return Ok(k);
        }
        let row = self
            .store
            .data_key_by_id(tenant, id)
            .await?
            .ok_or(EnvelopeError::DoesNotOpen)?;
        let key = self.unwrap_row(&row)?;
        Ok(self.remember(tenant, key))
    }

    async fn seal(
        &self,
        tenant: &str,
        name: &str,
        version: i64,
        value: &str,
        at: i64,
    ) -> Result<SealedVersion, VaultError> {
        let key = self.sealing_key(tenant).await?;
        let sealed = key.seal(tenant, name, version, value.as_bytes())?;
        Ok(SealedVersion {
            version,
            key_id: key.id().to_owned(),
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            created_at: at,
        })
    }

    /// Creates a secret (its version 1); `Conflict` if the tenant has one of
    /// that name.
    pub async fn create(&self, meta: &SecretMeta, value: &str) -> Result<(), VaultError> {
        let first = self
            .seal(&meta.tenant_id, &meta.name, 1, value, meta.created_at)
            .await?;
        self.store.create_secret(meta, &first).await?;
        Ok(())
    }

    /// A new version of a secret with `value`, served at once; the newest
    /// [`KEPT_VERSIONS`] are kept. `NotFound` when there is no such secret.
    pub async fn rotate(
        &self,
        tenant: &str,
        name: &str,
        value: &str,
        change: &SecretChange,
        at: i64,
    ) -> Result<i64, VaultError> {
        // A concurrent rotation may take the same number: take the next.
        for _ in 0..5 {
            let Some(latest) = self.store.latest_secret_version(tenant, name).await? else {
                return Err(VaultError::NotFound(name.to_owned()));
            };
            let next = self.seal(tenant, name, latest + 1, value, at).await?;
            match self
                .store
                .rotate_secret(tenant, name, &next, change, KEPT_VERSIONS)
                .await
            {
                Ok(true) => return Ok(next.version),
                Ok(false) => return Err(VaultError::NotFound(name.to_owned())),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!("a rotation of secret `{name}`")).into())
    }

    /// The value a tenant's secret serves now, unless it has expired by
    /// `now`.
    pub async fn reveal(&self, tenant: &str, name: &str, now: i64) -> Result<Revealed, VaultError> {
        let meta = self
            .store
            .secret(tenant, name)
            .await?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        if meta.expires_at.is_some_and(|e| e <= now) {
            return Err(VaultError::Expired(name.to_owned()));
        }
        let version = self
            .store
            .secret_version(tenant, name, meta.version)
            .await?
            .ok_or_else(|| VaultError::NotFound(name.to_owned()))?;
        let key = self.key_by_id(tenant, &version.key_id).await?;
        let bytes = key.open(tenant, name, version.version, &sealed_of(&version))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| VaultError::NotText(name.to_owned()))?;
        Ok(Revealed {
            value: Zeroizing::new(text.to_owned()),
            version: version.version,
        })
    }
}

fn row_sealed(k: &DataKeyRow) -> Sealed {
    Sealed {
        nonce: k.nonce.clone(),
        ciphertext: k.wrapped.clone(),
    }
}

/// Re-wraps every data key from `old` to `new` in one transaction: no
/// secret value is decrypted or re-encrypted. Answers how many keys it
/// re-wrapped. Keys already wrapped by `new` are left as they are, so a
/// rotation interrupted after its commit can be run again.
pub async fn rewrap_all(
    store: &dyn Store,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, VaultError> {
    let mut rows = store.all_data_keys().await?;
    let mut changed = Vec::new();
    for row in rows.drain(..) {
        if row.master_key_id == new.id() {
            continue;
        }
        if row.master_key_id != old.id() {
            return Err(VaultError::WrongMasterKey {
                given: old.id().to_owned(),
                found: vec![row.master_key_id],
            });
        }
        let key = old.unwrap(&row.tenant_id, &row.id, &row_sealed(&row))?;
        let wrapped = new.wrap(&row.tenant_id, &key)?;
        changed.push(DataKeyRow {
            master_key_id: new.id().to_owned(),
            nonce: wrapped.nonce,
            wrapped: wrapped.ciphertext,
            ..row
        });
    }
    store.rewrap_data_keys(&changed).await?;
    Ok(changed.len())
}
