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
    /// The namespaces it may use; empty: every namespace.
    pub namespaces: Vec<String>,
}

impl SqliteStore {
    /// Stores a token's hash; false when the name is taken.
    pub async fn add_token(&self, name: &str, scope: &str, hash: &str) -> Result<bool, StoreError> {
        self.add_token_in(name, scope, hash, &[]).await
    }

    /// Stores a token's hash, limited to `namespaces` (empty: every namespace); false when the
    /// name is taken.
    pub async fn add_token_in(
        &self,
        name: &str,
        scope: &str,
        hash: &str,
        namespaces: &[String],
    ) -> Result<bool, StoreError> {
        let now = millis(std::time::SystemTime::now());
        let limited = (!namespaces.is_empty()).then(|| serde_json::json!(namespaces).to_string());
        let done = retry_busy(|| async {
            sqlx::query(
                "INSERT OR IGNORE INTO tokens (name, scope, hash, created_at, namespaces) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(name)
            .bind(scope)
            .bind(hash)
            .bind(now)
            .bind(&limited)
            .execute(&self.pool)
            .await
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The namespaces the token with this hash may use: `None` when no token has it, an empty
    /// list when it may use every namespace.
    pub async fn token_namespaces(&self, hash: &str) -> Result<Option<Vec<String>>, StoreError> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT namespaces FROM tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|n| namespace_list(n.as_deref())))
    }

    /// Every token, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, scope, hash, created_at, namespaces FROM tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TokenRow {
                name: r.get("name"),
                scope: r.get("scope"),
                hash: r.get("hash"),
                created_at: r.get("created_at"),
                namespaces: namespace_list(r.get("namespaces")),
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

/// A stored namespace list (JSON); a list that cannot be read limits the token to nothing
/// rather than opening every namespace.
fn namespace_list(stored: Option<&str>) -> Vec<String> {
    match stored {
        None => Vec::new(),
        Some(s) => serde_json::from_str(s).unwrap_or_else(|_| vec![String::new()]),
    }
}
