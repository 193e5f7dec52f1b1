//! Read caches for what API reads ask for on every request: the token, the job, its schedule,
//! its stack, a page of jobs.
//!
//! Why: on SQLite every query is a hand-off to sqlx's connection thread and back, and those
//! hand-offs were most of an API read's cost (bench/RESULTS.md, "API reads").
//!
//! Coherence: every write of this node invalidates what it touched right after it commits,
//! and a row read from the database is kept only if no invalidation of its cache happened
//! while it was being read, so a stale row cannot outlive the write that replaced it (and a
//! caller who got the write's answer reads the new row). Only what is found is cached, never
//! an absence, so rows that others insert (the offline `cronstack user add`) need no
//! invalidation. Rows that others may change without telling this node are not cached: on
//! PostgreSQL other nodes write jobs (claims) and stacks, so there only tokens are, and only
//! for [`SHARED_TOKEN_TTL`], the delay before a token revoked on another node is refused here.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Backend;

/// How long another node's revocation of a token may take to reach this one (PostgreSQL).
pub const SHARED_TOKEN_TTL: Duration = Duration::from_secs(5);

/// A bounded map of rows read from the database, coherent with this node's writes.
pub(super) struct ReadCache<K, V> {
    state: Mutex<CacheState<K, V>>,
    capacity: usize,
    ttl: Option<Duration>,
    enabled: bool,
}

struct CacheState<K, V> {
    /// Bumped by every invalidation: a fill that began before it is dropped.
    generation: u64,
    entries: HashMap<K, (V, Instant)>,
}

/// What a lookup that missed hands to the fill: the generation the read started in.
pub(super) struct Ticket(u64);

impl<K: Hash + Eq, V: Clone> ReadCache<K, V> {
    fn new(capacity: usize, ttl: Option<Duration>, enabled: bool) -> Self {
        ReadCache {
            state: Mutex::new(CacheState { generation: 0, entries: HashMap::new() }),
            capacity,
            ttl,
            enabled,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState<K, V>> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, key: &K) -> Result<V, Ticket> {
        let state = self.state();
        match state.entries.get(key) {
            Some((value, at)) if self.enabled && self.ttl.is_none_or(|ttl| at.elapsed() < ttl) => {
                Ok(value.clone())
            }
            _ => Err(Ticket(state.generation)),
        }
    }

    fn fill(&self, ticket: Ticket, key: K, value: V) {
        if !self.enabled {
            return;
        }
        let mut state = self.state();
        if state.generation != ticket.0 {
            return;
        }
        if state.entries.len() >= self.capacity {
            // Drop an arbitrary eighth (the map's order): cheap, and no entry is pinned.
            let mut to_drop = self.capacity / 8 + 1;
            state.entries.retain(|_, _| {
                if to_drop == 0 {
                    return true;
                }
                to_drop -= 1;
                false
            });
        }
        state.entries.insert(key, (value, Instant::now()));
    }

    /// The cached value for `key`, or what `load` reads (kept when found).
    pub(super) async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<Option<V>, E>
    where
        F: Future<Output = Result<Option<V>, E>>,
    {
        let ticket = match self.lookup(&key) {
            Ok(value) => return Ok(Some(value)),
            Err(ticket) => ticket,
        };
        let value = load.await?;
        if let Some(v) = &value {
            self.fill(ticket, key, v.clone());
        }
        Ok(value)
    }

    pub(super) fn get(&self, key: &K) -> Option<V> {
        self.lookup(key).ok()
    }

    /// Keeps a mapping that never changes once made (a uid's id), whatever happened meanwhile.
    pub(super) fn remember(&self, key: K, value: V) {
        let ticket = Ticket(self.state().generation);
        self.fill(ticket, key, value);
    }

    pub(super) fn invalidate(&self, key: &K) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(key);
    }

    pub(super) fn invalidate_where(&self, stale: impl Fn(&V) -> bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|_, (v, _)| !stale(v));
    }

    pub(super) fn clear(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }
}

/// Which listing a cached page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum JobListing {
    Owner,
    Stack,
}

