//! Idempotent requests (`Idempotency-Key`): a repeat of a caller's request with the same key
//! within a day answers what the first one made and starts nothing; the same key with another
//! request is a conflict.

use std::future::Future;
use std::time::Duration;

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::domain::now_ms;
use crate::store::KeyClaim;

/// How long a key stands for its first request.
const KEY_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a repeat waits for the first request, still under way, to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);

impl Service {
    /// Makes something once per caller and `key`: `make` returns it with the id that `load`
    /// finds it by again. Without a key, `make` runs every time. `fingerprint` tells one
    /// request from another (the endpoint, the object, the arguments).
    pub(super) async fn once_per_key<T, M, L, LF>(
        &self,
        caller: &Caller,
        key: Option<&str>,
        fingerprint: String,
        make: M,
        load: L,
    ) -> ServiceResult<T>
    where
        M: Future<Output = ServiceResult<(T, i64)>>,
        L: Fn(i64) -> LF,
        LF: Future<Output = ServiceResult<T>>,
    {
        let Some(key) = key else { return make.await.map(|(made, _)| made) };
        if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
            return Err(ServiceError::invalid(
                "Idempotency-Key",
                "must be 1 to 255 characters without control characters",
            ));
        }
        let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
        loop {
            let claim = self
                .store
                .claim_idempotency_key(caller.user_id, key, &fingerprint, now_ms(), KEY_TTL_MS)
                .await?;
            match claim {
                KeyClaim::New => break,
                KeyClaim::Taken { fingerprint: first, .. } if first != fingerprint => {
                    return Err(ServiceError::Conflict(
                        "this Idempotency-Key was used for another request; use a new key".into(),
                    ));
                }
                KeyClaim::Taken { ref_id: Some(id), .. } => return load(id).await,
                KeyClaim::Taken { ref_id: None, .. } if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                KeyClaim::Taken { ref_id: None, .. } => {
                    return Err(ServiceError::Conflict(
                        "a request with this Idempotency-Key is still under way; try again shortly".into(),
                    ));
                }
            }
        }
        match make.await {
            Ok((made, id)) => {
                self.store.settle_idempotency_key(caller.user_id, key, id).await?;
                Ok(made)
            }
            Err(e) => {
                let _ = self.store.release_idempotency_key(caller.user_id, key).await;
                Err(e)
            }
        }
    }
}
