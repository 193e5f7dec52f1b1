//! Read caches for what API reads ask for on every request: the token, the job, its schedule,
//! its stack, a page of jobs.
//!
//! Why: every query is a round trip (on SQLite a hand-off to sqlx's connection thread and
//! back, on PostgreSQL a network round trip), and those were most of an API read's cost
//! (bench/RESULTS.md, "API reads").
//!
//! Coherence: every write invalidates what it touched right after it commits, and a row read
//! from the database is kept only if no invalidation of its cache happened while it was being
//! read, so a stale row cannot outlive the write that replaced it, and whoever got the
//! write's answer reads the new row from this node. Only what is found is cached, never an
//! absence, so rows that others insert (the offline `cronstack user add`) need no
//! invalidation.
//!
//! On PostgreSQL the other nodes write too (each claim moves a job's next slot). Every write
//! is announced on [`ROWS_CHANNEL`] after it commits, and each node's listener applies the
//! other nodes' announcements: a node serves another node's change once the notification
//! arrived (PostgreSQL delivers it at once; under a millisecond here). The caches serve
//! nothing while the listener is not connected (announcements would be lost), start empty
//! each time it connects, and keep no entry longer than [`SHARED_TTL`], the bound should an
//! announcement ever fail to be sent.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Backend;
use crate::domain::EpochMs;

/// The PostgreSQL channel of row changes, for the other nodes' caches.
pub const ROWS_CHANNEL: &str = "cronstack_rows";

/// On PostgreSQL no cached entry is served after this long.
pub const SHARED_TTL: Duration = Duration::from_secs(5);

/// A bounded map of rows read from the database, coherent with the writes it is told of.
pub(super) struct ReadCache<K, V> {
    state: Mutex<CacheState<K, V>>,
    capacity: usize,
    ttl: Option<Duration>,
    /// Off while writes could go unannounced (PostgreSQL, listener not connected).
    live: Arc<AtomicBool>,
}

struct CacheState<K, V> {
    /// Bumped by every invalidation: a fill that began before it is dropped.
    generation: u64,
    entries: foldhash::HashMap<K, (V, Instant)>,
}

/// What a lookup that missed hands to the fill: the generation the read started in.
pub(super) struct Ticket(u64);

impl<K: Hash + Eq, V: Clone> ReadCache<K, V> {
    fn new(capacity: usize, ttl: Option<Duration>, live: Arc<AtomicBool>) -> Self {
        ReadCache {
            state: Mutex::new(CacheState { generation: 0, entries: foldhash::HashMap::default() }),
            capacity,
            ttl,
            live,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState<K, V>> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn lookup<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Result<V, Ticket>
    where
        K: std::borrow::Borrow<Q>,
    {
        let state = self.state();
        match state.entries.get(key) {
            Some((value, at)) if self.is_live() && self.ttl.is_none_or(|ttl| at.elapsed() < ttl) => {
                Ok(value.clone())
            }
            _ => Err(Ticket(state.generation)),
        }
    }

    fn fill(&self, ticket: Ticket, key: K, value: V) {
        let mut state = self.state();
        // Checked under the lock: going offline clears every cache under it, after the flag.
        if state.generation != ticket.0 || !self.is_live() {
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

    pub(super) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.lookup(key).ok()
    }

    /// Keeps a mapping that never changes once made (a uid's id), whatever happened meanwhile.
    pub(super) fn remember(&self, key: K, value: V) {
        self.fill(self.ticket(), key, value);
    }

    /// For a fill whose value is read from now on.
    fn ticket(&self) -> Ticket {
        Ticket(self.state().generation)
    }

    /// Drops these keys, under one lock however many (a claim batch names hundreds of jobs).
    fn invalidate<'k>(&self, keys: impl IntoIterator<Item = &'k K>)
    where
        K: 'k,
    {
        let mut state = self.state();
        state.generation += 1;
        for key in keys {
            state.entries.remove(key);
        }
    }

    fn invalidate_where(&self, stale: impl Fn(&V) -> bool) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|_, (v, _)| !stale(v));
    }

