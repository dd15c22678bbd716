//! The vault on a real SQLite store: sealing, rotation with history,
//! expiry, and master keys (a wrong one refused, a rotation re-wrapping
//! every data key without touching a value).

use citadel_secrets::{MasterKey, Vault, VaultError, rewrap_all};
use citadel_store::{SecretChange, SecretMeta, Store, StoreError, connect};

fn meta(tenant: &str, name: &str, expires_at: Option<i64>) -> SecretMeta {
    SecretMeta {
        tenant_id: tenant.into(),
        name: name.into(),
        description: String::new(),
        version: 1,
        created_at: 1,
        rotated_at: None,
        expires_at,
        last_used_at: None,
    }
}

#[tokio::test]
async fn secrets_seal_open_rotate_and_survive_a_master_key_rotation() {
    let dir = citadel_testkit::temp_dir("vault");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store: std::sync::Arc<dyn Store> = connect(&url).await.unwrap();
    let acme = store.create_tenant("acme").await.unwrap().id;
    let other = store.create_tenant("other").await.unwrap().id;
    let keys = citadel_testkit::temp_dir("vault-keys");
    let key_file = keys.path().join("master.key");
    MasterKey::generate().unwrap().write_new(&key_file).unwrap();
    let master = MasterKey::load(&key_file).unwrap();
    let master_id = master.id().to_owned();
    assert!(!Vault::in_use(store.as_ref()).await.unwrap());
    let vault = Vault::open(store.clone(), master).await.unwrap();

    vault
        .create(&meta(&acme, "API_KEY", None), "value-one-111")
        .await
        .unwrap();
    vault
        .create(&meta(&other, "API_KEY", Some(50)), "other-value-9")
        .await
        .unwrap();
    assert!(matches!(
        vault
            .create(&meta(&acme, "API_KEY", None), "again-again")
            .await,
        Err(VaultError::Store(StoreError::Conflict(_)))
    ));
    let got = vault.reveal(&acme, "API_KEY", 10).await.unwrap();
    assert_eq!((got.value.as_str(), got.version), ("value-one-111", 1));
    // Each tenant has its own data key and value.
    assert_eq!(
        vault
            .reveal(&other, "API_KEY", 10)
            .await
            .unwrap()
            .value
            .as_str(),
        "other-value-9"
    );
    assert!(matches!(
        vault.reveal(&other, "API_KEY", 50).await,
        Err(VaultError::Expired(n)) if n == "API_KEY"
    ));
    assert!(matches!(
        vault.reveal(&acme, "MISSING", 10).await,
        Err(VaultError::NotFound(_))
    ));
    // The database holds no value in the clear.
    let bytes = std::fs::read(dir.path().join("c.db")).unwrap();
    let wal = std::fs::read(dir.path().join("c.db-wal")).unwrap_or_default();
    for file in [&bytes, &wal] {
        assert!(!file.windows(13).any(|w| w == b"value-one-111"));
    }

    // Rotation serves the new value and keeps history.
    let v = vault
        .rotate(
            &acme,
            "API_KEY",
            "value-two-222",
            &SecretChange::default(),
            2,
        )
        .await
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(
        vault
            .reveal(&acme, "API_KEY", 10)
            .await
            .unwrap()
            .value
            .as_str(),
        "value-two-222"
    );
    assert!(
        store
            .serve_secret_version(&acme, "API_KEY", 1, 3)
            .await
            .unwrap()
    );
    assert_eq!(
        vault
            .reveal(&acme, "API_KEY", 10)
            .await
            .unwrap()
            .value
            .as_str(),
        "value-one-111"
    );
    assert!(matches!(
        vault
            .rotate(&acme, "NOPE", "whatever-1", &SecretChange::default(), 2)
            .await,
        Err(VaultError::NotFound(_))
    ));
    drop(vault);

    // Another master key is refused before anything is touched.
    let wrong = MasterKey::generate().unwrap();
    let wrong_id = wrong.id().to_owned();
    match Vault::open(store.clone(), wrong).await {
        Err(VaultError::WrongMasterKey { given, found }) => {
            assert_eq!((given, found), (wrong_id, vec![master_id.clone()]));
        }
        other => panic!("{other:?}"),
    }

    // Rotating the master key re-wraps both tenants' data keys; the old
    // key no longer opens the vault, the new one opens every secret.
    let unrelated = MasterKey::generate().unwrap();
    assert!(matches!(
        rewrap_all(store.as_ref(), &unrelated, &MasterKey::generate().unwrap()).await,
        Err(VaultError::WrongMasterKey { .. })
    ));
    let old = MasterKey::load(&key_file).unwrap();
    let new_file = keys.path().join("new.key");
    MasterKey::generate().unwrap().write_new(&new_file).unwrap();
    let new = MasterKey::load(&new_file).unwrap();
    assert_eq!(rewrap_all(store.as_ref(), &old, &new).await.unwrap(), 2);
    // Run again (an interrupted rotation): nothing left to do.
    assert_eq!(rewrap_all(store.as_ref(), &old, &new).await.unwrap(), 0);
    assert!(matches!(
        Vault::open(store.clone(), old).await,
        Err(VaultError::WrongMasterKey { .. })
    ));
    let vault = Vault::open(store.clone(), new).await.unwrap();
    assert_eq!(
        vault
            .reveal(&acme, "API_KEY", 10)
            .await
            .unwrap()
            .value
            .as_str(),
        "value-one-111"
    );
    assert_eq!(
        vault
            .reveal(&other, "API_KEY", 10)
            .await
            .unwrap()
            .value
            .as_str(),
        "other-value-9"
    );
}
