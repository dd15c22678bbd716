//! One backend-agnostic suite, run against SQLite and PostgreSQL: one test
//! per (backend, section), each on a fresh database, so a failing section
//! hides none of the others. SQLite: a temporary file per test. PostgreSQL:
//! one throwaway cluster per test binary, started with `initdb`/`pg_ctl` by
//! the first test that needs it, and a new database per test (skipped,
//! saying so, only where no PostgreSQL binaries exist; under `CI=true` that
//! fails instead).

use citadel_domain::{
    JobState, KillScope, Language, Missed, NodeState, RunStatus, StepStatus, Trigger, VersionState,
};
use citadel_testkit::pg;
use std::path::PathBuf;
use std::sync::Arc;

use citadel_store::{
    AuditQuery, AuditVerdict, Backend, CustomRole, EmbedCode, Job, KillSwitch, NewAuditEntry,
    NewJob, NewToken, NewUser, NewVersion, Node, RoleBinding, Run, RunBucket, RunQuery, RunSample,
    RunStatsQuery, SaveOutcome, Schedule, StepDecision, Store, StoreError, Tenant, TokenOrigin,
    VersionTransition, WorkflowStep, connect, new_id, now_ms,
};

/// A fresh, migrated database and a store on it.
struct Db {
    url: String,
    store: Arc<dyn Store>,
    /// The SQLite file's directory, removed on drop.
    dir: Option<PathBuf>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new SQLite file.
async fn sqlite() -> Db {
    let dir = std::env::temp_dir().join(format!("citadel-store-{}", new_id("t")));
    let url = format!("sqlite://{}", dir.join("citadel.db").display());
    let store = connect(&url).await.expect("connects and migrates");
    assert_eq!(store.backend(), Backend::Sqlite);
    Db {
        url,
        store,
        dir: Some(dir),
    }
}

/// A new database for `section` in this binary's PostgreSQL cluster; `None`
/// (the test then passes, having said SKIPPED) where PostgreSQL is missing.
async fn postgres(section: &str) -> Option<Db> {
    let Some(cluster) = pg::shared() else {
        println!("SKIPPED: {section} on PostgreSQL");
        return None;
    };
    let name = format!("citadel_{section}");
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = cluster.url(&name);
    let store = connect(&url).await.expect("connects and migrates");
    assert_eq!(store.backend(), Backend::Postgres);
    Some(Db {
        url,
        store,
        dir: None,
    })
}

/// The two tenants most sections work in: `acme`, and `other`, whose view
/// of acme's data must stay empty.
async fn two_tenants(store: &dyn Store) -> (Tenant, Tenant) {
    let acme = store.create_tenant("acme").await.unwrap();
    let other = store.create_tenant("other").await.unwrap();
    (acme, other)
}

fn audit(tenant: Option<&str>, action: &str, outcome: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: now_ms(),
        tenant_id: tenant.map(str::to_owned),
        principal: Some("tok_test".into()),
        action: action.into(),
        target: "t".into(),
        outcome: outcome.into(),
        request_id: new_id("req"),
        details: "{}".into(),
    }
}

/// Runs raw SQL beside the store, to play an attacker editing rows by hand.
async fn tamper(url: &str, sql: &str) {
    if url.starts_with("sqlite://") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
}

/// Migrations apply once: connecting again changes nothing, and the store
/// is ready both times.
async fn migrations(db: Db) {
    let url = db.url.as_str();
    let store: Arc<dyn Store> = connect(url).await.expect("connects and migrates");
    store.ready().await.expect("ready");
    // Connecting again applies nothing twice.
    let again = connect(url).await.expect("reconnects");
    again.ready().await.unwrap();
}

async fn tenants_and_tokens(db: Db) {
    let store = Arc::clone(&db.store);

    // Tenants.
    let acme = store.create_tenant("acme").await.unwrap();
    let other = store.create_tenant("other").await.unwrap();
    assert!(matches!(
        store.create_tenant("acme").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.tenant_by_name("acme").await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(store.tenant(&acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.tenant("tnt_missing").await.unwrap(), None);
    let names: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["acme", "other"]);

    // Tokens and bindings.
    let admin = store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: None,
            name: "platform".into(),
            hash: "h-admin".into(),
            expires_at: None,
            role: None,
        })
        .await
        .unwrap();
    assert_eq!(admin.tenant_id, None);
    let dev = store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: Some(acme.id.clone()),
            name: "ci".into(),
            hash: "h-dev".into(),
            expires_at: None,
            role: Some(("developer".into(), "billing/".into())),
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_token(&NewToken {
                user_id: None,
                tenant_id: Some(acme.id.clone()),
                name: "dup".into(),
                hash: "h-dev".into(),
                expires_at: None,
                role: None
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.token_by_hash("h-dev").await.unwrap(),
        Some(dev.clone())
    );
    assert_eq!(store.token_by_hash("nope").await.unwrap(), None);
    assert_eq!(
        store.list_tokens(&acme.id).await.unwrap(),
        vec![dev.clone()]
    );
    assert_eq!(store.list_tokens(&other.id).await.unwrap(), vec![]);
    let bindings = store.bindings(&acme.id, &dev.id).await.unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        (bindings[0].role.as_str(), bindings[0].path_prefix.as_str()),
        ("developer", "billing/")
    );
    // Another tenant's view of the same token is empty.
    assert_eq!(store.bindings(&other.id, &dev.id).await.unwrap(), vec![]);
    let stray = RoleBinding {
        id: new_id("rb"),
        tenant_id: other.id.clone(),
        token_id: dev.id.clone(),
        role: "owner".into(),
        path_prefix: String::new(),
        created_at: now_ms(),
    };
    assert!(matches!(
        store.create_binding(&stray).await,
        Err(StoreError::NotFound(_))
    ));
    let extra = RoleBinding {
        tenant_id: acme.id.clone(),
        role: "viewer".into(),
        ..stray
    };
    store.create_binding(&extra).await.unwrap();
    assert_eq!(store.bindings(&acme.id, &dev.id).await.unwrap().len(), 2);

    // Revocation is tenant-scoped.
    assert!(
        !store
            .revoke_token(&other.id, &dev.id, now_ms())
            .await
            .unwrap()
    );
    assert!(
        store
            .token_by_hash("h-dev")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );
    assert!(
        store
            .revoke_token(&acme.id, &dev.id, now_ms())
            .await
            .unwrap()
    );
    assert!(
        !store
            .token_by_hash("h-dev")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms())
    );
    let expired = store
        .create_token(&NewToken {
            user_id: None,
            tenant_id: Some(acme.id.clone()),
            name: "old".into(),
            hash: "h-old".into(),
            expires_at: Some(now_ms() - 1),
            role: None,
        })
        .await
        .unwrap();
    assert!(!expired.is_active(now_ms()));

    token_origins(&*store, &acme, &other).await;
}

