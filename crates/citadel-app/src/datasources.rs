//! The data sources a tenant's admins configure for `api.db.query`: a
//! SQLite file under the platform's data-source root, or a PostgreSQL URL
//! whose password is one of the tenant's secrets (never stored here). A
//! version reaches only the sources its grant names (`capabilities.db`).

use citadel_store::{DataSource, now_ms};
use serde_json::json;

use crate::access::Permission;
use crate::{App, AppError, AppResult, Caller};

/// A data source to create or replace.
#[derive(Debug, Clone)]
pub struct DataSourceSpec {
    /// `sqlite` or `postgres`.
    pub kind: String,
    /// SQLite: a path relative to the data-source root. PostgreSQL: a
    /// `postgres://user@host:port/db` URL without its password.
    pub location: String,
    /// PostgreSQL: the tenant's secret holding the password.
    pub password_secret: Option<String>,
}

/// Data source names: what a grant's `db` entries may be.
pub fn is_datasource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
}

fn checked_name(name: &str) -> AppResult<()> {
    if is_datasource_name(name) {
        return Ok(());
    }
    Err(AppError::invalid(format!(
        "`{}` is not a data source name: a-z, 0-9, _ and -, at most 63 bytes",
        name.chars().take(64).collect::<String>()
    )))
}

fn field(message: impl Into<String>, field: &str) -> AppError {
    AppError::invalid(message).with_details(json!({ "field": field }))
}

fn checked_spec(spec: &DataSourceSpec) -> AppResult<()> {
    if spec.location.is_empty() || spec.location.len() > 1024 {
        return Err(field("`location` must be 1–1024 bytes", "location"));
    }
    match spec.kind.as_str() {
        "sqlite" => {
            let path = std::path::Path::new(&spec.location);
            let escapes = path.is_absolute()
                || path.components().any(|c| {
                    !matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                });
            if escapes {
                return Err(field(
                    "a SQLite location is a path relative to the data-source root, without `..`",
                    "location",
                ));
            }
            if spec.password_secret.is_some() {
                return Err(field("a SQLite source has no password", "password_secret"));
            }
        }
        "postgres" => {
            let rest = spec
                .location
                .strip_prefix("postgres://")
                .or_else(|| spec.location.strip_prefix("postgresql://"))
                .ok_or_else(|| field("a PostgreSQL location is a `postgres://` URL", "location"))?;
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && userinfo.contains(':')
            {
                return Err(field(
                    "the URL may not hold a password: store it as a secret and name it in `password_secret`",
                    "location",
                ));
            }
            if let Some(secret) = &spec.password_secret
                && !citadel_scripts::is_secret_name(secret)
            {
                return Err(field(
                    format!("`{secret}` is not a secret name"),
                    "password_secret",
                ));
            }
        }
        other => {
            return Err(field(
                format!("unknown kind `{other}`: `sqlite` or `postgres`"),
                "kind",
            ));
        }
    }
    Ok(())
}

/// Creates or replaces a data source; true when created. Needs
/// `datasource.write`.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    spec: DataSourceSpec,
) -> AppResult<(DataSource, bool)> {
    let tenant = caller
        .tenant_with(app, Permission::DatasourceWrite, None)
        .await?;
    checked_name(name)?;
    checked_spec(&spec)?;
    let now = now_ms();
    let created = app.store.datasource(&tenant, name).await?.is_none();
    let stored = app
        .store
        .put_datasource(&DataSource {
            tenant_id: tenant.clone(),
            name: name.to_owned(),
            kind: spec.kind,
            location: spec.location,
            password_secret: spec.password_secret,
            created_at: now,
            updated_at: now,
        })
        .await?;
    caller
        .record_change(
            app,
            &tenant,
            "datasource.put",
            name,
            json!({ "kind": stored.kind, "location": stored.location, "created": created }),
        )
        .await?;
    Ok((stored, created))
}

/// The tenant's data sources, by name. Needs `datasource.read`.
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<DataSource>> {
    let tenant = caller
        .tenant_with(app, Permission::DatasourceRead, None)
        .await?;
    Ok(app.store.datasources(&tenant).await?)
}

/// One data source. Needs `datasource.read`.
pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<DataSource> {
    let tenant = caller
        .tenant_with(app, Permission::DatasourceRead, None)
        .await?;
    checked_name(name)?;
    app.store
        .datasource(&tenant, name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("data source `{name}` not found")))
}

/// Deletes a data source. Needs `datasource.write`.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    let tenant = caller
        .tenant_with(app, Permission::DatasourceWrite, None)
        .await?;
    checked_name(name)?;
    if !app.store.delete_datasource(&tenant, name).await? {
        return Err(AppError::not_found(format!(
            "data source `{name}` not found"
        )));
    }
    caller
        .record_change(app, &tenant, "datasource.delete", name, json!({}))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, location: &str, secret: Option<&str>) -> DataSourceSpec {
        DataSourceSpec {
            kind: kind.into(),
            location: location.into(),
            password_secret: secret.map(str::to_owned),
        }
    }

    #[test]
    fn locations_are_checked_by_kind() {
        let ok = [
            spec("sqlite", "reports/app.db", None),
            spec("sqlite", "./app.db", None),
            spec(
                "postgres",
                "postgres://reader@db:5432/app",
                Some("PG_PASSWORD"),
            ),
            spec("postgres", "postgresql://db/app", None),
        ];
        for s in ok {
            assert_eq!(checked_spec(&s), Ok(()), "{s:?}");
        }
        let bad = [
            (spec("sqlite", "/etc/passwd", None), "location"),
            (spec("sqlite", "../other/app.db", None), "location"),
            (spec("sqlite", "a/../../b.db", None), "location"),
            (spec("sqlite", "", None), "location"),
            (
                spec("sqlite", "a.db", Some("X_PASSWORD")),
                "password_secret",
            ),
            (spec("postgres", "mysql://db/app", None), "location"),
            (
                spec("postgres", "postgres://u:hunter22@db/app", None),
                "location",
            ),
            (
                spec("postgres", "postgres://u@db/app", Some("lower")),
                "password_secret",
            ),
            (spec("mysql", "db", None), "kind"),
        ];
        for (s, f) in bad {
            let e = checked_spec(&s).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::Invalid, "{s:?}");
            assert_eq!(e.details, Some(json!({ "field": f })), "{s:?}");
        }
        assert!(is_datasource_name("reporting-db_2"));
        assert!(!is_datasource_name("Reporting"));
        assert!(!is_datasource_name(""));
    }
}
