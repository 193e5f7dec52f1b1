//! Rate limits: a fixed hourly window per key (a token, a login name, a stack's hook, a
//! monitor's pings), in memory on SQLite and shared through the database on PostgreSQL.

use std::sync::Mutex;

use crate::domain::{EpochMs, now_ms};
use crate::store::{Backend, Store, StoreResult};

/// A fixed hourly window per key: gives the remaining count and the reset time that the
/// `X-RateLimit-*` headers promise (a GCRA limiter such as governor has no such window).
/// On PostgreSQL the windows live in the database, so a token has one budget for the whole
/// cluster; on SQLite (one node) they live in memory.
///
/// On PostgreSQL a node takes hits from the shared window a block at a time (1% of the limit,
/// at most [`MAX_BLOCK`]) and spends them locally: one write per block instead of one per
/// request.
/// The cluster never admits more than the limit; near the end of a window up to a block per
/// node may go unused, so a node can refuse a little before the whole budget is spent.
///
/// Keys may be chosen by an attacker (login names): the in-memory maps hold at most
/// [`MAX_KEYS`] keys, as fixed-size hashes (see [`Recent`]), and keys longer than
/// [`MAX_KEY_LEN`] bytes are hashed before use, so a flood of distinct names neither grows
/// memory nor slows other requests. Past the bound, the keys unused for longest are dropped,
/// their windows with them: a key touched at least once every `MAX_KEYS / 2` new keys keeps
/// its window.
pub struct RateLimiter {
    limit: u32,
    window_ms: EpochMs,
    counts: Counts,
}

enum Counts {
    Local(Mutex<Recent<(EpochMs, u32)>>),
    Shared { store: Store, blocks: Mutex<Recent<Block>> },
}

/// Keys kept in memory per limiter, at most (a few MiB: keys are kept as 64-bit hashes).
const MAX_KEYS: usize = 100_000;
/// The most hits a node takes from a shared window at once. A block of 100 cost a token
/// read at 60,000 requests a second 600 database writes a second, a tenth of the machine's
/// time per request (bench `api`); at 1% of the limit the hits a block may leave unused
/// stay as small a share of the budget.
const MAX_BLOCK: i64 = 10_000;
/// Longer keys are replaced by their SHA-256 (they also name the shared windows' rows).
const MAX_KEY_LEN: usize = 64;

/// A map of at most `2 * half` entries, dropping the ones unused for longest in bulk: keys
/// new or used go to the `recent` generation; when it holds `half` keys it becomes `older`,
/// and the previous `older` (keys untouched for `half` new keys) is dropped. Every operation
/// is O(1): no scans, whatever the number of keys. Keys are kept as their 64-bit SipHash
/// under a random per-process key: fixed-size entries, no allocation per key, and no
/// collisions an attacker could aim for (a chance one merges two keys' counts).
struct Recent<V> {
    // Keyed by those hashes, themselves random: hashed again the cheap way.
    recent: foldhash::HashMap<u64, V>,
    older: foldhash::HashMap<u64, V>,
    half: usize,
    hasher: std::hash::RandomState,
}

impl<V> Recent<V> {
    fn new(capacity: usize) -> Self {
        Recent {
            recent: foldhash::HashMap::default(),
            older: foldhash::HashMap::default(),
            half: (capacity / 2).max(1),
            hasher: std::hash::RandomState::new(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len() + self.older.len()
    }

    fn hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// The value for `key`, now in the recent generation.
    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let h = self.hash(key);
        if !self.recent.contains_key(&h) {
            let value = self.older.remove(&h)?;
            self.insert(h, value);
        }
        self.recent.get_mut(&h)
    }

    fn get_or_insert_with(&mut self, key: &str, fresh: impl FnOnce() -> V) -> &mut V {
        let h = self.hash(key);
        if self.get_mut(key).is_none() {
            self.insert(h, fresh());
        }
        self.recent.get_mut(&h).expect("inserted in the recent generation")
    }

    fn insert(&mut self, h: u64, value: V) {
        if self.recent.len() >= self.half {
            // Sized once: the old generation's table is freed just as a same-sized one is taken.
            self.older = std::mem::replace(
                &mut self.recent,
                foldhash::HashMap::with_capacity_and_hasher(self.half, Default::default()),
            );
        }
        self.recent.insert(h, value);
    }

    fn remove(&mut self, key: &str) {
        let h = self.hash(key);
        self.recent.remove(&h);
        self.older.remove(&h);
    }
}

/// Hits a node took from a shared window and has not spent yet.
#[derive(Clone, Copy)]
struct Block {
    window_start: EpochMs,
    /// The shared window's count when the block was taken (the block included).
    shared_hits: i64,
    unspent: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds when the window resets.
    pub reset: i64,
}

impl Quota {
    pub fn retry_after(&self) -> u64 {
        (self.reset - now_ms() / 1000).max(1) as u64
    }
}

impl RateLimiter {
    pub fn new(limit_per_hour: u32, store: &Store) -> Self {
        let counts = match store.backend() {
            Backend::Postgres => {
                Counts::Shared { store: store.clone(), blocks: Mutex::new(Recent::new(MAX_KEYS)) }
            }
            Backend::Sqlite => Counts::Local(Mutex::new(Recent::new(MAX_KEYS))),
        };
        RateLimiter { limit: limit_per_hour, window_ms: 3_600_000, counts }
    }

