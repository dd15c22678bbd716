//! The capabilities' state on both databases, one test per (backend,
//! section): secrets and their data keys, the key-value stores, data
//! sources. Each test gets a fresh database (see `conformance.rs` for how).

use std::sync::Arc;

use citadel_store::{
    Backend, DataKeyRow, DataSource, KvOutcome, KvWrite, SealedVersion, SecretChange, SecretMeta,
    SecretUse, Store, StoreError, connect, new_id, now_ms,
};
use citadel_testkit::{TempDir, pg, temp_dir};

struct Db {
    store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

async fn sqlite() -> Db {
    let dir = temp_dir("store-caps");
    let url = format!("sqlite://{}", dir.path().join("citadel.db").display());
    let store = connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    Db {
        store,
        _dir: Some(dir),
    }
}

async fn postgres(section: &str) -> Option<Db> {
    let Some(cluster) = pg::shared() else {
        println!("SKIPPED: {section} on PostgreSQL");
        return None;
    };
    let name = format!("citadel_caps_{section}");
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let store = connect(&cluster.url(&name)).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    Some(Db { store, _dir: None })
}

fn sealed(version: i64, bytes: &[u8]) -> SealedVersion {
    SealedVersion {
        version,
        key_id: "dk_1".into(),
        nonce: vec![7; 12],
        ciphertext: bytes.to_vec(),
        created_at: 1_000 + version,
    }
}

fn meta(tenant: &str, name: &str, expires_at: Option<i64>) -> SecretMeta {
    SecretMeta {
        tenant_id: tenant.into(),
        name: name.into(),
        description: "the key".into(),
        version: 1,
        created_at: 1_000,
        rotated_at: None,
        expires_at,
        last_used_at: None,
    }
}

async fn secrets(db: Db) {
    let s = db.store.as_ref();
    let acme = s.create_tenant("acme").await.unwrap().id;
    let other = s.create_tenant("other").await.unwrap().id;

    // Data keys: one per tenant, newest first, with the master key's id.
    assert_eq!(s.data_key(&acme).await.unwrap(), None);
    let key = |tenant: &str, id: &str, at: i64| DataKeyRow {
        tenant_id: tenant.into(),
        id: id.into(),
        master_key_id: "mk_a".into(),
        nonce: vec![1; 12],
        wrapped: vec![2; 48],
        created_at: at,
    };
    s.put_data_key(&key(&acme, "dk_1", 1)).await.unwrap();
    s.put_data_key(&key(&acme, "dk_2", 2)).await.unwrap();
    s.put_data_key(&key(&other, "dk_1", 1)).await.unwrap();
    assert!(matches!(
        s.put_data_key(&key(&acme, "dk_1", 3)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.data_key(&acme).await.unwrap().unwrap().id, "dk_2");
    assert_eq!(
        s.data_key_by_id(&other, "dk_1").await.unwrap(),
        Some(key(&other, "dk_1", 1))
    );
    assert_eq!(s.data_key_by_id(&other, "dk_2").await.unwrap(), None);
    assert_eq!(
        s.master_key_ids().await.unwrap(),
        vec![("mk_a".to_owned(), 3)]
    );
    // Re-wrapping replaces every key's wrapping at once.
    let mut all = s.all_data_keys().await.unwrap();
    assert_eq!(all.len(), 3);
    for k in &mut all {
        k.master_key_id = "mk_b".into();
        k.wrapped = vec![9; 48];
    }
    s.rewrap_data_keys(&all).await.unwrap();
    assert_eq!(
        s.master_key_ids().await.unwrap(),
        vec![("mk_b".to_owned(), 3)]
    );
    assert_eq!(
        s.data_key(&acme).await.unwrap().unwrap().wrapped,
        vec![9; 48]
    );

    // Secrets: metadata apart from the sealed versions.
    s.create_secret(&meta(&acme, "STRIPE_KEY", None), &sealed(1, b"c1"))
        .await
        .unwrap();
    assert!(matches!(
        s.create_secret(&meta(&acme, "STRIPE_KEY", None), &sealed(1, b"c1"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.create_secret(&meta(&acme, "A_FIRST", Some(5_000)), &sealed(1, b"a1"))
        .await
        .unwrap();
    let names: Vec<String> = s
        .secrets(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["A_FIRST", "STRIPE_KEY"]);
    assert_eq!(s.secrets(&other).await.unwrap(), vec![]);
    assert_eq!(s.secret(&other, "STRIPE_KEY").await.unwrap(), None);
    assert_eq!(
        s.secret_version(&acme, "STRIPE_KEY", 1).await.unwrap(),
        Some(sealed(1, b"c1"))
    );

    // Rotation serves the new version and keeps the newest `keep`.
    let change = SecretChange {
        description: Some("rotated".into()),
        expires_at: Some(Some(9_000)),
    };
    for v in 2..=4 {
        assert!(
            s.rotate_secret(&acme, "STRIPE_KEY", &sealed(v, b"cv"), &change, 2)
                .await
                .unwrap()
        );
    }
    let m = s.secret(&acme, "STRIPE_KEY").await.unwrap().unwrap();
    assert_eq!(
        (
            m.version,
            m.rotated_at,
            m.expires_at,
            m.description.as_str()
        ),
        (4, Some(1_004), Some(9_000), "rotated")
    );
    assert_eq!(
        s.secret_versions(&acme, "STRIPE_KEY").await.unwrap(),
        vec![(3, 1_003), (4, 1_004)]
    );
    assert_eq!(
        s.latest_secret_version(&acme, "STRIPE_KEY").await.unwrap(),
        Some(4)
    );
    assert_eq!(s.latest_secret_version(&acme, "NOPE").await.unwrap(), None);
    // A version number taken is a conflict; a missing secret is false.
    assert!(matches!(
        s.rotate_secret(&acme, "STRIPE_KEY", &sealed(4, b"x"), &change, 2)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        !s.rotate_secret(&other, "STRIPE_KEY", &sealed(5, b"x"), &change, 2)
            .await
            .unwrap()
    );
    // Serving an older version: only one still kept, only in its tenant.
    assert!(
        s.serve_secret_version(&acme, "STRIPE_KEY", 3, 2_000)
            .await
            .unwrap()
    );
    assert_eq!(
        s.secret(&acme, "STRIPE_KEY")
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    assert!(
        !s.serve_secret_version(&acme, "STRIPE_KEY", 1, 2_000)
            .await
            .unwrap()
    );
    assert!(
        !s.serve_secret_version(&other, "STRIPE_KEY", 3, 2_000)
            .await
            .unwrap()
    );
    // An expiry cleared stays cleared.
    let clear = SecretChange {
        description: None,
        expires_at: Some(None),
    };
    s.rotate_secret(&acme, "A_FIRST", &sealed(2, b"a2"), &clear, 5)
        .await
        .unwrap();
    let a = s.secret(&acme, "A_FIRST").await.unwrap().unwrap();
    assert_eq!((a.expires_at, a.description.as_str()), (None, "the key"));

    // Usage: recorded per read, newest first; last_used_at follows.
    let used = |at: i64, run: &str| SecretUse {
        name: "STRIPE_KEY".into(),
        version: 3,
        script_name: "billing/charge".into(),
        script_version: "1.0.0".into(),
        run_id: run.into(),
        at,
    };
    s.record_secret_uses(&acme, &[used(10, "run_a"), used(20, "run_b")])
        .await
        .unwrap();
    s.record_secret_uses(&acme, &[used(15, "run_c")])
        .await
        .unwrap();
    let runs: Vec<String> = s
        .secret_uses(&acme, "STRIPE_KEY", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.run_id)
        .collect();
    assert_eq!(runs, ["run_b", "run_c", "run_a"]);
    assert_eq!(
        s.secret_uses(&other, "STRIPE_KEY", 10).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.secret(&acme, "STRIPE_KEY")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(20)
    );

    // Expiring soon: after now, before the horizon, every tenant.
    s.create_secret(&meta(&other, "SOON", Some(8_000)), &sealed(1, b"s"))
        .await
        .unwrap();
    s.create_secret(&meta(&other, "PAST", Some(100)), &sealed(1, b"p"))
        .await
        .unwrap();
    assert_eq!(s.secrets_expiring(1_000, 10_000).await.unwrap(), 2);
    assert_eq!(s.secrets_expiring(8_500, 10_000).await.unwrap(), 1);

    // Deleting removes the versions with it.
    assert!(s.delete_secret(&acme, "STRIPE_KEY").await.unwrap());
    assert!(!s.delete_secret(&acme, "STRIPE_KEY").await.unwrap());
    assert_eq!(
        s.secret_version(&acme, "STRIPE_KEY", 3).await.unwrap(),
        None
    );
    assert_eq!(
        s.secret_versions(&acme, "STRIPE_KEY").await.unwrap(),
        vec![]
    );
}

fn write<'a>(tenant: &'a str, key: &'a str, value: &'a str) -> KvWrite<'a> {
    KvWrite {
        tenant_id: tenant,
        key,
        value,
        expires_at: None,
        if_version: None,
        quota_bytes: 1_000,
        now: 100,
    }
}

async fn kv(db: Db) {
    let s = db.store.as_ref();
    let acme = s.create_tenant("acme").await.unwrap().id;
    let other = s.create_tenant("other").await.unwrap().id;

    assert_eq!(
        s.kv_set(&write(&acme, "count", "1")).await.unwrap(),
        KvOutcome::Done { version: 1 }
    );
    assert_eq!(
        s.kv_set(&write(&acme, "count", "2")).await.unwrap(),
        KvOutcome::Done { version: 2 }
    );
    let e = s.kv_get(&acme, "count", 100).await.unwrap().unwrap();
    assert_eq!((e.value.as_str(), e.version), ("2", 2));
    assert_eq!(s.kv_get(&other, "count", 100).await.unwrap(), None);
    assert_eq!(s.kv_usage(&acme).await.unwrap(), 6);

    // Compare and set: only at the version asked for; 0 means absent.
    let cas = |v: i64, value: &'static str| KvWrite {
        if_version: Some(v),
        ..write(&acme, "count", value)
    };
    assert_eq!(
        s.kv_set(&cas(1, "x")).await.unwrap(),
        KvOutcome::VersionMismatch { current: 2 }
    );
    assert_eq!(
        s.kv_set(&cas(2, "3")).await.unwrap(),
        KvOutcome::Done { version: 3 }
    );
    assert_eq!(
        s.kv_set(&KvWrite {
            if_version: Some(0),
            ..write(&acme, "fresh", "true")
        })
        .await
        .unwrap(),
        KvOutcome::Done { version: 1 }
    );
    assert_eq!(
        s.kv_set(&KvWrite {
            if_version: Some(0),
            ..write(&acme, "fresh", "false")
        })
        .await
        .unwrap(),
        KvOutcome::VersionMismatch { current: 1 }
    );

    // The quota counts keys and values; a write past it changes nothing.
    let big = "x".repeat(990);
    assert_eq!(
        s.kv_set(&write(&acme, "big", &big)).await.unwrap(),
        KvOutcome::QuotaExceeded {
            used: 15,
            quota: 1_000
        }
    );
    assert_eq!(s.kv_get(&acme, "big", 100).await.unwrap(), None);
    // Another tenant has its own quota.
    assert_eq!(
        s.kv_set(&write(&other, "big", &big)).await.unwrap(),
        KvOutcome::Done { version: 1 }
    );
    assert_eq!(s.kv_usage(&other).await.unwrap(), 993);

    // Expiry: absent once passed, and its bytes freed by the next write.
    s.kv_set(&KvWrite {
        expires_at: Some(150),
        ..write(&acme, "session", "\"abc\"")
    })
    .await
    .unwrap();
    assert!(s.kv_get(&acme, "session", 149).await.unwrap().is_some());
    assert_eq!(s.kv_get(&acme, "session", 150).await.unwrap(), None);
    assert_eq!(s.kv_usage(&acme).await.unwrap(), 27);
    s.kv_set(&KvWrite {
        now: 200,
        ..write(&acme, "count", "4")
    })
    .await
    .unwrap();
    assert_eq!(s.kv_usage(&acme).await.unwrap(), 15);

    // Listing: by prefix, bytewise, paged after a key.
    for k in ["user:b", "user:a", "user:C", "usex", "user:"] {
        s.kv_set(&write(&acme, k, "0")).await.unwrap();
    }
    let keys = |entries: Vec<citadel_store::KvEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.key).collect()
    };
    assert_eq!(
        keys(s.kv_list(&acme, "user:", None, 10, 200).await.unwrap()),
        ["user:", "user:C", "user:a", "user:b"]
    );
    assert_eq!(
        keys(
            s.kv_list(&acme, "user:", Some("user:C"), 2, 200)
                .await
                .unwrap()
        ),
        ["user:a", "user:b"]
    );
    assert_eq!(
        keys(s.kv_list(&acme, "", None, 3, 200).await.unwrap()),
        ["count", "fresh", "user:"]
    );
    assert_eq!(
        s.kv_list(&other, "user:", None, 10, 200).await.unwrap(),
        vec![]
    );

    // Deleting: at a version, or not; a missing key says so.
    assert_eq!(
        s.kv_delete(&acme, "fresh", Some(7), 200).await.unwrap(),
        KvOutcome::VersionMismatch { current: 1 }
    );
    assert_eq!(
        s.kv_delete(&acme, "fresh", Some(1), 200).await.unwrap(),
        KvOutcome::Done { version: 0 }
    );
    assert_eq!(
        s.kv_delete(&acme, "fresh", None, 200).await.unwrap(),
        KvOutcome::Missing
    );
    assert_eq!(
        s.kv_delete(&other, "count", None, 200).await.unwrap(),
        KvOutcome::Missing
    );
    assert_eq!(
        s.kv_get(&acme, "count", 200).await.unwrap().unwrap().value,
        "4"
    );
    assert_eq!(s.kv_usage(&acme).await.unwrap(), 6 + 7 + 7 + 7 + 5 + 6);
}

/// Writes of one key from many tasks at once: compare and set lets exactly
/// one writer win each version, on every backend.
async fn kv_race(db: Db) {
    let store = Arc::clone(&db.store);
    let acme = store.create_tenant("acme").await.unwrap().id;
    store.kv_set(&write(&acme, "n", "0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, acme) = (Arc::clone(&store), acme.clone());
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for _ in 0..10 {
                loop {
                    let e = store.kv_get(&acme, "n", 100).await.unwrap().unwrap();
                    let next = (e.value.parse::<i64>().unwrap() + 1).to_string();
                    let w = KvWrite {
                        if_version: Some(e.version),
                        ..write(&acme, "n", &next)
                    };
                    match store.kv_set(&w).await {
                        Ok(KvOutcome::Done { .. }) => {
                            wins += 1;
                            break;
                        }
                        Ok(KvOutcome::VersionMismatch { .. }) => continue,
                        Err(e) if e.is_transient() => continue,
                        other => panic!("{other:?}"),
                    }
                }
            }
            wins
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap();
    }
    assert_eq!(wins, 80);
    let e = store.kv_get(&acme, "n", 100).await.unwrap().unwrap();
    assert_eq!((e.value.as_str(), e.version), ("80", 81));
}

async fn datasources(db: Db) {
    let s = db.store.as_ref();
    let acme = s.create_tenant("acme").await.unwrap().id;
    let other = s.create_tenant("other").await.unwrap().id;
    let source = |kind: &str, location: &str, at: i64| DataSource {
        tenant_id: acme.clone(),
        name: "reporting".into(),
        kind: kind.into(),
        location: location.into(),
        password_secret: None,
        created_at: at,
        updated_at: at,
    };
    let put = s
        .put_datasource(&source("sqlite", "reports.db", 1))
        .await
        .unwrap();
    assert_eq!(put, source("sqlite", "reports.db", 1));
    // Replacing keeps the creation time.
    let again = s
        .put_datasource(&DataSource {
            password_secret: Some("PG_PASSWORD".into()),
            ..source("postgres", "postgres://ro@db/reports", 5)
        })
        .await
        .unwrap();
    assert_eq!(
        (again.kind.as_str(), again.created_at, again.updated_at),
        ("postgres", 1, 5)
    );
    assert_eq!(s.datasource(&acme, "reporting").await.unwrap(), Some(again));
    assert_eq!(s.datasource(&other, "reporting").await.unwrap(), None);
    assert_eq!(s.datasources(&acme).await.unwrap().len(), 1);
    assert_eq!(s.datasources(&other).await.unwrap(), vec![]);
    assert!(!s.delete_datasource(&other, "reporting").await.unwrap());
    assert!(s.delete_datasource(&acme, "reporting").await.unwrap());
    assert_eq!(s.datasources(&acme).await.unwrap(), vec![]);
    // Only for a tenant that exists.
    let ghost = DataSource {
        tenant_id: new_id("tnt"),
        ..source("sqlite", "x.db", now_ms())
    };
    assert!(s.put_datasource(&ghost).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_secrets() {
    secrets(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_secrets() {
    if let Some(db) = postgres("secrets").await {
        secrets(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kv() {
    kv(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kv() {
    if let Some(db) = postgres("kv").await {
        kv(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kv_race() {
    kv_race(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_kv_race() {
    if let Some(db) = postgres("kv_race").await {
        kv_race(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_datasources() {
    datasources(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_datasources() {
    if let Some(db) = postgres("datasources").await {
        datasources(db).await;
    }
}