    fn clear(&self) {
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

/// A committed write, as the caches (this node's and, announced, the others') must know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These jobs changed or went (fields, next slot, status); job pages too.
    Jobs(Vec<i64>),
    /// A job was added: job pages.
    JobAdded,
    Stack(i64),
    Schedule(i64),
    /// A token (by id) was revoked.
    Token(i64),
    /// A user's sessions were ended (a password change).
    User(i64),
    /// Claims committed: each job moved in the database from its slot to its next one
    /// (`None`: no longer scheduled). The jobs changed, as for `Jobs`; and the other nodes'
    /// schedulers drop their standby claims of these slots (`engine::scheduler`).
    Claimed(Vec<SlotMove>),
}

/// `(job, slot, next)`: the job's `next_run_at` went from `slot` to `next` in a claim.
pub type SlotMove = (i64, EpochMs, Option<EpochMs>);

/// Slot moves per payload: at most 63 characters each (three `i64`s, two dots, a comma),
/// 7,560 in all, under PostgreSQL's 8,000-byte cap with the origin.
const MOVES_PER_PAYLOAD: usize = 120;

impl Change {
    /// The notification payloads, each `<origin>:<change>` with the announcing store's origin
    /// in hex (PostgreSQL caps a payload at 8,000 bytes: 300 ids of up to 20 characters).
    pub(super) fn payloads(&self, origin: u64) -> Vec<String> {
        let one = |tag: &str, id: i64| vec![format!("{origin:x}:{tag}{id}")];
        match self {
            Change::Jobs(ids) => ids
                .chunks(300)
                .map(|c| {
                    format!("{origin:x}:j{}", c.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
                })
                .collect(),
            Change::JobAdded => vec![format!("{origin:x}:a")],
            Change::Stack(id) => one("s", *id),
            Change::Schedule(id) => one("c", *id),
            Change::Token(id) => one("t", *id),
            Change::User(id) => one("u", *id),
            Change::Claimed(moves) => moves
                .chunks(MOVES_PER_PAYLOAD)
                .map(|c| {
                    let moves = c.iter().map(|(job, slot, next)| {
                        format!("{job}.{slot}.{}", next.map(|n| n.to_string()).unwrap_or_default())
                    });
                    format!("{origin:x}:m{}", moves.collect::<Vec<_>>().join(","))
                })
                .collect(),
        }
    }

    /// A payload back into its origin and change; `None` for anything else.
    pub fn parse(payload: &str) -> Option<(u64, Change)> {
        let (origin, change) = payload.split_once(':')?;
        let origin = u64::from_str_radix(origin, 16).ok()?;
        let (tag, rest) = change.split_at_checked(1)?;
        let id = || rest.parse::<i64>().ok();
        Some((
            origin,
            match tag {
                "j" => Change::Jobs(rest.split(',').map(str::parse).collect::<Result<_, _>>().ok()?),
                "a" if rest.is_empty() => Change::JobAdded,
                "s" => Change::Stack(id()?),
                "c" => Change::Schedule(id()?),
                "t" => Change::Token(id()?),
                "u" => Change::User(id()?),
                "m" => Change::Claimed(rest.split(',').map(parse_move).collect::<Option<_>>()?),
                _ => return None,
            },
        ))
    }
}

/// `job.slot.next` (`next` empty: none) back into a slot move.
fn parse_move(text: &str) -> Option<SlotMove> {
    let mut parts = text.split('.');
    let job = parts.next()?.parse().ok()?;
    let slot = parts.next()?.parse().ok()?;
    let next = match parts.next()? {
        "" => None,
        n => Some(n.parse().ok()?),
    };
    parts.next().is_none().then_some((job, slot, next))
}

/// Sends the changes of this node to the others, coalesced: one `NOTIFY` per payload of
/// whatever accumulated within a few milliseconds, never one per write. (A commit that
/// notifies takes PostgreSQL's notification queue lock: one per finished run serialized
/// a cluster's commits and cut its claims from 1,000/s to 900/s in bench/run.)
/// `origin` tags the payloads so that this store's listener skips its own changes (applied
/// already, on commit).
pub(super) fn spawn_announcer(
    pool: sqlx::AnyPool,
    origin: u64,
) -> tokio::sync::mpsc::UnboundedSender<Change> {
    use std::collections::BTreeSet;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Change>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let (mut jobs, mut added, mut rest) = (BTreeSet::new(), false, Vec::new());
            // In commit order: a job claimed twice in the window moves twice, in turn.
            let mut claimed = Vec::new();
            let mut next = Some(first);
            while let Some(change) = next {
                match change {
                    Change::Jobs(ids) => jobs.extend(ids),
                    Change::Claimed(moves) => claimed.extend(moves),
                    Change::JobAdded => added = true,
                    other if !rest.contains(&other) => rest.push(other),
                    _ => {}
                }
                next = rx.try_recv().ok();
            }
            if !jobs.is_empty() {
                rest.push(Change::Jobs(jobs.into_iter().collect()));
            } else if added {
                rest.push(Change::JobAdded);
            }
            if !claimed.is_empty() {
                rest.push(Change::Claimed(claimed));
            }
            for payload in rest.iter().flat_map(|c| c.payloads(origin)) {
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(ROWS_CHANNEL)
                    .bind(payload)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "announcing changes to the other nodes: their caches drop them within 5 s");
                }
            }
        }
    });
    tx
}

