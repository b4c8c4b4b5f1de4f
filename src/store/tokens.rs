//! Read tokens for the HTTP service: only a hash of each token is stored, by name.
//! The SQL is shared by both dialects (`tokens_backend!`, stamped out in each backend).

use super::{Store, StoreError};

/// Implements the read-token methods for `$Store { pool }` over database `$Db`.
macro_rules! tokens_backend {
    ($Store:ident, $Db:ty) => {
        impl $Store {
            pub async fn create_read_token(
                &self,
                name: &str,
                hash: &[u8],
                created_at_ns: i64,
            ) -> Result<bool, StoreError> {
                let mut q =
                    sqlx::QueryBuilder::<$Db>::new("INSERT INTO read_tokens (name, hash, created_at) ");
                q.push_values([(name, hash, created_at_ns)], |mut b, (n, h, t)| {
                    b.push_bind(n).push_bind(h).push_bind(t);
                });
                // A revoked name may be given a new token; a valid one is never replaced.
                q.push(
                    " ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, \
                     created_at = excluded.created_at, revoked_at = NULL \
                     WHERE read_tokens.revoked_at IS NOT NULL",
                );
                Ok(q.build().execute(&self.pool).await?.rows_affected() == 1)
            }

            pub async fn revoke_read_token(
                &self,
                name: &str,
                revoked_at_ns: i64,
            ) -> Result<bool, StoreError> {
                let mut q = sqlx::QueryBuilder::<$Db>::new("UPDATE read_tokens SET revoked_at = ");
                q.push_bind(revoked_at_ns).push(" WHERE revoked_at IS NULL AND name = ").push_bind(name);
                Ok(q.build().execute(&self.pool).await?.rows_affected() == 1)
            }

            pub async fn read_token_name(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
                use sqlx::Row as _;
                let mut q = sqlx::QueryBuilder::<$Db>::new("SELECT name FROM read_tokens WHERE hash = ");
                q.push_bind(hash).push(" AND revoked_at IS NULL");
                let row = q.build().fetch_optional(&self.pool).await?;
                Ok(row.map(|r| r.try_get("name")).transpose()?)
            }
        }
    };
}

pub(crate) use tokens_backend;

impl Store {
    /// Stores the hash of a new read token named `name`. False if a valid token of that name
    /// exists (revoke it first).
    pub async fn create_read_token(
        &self,
        name: &str,
        hash: &[u8],
        created_at_ns: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.create_read_token(name, hash, created_at_ns).await,
            Store::Postgres(s) => s.create_read_token(name, hash, created_at_ns).await,
        }
    }

    /// Revokes the token named `name`. False if there is no valid token of that name.
    pub async fn revoke_read_token(&self, name: &str, revoked_at_ns: i64) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.revoke_read_token(name, revoked_at_ns).await,
            Store::Postgres(s) => s.revoke_read_token(name, revoked_at_ns).await,
        }
    }

    /// The name of the valid (not revoked) token with this hash.
    pub async fn read_token_name(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.read_token_name(hash).await,
            Store::Postgres(s) => s.read_token_name(hash).await,
        }
    }
}
