//! [`DataSourceStore`]: the read-only data sources a tenant's admins
//! configure for `api.db.query`. A PostgreSQL source's password is not
//! here: it is a secret of the tenant, named by the source.

use std::sync::LazyLock;

use serde::Serialize;

use crate::StoreFuture;
use crate::sql::{Dialect, SqlStore, conflict};

/// A data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DataSource {
    pub tenant_id: String,
    pub name: String,
    /// `sqlite` or `postgres`.
    pub kind: String,
    /// A path under the platform's data-source root (SQLite), or a URL
    /// without its password (PostgreSQL).
    pub location: String,
    /// The tenant's secret holding the password (PostgreSQL).
    pub password_secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Data sources, scoped by tenant.
pub trait DataSourceStore: Send + Sync {
    /// Creates or replaces (by tenant and name), keeping `created_at`.
    fn put_datasource<'a>(&'a self, source: &'a DataSource) -> StoreFuture<'a, DataSource>;
    fn datasource<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<DataSource>>;
    /// A tenant's data sources, by name.
    fn datasources<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<DataSource>>;
    fn delete_datasource<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
}

const COLUMNS: &str = "tenant_id, name, kind, location, password_secret, created_at, updated_at";

static PUT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO datasources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind, \
         location = excluded.location, password_secret = excluded.password_secret, \
         updated_at = excluded.updated_at RETURNING {COLUMNS}"
    )
});
static BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM datasources WHERE tenant_id = $1 AND name = $2")
});
static OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {COLUMNS} FROM datasources WHERE tenant_id = $1 ORDER BY name")
});

impl<D: Dialect> DataSourceStore for SqlStore<D> {
    fn put_datasource<'a>(&'a self, s: &'a DataSource) -> StoreFuture<'a, DataSource> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            D::query(&PUT)
                .bind(&s.tenant_id)
                .bind(&s.name)
                .bind(&s.kind)
                .bind(&s.location)
                .bind(&s.password_secret)
                .bind(s.created_at)
                .bind(s.updated_at)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| conflict(e, format!("tenant `{}`", s.tenant_id)))
        })
    }

    fn datasource<'a>(
        &'a self,
        tenant_id: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<DataSource>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&BY_NAME)
                .bind(tenant_id)
                .bind(name)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn datasources<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<DataSource>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn delete_datasource<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let gone = D::query("DELETE FROM datasources WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut conn)
                .await?;
            Ok(gone == 1)
        })
    }
}