/// The store's caches. Rows are capped per cache; pages (each up to a page of jobs) fewer.
pub(super) struct Caches {
    live: Arc<AtomicBool>,
    pub tokens: ReadCache<super::TokenDigest, super::TokenRecord>,
    pub jobs: ReadCache<i64, crate::domain::Job>,
    /// A job's uid never changes; the job read by its id is checked against the uid.
    pub job_uids: ReadCache<String, i64>,
    /// Shared, not copied, by the reads they answer: a page is often 30 jobs.
    pub job_pages: ReadCache<(JobListing, i64, i64, i64), Arc<super::Page<crate::domain::Job>>>,
    pub schedules: ReadCache<i64, crate::domain::Schedule>,
    pub stacks: ReadCache<i64, crate::domain::Stack>,
    pub stack_uids: ReadCache<String, i64>,
    /// Session cookies' users, by id (their session epoch is checked on every request).
    pub sessions: ReadCache<i64, super::SessionRecord>,
    /// Bumped by every change applied: rendered bodies are kept under it (`http::memo`).
    changes: AtomicU64,
}

impl Caches {
    pub fn for_backend(backend: Backend) -> Self {
        const ROWS: usize = 100_000;
        const PAGES: usize = 4_096;
        // SQLite: this process is the only writer (others only insert), so always live.
        let (live, ttl) = match backend {
            Backend::Sqlite => (true, None),
            Backend::Postgres => (false, Some(SHARED_TTL)),
        };
        let live = Arc::new(AtomicBool::new(live));
        Caches {
            tokens: ReadCache::new(ROWS, ttl, live.clone()),
            jobs: ReadCache::new(ROWS, ttl, live.clone()),
            job_uids: ReadCache::new(ROWS, ttl, live.clone()),
            job_pages: ReadCache::new(PAGES, ttl, live.clone()),
            schedules: ReadCache::new(ROWS, ttl, live.clone()),
            stacks: ReadCache::new(ROWS, ttl, live.clone()),
            stack_uids: ReadCache::new(ROWS, ttl, live.clone()),
            sessions: ReadCache::new(ROWS, ttl, live.clone()),
            changes: AtomicU64::new(0),
            live,
        }
    }