/// The store's caches. Rows are capped per cache; pages (each up to a page of jobs) fewer.
pub(super) struct Caches {
    pub tokens: ReadCache<String, super::TokenRecord>,
    pub jobs: ReadCache<i64, crate::domain::Job>,
    /// A job's uid never changes; the job read by its id is checked against the uid.
    pub job_uids: ReadCache<String, i64>,
    pub job_pages: ReadCache<(JobListing, i64, i64, i64), super::Page<crate::domain::Job>>,
    pub schedules: ReadCache<i64, crate::domain::Schedule>,
    pub stacks: ReadCache<i64, crate::domain::Stack>,
    pub stack_uids: ReadCache<String, i64>,
}

impl Caches {
    pub fn for_backend(backend: Backend) -> Self {
        const ROWS: usize = 100_000;
        const PAGES: usize = 4_096;
        let (rows, token_ttl) = match backend {
            Backend::Sqlite => (true, None),
            Backend::Postgres => (false, Some(SHARED_TOKEN_TTL)),
        };
        Caches {
            tokens: ReadCache::new(ROWS, token_ttl, true),
            jobs: ReadCache::new(ROWS, None, rows),
            job_uids: ReadCache::new(ROWS, None, rows),
            job_pages: ReadCache::new(PAGES, None, rows),
            schedules: ReadCache::new(ROWS, None, rows),
            stacks: ReadCache::new(ROWS, None, rows),
            stack_uids: ReadCache::new(ROWS, None, rows),
        }
    }

    /// After a write to these jobs (fields, next slot, status, or deletion) has committed.
    pub fn jobs_changed(&self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            self.jobs.invalidate(&id);
        }
        self.job_pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ReadCache<i64, String> {
        ReadCache::new(16, None, true)
    }

    #[tokio::test]
    async fn a_read_that_overlapped_an_invalidation_is_not_kept() {
        let c = cache();
        let ticket = c.lookup(&1).unwrap_err();
        // A write commits and invalidates while the read is in flight.
        c.invalidate(&1);
        c.fill(ticket, 1, "old".into());
        assert!(c.lookup(&1).is_err(), "the row read before the write must not be kept");
        let v: Result<_, ()> = c.get_or_load(1, async { Ok(Some("new".to_string())) }).await;
        assert_eq!(v.unwrap().as_deref(), Some("new"));
        assert_eq!(c.lookup(&1).ok().as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn absences_are_not_cached_and_capacity_holds() {
        let c = cache();
        let none: Result<Option<String>, ()> = c.get_or_load(7, async { Ok(None) }).await;
        assert_eq!(none.unwrap(), None);
        assert!(c.lookup(&7).is_err());
        for k in 0..100 {
            let _: Result<_, ()> = c.get_or_load(k, async move { Ok(Some(k.to_string())) }).await;
        }
        assert!(c.state().entries.len() <= 16);
        assert_eq!(c.lookup(&99).ok().as_deref(), Some("99"), "the newest entry is kept");
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl_and_a_disabled_cache_keeps_nothing() {
        let c: ReadCache<i64, String> = ReadCache::new(16, Some(Duration::from_millis(30)), true);
        let _: Result<_, ()> = c.get_or_load(1, async { Ok(Some("a".to_string())) }).await;
        assert!(c.lookup(&1).is_ok());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.lookup(&1).is_err());
        let off: ReadCache<i64, String> = ReadCache::new(16, None, false);
        let _: Result<_, ()> = off.get_or_load(1, async { Ok(Some("a".to_string())) }).await;
        assert!(off.lookup(&1).is_err());
    }

    #[test]
    fn invalidate_where_drops_matching_values() {
        let c = cache();
        for k in 0..4 {
            let t = c.lookup(&k).unwrap_err();
            c.fill(t, k, format!("v{}", k % 2));
        }
        c.invalidate_where(|v| v == "v1");
        assert!(c.lookup(&1).is_err() && c.lookup(&3).is_err());
        assert!(c.lookup(&0).is_ok() && c.lookup(&2).is_ok());
    }
}
