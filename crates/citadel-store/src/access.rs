//! [`TenantStore`] and [`AccessStore`]: tenants, and who may act in them
//! (tokens, users, custom roles, role bindings).

use std::sync::LazyLock;

use crate::sql::{Dialect, SqlStore, conflict, undecodable};
use crate::{
    CustomRole, EmbedCode, NewToken, NewUser, RoleBinding, StoreError, StoreFuture, Tenant, Token,
    TokenOrigin, User, new_id, now_ms,
};

/// Tenants.
pub trait TenantStore: Send + Sync {
    fn create_tenant<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Tenant>;
    fn tenant<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Tenant>>;
    fn tenant_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tenant>>;
    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>>;
}

/// The principals of tenants and what they may do: tokens, users, a
/// tenant's custom roles and the role bindings of tokens.
pub trait AccessStore: Send + Sync {
    /// Creates a token and, for tenant tokens with a role, its binding, in
    /// one transaction; minted by nobody (an administrator's command or a
    /// login), so it acts for its user or for itself.
    fn create_token<'a>(&'a self, new: &'a NewToken) -> StoreFuture<'a, Token> {
        static UNMINTED: TokenOrigin = TokenOrigin {
            created_by: None,
            person: None,
            end_user: None,
        };
        self.create_token_by(new, &UNMINTED)
    }
    /// [`AccessStore::create_token`] for a token minted by another principal.
    fn create_token_by<'a>(
        &'a self,
        new: &'a NewToken,
        origin: &'a TokenOrigin,
    ) -> StoreFuture<'a, Token>;
    fn token_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Token>>;
    /// A tenant's token by id.
    fn token<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Token>>;
    fn list_tokens<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Token>>;
    /// Revokes a tenant's token; false when the tenant has no such token.
    fn revoke_token<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;

    /// Stores a one-time embed code (and forgets the expired ones).
    fn put_embed_code<'a>(&'a self, code: &'a EmbedCode) -> StoreFuture<'a, ()>;
    /// Takes the code with this hash: it is deleted, and answered if it had
    /// not expired by `now`. A code is taken at most once, even by racing
    /// callers on several nodes.
    fn take_embed_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedCode>>;

    fn create_user<'a>(&'a self, new: &'a NewUser) -> StoreFuture<'a, User>;
    fn user_by_name<'a>(
        &'a self,
        tenant_id: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<User>>;
    fn list_users<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<User>>;
    /// A tenant's user by id.
    fn user<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<User>>;
    /// The (role, path prefix) pairs of a user.
    fn user_roles<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>>;
    /// Disables a user and revokes its session tokens; false when the tenant
    /// has no such user.
    fn disable_user<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool>;

    fn bindings<'a>(
        &'a self,
        tenant_id: &'a str,
        token_id: &'a str,
    ) -> StoreFuture<'a, Vec<RoleBinding>>;
    /// Every role binding of a tenant's tokens.
    fn tenant_bindings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<RoleBinding>>;
    fn create_binding<'a>(&'a self, binding: &'a RoleBinding) -> StoreFuture<'a, ()>;

    /// Creates or replaces a tenant's custom role.
    fn put_role<'a>(&'a self, role: &'a CustomRole) -> StoreFuture<'a, ()>;
    /// A tenant's custom roles, by name. A stored role whose permissions do
    /// not decode fails the call (naming the role) rather than reading as a
    /// role without permissions.
    fn roles<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<CustomRole>>;
    fn delete_role<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
}

const TOKEN_COLUMNS: &str = "id, tenant_id, user_id, name, hash, created_at, expires_at, revoked_at, created_by, person, \
     end_user";
const USER_COLUMNS: &str = "id, tenant_id, username, password_hash, created_at, disabled_at";

static TOKEN_BY_HASH: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"));
static TOKEN_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 AND id = $2")
});
static TOKENS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE tenant_id = $1 ORDER BY created_at, id")
});
static USER_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND username = $2")
});
static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2"));
static USERS_OF_TENANT: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY username")
});

const INSERT_BINDING: &str = "INSERT INTO role_bindings (id, tenant_id, token_id, role, path_prefix, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// A `roles` row: the permissions are JSON text, decoded by [`RoleRow::decode`].
#[derive(sqlx::FromRow)]
struct RoleRow {
    tenant_id: String,
    name: String,
    permissions: String,
    created_at: i64,
}

impl RoleRow {
    fn decode(self) -> Result<CustomRole, StoreError> {
        let permissions = serde_json::from_str(&self.permissions).map_err(|e| {
            undecodable(
                "roles",
                "permissions",
                &format!("role `{}` of tenant `{}`", self.name, self.tenant_id),
                e,
            )
        })?;
        Ok(CustomRole {
            tenant_id: self.tenant_id,
            name: self.name,
            permissions,
            created_at: self.created_at,
        })
    }
}

