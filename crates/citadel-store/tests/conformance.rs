//! One backend-agnostic suite, run against a temporary SQLite file always and
//! against a throwaway PostgreSQL cluster this test starts itself with
//! `initdb`/`pg_ctl` (skipped, saying so, only where no PostgreSQL binaries
//! exist).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use citadel_store::{
    AuditQuery, AuditVerdict, Backend, CustomRole, KillSwitch, NewAuditEntry, NewToken, NewUser,
    NewVersion, RoleBinding, Run, RunQuery, SaveOutcome, Store, StoreError, Tenant,
    VersionTransition, connect, new_id, now_ms,
};

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

async fn conformance(url: &str) {
    let store: Arc<dyn Store> = connect(url).await.expect("connects and migrates");
    store.ready().await.expect("ready");
    // Connecting again applies nothing twice.
    let again = connect(url).await.expect("reconnects");
    again.ready().await.unwrap();

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
        AuditVerdict::Intact { entries: 23 }
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
        AuditVerdict::Intact { entries: 23 }
    );
    tamper(url, "DELETE FROM audit WHERE seq = 5").await;
    match store.verify_audit().await.unwrap() {
        AuditVerdict::Broken { seq, .. } => assert_eq!(seq, 5),
        other => panic!("a deleted row went unnoticed: {other:?}"),
    }

    tenant_settings(&*store, &acme, &other).await;
    scripts(&*store, &acme, &other).await;
    runs(&*store, &acme, &other).await;
    kill_switches(&*store).await;
}

async fn tenant_settings(store: &dyn Store, acme: &Tenant, other: &Tenant) {
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
        language: "ts".into(),
        capabilities: r#"["http"]"#.into(),
        limits: r#"{"timeout_ms":500}"#.into(),
        diagnostics: "[]".into(),
        change_note: format!("note {hash}"),
        author: "usr_alice".into(),
        state: "draft".into(),
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
        SaveOutcome::Unchanged(v) => panic!("expected a new version, got unchanged {v:?}"),
    }
}

async fn scripts(store: &dyn Store, acme: &Tenant, other: &Tenant) {
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
            language: "ts".into(),
            capabilities: v1.capabilities.clone(),
            limits: v1.limits.clone(),
            diagnostics: "[]".into(),
            change_note: "note h1".into(),
            author: "usr_alice".into(),
            state: "draft".into(),
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
        state: "approved".into(),
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
        from: from.iter().map(|s| (*s).to_owned()).collect(),
        to: to.into(),
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
            state: "approved".into(),
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
        "rejected"
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
        status: "queued".into(),
        trigger: "api_async".into(),
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

async fn runs(store: &dyn Store, acme: &Tenant, other: &Tenant) {
    store.put_runs(&[]).await.unwrap();
    let queued = queued_run(&acme.id, "run_1", "billing/on-paid", 1_000);
    store.put_runs(std::slice::from_ref(&queued)).await.unwrap();
    assert_eq!(
        store.run(&acme.id, "run_1").await.unwrap(),
        Some(queued.clone())
    );

    // The update keeps what a run never changes (who, what, when queued).
    let done = Run {
        status: "succeeded".into(),
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
    rewritten.trigger = "api".into();
    rewritten.created_at = 1;
    let failed = Run {
        status: "failed".into(),
        principal: None,
        error: Some(r#"{"code":"boom"}"#.into()),
        started_at: Some(2_001),
        finished_at: Some(2_002),
        duration_ms: Some(1),
        ..queued_run(&acme.id, "run_2", "alpha", 2_000)
    };
    let run3 = queued_run(&acme.id, "run_3", "billing/on-paid", 3_000);
    let run4 = Run {
        status: "succeeded".into(),
        ..queued_run(&acme.id, "run_4", "billing/on-paid", 3_000)
    };
    // Another tenant reusing an id changes nothing of acme's run.
    let hijack = Run {
        status: "killed".into(),
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
            status: status.map(str::to_owned),
            before: before.map(str::to_owned),
            limit,
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
}

async fn kill_switches(store: &dyn Store) {
    let platform = KillSwitch {
        scope: "platform".into(),
        tenant_id: String::new(),
        target: String::new(),
        reason: "incident 42".into(),
        engaged_by: Some("tok_admin".into()),
        engaged_at: 20,
    };
    let script = KillSwitch {
        scope: "script".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conformance() {
    let dir = std::env::temp_dir().join(format!("citadel-store-{}", new_id("t")));
    let url = format!("sqlite://{}", dir.join("citadel.db").display());
    let store = connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    drop(store);
    conformance(&url).await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (the
/// tools refuse to run as root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let program = bin.join(tool);
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
}

impl Cluster {
    fn start(bin: PathBuf) -> Cluster {
        let data = std::env::temp_dir().join(format!("citadel-pg-{}", new_id("c")));
        std::fs::create_dir_all(&data).unwrap();
        // SAFETY: plain system call.
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = data.to_str().unwrap();
        let out = pg_tool(
            &bin,
            "initdb",
            &["-D", d, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off");
        let log = format!("{d}/server.log");
        let out = pg_tool(
            &bin,
            "pg_ctl",
            &["-D", d, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { bin, data, port }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    let Some(bin) = postgres_bin() else {
        println!(
            "SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql (install the `postgresql` package)"
        );
        return;
    };
    let cluster = Cluster::start(bin);
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE citadel_conformance")
        .execute(&admin)
        .await
        .unwrap();
    let url = cluster.url("citadel_conformance");
    let store = connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    drop(store);
    conformance(&url).await;
}

#[tokio::test]
async fn unknown_urls_are_refused() {
    assert!(matches!(
        connect("mysql://x").await,
        Err(StoreError::BadUrl(_))
    ));
}