    /// Invalidates what a committed write touched.
    pub fn apply(&self, change: &Change) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        match change {
            Change::Jobs(ids) => {
                self.jobs.invalidate(ids);
                self.job_pages.clear();
            }
            Change::Claimed(moves) => {
                self.jobs.invalidate(moves.iter().map(|(job, _, _)| job));
                self.job_pages.clear();
            }
            Change::JobAdded => self.job_pages.clear(),
            Change::Stack(id) => self.stacks.invalidate([id]),
            Change::Schedule(id) => self.schedules.invalidate([id]),
            Change::Token(id) => self.tokens.invalidate_where(|t| t.token_id == *id),
            Change::User(id) => self.sessions.invalidate([id]),
        }
    }

    /// The change stamp (bumped by every change applied, and by turning the caches on or
    /// off); `None` while the caches are not live.
    pub fn change_stamp(&self) -> Option<u64> {
        self.live.load(Ordering::Acquire).then(|| self.changes.load(Ordering::Acquire))
    }

    /// Turns the caches on (empty) or off: on PostgreSQL, while the listener hears the other
    /// nodes' changes, and only then.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        self.tokens.clear();
        self.jobs.clear();
        self.job_uids.clear();
        self.job_pages.clear();
        self.schedules.clear();
        self.stacks.clear();
        self.stack_uids.clear();
        self.sessions.clear();
        self.changes.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> ReadCache<i64, String> {
        ReadCache::new(16, None, Arc::new(AtomicBool::new(true)))
    }

    #[tokio::test]
    async fn a_read_that_overlapped_an_invalidation_is_not_kept() {
        let c = cache();
        let ticket = c.lookup(&1).unwrap_err();
        // A write commits and invalidates while the read is in flight.
        c.invalidate([&1]);
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
        let c: ReadCache<i64, String> =
            ReadCache::new(16, Some(Duration::from_millis(30)), Arc::new(AtomicBool::new(true)));
        let _: Result<_, ()> = c.get_or_load(1, async { Ok(Some("a".to_string())) }).await;
        assert!(c.lookup(&1).is_ok());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.lookup(&1).is_err());
        let off: ReadCache<i64, String> = ReadCache::new(16, None, Arc::new(AtomicBool::new(false)));
        let _: Result<_, ()> = off.get_or_load(1, async { Ok(Some("a".to_string())) }).await;
        assert!(off.lookup(&1).is_err());
    }

    #[test]
    fn changes_survive_their_announcement() {
        let many: Vec<i64> = (1..=1200).map(|i| i64::MAX - i).collect();
        for change in [
            Change::Jobs(vec![7]),
            Change::Jobs(many),
            Change::JobAdded,
            Change::Stack(3),
            Change::Schedule(-4),
            Change::Token(9),
            Change::User(5),
            Change::Claimed(vec![(7, 1_733_400_000_000, Some(1_733_400_001_000)), (8, 5, None)]),
            Change::Claimed(
                (0..1000).map(|i| (i64::MIN + i, i64::MIN, (i % 2 == 0).then_some(i64::MIN))).collect(),
            ),
        ] {
            let payloads = change.payloads(u64::MAX);
            assert!(payloads.iter().all(|p| p.len() < 8000), "{change:?}");
            let back: Vec<Change> = payloads
                .iter()
                .map(|p| Change::parse(p).unwrap())
                .map(|(origin, c)| {
                    assert_eq!(origin, u64::MAX);
                    c
                })
                .collect();
            // A long change comes back in parts of its kind, which joined make it again.
            let joined = back.into_iter().reduce(|a, b| match (a, b) {
                (Change::Jobs(mut all), Change::Jobs(part)) => {
                    all.extend(part);
                    Change::Jobs(all)
                }
                (Change::Claimed(mut all), Change::Claimed(part)) => {
                    all.extend(part);
                    Change::Claimed(all)
                }
                (a, b) => panic!("{a:?} then {b:?}"),
            });
            assert_eq!(joined.as_ref(), Some(&change), "every id and move, in order");
            if let Change::Claimed(moves) = &change {
                assert_eq!(
                    payloads.len(),
                    moves.len().div_ceil(MOVES_PER_PAYLOAD),
                    "chunked, not one per claim"
                );
            }
        }
        for junk in [
            "",
            "j1",
            "1:",
            "x:j1",
            "1:x1",
            "1:j",
            "1:j1,,2",
            "1:s",
            "1:sx",
            "1:a1",
            "1:t1.5",
            "1:u",
            "1:m",
            "1:m1",
            "1:m1.2",
            "1:m1.2.3.4",
            "1:m1..3",
            "1:m1.2.3,",
            "1:mx.2.3",
        ] {
            assert_eq!(Change::parse(junk), None, "{junk:?}");
        }
    }

    #[tokio::test]
    async fn caches_serve_only_while_live() {
        let caches = Caches::for_backend(Backend::Postgres);
        let load = |v: i64| async move { Ok::<_, ()>(Some(v)) };
        let _ = caches.job_uids.get_or_load("u".into(), load(1)).await;
        assert_eq!(caches.job_uids.get("u"), None, "not live before the listener is");
        caches.set_live(true);
        let _ = caches.job_uids.get_or_load("u".into(), load(1)).await;
        assert_eq!(caches.job_uids.get("u"), Some(1));
        caches.set_live(false);
        assert_eq!(caches.job_uids.get("u"), None);
        caches.set_live(true);
        assert_eq!(caches.job_uids.get("u"), None, "live again, but emptied");
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