impl<D: Dialect> TenantStore for SqlStore<D> {
    fn create_tenant<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Tenant> {
        Box::pin(async move {
            let tenant = Tenant {
                id: new_id("tnt"),
                name: name.to_owned(),
                created_at: now_ms(),
            };
            let mut conn = self.write_conn().await?;
            D::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&tenant.id)
                .bind(&tenant.name)
                .bind(tenant.created_at)
                .execute(&mut conn)
                .await
                .map_err(|e| conflict(e, format!("tenant `{name}`")))?;
            Ok(tenant)
        })
    }

    fn tenant<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Tenant>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(
                D::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut conn)
                    .await?,
            )
        })
    }

    fn tenant_by_name<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Tenant>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(
                D::query("SELECT id, name, created_at FROM tenants WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut conn)
                    .await?,
            )
        })
    }

    fn list_tenants(&self) -> StoreFuture<'_, Vec<Tenant>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(
                D::query("SELECT id, name, created_at FROM tenants ORDER BY name")
                    .fetch_all(&mut conn)
                    .await?,
            )
        })
    }
}

impl<D: Dialect> AccessStore for SqlStore<D> {
    fn put_embed_code<'a>(&'a self, code: &'a EmbedCode) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
            D::query("DELETE FROM embed_codes WHERE expires_at <= $1")
                .bind(code.created_at)
                .execute(&mut tx)
                .await?;
            D::query(
                "INSERT INTO embed_codes (code_hash, tenant_id, end_user, folder, role, \
                 session_ms, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&code.code_hash)
            .bind(&code.tenant_id)
            .bind(&code.end_user)
            .bind(&code.folder)
            .bind(&code.role)
            .bind(code.session_ms)
            .bind(&code.created_by)
            .bind(code.created_at)
            .bind(code.expires_at)
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, "embed code"))?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn take_embed_code<'a>(
        &'a self,
        code_hash: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<EmbedCode>> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            // One statement deletes and answers: of two racing takers, only
            // one gets the row.
            let taken: Option<EmbedCode> = D::query(
                "DELETE FROM embed_codes WHERE code_hash = $1 RETURNING code_hash, tenant_id, \
                 end_user, folder, role, session_ms, created_by, created_at, expires_at",
            )
            .bind(code_hash)
            .fetch_optional(&mut conn)
            .await?;
            Ok(taken.filter(|c| c.expires_at > now))
        })
    }

    fn create_token_by<'a>(
        &'a self,
        new: &'a NewToken,
        origin: &'a TokenOrigin,
    ) -> StoreFuture<'a, Token> {
        Box::pin(async move {
            let id = new_id("tok");
            let person = origin
                .person
                .clone()
                .or_else(|| new.user_id.clone())
                .unwrap_or_else(|| id.clone());
            let token = Token {
                id,
                created_by: origin.created_by.clone(),
                person,
                tenant_id: new.tenant_id.clone(),
                user_id: new.user_id.clone(),
                name: new.name.clone(),
                hash: new.hash.clone(),
                created_at: now_ms(),
                expires_at: new.expires_at,
                revoked_at: None,
                end_user: origin.end_user.clone(),
            };
            let mut tx = self.tx().await?;
            D::query(
                "INSERT INTO tokens (id, tenant_id, name, hash, created_at, expires_at, user_id, \
                 created_by, person, end_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&token.id)
            .bind(&token.tenant_id)
            .bind(&token.name)
            .bind(&token.hash)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(&token.user_id)
            .bind(&token.created_by)
            .bind(&token.person)
            .bind(&token.end_user)
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, "token"))?;
            if let (Some(tenant), Some((role, prefix))) = (&new.tenant_id, &new.role) {
                D::query(INSERT_BINDING)
                    .bind(new_id("rb"))
                    .bind(tenant)
                    .bind(&token.id)
                    .bind(role)
                    .bind(prefix)
                    .bind(token.created_at)
                    .execute(&mut tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(token)
        })
    }

    fn token_by_hash<'a>(&'a self, hash: &'a str) -> StoreFuture<'a, Option<Token>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&TOKEN_BY_HASH)
                .bind(hash)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn token<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<Token>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&TOKEN_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_tokens<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<Token>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&TOKENS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn revoke_token<'a>(
        &'a self,
        tenant_id: &'a str,
        id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(at)
            .execute(&mut conn)
            .await?;
            Ok(done == 1)
        })
    }

    fn create_user<'a>(&'a self, new: &'a NewUser) -> StoreFuture<'a, User> {
        Box::pin(async move {
            let user = User {
                id: new_id("usr"),
                tenant_id: new.tenant_id.clone(),
                username: new.username.clone(),
                password_hash: new.password_hash.clone(),
                created_at: now_ms(),
                disabled_at: None,
            };
            let mut tx = self.tx().await?;
            D::query(
                "INSERT INTO users (id, tenant_id, username, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&user.id)
            .bind(&user.tenant_id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(user.created_at)
            .execute(&mut tx)
            .await
            .map_err(|e| conflict(e, format!("user `{}`", new.username)))?;
            for (role, prefix) in &new.roles {
                D::query(
                    "INSERT INTO user_roles (user_id, tenant_id, role, path_prefix) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&user.id)
                .bind(&user.tenant_id)
                .bind(role)
                .bind(prefix)
                .execute(&mut tx)
                .await
                .map_err(|e| conflict(e, format!("role `{role}` of the user")))?;
            }
            tx.commit().await?;
            Ok(user)
        })
    }

    fn user_by_name<'a>(
        &'a self,
        tenant_id: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&USER_BY_NAME)
                .bind(tenant_id)
                .bind(username)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn user<'a>(&'a self, tenant_id: &'a str, id: &'a str) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&USER_BY_ID)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut conn)
                .await?)
        })
    }

    fn list_users<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<User>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(&USERS_OF_TENANT)
                .bind(tenant_id)
                .fetch_all(&mut conn)
                .await?)
        })
    }

    fn user_roles<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT role, path_prefix FROM user_roles WHERE tenant_id = $1 AND user_id = $2 \
                 ORDER BY role, path_prefix",
            )
            .bind(tenant_id)
            .bind(user_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn disable_user<'a>(
        &'a self,
        tenant_id: &'a str,
        user_id: &'a str,
        at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.tx().await?;
            let done = D::query(
                "UPDATE users SET disabled_at = COALESCE(disabled_at, $3) \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(at)
            .execute(&mut tx)
            .await?;
            if done != 1 {
                return Ok(false);
            }
            D::query(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) \
                 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id)
            .bind(at)
            .execute(&mut tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn bindings<'a>(
        &'a self,
        tenant_id: &'a str,
        token_id: &'a str,
    ) -> StoreFuture<'a, Vec<RoleBinding>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT id, tenant_id, token_id, role, path_prefix, created_at FROM role_bindings \
                 WHERE tenant_id = $1 AND token_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(token_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn tenant_bindings<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<RoleBinding>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            Ok(D::query(
                "SELECT id, tenant_id, token_id, role, path_prefix, created_at FROM role_bindings \
                 WHERE tenant_id = $1 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .fetch_all(&mut conn)
            .await?)
        })
    }

    fn create_binding<'a>(&'a self, b: &'a RoleBinding) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            // The token must belong to the binding's tenant.
            let owned: Option<(i32,)> =
                D::query("SELECT 1 AS one FROM tokens WHERE id = $1 AND tenant_id = $2")
                    .bind(&b.token_id)
                    .bind(&b.tenant_id)
                    .fetch_optional(&mut conn)
                    .await?;
            if owned.is_none() {
                return Err(StoreError::NotFound(format!("token `{}`", b.token_id)));
            }
            D::query(INSERT_BINDING)
                .bind(&b.id)
                .bind(&b.tenant_id)
                .bind(&b.token_id)
                .bind(&b.role)
                .bind(&b.path_prefix)
                .bind(b.created_at)
                .execute(&mut conn)
                .await
                .map_err(|e| conflict(e, "role binding"))?;
            Ok(())
        })
    }

    fn put_role<'a>(&'a self, role: &'a CustomRole) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let permissions =
                serde_json::to_string(&role.permissions).unwrap_or_else(|_| "[]".into());
            let mut conn = self.write_conn().await?;
            D::query(
                "INSERT INTO roles (tenant_id, name, permissions, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = excluded.permissions",
            )
            .bind(&role.tenant_id)
            .bind(&role.name)
            .bind(permissions)
            .bind(role.created_at)
            .execute(&mut conn)
            .await
            .map_err(|e| conflict(e, format!("tenant `{}`", role.tenant_id)))?;
            Ok(())
        })
    }

    fn roles<'a>(&'a self, tenant_id: &'a str) -> StoreFuture<'a, Vec<CustomRole>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let rows: Vec<RoleRow> = D::query(
                "SELECT tenant_id, name, permissions, created_at FROM roles \
                 WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant_id)
            .fetch_all(&mut conn)
            .await?;
            rows.into_iter().map(RoleRow::decode).collect()
        })
    }

    fn delete_role<'a>(&'a self, tenant_id: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.write_conn().await?;
            let done = D::query("DELETE FROM roles WHERE tenant_id = $1 AND name = $2")
                .bind(tenant_id)
                .bind(name)
                .execute(&mut conn)
                .await?;
            Ok(done == 1)
        })
    }
}
