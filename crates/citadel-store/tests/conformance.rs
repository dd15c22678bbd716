//! One backend-agnostic suite, run against a temporary SQLite file always and
//! against a throwaway PostgreSQL cluster this test starts itself with
//! `initdb`/`pg_ctl` (skipped, saying so, only where no PostgreSQL binaries
//! exist).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use citadel_store::{
    AuditQuery, AuditVerdict, Backend, CustomRole, NewAuditEntry, NewToken, NewUser, RoleBinding,
    Store, StoreError, connect, new_id, now_ms,
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
