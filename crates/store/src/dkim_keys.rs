//! DKIM signing keys of local domains: put by `pillarbox dkim generate`, read
//! by the outbound queue to sign what it sends.

use crate::error::Result;
use crate::queue::unix_now;
use crate::{Store, with_pool};

impl Store {
    /// Stores a DKIM signing key for a domain (replacing one with the same selector).
    pub async fn dkim_key_put(
        &self,
        domain: &str,
        selector: &str,
        algorithm: &str,
        private_key: &[u8],
        public_key: &str,
    ) -> Result<()> {
        with_pool!(self.db_write(), pool => {
            sqlx::query(
                "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, public_key, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (domain, selector) DO UPDATE SET \
                 algorithm = excluded.algorithm, private_key = excluded.private_key, \
                 public_key = excluded.public_key, created_at = excluded.created_at",
            )
            .bind(domain.to_ascii_lowercase())
            .bind(selector)
            .bind(algorithm)
            .bind(private_key)
            .bind(public_key)
            .bind(unix_now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest DKIM key of a domain: (selector, algorithm, private key, public key).
    pub async fn dkim_key(
        &self,
        domain: &str,
    ) -> Result<Option<(String, String, Vec<u8>, String)>> {
        let row = with_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT selector, algorithm, private_key, public_key FROM dkim_keys \
                 WHERE domain = $1 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(domain.to_ascii_lowercase())
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}
