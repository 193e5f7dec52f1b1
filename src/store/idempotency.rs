//! Idempotency keys: a caller's key stands for its first request for a day.

use super::{SqlxResultExt, Store, StoreResult, get_opt_i64, get_string};
use crate::domain::{EpochMs, UserId};

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is this request's now: do the work, then [`Store::settle_idempotency_key`].
    New,
    /// A request with this key came first: its fingerprint and, once done, what it made.
    Taken { fingerprint: String, ref_id: Option<i64> },
}

impl Store {
    /// Claims `key` for the caller unless a request made in the last `ttl_ms` holds it.
    pub async fn claim_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
        fingerprint: &str,
        now: EpochMs,
        ttl_ms: EpochMs,
    ) -> StoreResult<KeyClaim> {
        sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND created_at < $3")
            .bind(owner)
            .bind(key)
            .bind(now - ttl_ms)
            .execute(&self.write)
            .await
            .wrote()?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (owner, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (owner, key) DO NOTHING RETURNING owner",
        )
        .bind(owner)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .fetch_all(&self.write)
        .await
        .wrote()?;
        if !inserted.is_empty() {
            return Ok(KeyClaim::New);
        }
        let row =
            sqlx::query("SELECT fingerprint, ref_id FROM idempotency_keys WHERE owner = $1 AND key = $2")
                .bind(owner)
                .bind(key)
                .fetch_one(&self.write)
                .await
                .db()?;
        Ok(KeyClaim::Taken {
            fingerprint: get_string(&row, "fingerprint")?,
            ref_id: get_opt_i64(&row, "ref_id")?,
        })
    }

    /// Records what the key's request made.
    pub async fn settle_idempotency_key(&self, owner: UserId, key: &str, ref_id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE idempotency_keys SET ref_id = $3 WHERE owner = $1 AND key = $2")
            .bind(owner)
            .bind(key)
            .bind(ref_id)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(())
    }

    /// Frees a key whose request failed, so that it can be tried again.
    pub async fn release_idempotency_key(&self, owner: UserId, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND ref_id IS NULL")
            .bind(owner)
            .bind(key)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(())
    }

    /// Forgets keys older than `before` (the retention pass).
    pub async fn prune_idempotency_keys(&self, before: EpochMs) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(done.rows_affected())
    }
}