    /// Counts a request. `Ok(Err(quota))` when the limit is already reached.
    pub async fn hit(&self, key: &str) -> StoreResult<Result<Quota, Quota>> {
        let now = now_ms();
        let hashed;
        let key = if key.len() > MAX_KEY_LEN {
            hashed =
                format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes())));
            &hashed
        } else {
            key
        };
        let (hits, start) = match &self.counts {
            Counts::Local(windows) => {
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                let (start, count) = windows.get_or_insert_with(key, || (now, 0));
                if now - *start >= self.window_ms {
                    *start = now;
                    *count = 0;
                }
                // A refused request does not count.
                if *count < self.limit {
                    *count += 1;
                    (i64::from(*count), *start)
                } else {
                    (i64::from(self.limit) + 1, *start)
                }
            }
            Counts::Shared { store, blocks } => self.hit_shared(store, blocks, key, now).await?,
        };
        let reset = (start + self.window_ms + 999) / 1000;
        let limit = i64::from(self.limit);
        Ok(if hits > limit {
            Err(Quota { limit: self.limit, remaining: 0, reset })
        } else {
            Ok(Quota { limit: self.limit, remaining: (limit - hits) as u32, reset })
        })
    }
}

impl RateLimiter {
    /// Spends a hit of this node's block for `key`, taking a new block when it is spent.
    /// Returns the window's hits as this node counts them (this one included) and its start.
    async fn hit_shared(
        &self,
        store: &Store,
        blocks: &Mutex<Recent<Block>>,
        key: &str,
        now: EpochMs,
    ) -> StoreResult<(i64, EpochMs)> {
        let spend = |b: &mut Block| {
            b.unspent -= 1;
            (b.shared_hits - b.unspent, b.window_start)
        };
        {
            let mut blocks = blocks.lock().unwrap_or_else(|e| e.into_inner());
            match blocks.get_mut(key) {
                Some(b) if b.unspent > 0 && now - b.window_start < self.window_ms => return Ok(spend(b)),
                Some(_) => {
                    blocks.remove(key);
                }
                None => {}
            }
        }
        let limit = i64::from(self.limit);
        let size = (limit / 100).clamp(1, MAX_BLOCK);
        let (shared_hits, window_start) = store.hit_rate_window(key, size, now, self.window_ms).await?;
        // Of the hits taken, those within the limit can be spent; none: refused.
        let granted = (limit - (shared_hits - size)).clamp(0, size);
        if granted == 0 {
            return Ok((limit + 1, window_start));
        }
        let mut block = Block { window_start, shared_hits: shared_hits - size + granted, unspent: granted };
        let spent = spend(&mut block);
        if block.unspent > 0 {
            let mut blocks = blocks.lock().unwrap_or_else(|e| e.into_inner());
            // A concurrent request of the same key may have taken a block too: keep both.
            let kept = blocks.get_or_insert_with(key, || Block { unspent: 0, ..block });
            if kept.window_start == block.window_start {
                kept.unspent += block.unspent;
                kept.shared_hits = kept.shared_hits.max(block.shared_hits);
            } else {
                *kept = block;
            }
        }
        Ok(spent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(limit: u32) -> RateLimiter {
        RateLimiter { limit, window_ms: 3_600_000, counts: Counts::Local(Mutex::new(Recent::new(MAX_KEYS))) }
    }

    fn keys(limiter: &RateLimiter) -> usize {
        match &limiter.counts {
            Counts::Local(w) => w.lock().unwrap().len(),
            Counts::Shared { blocks, .. } => blocks.lock().unwrap().len(),
        }
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_stays_bounded_and_spares_a_key_in_use() {
        let limiter = local(3);
        for _ in 0..3 {
            assert!(limiter.hit("login:alice").await.unwrap().is_ok());
        }
        for i in 0..200_000 {
            limiter.hit(&format!("login:attacker-{i}")).await.unwrap().unwrap();
            assert!(keys(&limiter) <= MAX_KEYS);
            // alice's attacker goes on now and then: her window is kept, not reset.
            if i % 10_000 == 0 {
                assert!(limiter.hit("login:alice").await.unwrap().is_err(), "alice's count was lost at {i}");
            }
        }
        assert!(keys(&limiter) <= MAX_KEYS);
        // Long keys count like any other.
        let long = format!("login:{}", "x".repeat(100_000));
        for remaining in [2, 1, 0] {
            assert_eq!(limiter.hit(&long).await.unwrap().unwrap().remaining, remaining);
        }
        assert!(limiter.hit(&long).await.unwrap().is_err());
    }

    #[test]
    fn recent_keeps_what_is_used_and_drops_what_is_not() {
        let mut r = Recent::new(4);
        for k in ["a", "b"] {
            *r.get_or_insert_with(k, || 0) += 1;
        }
        // "c" fills the recent generation again: "a" and "b" become older, then "a" is used.
        *r.get_or_insert_with("c", || 0) += 1;
        assert_eq!(r.get_mut("a").copied(), Some(1));
        *r.get_or_insert_with("d", || 0) += 1;
        *r.get_or_insert_with("e", || 0) += 1;
        assert!(r.len() <= 4);
        assert_eq!(r.get_mut("b"), None, "unused for two generations");
        assert_eq!(r.get_mut("a").copied(), Some(1));
        r.remove("a");
        assert_eq!(r.get_mut("a"), None);
    }
}
