//! [`AuditStore`]: the audit chain, each entry hashing the one before it.

use std::borrow::Borrow;
use std::sync::LazyLock;

use futures_util::TryStreamExt;

use crate::StoreError;
use crate::sql::{Dialect, SqlStore};
use crate::{
    AuditEntry, AuditQuery, AuditVerdict, GENESIS_HASH, NewAuditEntry, StoreFuture, audit_hash,
};

/// The audit log: appended to, paged through, verified.
pub trait AuditStore: Send + Sync {
    /// Appends to the audit chain; appends are serialised so the chain has
    /// no forks.
    fn append_audit<'a>(&'a self, entry: &'a NewAuditEntry) -> StoreFuture<'a, AuditEntry>;
    /// Appends entries in order, all in one transaction.
    fn append_audits<'a>(&'a self, entries: &'a [NewAuditEntry]) -> StoreFuture<'a, ()>;
    fn audit_page<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditEntry>>;
    /// Recomputes every hash of the chain.
    fn verify_audit(&self) -> StoreFuture<'_, AuditVerdict>;
}

const AUDIT_COLUMNS: &str =
    "seq, at, tenant_id, principal, action, target, outcome, request_id, details, prev_hash, hash";

static AUDIT_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {AUDIT_COLUMNS} FROM audit WHERE ($1 IS NULL OR tenant_id = $1) \
         AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR principal = $3) \
         AND ($4 IS NULL OR outcome = $4) AND ($5 IS NULL OR seq < $5) \
         ORDER BY seq DESC LIMIT $6"
    )
});
static WHOLE_CHAIN: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"));

impl<D: Dialect> SqlStore<D> {
    /// Appends entries in order after the chain's head, in one transaction
    /// that holds the chain; each entry's sequence number, previous hash
    /// and hash.
    async fn append_chain(
        &self,
        entries: &[NewAuditEntry],
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let _one_writer_here = self.audit_lock.lock().await;
        let mut tx = self.write_tx().await?;
        let out = Self::append_chain_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`Self::append_chain`] inside the caller's write transaction, which
    /// must hold `audit_lock` (taken before the transaction began, as every
    /// appender takes them).
    pub(crate) async fn append_chain_in<E: Borrow<NewAuditEntry>>(
        tx: &mut D::Connection,
        entries: &[E],
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        D::lock_audit_chain(&mut *tx).await?;
        let head: Option<(i64, String)> =
            D::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut seq, mut prev_hash) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.borrow();
            seq += 1;
            let hash = audit_hash(&prev_hash, seq, e);
            D::query(
                "INSERT INTO audit (seq, at, tenant_id, principal, action, target, outcome, \
                 request_id, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(seq)
            .bind(e.at)
            .bind(&e.tenant_id)
            .bind(&e.principal)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.outcome)
            .bind(&e.request_id)
            .bind(&e.details)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
            out.push((seq, std::mem::replace(&mut prev_hash, hash.clone()), hash));
        }
        Ok(out)
    }
}

impl<D: Dialect> AuditStore for SqlStore<D> {
    fn append_audit<'a>(&'a self, e: &'a NewAuditEntry) -> StoreFuture<'a, AuditEntry> {
        Box::pin(async move {
            let (seq, prev_hash, hash) = self
                .append_chain(std::slice::from_ref(e))
                .await?
                .pop()
                .ok_or_else(|| StoreError::NotFound("the appended entry".into()))?;
            Ok(AuditEntry {
                seq,
                entry: e.clone(),
                prev_hash,
                hash,
            })
        })
    }

    fn append_audits<'a>(&'a self, entries: &'a [NewAuditEntry]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.append_chain(entries).await?;
            Ok(())
        })
    }

    fn audit_page<'a>(&'a self, q: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditEntry>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&AUDIT_PAGE)
                .bind(&q.tenant_id)
                .bind(&q.action)
                .bind(&q.principal)
                .bind(&q.outcome)
                .bind(q.before)
                .bind(q.limit.clamp(1, 1000))
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn verify_audit(&self) -> StoreFuture<'_, AuditVerdict> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let mut prev = GENESIS_HASH.to_owned();
            let mut expected_seq = 1i64;
            // Streamed: the chain has no bound.
            let mut rows = D::query(&WHOLE_CHAIN).fetch::<AuditEntry>(&mut conn);
            while let Some(e) = rows.try_next().await? {
                if e.seq != expected_seq {
                    return Ok(AuditVerdict::Broken {
                        seq: expected_seq,
                        reason: format!("entry {expected_seq} is missing (next is {})", e.seq),
                    });
                }
                if e.prev_hash != prev {
                    return Ok(AuditVerdict::Broken {
                        seq: e.seq,
                        reason: "its previous-hash does not match the entry before it".into(),
                    });
                }
                if audit_hash(&prev, e.seq, &e.entry) != e.hash {
                    return Ok(AuditVerdict::Broken {
                        seq: e.seq,
                        reason: "its contents do not match its hash (edited)".into(),
                    });
                }
                prev = e.hash;
                expected_seq += 1;
            }
            Ok(AuditVerdict::Intact {
                entries: expected_seq - 1,
            })
        })
    }
}
