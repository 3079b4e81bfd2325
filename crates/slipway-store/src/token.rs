//! API tokens: only their SHA-256 is kept, with a name and a scope.

use sqlx::Row;

use crate::{SqliteStore, StoreError, millis, retry_busy};

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Name.
    pub name: String,
    /// `read` or `write`.
    pub scope: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl SqliteStore {
    /// Stores a token's hash; false when the name is taken.
    pub async fn add_token(&self, name: &str, scope: &str, hash: &str) -> Result<bool, StoreError> {
        let now = millis(std::time::SystemTime::now());
        let done = retry_busy(|| async {
            sqlx::query(
                "INSERT OR IGNORE INTO tokens (name, scope, hash, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(name)
            .bind(scope)
            .bind(hash)
            .bind(now)
            .execute(&self.pool)
            .await
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every token, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query("SELECT name, scope, hash, created_at FROM tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRow {
                name: r.get("name"),
                scope: r.get("scope"),
                hash: r.get("hash"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Deletes a token; false when there was none.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let done = retry_busy(|| async {
            sqlx::query("DELETE FROM tokens WHERE name = ?")
                .bind(name)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