async fn users(db: Db) {
    let store = Arc::clone(&db.store);
    let (acme, other) = two_tenants(&*store).await;

    // Users and their session tokens.
    let alice = store
        .create_user(&NewUser {
            tenant_id: acme.id.clone(),
            username: "alice".into(),
            password_hash: "$argon2id$stub".into(),
            roles: vec![
                ("developer".into(), String::new()),
                ("approver".into(), "billing/".into()),
            ],
        })
        .await
        .unwrap();
    let dup = NewUser {
        tenant_id: acme.id.clone(),
        username: "alice".into(),
        password_hash: "x".into(),
        roles: vec![],
    };
    assert!(matches!(
        store.create_user(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    // The same name in another tenant is another user.
    store
        .create_user(&NewUser {
            tenant_id: other.id.clone(),
            ..dup
        })
        .await
        .unwrap();
    assert_eq!(
        store.user_by_name(&acme.id, "alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_name(&acme.id, "bob").await.unwrap(), None);
    assert_eq!(
        store.list_users(&acme.id).await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(
        store.user_roles(&acme.id, &alice.id).await.unwrap(),
        vec![
            ("approver".to_owned(), "billing/".to_owned()),
            ("developer".to_owned(), String::new())
        ]
    );
    assert_eq!(
        store.user_roles(&other.id, &alice.id).await.unwrap(),
        vec![]
    );
    let session = store
        .create_token(&NewToken {
            user_id: Some(alice.id.clone()),
            tenant_id: Some(acme.id.clone()),
            name: "session:alice".into(),
            hash: "h-session".into(),
            expires_at: Some(now_ms() + 60_000),
            role: Some(("developer".into(), String::new())),
        })
        .await
        .unwrap();
    assert_eq!(session.user_id.as_deref(), Some(alice.id.as_str()));
    assert!(
        !store
            .disable_user(&other.id, &alice.id, now_ms())
            .await
            .unwrap()
    );
    assert!(
        store
            .disable_user(&acme.id, &alice.id, now_ms())
            .await
            .unwrap()
    );
    assert!(
        store
            .user_by_name(&acme.id, "alice")
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    assert!(
        !store
            .token_by_hash("h-session")
            .await
            .unwrap()
            .unwrap()
            .is_active(now_ms()),
        "disabling revokes sessions"
    );
}

async fn custom_roles(db: Db) {
    let store = Arc::clone(&db.store);
    let (acme, other) = two_tenants(&*store).await;

    // Custom roles.
    let role = CustomRole {
        tenant_id: acme.id.clone(),
        name: "auditor".into(),
        permissions: vec!["audit.read".into()],
        created_at: now_ms(),
    };
    store.put_role(&role).await.unwrap();
    let wider = CustomRole {
        permissions: vec!["audit.read".into(), "script.read".into()],
        ..role.clone()
    };
    store.put_role(&wider).await.unwrap();
    assert_eq!(store.roles(&acme.id).await.unwrap(), vec![wider]);
    assert_eq!(store.roles(&other.id).await.unwrap(), vec![]);
    assert!(!store.delete_role(&other.id, "auditor").await.unwrap());
    assert!(store.delete_role(&acme.id, "auditor").await.unwrap());
    assert_eq!(store.roles(&acme.id).await.unwrap(), vec![]);
}

/// A stored role whose permissions do not decode fails the read, naming
/// the role, instead of reading as a role without permissions (which would
/// quietly take rights away, or hide that the row was edited).
async fn undecodable_role(db: Db) {
    let store = Arc::clone(&db.store);
    let (acme, other) = two_tenants(&*store).await;
    let role = CustomRole {
        tenant_id: acme.id.clone(),
        name: "auditor".into(),
        permissions: vec!["audit.read".into()],
        created_at: now_ms(),
    };
    store.put_role(&role).await.unwrap();
    assert_eq!(store.roles(&acme.id).await.unwrap(), vec![role]);
    let theirs = CustomRole {
        tenant_id: other.id.clone(),
        name: "auditor".into(),
        permissions: vec!["script.read".into()],
        created_at: now_ms(),
    };
    store.put_role(&theirs).await.unwrap();
    for stored in ["not json", r#"{"audit.read":true}"#, "[1]", ""] {
        tamper(
            &db.url,
            &format!(
                "UPDATE roles SET permissions = '{stored}' WHERE tenant_id = '{}' AND name = 'auditor'",
                acme.id
            ),
        )
        .await;
        let err = store.roles(&acme.id).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Database(sqlx::Error::ColumnDecode { .. })),
            "{stored:?}: {err:?}"
        );
        let message = err.to_string();
        for part in ["roles.permissions", "`auditor`", acme.id.as_str()] {
            assert!(message.contains(part), "{stored:?}: {message}");
        }
    }
    // Another tenant's roles still read.
    assert_eq!(store.roles(&other.id).await.unwrap(), vec![theirs]);
}

async fn audit_chain(db: Db) {
    let url = db.url.as_str();
    let store = Arc::clone(&db.store);
    let (acme, other) = two_tenants(&*store).await;

    // The audit chain: appends, pages, filters.
    let first = store
        .append_audit(&audit(Some(&acme.id), "tenant.create", "ok"))
        .await
        .unwrap();
    assert_eq!(first.seq, 1);
    store
        .append_audit(&audit(Some(&acme.id), "token.create", "ok"))
        .await
        .unwrap();
    store
        .append_audit(&audit(Some(&other.id), "script.run", "denied"))
        .await
        .unwrap();
    let page = store
        .audit_page(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    let acme_only = store
        .audit_page(&AuditQuery {
            tenant_id: Some(acme.id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        acme_only.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let denied = store
        .audit_page(&AuditQuery {
            outcome: Some("denied".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].entry.action, "script.run");
    let next = store
        .audit_page(&AuditQuery {
            before: Some(2),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 3 }
    );
    // A batch continues the chain, in order.
    let batch = [
        audit(Some(&acme.id), "hook.executed", "ok"),
        audit(Some(&acme.id), "route.accessed", "ok"),
    ];
    store.append_audits(&batch).await.unwrap();
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 5 }
    );
    let newest = store
        .audit_page(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest
            .iter()
            .map(|e| (e.seq, e.entry.action.as_str()))
            .collect::<Vec<_>>(),
        vec![(5, "route.accessed"), (4, "hook.executed")]
    );

    // Concurrent appends never fork the chain, also while other writes land
    // between an append's read of the chain's head and its insert.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        let tenant = acme.id.clone();
        tasks.push(tokio::spawn(async move {
            let role = CustomRole {
                tenant_id: tenant.clone(),
                name: format!("r{i}"),
                permissions: vec![],
                created_at: now_ms(),
            };
            store.put_role(&role).await.unwrap();
            store
                .append_audit(&audit(Some(&tenant), &format!("bulk.{i}"), "ok"))
                .await
                .unwrap();
            assert!(store.delete_role(&tenant, &role.name).await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 25 }
    );

    // Editing a row by hand is detected at that row; deleting one too.
    tamper(url, "UPDATE audit SET outcome = 'ok' WHERE seq = 3").await;
    match store.verify_audit().await.unwrap() {
        AuditVerdict::Broken { seq, reason } => {
            assert_eq!(seq, 3);
            assert!(reason.contains("edited"), "{reason}");
        }
        other => panic!("tampering went unnoticed: {other:?}"),
    }
    tamper(url, "UPDATE audit SET outcome = 'denied' WHERE seq = 3").await;
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact { entries: 25 }
    );
    tamper(url, "DELETE FROM audit WHERE seq = 5").await;
    match store.verify_audit().await.unwrap() {
        AuditVerdict::Broken { seq, .. } => assert_eq!(seq, 5),
        other => panic!("a deleted row went unnoticed: {other:?}"),
    }
}

/// Every token records who minted it and the person it acts for; users,
/// tokens and bindings are read by id and by tenant, never across tenants.
async fn token_origins(store: &dyn Store, acme: &Tenant, other: &Tenant) {
    let new = |name: &str, hash: &str, user: Option<&str>| NewToken {
        user_id: user.map(str::to_owned),
        tenant_id: Some(acme.id.clone()),
        name: name.into(),
        hash: hash.into(),
        expires_at: None,
        role: Some(("approver".into(), "hr/".into())),
    };
    // A root token acts for itself.
    let root = store
        .create_token(&new("root", "h-origin-root", None))
        .await
        .unwrap();
    assert_eq!(
        (root.person.as_str(), root.created_by.as_deref()),
        (root.id.as_str(), None)
    );
    // What it mints, and what that mints, acts for the same person.
    let child = store
        .create_token_by(
            &new("child", "h-origin-child", None),
            &TokenOrigin {
                created_by: Some(root.id.clone()),
                person: Some(root.person.clone()),
                end_user: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(child.person, root.id);
    assert_eq!(child.created_by.as_deref(), Some(root.id.as_str()));
    assert_eq!(
        store.token_by_hash("h-origin-child").await.unwrap(),
        Some(child.clone())
    );
    assert_eq!(
        store.token(&acme.id, &child.id).await.unwrap(),
        Some(child.clone())
    );
    assert_eq!(store.token(&other.id, &child.id).await.unwrap(), None);
    assert!(store.list_tokens(&acme.id).await.unwrap().contains(&child));
    // A session acts for its user.
    let user = store
        .create_user(&NewUser {
            tenant_id: acme.id.clone(),
            username: "origin-user".into(),
            password_hash: "x".into(),
            roles: vec![("viewer".into(), String::new())],
        })
        .await
        .unwrap();
    let session = store
        .create_token(&new("session", "h-origin-sess", Some(&user.id)))
        .await
        .unwrap();
    assert_eq!(session.person, user.id);
    assert_eq!(
        store.user(&acme.id, &user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(store.user(&other.id, &user.id).await.unwrap(), None);
    // The tenant's bindings, for listing tokens with their roles.
    let bindings = store.tenant_bindings(&acme.id).await.unwrap();
    let of_child: Vec<_> = bindings
        .iter()
        .filter(|b| b.token_id == child.id)
        .map(|b| (b.role.as_str(), b.path_prefix.as_str()))
        .collect();
    assert_eq!(of_child, vec![("approver", "hr/")]);
    assert!(bindings.iter().all(|b| b.tenant_id == acme.id));
    assert!(
        store
            .tenant_bindings(&other.id)
            .await
            .unwrap()
            .iter()
            .all(|b| b.token_id != child.id)
    );
}

async fn events(db: Db) {
    let store = &*db.store;
    let (acme, other) = &two_tenants(store).await;
    use citadel_store::{Delivery, Event, Subscription};
    let sub = |tenant: &Tenant, name: &str, pattern: &str| Subscription {
        tenant_id: tenant.id.clone(),
        name: name.into(),
        pattern: pattern.into(),
        script_name: "billing/on-paid".into(),
        created_at: 7,
    };
    store
        .put_subscription(&sub(acme, "paid", "order.paid"))
        .await
        .unwrap();
    store
        .put_subscription(&sub(acme, "all", "*"))
        .await
        .unwrap();
    // Replacing by name keeps one row with the new pattern.
    store
        .put_subscription(&sub(acme, "paid", "order.*"))
        .await
        .unwrap();
    let subs = store.subscriptions(&acme.id).await.unwrap();
    assert_eq!(
        subs,
        vec![sub(acme, "all", "*"), sub(acme, "paid", "order.*")]
    );
    assert_eq!(store.subscriptions(&other.id).await.unwrap(), vec![]);
    assert!(!store.delete_subscription(&other.id, "paid").await.unwrap());
    assert!(store.delete_subscription(&acme.id, "all").await.unwrap());
    assert!(!store.delete_subscription(&acme.id, "all").await.unwrap());

    let event = |id: &str, at: i64| Event {
        id: id.into(),
        tenant_id: acme.id.clone(),
        event_type: "order.paid".into(),
        data: r#"{"amount":5}"#.into(),
        depth: 1,
        source: "run_x".into(),
        created_at: at,
    };
    store.insert_event(&event("evt_1", 10)).await.unwrap();
    store.insert_event(&event("evt_2", 20)).await.unwrap();
    assert!(matches!(
        store.insert_event(&event("evt_1", 30)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.event(&acme.id, "evt_1").await.unwrap(),
        Some(event("evt_1", 10))
    );
    assert_eq!(store.event(&other.id, "evt_1").await.unwrap(), None);
    let listed: Vec<String> = store
        .list_events(&acme.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, vec!["evt_2", "evt_1"]);
    assert_eq!(store.list_events(&acme.id, 1).await.unwrap().len(), 1);
    assert_eq!(store.list_events(&other.id, 10).await.unwrap(), vec![]);

    let delivery = |sub: &str, run: Option<&str>, error: Option<&str>| Delivery {
        event_id: "evt_1".into(),
        tenant_id: acme.id.clone(),
        subscription: sub.into(),
        script_name: "billing/on-paid".into(),
        run_id: run.map(str::to_owned),
        error: error.map(str::to_owned),
    };
    store
        .put_deliveries(&[
            delivery("paid", Some("run_1"), None),
            delivery("audit", None, Some("no live version")),
        ])
        .await
        .unwrap();
    store.put_deliveries(&[]).await.unwrap();
    // Delivering again replaces.
    store
        .put_deliveries(&[delivery("audit", Some("run_2"), None)])
        .await
        .unwrap();
    assert_eq!(
        store.deliveries(&acme.id, "evt_1").await.unwrap(),
        vec![
            delivery("audit", Some("run_2"), None),
            delivery("paid", Some("run_1"), None)
        ]
    );
    assert_eq!(store.deliveries(&other.id, "evt_1").await.unwrap(), vec![]);

    // Published events: each event, its jobs and its deliveries' record in
    // one transaction, all or nothing.
    use citadel_store::Published;
    let published = |id: &str| Published {
        event: event(id, 40),
        webhook_deliveries: Vec::new(),
        jobs: vec![new_job(&format!("job_{id}"), &acme.id, 0, 40, 3, None)],
        deliveries: vec![Delivery {
            event_id: id.into(),
            ..delivery("paid", Some("run_3"), None)
        }],
    };
    store
        .put_published(&[published("evt_3"), published("evt_4")])
        .await
        .unwrap();
    assert_eq!(
        store.event(&acme.id, "evt_4").await.unwrap(),
        Some(event("evt_4", 40))
    );
    assert_eq!(job(store, acme, "job_evt_3").await.state, JobState::Queued);
    assert_eq!(store.deliveries(&acme.id, "evt_3").await.unwrap().len(), 1);
    assert!(matches!(
        store
            .put_published(&[published("evt_5"), published("evt_1")])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.event(&acme.id, "evt_5").await.unwrap(), None);
    assert_eq!(store.job(&acme.id, "job_evt_5").await.unwrap(), None);
}

async fn tenant_settings(db: Db) {
    let store = &*db.store;
    let (acme, other) = &two_tenants(store).await;
    assert_eq!(store.tenant_settings(&acme.id).await.unwrap(), None);
    store
        .put_tenant_settings(&acme.id, r#"{"a":1}"#, 10)
        .await
        .unwrap();
    store
        .put_tenant_settings(&acme.id, r#"{"a":2}"#, 11)
        .await
        .unwrap();
    assert_eq!(
        store.tenant_settings(&acme.id).await.unwrap().as_deref(),
        Some(r#"{"a":2}"#)
    );
    assert_eq!(store.tenant_settings(&other.id).await.unwrap(), None);
    assert!(matches!(
        store.put_tenant_settings("tnt_missing", "{}", 12).await,
        Err(StoreError::NotFound(_))
    ));
}

fn new_version(tenant: &str, name: &str, hash: &str) -> NewVersion {
    NewVersion {
        tenant_id: tenant.into(),
        name: name.into(),
        hash: hash.into(),
        source: format!("export default () => '{hash}';"),
        language: Language::Ts,
        kind: citadel_domain::ScriptKind::Script,
        capabilities: r#"["http"]"#.into(),
        limits: r#"{"timeout_ms":500}"#.into(),
        diagnostics: "[]".into(),
        change_note: format!("note {hash}"),
        author: "usr_alice".into(),
        state: VersionState::Draft,
        make_live: false,
    }
}

/// `1.0.0` first, then the patch number goes up.
fn bump(prev: Option<&str>) -> String {
    match prev {
        None => "1.0.0".into(),
        Some(v) => {
            let (head, patch) = v.rsplit_once('.').unwrap();
            format!("{head}.{}", patch.parse::<u32>().unwrap() + 1)
        }
    }
}

fn created(outcome: SaveOutcome) -> citadel_store::ScriptVersion {
    match outcome {
        SaveOutcome::Created(v) => v,
        other => panic!("expected a new version, got {other:?}"),
    }
}

async fn scripts(db: Db) {
    let store = &*db.store;
    let (acme, other) = &two_tenants(store).await;
    let name = "billing/on-paid";
    let seen = std::sync::Mutex::new(Vec::<Option<String>>::new());
    let next = |prev: Option<&str>| {
        seen.lock().unwrap().push(prev.map(str::to_owned));
        bump(prev)
    };
    let seen = || seen.lock().unwrap().clone();

    // The first save creates the script and version 1.
    let v1 = new_version(&acme.id, name, "h1");
    let first = created(store.save_version(&v1, &next).await.unwrap());
    assert_eq!(seen(), vec![None]);
    let script = store.script(&acme.id, name).await.unwrap().unwrap();
    assert!(script.id.starts_with("scr_"), "{}", script.id);
    assert_eq!(
        (
            script.tenant_id.as_str(),
            script.name.as_str(),
            script.live_seq,
            script.latest_seq
        ),
        (acme.id.as_str(), name, None, 1)
    );
    assert_eq!(script.updated_at, first.created_at);
    assert_eq!(
        first,
        citadel_store::ScriptVersion {
            script_id: script.id.clone(),
            tenant_id: acme.id.clone(),
            seq: 1,
            version: "1.0.0".into(),
            hash: "h1".into(),
            source: v1.source.clone(),
            language: Language::Ts,
            capabilities: v1.capabilities.clone(),
            limits: v1.limits.clone(),
            diagnostics: "[]".into(),
            change_note: "note h1".into(),
            author: "usr_alice".into(),
            state: VersionState::Draft,
            reviewed_by: None,
            review_reason: None,
            reviewed_at: None,
            created_at: first.created_at,
        }
    );
    assert_eq!(store.live_version(&acme.id, name).await.unwrap(), None);

    // The same content again stores nothing and returns the latest version.
    let same = NewVersion {
        change_note: "only the note differs".into(),
        make_live: true,
        ..v1.clone()
    };
    assert_eq!(
        store.save_version(&same, &next).await.unwrap(),
        SaveOutcome::Unchanged(first.clone())
    );
    assert_eq!(seen(), vec![None], "no version computed for no change");
    assert_eq!(
        store.script(&acme.id, name).await.unwrap(),
        Some(script.clone())
    );
    assert_eq!(
        store.versions(&acme.id, &script.id).await.unwrap(),
        vec![first.clone()]
    );

    // Changed content: version 2, computed from version 1's.
    let second = created(
        store
            .save_version(&new_version(&acme.id, name, "h2"), &next)
            .await
            .unwrap(),
    );
    assert_eq!((second.seq, second.version.as_str()), (2, "1.0.1"));
    assert_eq!(seen(), vec![None, Some("1.0.0".to_owned())]);
    let s = store.script(&acme.id, name).await.unwrap().unwrap();
    assert_eq!((s.latest_seq, s.live_seq), (2, None));

    // Saving with make_live makes the new version live at once.
    let v3 = NewVersion {
        state: VersionState::Approved,
        make_live: true,
        ..new_version(&acme.id, name, "h3")
    };
    let third = created(store.save_version(&v3, &next).await.unwrap());
    assert_eq!(
        (third.seq, third.version.as_str(), third.state.as_str()),
        (3, "1.0.2", "approved")
    );
    let s = store.script(&acme.id, name).await.unwrap().unwrap();
    assert_eq!((s.latest_seq, s.live_seq), (3, Some(3)));
    assert_eq!(
        store.live_version(&acme.id, name).await.unwrap(),
        Some((s.clone(), third.clone()))
    );
    assert_eq!(
        store.versions(&acme.id, &script.id).await.unwrap(),
        vec![first.clone(), second.clone(), third.clone()]
    );
    assert_eq!(
        store.version(&acme.id, &script.id, "1.0.1").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.version(&acme.id, &script.id, "9.9.9").await.unwrap(),
        None
    );

    // A version string that already exists is a conflict, and nothing is
    // stored.
    let always_first = |_: Option<&str>| "1.0.0".to_owned();
    assert!(matches!(
        store
            .save_version(&new_version(&acme.id, name, "h4"), &always_first)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.script(&acme.id, name).await.unwrap(), Some(s.clone()));
    assert_eq!(store.versions(&acme.id, &script.id).await.unwrap().len(), 3);
    // Saving into a tenant that does not exist.
    assert!(matches!(
        store
            .save_version(&new_version("tnt_missing", name, "h1"), &bump)
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Transitions are compare-and-set on the state.
    let transition = |seq: i64, from: &[&str], to: &str| VersionTransition {
        tenant_id: acme.id.clone(),
        script_id: script.id.clone(),
        seq,
        from: from.iter().map(|s| s.parse().unwrap()).collect(),
        to: to.parse().unwrap(),
        reviewed_by: None,
        review_reason: None,
        at: 1_000,
        make_live: false,
    };
    assert!(
        store
            .transition_version(&transition(2, &["draft"], "submitted"))
            .await
            .unwrap()
    );
    let approve = VersionTransition {
        reviewed_by: Some("usr_bob".into()),
        review_reason: Some("looks right".into()),
        at: 1_234,
        make_live: true,
        ..transition(2, &["submitted"], "approved")
    };
    assert!(store.transition_version(&approve).await.unwrap());
    // A second approval finds it approved already.
    assert!(!store.transition_version(&approve).await.unwrap());
    let approved = store
        .version(&acme.id, &script.id, "1.0.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        approved,
        citadel_store::ScriptVersion {
            state: VersionState::Approved,
            reviewed_by: Some("usr_bob".into()),
            review_reason: Some("looks right".into()),
            reviewed_at: Some(1_234),
            ..second.clone()
        }
    );
    let s = store.script(&acme.id, name).await.unwrap().unwrap();
    assert_eq!((s.live_seq, s.updated_at), (Some(2), 1_234));
    assert_eq!(
        store.live_version(&acme.id, name).await.unwrap(),
        Some((s.clone(), approved.clone()))
    );
    // Any of several states; none at all never matches.
    assert!(
        store
            .transition_version(&transition(1, &["submitted", "draft"], "rejected"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.versions(&acme.id, &script.id).await.unwrap()[0].state,
        VersionState::Rejected
    );
    assert!(
        !store
            .transition_version(&transition(3, &[], "draft"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_version(&transition(42, &["draft"], "submitted"))
            .await
            .unwrap()
    );

    // set_live: only an existing version.
    assert!(
        !store
            .set_live(&acme.id, &script.id, 42, 2_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .script(&acme.id, name)
            .await
            .unwrap()
            .unwrap()
            .live_seq,
        Some(2)
    );
    assert!(
        store
            .set_live(&acme.id, &script.id, 1, 2_000)
            .await
            .unwrap()
    );
    let s = store.script(&acme.id, name).await.unwrap().unwrap();
    assert_eq!((s.live_seq, s.updated_at), (Some(1), 2_000));

    // Another tenant sees nothing of it and cannot change it.
    assert_eq!(store.script(&other.id, name).await.unwrap(), None);
    assert_eq!(store.list_scripts(&other.id).await.unwrap(), vec![]);
    assert_eq!(store.live_version(&other.id, name).await.unwrap(), None);
    assert_eq!(
        store.version(&other.id, &script.id, "1.0.0").await.unwrap(),
        None
    );
    assert_eq!(store.versions(&other.id, &script.id).await.unwrap(), vec![]);
    let foreign = VersionTransition {
        tenant_id: other.id.clone(),
        make_live: true,
        ..transition(3, &["approved"], "rejected")
    };
    assert!(!store.transition_version(&foreign).await.unwrap());
    assert!(
        !store
            .set_live(&other.id, &script.id, 3, 3_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.script(&acme.id, name).await.unwrap(),
        Some(s.clone()),
        "untouched"
    );
    assert_eq!(
        store.versions(&acme.id, &script.id).await.unwrap()[2],
        third
    );
    // The same name in another tenant is another script.
    let theirs = created(
        store
            .save_version(&new_version(&other.id, name, "h1"), &bump)
            .await
            .unwrap(),
    );
    assert_ne!(theirs.script_id, script.id);
    assert_eq!((theirs.seq, theirs.version.as_str()), (1, "1.0.0"));

    // Listing is by name.
    created(
        store
            .save_version(&new_version(&acme.id, "alpha", "x"), &bump)
            .await
            .unwrap(),
    );
    let names: Vec<_> = store
        .list_scripts(&acme.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["alpha", name]);
    assert_eq!(
        store.list_scripts(&other.id).await.unwrap(),
        vec![store.script(&other.id, name).await.unwrap().unwrap()]
    );

    // Concurrent saves of one new script queue up: every one lands, with
    // consecutive seqs and distinct versions.
    let saves = (0..8).map(|i| {
        let new = new_version(&acme.id, "racy", &format!("r{i}"));
        async move { store.save_version(&new, &bump).await }
    });
    for outcome in futures_util::future::join_all(saves).await {
        created(outcome.unwrap());
    }
    let racy = store.script(&acme.id, "racy").await.unwrap().unwrap();
    let versions = store.versions(&acme.id, &racy.id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        (0..8).map(|i| format!("1.0.{i}")).collect::<Vec<_>>()
    );
    assert_eq!(racy.latest_seq, 8);
}

fn queued_run(tenant: &str, id: &str, script_name: &str, created_at: i64) -> Run {
    Run {
        id: id.into(),
        tenant_id: tenant.into(),
        script_id: "scr_x".into(),
        script_name: script_name.into(),
        version: "1.0.0".into(),
        status: RunStatus::Queued,
        trigger: Trigger::ApiAsync,
        principal: Some("tok_ci".into()),
        input: r#"{"n":1}"#.into(),
        result: None,
        logs: "[]".into(),
        logs_truncated: false,
        error: None,
        duration_ms: None,
        cpu_ms: None,
        peak_memory_bytes: None,
        created_at,
        started_at: None,
        finished_at: None,
    }
}

async fn runs(db: Db) {
    let store = &*db.store;
    let (acme, other) = &two_tenants(store).await;
    store.put_runs(&[]).await.unwrap();
    let queued = queued_run(&acme.id, "run_1", "billing/on-paid", 1_000);
    store.put_runs(std::slice::from_ref(&queued)).await.unwrap();
    assert_eq!(
        store.run(&acme.id, "run_1").await.unwrap(),
        Some(queued.clone())
    );

    // The update keeps what a run never changes (who, what, when queued).
    let done = Run {
        status: RunStatus::Succeeded,
        result: Some(r#"{"ok":true}"#.into()),
        logs: r#"["a","b"]"#.into(),
        logs_truncated: true,
        duration_ms: Some(12),
        cpu_ms: Some(0),
        peak_memory_bytes: Some(5_000_000_000),
        started_at: Some(1_001),
        finished_at: Some(1_013),
        ..queued.clone()
    };
    let mut rewritten = done.clone();
    rewritten.input = "{}".into();
    rewritten.principal = None;
    rewritten.trigger = Trigger::Api;
    rewritten.created_at = 1;
    let failed = Run {
        status: RunStatus::Failed,
        principal: None,
        error: Some(r#"{"code":"boom"}"#.into()),
        started_at: Some(2_001),
        finished_at: Some(2_002),
        duration_ms: Some(1),
        ..queued_run(&acme.id, "run_2", "alpha", 2_000)
    };
    let run3 = queued_run(&acme.id, "run_3", "billing/on-paid", 3_000);
    let run4 = Run {
        status: RunStatus::Succeeded,
        ..queued_run(&acme.id, "run_4", "billing/on-paid", 3_000)
    };
    // Another tenant reusing an id changes nothing of acme's run.
    let hijack = Run {
        status: RunStatus::Killed,
        ..queued_run(&other.id, "run_1", "billing/on-paid", 1_000)
    };
    let theirs = queued_run(&other.id, "run_5", "billing/on-paid", 4_000);
    store
        .put_runs(&[
            rewritten,
            failed.clone(),
            run3.clone(),
            run4.clone(),
            hijack,
            theirs.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.run(&acme.id, "run_1").await.unwrap(),
        Some(done.clone())
    );
    assert_eq!(
        store.run(&acme.id, "run_2").await.unwrap(),
        Some(failed.clone())
    );
    assert_eq!(store.run(&other.id, "run_1").await.unwrap(), None);
    assert_eq!(store.run(&acme.id, "run_5").await.unwrap(), None);
    assert_eq!(
        store.run(&other.id, "run_5").await.unwrap(),
        Some(theirs.clone())
    );
    assert_eq!(store.run(&acme.id, "run_missing").await.unwrap(), None);

    let list = |script_name: Option<&str>, status: Option<&str>, before: Option<&str>, limit| {
        let q = RunQuery {
            tenant_id: acme.id.clone(),
            script_name: script_name.map(str::to_owned),
            status: status.map(|s| s.parse().unwrap()),
            before: before.map(str::to_owned),
            limit,
            ..RunQuery::default()
        };
        async move {
            store
                .list_runs(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    // Newest first; equal times by id, descending.
    assert_eq!(
        list(None, None, None, 10).await,
        vec!["run_4", "run_3", "run_2", "run_1"]
    );
    assert_eq!(
        list(Some("billing/on-paid"), None, None, 10).await,
        vec!["run_4", "run_3", "run_1"]
    );
    assert_eq!(
        list(None, Some("succeeded"), None, 10).await,
        vec!["run_4", "run_1"]
    );
    assert_eq!(
        list(Some("alpha"), Some("failed"), None, 10).await,
        vec!["run_2"]
    );
    assert_eq!(
        list(Some("alpha"), Some("succeeded"), None, 10).await,
        Vec::<String>::new()
    );
    // Paging.
    assert_eq!(list(None, None, None, 2).await, vec!["run_4", "run_3"]);
    assert_eq!(
        list(None, None, Some("run_3"), 2).await,
        vec!["run_2", "run_1"]
    );
    assert_eq!(
        list(None, None, Some("run_4"), 10).await,
        vec!["run_3", "run_2", "run_1"]
    );
    assert_eq!(
        list(Some("billing/on-paid"), None, Some("run_4"), 10).await,
        vec!["run_3", "run_1"]
    );
    assert_eq!(
        list(None, Some("succeeded"), Some("run_4"), 10).await,
        vec!["run_1"]
    );
    assert_eq!(
        list(None, None, Some("run_1"), 10).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(None, None, Some("run_missing"), 10).await,
        Vec::<String>::new()
    );
    // Another tenant's run is no paging anchor here.
    assert_eq!(
        list(None, None, Some("run_5"), 10).await,
        Vec::<String>::new()
    );
    // The limit is clamped to at least one.
    assert_eq!(list(None, None, None, 0).await, vec!["run_4"]);
    let theirs_only = store
        .list_runs(&RunQuery {
            tenant_id: other.id.clone(),
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(theirs_only, vec![theirs]);

    // Filters by trigger and creation time (since inclusive, until not).
    let scheduled = Run {
        trigger: Trigger::Schedule,
        ..queued_run(&acme.id, "run_6", "nightly", 500)
    };
    store.put_runs(&[scheduled]).await.unwrap();
    let page = |q: RunQuery| async move {
        store
            .list_runs(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    let q = |trigger: Option<Trigger>, since: Option<i64>, until: Option<i64>| RunQuery {
        tenant_id: acme.id.clone(),
        trigger,
        since,
        until,
        limit: 10,
        ..RunQuery::default()
    };
    assert_eq!(
        page(q(Some(Trigger::Schedule), None, None)).await,
        vec!["run_6"]
    );
    assert_eq!(
        page(q(Some(Trigger::Api), None, None)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        page(q(Some(Trigger::ApiAsync), None, None)).await,
        vec!["run_4", "run_3", "run_2", "run_1"]
    );
    assert_eq!(page(q(None, None, Some(1_000))).await, vec!["run_6"]);
    assert_eq!(page(q(None, Some(2_000), Some(3_000))).await, vec!["run_2"]);
    assert_eq!(
        page(q(Some(Trigger::ApiAsync), Some(3_000), None)).await,
        vec!["run_4", "run_3"]
    );
    assert_eq!(page(q(None, Some(3_001), None)).await, Vec::<String>::new());

    // Stats: finished runs only, counted per bucket; samples newest first.
    let stats = store
        .run_stats(&RunStatsQuery {
            tenant_id: acme.id.clone(),
            since: 0,
            bucket_ms: 1_000,
            sample_limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        stats.buckets,
        vec![
            RunBucket {
                start: 1_000,
                finished: 1,
                failed: 0
            },
            RunBucket {
                start: 2_000,
                finished: 1,
                failed: 1
            }
        ]
    );
    assert_eq!(
        stats.samples,
        vec![
            RunSample {
                script_name: "alpha".into(),
                status: RunStatus::Failed,
                duration_ms: Some(1),
                cpu_ms: None,
            },
            RunSample {
                script_name: "billing/on-paid".into(),
                status: RunStatus::Succeeded,
                duration_ms: Some(12),
                cpu_ms: Some(0),
            },
        ]
    );
    let later = store
        .run_stats(&RunStatsQuery {
            tenant_id: acme.id.clone(),
            since: 1_500,
            bucket_ms: 60_000,
            sample_limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(
        (later.buckets, later.samples.len()),
        (
            vec![RunBucket {
                start: 0,
                finished: 1,
                failed: 1
            }],
            1
        )
    );
}

async fn embed_codes(db: Db) {
    let store = &*db.store;
    let (acme, _) = &two_tenants(store).await;
    let code = |hash: &str, expires_at: i64| EmbedCode {
        code_hash: hash.into(),
        tenant_id: acme.id.clone(),
        end_user: "embed:cust-42".into(),
        folder: "customers/42/".into(),
        role: "developer".into(),
        session_ms: 900_000,
        created_by: "tok_minter".into(),
        created_at: 1_000,
        expires_at,
    };
    store.put_embed_code(&code("h1", 5_000)).await.unwrap();
    store.put_embed_code(&code("h2", 2_000)).await.unwrap();
    assert!(matches!(
        store.put_embed_code(&code("h1", 5_000)).await,
        Err(StoreError::Conflict(_))
    ));
    // Taken once: the second take finds nothing.
    assert_eq!(
        store.take_embed_code("h1", 4_999).await.unwrap(),
        Some(code("h1", 5_000))
    );
    assert_eq!(store.take_embed_code("h1", 4_999).await.unwrap(), None);
    // An expired code answers nothing, and is gone.
    assert_eq!(store.take_embed_code("h2", 2_000).await.unwrap(), None);
    assert_eq!(store.take_embed_code("missing", 0).await.unwrap(), None);

    // A session token remembers its end user.
    let token = store
        .create_token_by(
            &NewToken {
                user_id: None,
                tenant_id: Some(acme.id.clone()),
                name: "embed:cust-42".into(),
                hash: "h-embed-session".into(),
                expires_at: Some(i64::MAX),
                role: Some(("developer".into(), "customers/42/".into())),
            },
            &TokenOrigin {
                created_by: Some("tok_minter".into()),
                person: None,
                end_user: Some("embed:cust-42".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(token.person, token.id);
    let found = store
        .token_by_hash("h-embed-session")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.end_user.as_deref(), Some("embed:cust-42"));
    assert_eq!(found, token);
}

async fn kill_switches(db: Db) {
    let store = &*db.store;
    let platform = KillSwitch {
        scope: KillScope::Platform,
        tenant_id: String::new(),
        target: String::new(),
        reason: "incident 42".into(),
        engaged_by: Some("tok_admin".into()),
        engaged_at: 20,
    };
    let script = KillSwitch {
        scope: KillScope::Script,
        tenant_id: "tnt_a".into(),
        target: "billing/on-paid".into(),
        reason: "runaway".into(),
        engaged_by: None,
        engaged_at: 10,
    };
    assert_eq!(store.kill_switches().await.unwrap(), vec![]);
    assert!(store.engage_kill_switch(&platform).await.unwrap());
    let later = KillSwitch {
        reason: "again".into(),
        engaged_at: 30,
        ..platform.clone()
    };
    assert!(!store.engage_kill_switch(&later).await.unwrap());
    assert!(store.engage_kill_switch(&script).await.unwrap());
    // The first engagement is kept; oldest first.
    assert_eq!(
        store.kill_switches().await.unwrap(),
        vec![script.clone(), platform.clone()]
    );
    assert!(
        !store
            .release_kill_switch("script", "tnt_b", "billing/on-paid")
            .await
            .unwrap()
    );
    assert!(store.release_kill_switch("platform", "", "").await.unwrap());
    assert!(!store.release_kill_switch("platform", "", "").await.unwrap());
    assert_eq!(store.kill_switches().await.unwrap(), vec![script]);
}

/// A moment far from the wall clock: the queue only knows the times it is
/// given (`created_at` aside).
const T: i64 = 1_000_000;
const LEASE: i64 = 30_000;

fn new_job(
    id: &str,
    tenant: &str,
    priority: i64,
    run_at: i64,
    max_attempts: i64,
    key: Option<&str>,
) -> NewJob {
    NewJob {
        id: id.into(),
        tenant_id: tenant.into(),
        kind: "run".into(),
        payload: format!(r#"{{"job":"{id}"}}"#),
        priority,
        run_at,
        max_attempts,
        timeout_ms: 5_000,
        idempotency_key: key.map(str::to_owned),
        script_key: None,
        script_cap: None,
    }
}

async fn enqueue(store: &dyn Store, job: NewJob) -> Job {
    let (job, created) = store.enqueue(&job).await.unwrap();
    assert!(created, "{job:?}");
    job
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

async fn job(store: &dyn Store, tenant: &Tenant, id: &str) -> Job {
    store.job(&tenant.id, id).await.unwrap().unwrap()
}

async fn finish(store: &dyn Store, node: &str, ids: &[&str], state: &str, at: i64) {
    for id in ids {
        assert!(
            store
                .finish_job(id, node, state.parse().unwrap(), None, at)
                .await
                .unwrap(),
            "{id}"
        );
    }
}

/// The queue, nodes, a claim race, and the counts all of it leaves.
async fn jobs(db: Db) {
    let shared = &db.store;
    let store = &**shared;
    let ta = store.create_tenant("jobs-a").await.unwrap();
    let tb = store.create_tenant("jobs-b").await.unwrap();
    let (a, b) = (ta.id.as_str(), tb.id.as_str());

    // Enqueue, idempotently per tenant.
    let first = enqueue(store, new_job("job_idem_1", a, 1, T, 3, Some("k"))).await;
    assert_eq!(first.state, JobState::Queued);
    assert_eq!(first.attempts, 0);
    assert!(!first.cancel_requested);
    assert_eq!(
        (first.lease_owner.as_deref(), first.lease_expires_at),
        (None, None)
    );
    assert_eq!(
        (first.last_error.as_deref(), first.finished_at),
        (None, None)
    );
    assert_eq!(job(store, &ta, "job_idem_1").await, first);
    let (again, created) = store
        .enqueue(&new_job("job_idem_2", a, 3, T, 9, Some("k")))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    assert_eq!(store.job(a, "job_idem_2").await.unwrap(), None);
    // The same key in another tenant is another job; no key never collides.
    enqueue(store, new_job("job_idem_3", b, 1, T, 3, Some("k"))).await;
    enqueue(store, new_job("job_nokey_1", a, 1, T, 3, None)).await;
    enqueue(store, new_job("job_nokey_2", a, 1, T, 3, None)).await;
    assert!(matches!(
        store
            .enqueue(&new_job("job_nokey_1", a, 1, T, 3, None))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .enqueue(&new_job("job_orphan", "tnt_missing", 1, T, 3, None))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        ids(&store.list_jobs(a, None, None, 10).await.unwrap()),
        vec!["job_nokey_2", "job_nokey_1", "job_idem_1"]
    );
    assert_eq!(
        ids(&store.list_jobs(a, Some("queued"), None, 1).await.unwrap()),
        vec!["job_nokey_2"]
    );
    // Paging: strictly older than `before`; an unknown job selects nothing.
    assert_eq!(
        ids(&store
            .list_jobs(a, None, Some("job_nokey_2"), 10)
            .await
            .unwrap()),
        vec!["job_nokey_1", "job_idem_1"]
    );
    assert_eq!(
        store
            .list_jobs(a, None, Some("job_nope"), 10)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        store.list_jobs(a, Some("running"), None, 10).await.unwrap(),
        []
    );
    assert_eq!(store.job(b, "job_idem_1").await.unwrap(), None);

    // Cancelling a queued job ends it at once; tenants are separate.
    assert_eq!(
        store.request_cancel(b, "job_idem_1", T).await.unwrap(),
        None
    );
    assert_eq!(store.request_cancel(a, "job_none", T).await.unwrap(), None);
    for (tenant, id) in [
        (a, "job_idem_1"),
        (a, "job_nokey_1"),
        (a, "job_nokey_2"),
        (b, "job_idem_3"),
    ] {
        let cancelled = store.request_cancel(tenant, id, T).await.unwrap().unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert_eq!(cancelled.finished_at, Some(T));
        assert_eq!(cancelled.updated_at, T);
        assert!(!cancelled.cancel_requested);
    }
    assert_eq!(store.claim("n1", T + 10_000, LEASE, 10).await.unwrap(), []);

    // Claiming: only due jobs, highest priority first.
    enqueue(store, new_job("job_low", a, 0, T, 2, None)).await;
    enqueue(store, new_job("job_high", a, 2, T + 10, 3, None)).await;
    enqueue(store, new_job("job_later", a, 3, T + 1_000, 1, None)).await;
    assert_eq!(store.claim("n1", T + 10, LEASE, 0).await.unwrap(), []);
    let claimed = store.claim("n1", T + 10, LEASE, 10).await.unwrap();
    assert_eq!(ids(&claimed), vec!["job_high", "job_low"]);
    for j in &claimed {
        assert_eq!(j.state, JobState::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.lease_owner.as_deref(), Some("n1"));
        assert_eq!(j.lease_expires_at, Some(T + 10 + LEASE));
        assert_eq!(j.updated_at, T + 10);
        assert_eq!(&job(store, &ta, &j.id).await, j);
    }
    // Never twice.
    assert_eq!(store.claim("n2", T + 10, LEASE, 10).await.unwrap(), []);

    // Only the lease holder finishes or requeues.
    let before = job(store, &ta, "job_high").await;
    assert!(
        !store
            .finish_job("job_high", "n2", JobState::Succeeded, None, T + 20)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .requeue_job("job_high", "n2", T, Some("x"), true, T + 20)
            .await
            .unwrap(),
        None
    );
    assert_eq!(job(store, &ta, "job_high").await, before);
    assert!(
        store
            .finish_job("job_high", "n1", JobState::Succeeded, None, T + 20)
            .await
            .unwrap()
    );
    let done = job(store, &ta, "job_high").await;
    assert_eq!(
        (done.state.as_str(), done.finished_at, done.updated_at),
        ("succeeded", Some(T + 20), T + 20)
    );
    assert_eq!((done.lease_owner, done.lease_expires_at), (None, None));
    assert!(
        !store
            .finish_job("job_high", "n1", JobState::Failed, Some("late"), T + 21)
            .await
            .unwrap()
    );
    assert_eq!(job(store, &ta, "job_high").await.state, JobState::Succeeded);

    // Requeue: back in the queue until `run_at`, then dead once exhausted.
    assert_eq!(
        store
            .requeue_job("job_low", "n1", T + 50, Some("boom"), true, T + 30)
            .await
            .unwrap()
            .map(JobState::as_str),
        Some("queued")
    );
    let requeued = job(store, &ta, "job_low").await;
    assert_eq!(
        (
            requeued.state.as_str(),
            requeued.run_at,
            requeued.attempts,
            requeued.last_error.as_deref()
        ),
        ("queued", T + 50, 1, Some("boom"))
    );
    assert_eq!(
        (requeued.lease_owner, requeued.lease_expires_at),
        (None, None)
    );
    assert_eq!(requeued.finished_at, None);
    assert_eq!(store.claim("n1", T + 49, LEASE, 10).await.unwrap(), []);
    let again = store.claim("n1", T + 50, LEASE, 10).await.unwrap();
    assert_eq!(ids(&again), vec!["job_low"]);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        store
            .requeue_job("job_low", "n1", T + 60, Some("boom again"), true, T + 55)
            .await
            .unwrap()
            .map(JobState::as_str),
        Some("dead")
    );
    let dead = job(store, &ta, "job_low").await;
    assert_eq!(
        (
            dead.state.as_str(),
            dead.finished_at,
            dead.last_error.as_deref()
        ),
        ("dead", Some(T + 55), Some("boom again"))
    );
    assert_eq!(store.claim("n1", T + 100, LEASE, 10).await.unwrap(), []);

    // A dead job goes back with fresh attempts; only a dead one.
    assert!(!store.retry_dead(b, "job_low", T + 70).await.unwrap());
    assert!(!store.retry_dead(a, "job_later", T + 70).await.unwrap());
    assert!(store.retry_dead(a, "job_low", T + 70).await.unwrap());
    assert!(!store.retry_dead(a, "job_low", T + 70).await.unwrap());
    let retried = job(store, &ta, "job_low").await;
    assert_eq!(
        (
            retried.state.as_str(),
            retried.attempts,
            retried.run_at,
            retried.finished_at,
            retried.last_error.as_deref()
        ),
        ("queued", 0, T + 70, None, Some("boom again"))
    );

    // Handing back (drain) does not give up even when exhausted.
    let later = store.claim("n1", T + 1_000, LEASE, 1).await.unwrap();
    assert_eq!(ids(&later), vec!["job_later"]);
    assert_eq!(
        store
            .requeue_job(
                "job_later",
                "n1",
                T + 2_000,
                Some("drain"),
                false,
                T + 1_001
            )
            .await
            .unwrap()
            .map(JobState::as_str),
        Some("queued")
    );
    let both = store.claim("n1", T + 2_000, LEASE, 10).await.unwrap();
    assert_eq!(ids(&both), vec!["job_later", "job_low"]);
    assert_eq!(both[0].attempts, 2);
    assert_eq!(both[1].attempts, 1);
    finish(store, "n1", &["job_later"], "succeeded", T + 2_001).await;
    finish(store, "n1", &["job_low"], "failed", T + 2_001).await;

    // Tenants interleave: A's backlog does not hold B's first job back.
    for i in 1..=5 {
        let id = format!("job_a{i}");
        enqueue(store, new_job(&id, a, 1, T + 3_000 + i, 3, None)).await;
    }
    enqueue(store, new_job("job_b1", b, 1, T + 3_006, 1, None)).await;
    enqueue(store, new_job("job_b2", b, 2, T + 3_010, 3, None)).await;
    let now = T + 4_000;
    assert_eq!(
        ids(&store.claim("n1", now, LEASE, 3).await.unwrap()),
        vec!["job_b2", "job_a1", "job_b1"]
    );
    assert_eq!(
        ids(&store.claim("n1", now, LEASE, 10).await.unwrap()),
        vec!["job_a2", "job_a3", "job_a4", "job_a5"]
    );
    let lease_end = now + LEASE;
    finish(
        store,
        "n1",
        &["job_b2", "job_a2", "job_a3", "job_a4", "job_a5"],
        "succeeded",
        now + 1,
    )
    .await;

    // Leases: renewed only by their holder; expired ones are reclaimed.
    let held: Vec<String> = ["job_b1", "job_missing", "job_a1", "job_a2"]
        .map(String::from)
        .into();
    assert_eq!(
        store
            .renew_leases("n1", &held, lease_end + 5_000)
            .await
            .unwrap(),
        vec!["job_b1", "job_a1"]
    );
    assert_eq!(
        store
            .renew_leases("n2", &held, lease_end + 9_000)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.renew_leases("n1", &[], lease_end).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        job(store, &ta, "job_a1").await.lease_expires_at,
        Some(lease_end + 5_000)
    );
    assert_eq!(store.reclaim_expired(lease_end + 5_000).await.unwrap(), 0);
    let expired_at = lease_end + 5_001;
    assert_eq!(store.reclaim_expired(expired_at).await.unwrap(), 2);
    assert_eq!(store.reclaim_expired(expired_at).await.unwrap(), 0);
    let requeued = job(store, &ta, "job_a1").await;
    assert_eq!(
        (
            requeued.state.as_str(),
            requeued.attempts,
            requeued.lease_owner.as_deref(),
            requeued.lease_expires_at,
            requeued.finished_at
        ),
        ("queued", 1, None, None, None)
    );
    let exhausted = job(store, &tb, "job_b1").await;
    assert_eq!(
        (
            exhausted.state.as_str(),
            exhausted.finished_at,
            exhausted.last_error.as_deref(),
            exhausted.lease_owner.as_deref()
        ),
        (
            "dead",
            Some(expired_at),
            Some("lease expired (node lost) after 1 attempts"),
            None
        )
    );
    // The node that lost it cannot finish it any more.
    assert!(
        !store
            .finish_job("job_a1", "n1", JobState::Succeeded, None, expired_at)
            .await
            .unwrap()
    );

    // Cancelling a running job asks its node to stop it.
    let now = expired_at + 100;
    assert_eq!(
        ids(&store.claim("n2", now, LEASE, 10).await.unwrap()),
        vec!["job_a1"]
    );
    assert_eq!(
        store.cancel_requests("n2").await.unwrap(),
        Vec::<String>::new()
    );
    let asked = store
        .request_cancel(a, "job_a1", now + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            asked.state.as_str(),
            asked.cancel_requested,
            asked.attempts,
            asked.finished_at
        ),
        ("running", true, 2, None)
    );
    assert_eq!(asked.lease_owner.as_deref(), Some("n2"));
    assert_eq!(store.cancel_requests("n2").await.unwrap(), vec!["job_a1"]);
    assert_eq!(
        store.cancel_requests("n1").await.unwrap(),
        Vec::<String>::new()
    );
    // A finished job is left as it is.
    let finished = job(store, &ta, "job_high").await;
    assert_eq!(
        store.request_cancel(a, "job_high", now + 1).await.unwrap(),
        Some(finished)
    );
    assert!(
        store
            .finish_job(
                "job_a1",
                "n2",
                JobState::Cancelled,
                Some("cancelled"),
                now + 2
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.cancel_requests("n2").await.unwrap(),
        Vec::<String>::new()
    );

    nodes(store, &ta).await;
    claim_race(shared).await;

    // Counts per state, per tenant and overall.
    let counts = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    };
    assert_eq!(
        store.job_counts(Some(a)).await.unwrap(),
        counts(&[("cancelled", 4), ("failed", 1), ("succeeded", 8)])
    );
    assert_eq!(
        store.job_counts(Some(b)).await.unwrap(),
        counts(&[("cancelled", 1), ("dead", 1), ("succeeded", 1)])
    );
    assert_eq!(
        store.job_counts(Some("tnt_missing")).await.unwrap(),
        counts(&[])
    );
    assert_eq!(
        store.job_counts(None).await.unwrap(),
        counts(&[
            ("cancelled", 5),
            ("dead", 1),
            ("failed", 1),
            ("running", 200),
            ("succeeded", 9)
        ])
    );
    assert_eq!(
        ids(&store.list_jobs(b, Some("dead"), None, 10).await.unwrap()),
        vec!["job_b1"]
    );
}

/// Concurrency caps, and a claim race under one.
async fn job_caps(db: Db) {
    caps(&*db.store).await;
    capped_race(&db.store).await;
}

fn node(id: &str, role: &str, started_at: i64) -> Node {
    Node {
        id: id.into(),
        role: role.into(),
        version: "0.1.0".into(),
        hostname: format!("host-{id}"),
        started_at,
        heartbeat_at: started_at,
        running: 0,
        state: NodeState::Up,
    }
}

async fn nodes(store: &dyn Store, ta: &Tenant) {
    let a = ta.id.as_str();
    assert_eq!(store.list_nodes().await.unwrap(), vec![]);
    let worker = node("node_w", "worker", T + 1);
    let serve = node("node_s", "serve", T);
    store.register_node(&worker).await.unwrap();
    store.register_node(&serve).await.unwrap();
    assert_eq!(
        store.list_nodes().await.unwrap(),
        vec![serve.clone(), worker.clone()]
    );
    assert!(
        store
            .node_heartbeat("node_s", T + 100, 3, "draining")
            .await
            .unwrap()
    );
    assert!(
        !store
            .node_heartbeat("node_missing", T + 100, 0, "up")
            .await
            .unwrap()
    );
    let beaten = Node {
        heartbeat_at: T + 100,
        running: 3,
        state: NodeState::Draining,
        ..serve.clone()
    };
    assert_eq!(
        store.list_nodes().await.unwrap(),
        vec![beaten.clone(), worker.clone()]
    );

    // Each node holds a job.
    enqueue(store, new_job("job_on_w", a, 1, T, 3, None)).await;
    assert_eq!(
        ids(&store.claim("node_w", T + 200, LEASE, 1).await.unwrap()),
        vec!["job_on_w"]
    );
    enqueue(store, new_job("job_on_s", a, 1, T, 3, None)).await;
    assert_eq!(
        ids(&store.claim("node_s", T + 200, LEASE, 1).await.unwrap()),
        vec!["job_on_s"]
    );

    // The worker fell silent: it is marked down and its lease expires now.
    assert_eq!(
        store.mark_silent_nodes_down(T + 50).await.unwrap(),
        vec!["node_w"]
    );
    assert_eq!(
        store.mark_silent_nodes_down(T + 50).await.unwrap(),
        Vec::<String>::new()
    );
    let down = Node {
        state: NodeState::Down,
        ..worker.clone()
    };
    assert_eq!(
        store.list_nodes().await.unwrap(),
        vec![beaten.clone(), down]
    );
    assert_eq!(
        store
            .job(a, "job_on_w")
            .await
            .unwrap()
            .unwrap()
            .lease_expires_at,
        Some(0)
    );
    assert_eq!(
        store
            .job(a, "job_on_s")
            .await
            .unwrap()
            .unwrap()
            .lease_expires_at,
        Some(T + 200 + LEASE)
    );
    assert!(
        !store
            .node_heartbeat("node_w", T + 300, 1, "up")
            .await
            .unwrap()
    );
    assert_eq!(store.reclaim_expired(T + 300).await.unwrap(), 1);
    let back = store.job(a, "job_on_w").await.unwrap().unwrap();
    assert_eq!(
        (back.state.as_str(), back.lease_owner.as_deref()),
        ("queued", None)
    );

    // Registering again brings it back.
    let returned = Node {
        heartbeat_at: T + 400,
        ..worker.clone()
    };
    store.register_node(&returned).await.unwrap();
    assert!(
        store
            .node_heartbeat("node_w", T + 500, 0, "up")
            .await
            .unwrap()
    );
    let listed = store.list_nodes().await.unwrap();
    assert_eq!(
        (
            listed[1].id.as_str(),
            listed[1].state.as_str(),
            listed[1].heartbeat_at
        ),
        ("node_w", "up", T + 500)
    );

    assert_eq!(
        ids(&store.claim("node_w", T + 600, LEASE, 5).await.unwrap()),
        vec!["job_on_w"]
    );
    finish(store, "node_w", &["job_on_w"], "succeeded", T + 700).await;
    finish(store, "node_s", &["job_on_s"], "succeeded", T + 700).await;

    // A node marked down runs nothing, whatever it reported last.
    assert!(
        store
            .node_heartbeat("node_w", T + 800, 4, "up")
            .await
            .unwrap()
    );
    assert_eq!(
        store.mark_silent_nodes_down(T + 750).await.unwrap(),
        vec!["node_s"]
    );
    let listed = store.list_nodes().await.unwrap();
    assert_eq!(
        (
            listed[0].id.as_str(),
            listed[0].state.as_str(),
            listed[0].running
        ),
        ("node_s", "down", 0)
    );
    // Down nodes are forgotten once silent past the cutoff; up nodes stay,
    // however old their heartbeat.
    assert_eq!(store.prune_nodes(T + 50).await.unwrap(), 0);
    assert_eq!(store.prune_nodes(T + 900).await.unwrap(), 1);
    let listed = store.list_nodes().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|n| (n.id.as_str(), n.running))
            .collect::<Vec<_>>(),
        vec![("node_w", 4)]
    );
    // The readiness probe is a write, repeatable.
    store.probe_write("node_w", T).await.unwrap();
    store.probe_write("node_w", T + 1).await.unwrap();
}

fn capped(id: &str, tenant: &str, run_at: i64, key: &str, cap: i64) -> NewJob {
    NewJob {
        script_key: Some(key.into()),
        script_cap: Some(cap),
        ..new_job(id, tenant, 1, run_at, 3, None)
    }
}

/// Batched enqueues, and concurrency caps per script key and per tenant,
/// counted over every node's running jobs.
async fn caps(store: &dyn Store) {
    let a = store.create_tenant("caps-a").await.unwrap().id;
    let b = store.create_tenant("caps-b").await.unwrap().id;
    let far = T + 1_000_000_000;
    let batch = vec![
        capped("cap_s1_1", &a, T, "s1", 2),
        capped("cap_s1_2", &a, T + 1, "s1", 2),
        capped("cap_s1_3", &a, T + 2, "s1", 2),
        capped("cap_s1_4", &a, T + 3, "s1", 2),
        new_job("cap_s2_1", &a, 1, T + 4, 3, None),
        new_job("cap_dup_1", &a, 1, far, 3, Some("same")),
        new_job("cap_dup_2", &a, 1, far, 3, Some("same")),
    ];
    let done = store.enqueue_many(&batch).await.unwrap();
    assert_eq!(
        done.iter()
            .map(|(j, new)| (j.id.as_str(), *new))
            .collect::<Vec<_>>(),
        vec![
            ("cap_s1_1", true),
            ("cap_s1_2", true),
            ("cap_s1_3", true),
            ("cap_s1_4", true),
            ("cap_s2_1", true),
            ("cap_dup_1", true),
            ("cap_dup_1", false),
        ]
    );
    assert_eq!(
        (done[0].0.script_key.as_deref(), done[0].0.script_cap),
        (Some("s1"), Some(2))
    );
    assert_eq!(store.job(&a, "cap_dup_2").await.unwrap(), None);
    // A batch with an unknown tenant fails whole: nothing of it is queued.
    assert!(matches!(
        store
            .enqueue_many(&[
                new_job("cap_ok", &a, 1, far, 3, None),
                new_job("cap_bad", "tnt_missing", 1, far, 3, None),
            ])
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.job(&a, "cap_ok").await.unwrap(), None);

    // Script s1 runs two at a time; s2 is not held up behind it.
    assert_eq!(
        ids(&store.claim("n1", T + 10, LEASE, 10).await.unwrap()),
        vec!["cap_s1_1", "cap_s1_2", "cap_s2_1"]
    );
    assert_eq!(store.claim("n2", T + 10, LEASE, 10).await.unwrap(), []);
    finish(store, "n1", &["cap_s1_1"], "succeeded", T + 20).await;
    assert_eq!(
        ids(&store.claim("n2", T + 20, LEASE, 10).await.unwrap()),
        vec!["cap_s1_3"]
    );
    finish(store, "n1", &["cap_s1_2"], "succeeded", T + 30).await;

    // Tenant cap 3: `a` runs cap_s2_1 and cap_s1_3, so one more of its
    // jobs; `b` gets three. Turns count running jobs: `a`'s next job is its
    // third, after `b`'s first and second.
    for i in 1..=3 {
        enqueue(
            store,
            new_job(&format!("cap_b_{i}"), &b, 1, T + 4 + i, 3, None),
        )
        .await;
    }
    enqueue(store, new_job("cap_a_5", &a, 1, T + 5, 3, None)).await;
    assert_eq!(
        ids(&store
            .claim_capped("n1", T + 40, LEASE, 10, Some(3))
            .await
            .unwrap()),
        vec!["cap_b_1", "cap_b_2", "cap_s1_4", "cap_b_3"]
    );
    enqueue(store, new_job("cap_b_4", &b, 1, T + 8, 3, None)).await;
    assert_eq!(
        store
            .claim_capped("n2", T + 40, LEASE, 10, Some(3))
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        ids(&store
            .claim_capped("n2", T + 40, LEASE, 10, Some(4))
            .await
            .unwrap()),
        vec!["cap_a_5", "cap_b_4"]
    );
    finish(
        store,
        "n1",
        &["cap_s2_1", "cap_s1_4", "cap_b_1", "cap_b_2", "cap_b_3"],
        "succeeded",
        T + 50,
    )
    .await;
    finish(
        store,
        "n2",
        &["cap_s1_3", "cap_a_5", "cap_b_4"],
        "succeeded",
        T + 50,
    )
    .await;
    let dup = store
        .request_cancel(&a, "cap_dup_1", T + 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dup.state, JobState::Cancelled);
}

/// Four nodes racing to claim a tenant's 40 jobs under a cap of 7 take
/// exactly 7 between them.
async fn capped_race(shared: &Arc<dyn Store>) {
    let tenant = shared.create_tenant("caps-race").await.unwrap().id;
    let batch: Vec<NewJob> = (0..40)
        .map(|i| new_job(&format!("cap_race_{i:02}"), &tenant, 1, T + i, 3, None))
        .collect();
    shared.enqueue_many(&batch).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let store = Arc::clone(shared);
        tasks.push(tokio::spawn(async move {
            let node = format!("capped-{n}");
            let mut mine = 0;
            for _ in 0..5 {
                mine += store
                    .claim_capped(&node, T + 1_000, LEASE, 3, Some(7))
                    .await
                    .unwrap()
                    .len();
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 7);
    assert_eq!(
        shared.job_counts(Some(&tenant)).await.unwrap(),
        vec![("queued".to_owned(), 33), ("running".to_owned(), 7)]
    );
    for i in 0..40 {
        shared
            .request_cancel(&tenant, &format!("cap_race_{i:02}"), T + 2_000)
            .await
            .unwrap();
    }
}

/// Four nodes claiming at once, three jobs at a time: every job is taken
/// exactly once.
async fn claim_race(shared: &Arc<dyn Store>) {
    let tenant = shared.create_tenant("jobs-race").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..200 {
        let id = format!("job_race_{i:03}");
        enqueue(&**shared, new_job(&id, &tenant.id, i % 3, T + i, 3, None)).await;
        expected.push(id);
    }
    let mut tasks = Vec::new();
    for n in 0..4 {
        let store = Arc::clone(shared);
        tasks.push(tokio::spawn(async move {
            let node = format!("racer-{n}");
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim(&node, T + 1_000, LEASE, 3).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                assert!(claimed.len() <= 3);
                for j in claimed {
                    assert_eq!(j.lease_owner.as_deref(), Some(node.as_str()));
                    assert_eq!(j.attempts, 1);
                    mine.push(j.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, expected, "every job claimed exactly once");
    assert_eq!(
        shared.job_counts(Some(&tenant.id)).await.unwrap(),
        vec![("running".to_owned(), 200)]
    );
}

// One test per (backend, section).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations() {
    migrations(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations() {
    if let Some(db) = postgres("migrations").await {
        migrations(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tenants_and_tokens() {
    tenants_and_tokens(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tenants_and_tokens() {
    if let Some(db) = postgres("tenants_and_tokens").await {
        tenants_and_tokens(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_users() {
    users(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_users() {
    if let Some(db) = postgres("users").await {
        users(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_custom_roles() {
    custom_roles(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_custom_roles() {
    if let Some(db) = postgres("custom_roles").await {
        custom_roles(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_undecodable_role() {
    undecodable_role(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_undecodable_role() {
    if let Some(db) = postgres("undecodable_role").await {
        undecodable_role(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_chain() {
    audit_chain(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_chain() {
    if let Some(db) = postgres("audit_chain").await {
        audit_chain(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tenant_settings() {
    tenant_settings(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tenant_settings() {
    if let Some(db) = postgres("tenant_settings").await {
        tenant_settings(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_scripts() {
    scripts(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scripts() {
    if let Some(db) = postgres("scripts").await {
        scripts(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_runs() {
    runs(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_runs() {
    if let Some(db) = postgres("runs").await {
        runs(db).await;
    }
}

/// A batch larger than one statement's rows, with a run that starts and
/// ends in the same batch: every run is written, the later row wins.
async fn run_batches(db: Db) {
    let store = &*db.store;
    let (acme, _) = &two_tenants(store).await;
    let mut batch: Vec<Run> = (0..150)
        .map(|i| {
            queued_run(
                &acme.id,
                &format!("run_{i:03}"),
                "bulk",
                10_000 + i64::from(i),
            )
        })
        .collect();
    let ended = Run {
        status: RunStatus::Succeeded,
        result: Some("7".into()),
        finished_at: Some(20_000),
        ..batch[70].clone()
    };
    batch.push(ended.clone());
    store.put_runs(&batch).await.unwrap();
    for run in &batch[..150] {
        let expected = if run.id == ended.id { &ended } else { run };
        assert_eq!(
            store.run(&acme.id, &run.id).await.unwrap().as_ref(),
            Some(expected),
            "run {}",
            run.id
        );
    }
    let all = store
        .list_runs(&RunQuery {
            tenant_id: acme.id.clone(),
            script_name: None,
            status: None,
            trigger: None,
            since: None,
            until: None,
            before: None,
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 150);
    assert_eq!(all[0].id, "run_149");
    assert_eq!(all[149].id, "run_000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_run_batches() {
    run_batches(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_run_batches() {
    if let Some(db) = postgres("run_batches").await {
        run_batches(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_embed_codes() {
    embed_codes(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_embed_codes() {
    if let Some(db) = postgres("embed_codes").await {
        embed_codes(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_switches() {
    kill_switches(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_switches() {
    if let Some(db) = postgres("kill_switches").await {
        kill_switches(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_jobs() {
    jobs(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_jobs() {
    if let Some(db) = postgres("jobs").await {
        jobs(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_job_caps() {
    job_caps(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_job_caps() {
    if let Some(db) = postgres("job_caps").await {
        job_caps(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schedules() {
    schedules(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schedules() {
    if let Some(db) = postgres("schedules").await {
        schedules(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events() {
    events(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events() {
    if let Some(db) = postgres("events").await {
        events(db).await;
    }
}

#[tokio::test]
async fn unknown_urls_are_refused() {
    assert!(matches!(
        connect("mysql://x").await,
        Err(StoreError::BadUrl(_))
    ));
}

fn schedule(tenant: &Tenant, name: &str, next_fire_at: i64, enabled: bool) -> Schedule {
    Schedule {
        id: new_id("sch"),
        tenant_id: tenant.id.clone(),
        name: name.into(),
        script_name: format!("jobs/{name}"),
        cron: "*/5 * * * * *".into(),
        timezone: "Europe/Berlin".into(),
        input: r#"{"n":1}"#.into(),
        missed: Missed::Skip,
        enabled,
        next_fire_at,
        last_fired_at: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

async fn schedules(db: Db) {
    let shared = &db.store;
    let store = shared.as_ref();
    let (acme, other) = &two_tenants(store).await;
    const T: i64 = 1_700_000_000_000;
    // Create, read back exactly.
    let nightly = schedule(acme, "nightly", T + 5_000, true);
    assert_eq!(store.put_schedule(&nightly).await.unwrap(), nightly);
    assert_eq!(
        store.schedule(&acme.id, "nightly").await.unwrap(),
        Some(nightly.clone())
    );
    // Names are per tenant; another tenant sees none of acme's.
    assert_eq!(store.schedule(&other.id, "nightly").await.unwrap(), None);
    let theirs = schedule(other, "nightly", T + 1_000, true);
    assert_eq!(store.put_schedule(&theirs).await.unwrap(), theirs);
    let hourly = schedule(acme, "hourly", T + 2_000, true);
    store.put_schedule(&hourly).await.unwrap();
    let off = schedule(acme, "off", T, false);
    store.put_schedule(&off).await.unwrap();
    let later = schedule(acme, "later", T + 60_000, true);
    store.put_schedule(&later).await.unwrap();
    let names = |list: Vec<Schedule>| list.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_schedules(&acme.id).await.unwrap()),
        ["hourly", "later", "nightly", "off"]
    );
    assert_eq!(
        store.list_schedules(&other.id).await.unwrap(),
        vec![theirs.clone()]
    );
    // An unknown tenant is refused.
    let stray = Schedule {
        tenant_id: "tnt_missing".into(),
        ..schedule(acme, "stray", T, true)
    };
    assert!(matches!(
        store.put_schedule(&stray).await,
        Err(StoreError::NotFound(_))
    ));

    // Due: enabled, at or before now, most overdue first, every tenant.
    let due = |now: i64, limit: i64| async move {
        store
            .due_schedules(now, limit)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(due(T - 1, 100).await, Vec::<String>::new());
    assert_eq!(
        due(T + 5_000, 100).await,
        [theirs.id.as_str(), hourly.id.as_str(), nightly.id.as_str()]
    );
    assert_eq!(
        due(T + 5_000, 2).await,
        [theirs.id.as_str(), hourly.id.as_str()]
    );
    assert_eq!(
        due(T + 4_999, 100).await,
        [theirs.id.as_str(), hourly.id.as_str()]
    );

    // Advancing is a compare-and-set on the occurrence: the second advance
    // of the same occurrence changes nothing.
    assert!(
        store
            .advance_schedule(&nightly.id, T + 5_000, T + 10_000, Some(T + 5_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_schedule(&nightly.id, T + 5_000, T + 10_000, Some(T + 5_000))
            .await
            .unwrap()
    );
    let got = store.schedule(&acme.id, "nightly").await.unwrap().unwrap();
    assert_eq!(
        (got.next_fire_at, got.last_fired_at, got.updated_at),
        (T + 10_000, Some(T + 5_000), 1_000)
    );
    // Skipping an occurrence (nothing fired) keeps the last firing.
    assert!(
        store
            .advance_schedule(&nightly.id, T + 10_000, T + 15_000, None)
            .await
            .unwrap()
    );
    let got = store.schedule(&acme.id, "nightly").await.unwrap().unwrap();
    assert_eq!(
        (got.next_fire_at, got.last_fired_at),
        (T + 15_000, Some(T + 5_000))
    );
    assert!(
        !store
            .advance_schedule("sch_missing", T, T + 1, None)
            .await
            .unwrap()
    );
    // Nodes racing for one occurrence: exactly one advances it.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(shared);
        let id = hourly.id.clone();
        racers.push(tokio::spawn(async move {
            s.advance_schedule(&id, T + 2_000, T + 7_000, Some(T + 2_000))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(due(T + 5_000, 100).await, [theirs.id.as_str()]);

    // Replacing keeps the id, the creation time and the last firing, and
    // changes everything else; an advance of the old occurrence then fails.
    let replaced = Schedule {
        id: new_id("sch"),
        script_name: "jobs/other".into(),
        cron: "0 0 * * *".into(),
        timezone: "UTC".into(),
        input: "null".into(),
        missed: Missed::CatchUp,
        enabled: false,
        next_fire_at: T + 86_400_000,
        created_at: 9_000,
        updated_at: 9_000,
        ..nightly.clone()
    };
    let stored = store.put_schedule(&replaced).await.unwrap();
    assert_eq!(
        stored,
        Schedule {
            id: nightly.id.clone(),
            created_at: 1_000,
            last_fired_at: Some(T + 5_000),
            ..replaced.clone()
        }
    );
    assert!(
        !store
            .advance_schedule(&nightly.id, T + 15_000, T + 20_000, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.schedule(&acme.id, "nightly").await.unwrap(),
        Some(stored)
    );
    // Disabled schedules are never due.
    assert_eq!(
        due(T + 100_000_000, 100).await,
        [theirs.id.as_str(), hourly.id.as_str(), later.id.as_str()]
    );

    // Deleting is per tenant.
    assert!(!store.delete_schedule(&other.id, "later").await.unwrap());
    assert!(store.delete_schedule(&acme.id, "later").await.unwrap());
    assert!(!store.delete_schedule(&acme.id, "later").await.unwrap());
    assert_eq!(store.schedule(&acme.id, "later").await.unwrap(), None);
    assert_eq!(
        names(store.list_schedules(&acme.id).await.unwrap()),
        ["hourly", "nightly", "off"]
    );
    assert_eq!(
        due(T + 100_000_000, 100).await,
        [theirs.id.as_str(), hourly.id.as_str()]
    );
}

fn workflow_step(run_id: &str, tenant: &str, step_id: &str, position: i64) -> WorkflowStep {
    WorkflowStep {
        run_id: run_id.into(),
        tenant_id: tenant.into(),
        step_id: step_id.into(),
        position,
        kind: "approval".into(),
        status: StepStatus::Waiting,
        attempts: 1,
        output: r#"{"message":"ship?"}"#.into(),
        exit_code: None,
        started_at: Some(10),
        finished_at: None,
        deadline_at: Some(1_000_000),
        decided_by: None,
    }
}

fn decision<'a>(run_id: &'a str, tenant: &'a str, status: StepStatus) -> StepDecision<'a> {
    StepDecision {
        tenant_id: tenant,
        run_id,
        step_id: "gate",
        status,
        output: r#"{"decision":"approve"}"#,
        decided_by: Some("usr_1"),
        at: 500,
    }
}

/// Workflow steps: rows in the workflow's order, replaced in place, never
/// seen by another tenant; an approval decided once by compare-and-set,
/// waking its suspended job; suspending gives the attempt back.
async fn workflow_steps(db: Db) {
    let store = db.store.as_ref();
    let (acme, other) = two_tenants(store).await;
    let far = now_ms() + 3_600_000;
    let new_job = NewJob {
        id: new_id("run"),
        tenant_id: acme.id.clone(),
        kind: "workflow".into(),
        payload: "{}".into(),
        priority: 1,
        run_at: 0,
        max_attempts: 3,
        timeout_ms: 1000,
        idempotency_key: None,
        script_key: None,
        script_cap: None,
    };
    let run = enqueue(store, new_job).await;
    let claimed = store.claim("n1", now_ms(), 30_000, 10).await.unwrap();
    assert_eq!(ids(&claimed), [run.id.as_str()]);
    assert_eq!(claimed[0].attempts, 1);

    let mut build = workflow_step(&run.id, &acme.id, "build", 0);
    build.kind = "script".into();
    build.status = StepStatus::Running;
    assert!(store.put_step(&build, "n1").await.unwrap());
    let gate = workflow_step(&run.id, &acme.id, "gate", 1);
    assert!(store.put_step(&gate, "n1").await.unwrap());
    build.status = StepStatus::Succeeded;
    build.output = "42".into();
    build.finished_at = Some(20);
    // Only the node holding the run's job writes its steps.
    assert!(!store.put_step(&build, "n2").await.unwrap());
    let other_row = WorkflowStep {
        tenant_id: other.id.clone(),
        ..build.clone()
    };
    assert!(!store.put_step(&other_row, "n1").await.unwrap());
    assert!(store.put_step(&build, "n1").await.unwrap());
    let steps = store.workflow_steps(&acme.id, &run.id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0], build);
    assert_eq!(steps[1].status, StepStatus::Waiting);
    assert!(
        store
            .workflow_steps(&other.id, &run.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Suspending: queued until the deadline, the attempt given back.
    let waiting = vec!["gate".to_owned()];
    assert!(
        store
            .suspend_job(&run.id, "n1", far, &waiting, now_ms())
            .await
            .unwrap()
    );
    let j = job(store, &acme, &run.id).await;
    assert_eq!((j.state, j.attempts, j.run_at), (JobState::Queued, 0, far));
    // Only the node holding it suspends it.
    assert!(
        !store
            .suspend_job(&run.id, "n1", far, &waiting, now_ms())
            .await
            .unwrap()
    );

    // Another tenant cannot decide it; the tenant decides it once.
    let decide = |tenant, status| decision(&run.id, tenant, status);
    assert!(
        !store
            .decide_step(&decide(&other.id, StepStatus::Succeeded))
            .await
            .unwrap()
    );
    assert!(
        store
            .decide_step(&decide(&acme.id, StepStatus::Succeeded))
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_step(&decide(&acme.id, StepStatus::Rejected))
            .await
            .unwrap()
    );
    let gate = &store.workflow_steps(&acme.id, &run.id).await.unwrap()[1];
    assert_eq!(gate.status, StepStatus::Succeeded);
    assert_eq!(
        (gate.decided_by.as_deref(), gate.finished_at),
        (Some("usr_1"), Some(500))
    );
    // The decision made the job due.
    assert_eq!(job(store, &acme, &run.id).await.run_at, 500);

    // A decision that came before the job was suspended makes it due at
    // once instead of at the deadline.
    let claimed = store.claim("n2", now_ms(), 30_000, 10).await.unwrap();
    assert_eq!(ids(&claimed), [run.id.as_str()]);
    let before = now_ms();
    assert!(
        store
            .suspend_job(&run.id, "n2", far, &waiting, before)
            .await
            .unwrap()
    );
    assert_eq!(job(store, &acme, &run.id).await.run_at, before);

    // A name keeps the kind of its first version.
    let script = new_version(&acme.id, "ops/deploy", "h1");
    created(store.save_version(&script, &bump).await.unwrap());
    let workflow = NewVersion {
        language: Language::Workflow,
        kind: citadel_domain::ScriptKind::Workflow,
        hash: "h2".into(),
        ..new_version(&acme.id, "ops/deploy", "h2")
    };
    match store.save_version(&workflow, &bump).await.unwrap() {
        SaveOutcome::OtherKind(kind) => assert_eq!(kind, citadel_domain::ScriptKind::Script),
        other => panic!("expected OtherKind, got {other:?}"),
    }
    let flow = NewVersion {
        name: "ops/flow".into(),
        ..workflow
    };
    created(store.save_version(&flow, &bump).await.unwrap());
    let kinds: Vec<_> = store
        .list_scripts(&acme.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ops/deploy".to_owned(), citadel_domain::ScriptKind::Script),
            ("ops/flow".to_owned(), citadel_domain::ScriptKind::Workflow),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_workflow_steps() {
    workflow_steps(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_workflow_steps() {
    if let Some(db) = postgres("workflow_steps").await {
        workflow_steps(db).await;
    }
}

/// Plugins: versions stored once per content, a switch that moves the
/// row, the entry's live version and the schedules together (and refuses
/// a version the entry lacks without changing anything), and an uninstall
/// that takes its rows, schedules, entry and key-value entries with it.
async fn plugins(db: Db) {
    use citadel_store::{KvWrite, Plugin, PluginSwitch, PluginVersion, Schedule};
    let store = db.store.as_ref();
    let (acme, other) = two_tenants(store).await;
    let version = |v: &str, sha: &str| PluginVersion {
        tenant_id: acme.id.clone(),
        slug: "greeter".into(),
        version: v.into(),
        manifest_file: "citadel-plugin.json".into(),
        manifest: format!("{{\"version\": \"{v}\"}}"),
        sha256: sha.into(),
        installed_by: "tok_owner".into(),
        created_at: 1,
    };
    store
        .put_plugin_version(&version("1.0.0", "aa"), b"bundle-1")
        .await
        .unwrap();
    // The same content again is a no-op; other content is a conflict.
    store
        .put_plugin_version(&version("1.0.0", "aa"), b"bundle-1")
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_plugin_version(&version("1.0.0", "bb"), b"other")
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .put_plugin_version(&version("1.1.0", "cc"), b"bundle-2")
        .await
        .unwrap();
    assert_eq!(
        store
            .plugin_bundle(&acme.id, "greeter", "1.1.0")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"bundle-2"[..])
    );
    assert!(
        store
            .plugin_bundle(&other.id, "greeter", "1.1.0")
            .await
            .unwrap()
            .is_none()
    );
    let listed: Vec<String> = store
        .plugin_versions(&acme.id, "greeter")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, ["1.0.0", "1.1.0"]);

    // The handler module's entry, with both versions.
    let entry = |hash: &str| NewVersion {
        name: "plugins/greeter".into(),
        kind: citadel_domain::ScriptKind::Plugin,
        state: VersionState::Approved,
        ..new_version(&acme.id, "plugins/greeter", hash)
    };
    created(store.save_version(&entry("p1"), &bump).await.unwrap());
    created(store.save_version(&entry("p2"), &bump).await.unwrap());
    let script = store
        .script(&acme.id, "plugins/greeter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(script.kind, citadel_domain::ScriptKind::Plugin);
    let schedule = |name: &str| Schedule {
        id: new_id("sch"),
        tenant_id: acme.id.clone(),
        name: name.into(),
        script_name: "plugins/greeter".into(),
        cron: "0 6 * * *".into(),
        timezone: "UTC".into(),
        input: "{}".into(),
        missed: citadel_domain::Missed::Skip,
        enabled: true,
        next_fire_at: 100,
        last_fired_at: None,
        created_at: 1,
        updated_at: 1,
    };
    let mut plugin = Plugin {
        tenant_id: acme.id.clone(),
        slug: "greeter".into(),
        script_id: script.id.clone(),
        version: "1.0.0".into(),
        enabled: false,
        config: "{}".into(),
        hooks: "[]".into(),
        created_at: 1,
        updated_at: 1,
    };
    let first = [schedule("plugins/greeter/tick")];
    store
        .switch_plugin(&PluginSwitch {
            plugin: &plugin,
            schedules: &first,
            create: true,
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .switch_plugin(&PluginSwitch {
                plugin: &plugin,
                schedules: &first,
                create: true
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    let (_, live) = store
        .live_version(&acme.id, "plugins/greeter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.version, "1.0.0");
    // A tenant's own schedule outside the plugin's folder is left alone.
    store.put_schedule(&schedule("mine")).await.unwrap();

    // Switching to 1.0.1 replaces the schedules and the live version.
    plugin.version = "1.0.1".into();
    plugin.enabled = true;
    plugin.hooks = r#"["order.*"]"#.into();
    let second = [schedule("plugins/greeter/tock")];
    store
        .switch_plugin(&PluginSwitch {
            plugin: &plugin,
            schedules: &second,
            create: false,
        })
        .await
        .unwrap();
    let (_, live) = store
        .live_version(&acme.id, "plugins/greeter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.version, "1.0.1");
    let names: Vec<String> = store
        .list_schedules(&acme.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["mine", "plugins/greeter/tock"]);
    assert_eq!(
        store.plugin(&acme.id, "greeter").await.unwrap().unwrap(),
        plugin
    );
    assert!(store.plugin(&other.id, "greeter").await.unwrap().is_none());
    assert!(store.plugins(&other.id).await.unwrap().is_empty());

    // A version the entry does not have changes nothing.
    let mut missing = plugin.clone();
    missing.version = "9.9.9".into();
    missing.enabled = false;
    assert!(matches!(
        store
            .switch_plugin(&PluginSwitch {
                plugin: &missing,
                schedules: &[],
                create: false
            })
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.plugin(&acme.id, "greeter").await.unwrap().unwrap(),
        plugin
    );
    assert_eq!(store.list_schedules(&acme.id).await.unwrap().len(), 2);

    // Uninstalling takes its key-value entries, not the tenant's others.
    let kv = |key: &'static str| KvWrite {
        tenant_id: &acme.id,
        key,
        value: "\"v\"",
        expires_at: None,
        if_version: None,
        quota_bytes: 1 << 20,
        now: 1,
    };
    for key in [
        "plugin:greeter:a",
        "plugin:greeter:b",
        "plugin:greeterx:c",
        "mine",
    ] {
        store.kv_set(&kv(key)).await.unwrap();
    }
    let before = store.kv_usage(&acme.id).await.unwrap();
    assert!(
        !store
            .uninstall_plugin(&other.id, "greeter", "plugin:greeter:")
            .await
            .unwrap()
    );
    assert!(
        store
            .uninstall_plugin(&acme.id, "greeter", "plugin:greeter:")
            .await
            .unwrap()
    );
    assert!(
        !store
            .uninstall_plugin(&acme.id, "greeter", "plugin:greeter:")
            .await
            .unwrap()
    );
    assert!(store.plugin(&acme.id, "greeter").await.unwrap().is_none());
    assert!(
        store
            .plugin_versions(&acme.id, "greeter")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .script(&acme.id, "plugins/greeter")
            .await
            .unwrap()
            .is_none()
    );
    let names: Vec<String> = store
        .list_schedules(&acme.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["mine"]);
    let keys: Vec<String> = store
        .kv_list(&acme.id, "", None, 100, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["mine", "plugin:greeterx:c"]);
    let freed = ("plugin:greeter:a".len() + 3) as i64 * 2;
    assert_eq!(store.kv_usage(&acme.id).await.unwrap(), before - freed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_plugins() {
    plugins(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plugins() {
    if let Some(db) = postgres("plugins").await {
        plugins(db).await;
    }
}

/// Webhook endpoints keep a version per change; deliveries and attempts
/// are the tenant's own; the failure clock starts once and a success
/// clears it; deleting an endpoint takes its log with it.
async fn webhooks(db: Db) {
    use citadel_domain::DeliveryState;
    use citadel_store::{
        EndpointSave, FinishedDelivery, FinishedJob, WebhookAttempt, WebhookDelivery,
    };
    let store = db.store.as_ref();
    let (acme, other) = two_tenants(store).await;
    let saved = |s: EndpointSave| match s {
        EndpointSave::Created(e) => (e, true),
        EndpointSave::Unchanged(e) => (e, false),
    };
    let (e, created) = saved(
        store
            .save_endpoint(&acme.id, "slack", "on: [a]", None, "tok_1", 10)
            .await
            .unwrap(),
    );
    assert!(created);
    assert_eq!((e.version, e.enabled, e.created_at), (1, true, 10));
    let (e, created) = saved(
        store
            .save_endpoint(&acme.id, "slack", "on: [a]", None, "tok_1", 11)
            .await
            .unwrap(),
    );
    assert!(!created);
    assert_eq!(e.version, 1);
    let (e, created) = saved(
        store
            .save_endpoint(
                &acme.id,
                "slack",
                "on: [a]",
                Some("export function transform(e) { return e; }"),
                "tok_2",
                12,
            )
            .await
            .unwrap(),
    );
    assert!(created);
    assert_eq!((e.version, e.created_at, e.updated_at), (2, 10, 12));
    let versions = store.endpoint_versions(&acme.id, "slack").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(store.endpoint(&other.id, "slack").await.unwrap().is_none());
    assert!(store.endpoints(&other.id).await.unwrap().is_empty());

    // The failure clock.
    assert_eq!(
        store
            .note_endpoint_outcome(&acme.id, "slack", false, 100)
            .await
            .unwrap(),
        Some(100)
    );
    assert_eq!(
        store
            .note_endpoint_outcome(&acme.id, "slack", false, 200)
            .await
            .unwrap(),
        Some(100)
    );
    assert_eq!(
        store
            .note_endpoint_outcome(&acme.id, "slack", true, 300)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .note_endpoint_outcome(&acme.id, "nope", false, 300)
            .await
            .unwrap(),
        None
    );
    store
        .note_endpoint_outcome(&acme.id, "slack", false, 400)
        .await
        .unwrap();
    assert!(
        store
            .set_endpoint_enabled(&acme.id, "slack", false, Some("410"), 500)
            .await
            .unwrap()
    );
    let e = store.endpoint(&acme.id, "slack").await.unwrap().unwrap();
    assert_eq!(
        (e.enabled, e.disabled_reason.as_deref(), e.failing_since),
        (false, Some("410"), Some(400))
    );
    assert!(
        store
            .set_endpoint_enabled(&acme.id, "slack", true, Some("ignored"), 600)
            .await
            .unwrap()
    );
    let e = store.endpoint(&acme.id, "slack").await.unwrap().unwrap();
    assert_eq!(
        (e.enabled, e.disabled_reason, e.failing_since),
        (true, None, None)
    );
    assert!(
        !store
            .set_endpoint_enabled(&other.id, "slack", false, None, 600)
            .await
            .unwrap()
    );

    // Deliveries and attempts.
    let delivery = |id: &str, at: i64| WebhookDelivery {
        id: id.into(),
        tenant_id: acme.id.clone(),
        endpoint: "slack".into(),
        event_id: "evt_1".into(),
        event_type: "a".into(),
        payload: "{}".into(),
        state: DeliveryState::Pending,
        attempts: 0,
        last_status: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    };
    store
        .insert_deliveries(&[delivery("msg_1", 1), delivery("msg_2", 2)])
        .await
        .unwrap();
    // All or nothing: a batch with a taken id stores none of it.
    assert!(matches!(
        store
            .insert_deliveries(&[delivery("msg_3", 3), delivery("msg_1", 3)])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.delivery(&acme.id, "msg_3").await.unwrap().is_none());
    let attempt = |n: i64, status: Option<i64>| WebhookAttempt {
        delivery_id: "msg_1".into(),
        tenant_id: acme.id.clone(),
        attempt: n,
        at: 10 + n,
        status,
        latency_ms: 5,
        response: "r".into(),
        error: status.is_none().then(|| "timeout".to_owned()),
    };
    store
        .record_attempts(&[(attempt(1, None), DeliveryState::Pending)])
        .await
        .unwrap();
    store
        .record_attempts(&[(attempt(2, Some(200)), DeliveryState::Delivered)])
        .await
        .unwrap();
    let d = store.delivery(&acme.id, "msg_1").await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.attempts, d.last_status, d.last_error),
        (DeliveryState::Delivered, 2, Some(200), None)
    );
    assert!(store.delivery(&other.id, "msg_1").await.unwrap().is_none());
    let attempts = store.attempts(&acme.id, "msg_1").await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [None, Some(200)]
    );
    assert!(store.attempts(&other.id, "msg_1").await.unwrap().is_empty());
    let ids: Vec<String> = store
        .deliveries_of(&acme.id, "slack", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["msg_2", "msg_1"]);
    store
        .fail_delivery(&acme.id, "msg_2", "endpoint disabled", 9)
        .await
        .unwrap();
    let d = store.delivery(&acme.id, "msg_2").await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.last_error.as_deref()),
        (DeliveryState::Failed, Some("endpoint disabled"))
    );

    // A finished delivery: its attempt, state, job end and audit entry in
    // one transaction; a job the node no longer holds answers false.
    store
        .insert_deliveries(&[delivery("msg_4", 4), delivery("msg_5", 5)])
        .await
        .unwrap();
    for id in ["msg_4", "msg_5"] {
        let mut j = new_job(id, &acme.id, 0, 1, 3, None);
        j.kind = "webhook".into();
        enqueue(store, j).await;
    }
    let claimed = store.claim("n1", 10, 60_000, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["msg_4", "msg_5"]
    );
    assert!(
        store
            .finish_job("msg_5", "n1", JobState::Cancelled, None, 11)
            .await
            .unwrap()
    );
    let before = match store.verify_audit().await.unwrap() {
        AuditVerdict::Intact { entries } => entries,
        broken => panic!("{broken:?}"),
    };
    let finished = |id: &str, state: DeliveryState, status: Option<i64>| FinishedDelivery {
        attempt: WebhookAttempt {
            delivery_id: id.into(),
            status,
            ..attempt(1, status)
        },
        state,
        job: FinishedJob {
            id: id.into(),
            state: if status.is_some() {
                JobState::Succeeded
            } else {
                JobState::Failed
            },
            error: status.is_none().then(|| "timeout".to_owned()),
        },
        audit: NewAuditEntry {
            at: 20,
            tenant_id: Some(acme.id.clone()),
            principal: None,
            action: "webhook.delivered".into(),
            target: "webhook:slack".into(),
            outcome: "ok".into(),
            request_id: id.into(),
            details: "{}".into(),
        },
    };
    let held = store
        .finish_deliveries(
            "n1",
            &[
                finished("msg_4", DeliveryState::Delivered, Some(204)),
                finished("msg_5", DeliveryState::Failed, None),
            ],
            21,
        )
        .await
        .unwrap();
    assert_eq!(held, [true, false]);
    let d = store.delivery(&acme.id, "msg_4").await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.attempts, d.last_status),
        (DeliveryState::Delivered, 1, Some(204))
    );
    let d = store.delivery(&acme.id, "msg_5").await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.last_error.as_deref()),
        (DeliveryState::Failed, Some("timeout"))
    );
    let j = job(store, &acme, "msg_4").await;
    assert_eq!((j.state, j.finished_at), (JobState::Succeeded, Some(21)));
    assert_eq!(job(store, &acme, "msg_5").await.state, JobState::Cancelled);
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact {
            entries: before + 2
        }
    );
    // All or nothing: a delivery that is not there writes none of the batch.
    assert!(matches!(
        store
            .finish_deliveries(
                "n1",
                &[
                    finished("msg_4", DeliveryState::Delivered, Some(200)),
                    finished("msg_none", DeliveryState::Delivered, Some(200)),
                ],
                22,
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.attempts(&acme.id, "msg_4").await.unwrap().len(), 1);
    assert_eq!(
        store.verify_audit().await.unwrap(),
        AuditVerdict::Intact {
            entries: before + 2
        }
    );

    assert!(!store.delete_endpoint(&other.id, "slack").await.unwrap());
    assert!(store.delete_endpoint(&acme.id, "slack").await.unwrap());
    assert!(store.endpoint(&acme.id, "slack").await.unwrap().is_none());
    assert!(store.delivery(&acme.id, "msg_1").await.unwrap().is_none());
    assert!(store.attempts(&acme.id, "msg_1").await.unwrap().is_empty());
    assert!(
        store
            .endpoint_versions(&acme.id, "slack")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhooks() {
    webhooks(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks() {
    if let Some(db) = postgres("webhooks").await {
        webhooks(db).await;
    }
}
