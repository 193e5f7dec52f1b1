//! Which node should claim a slot. In a cluster every node holds every job and could claim
//! any slot; the database makes sure only one does. Racing for every slot splits the work by
//! luck and makes the claimers trip over each other's row locks, so each (job, slot) has a
//! preferred node — the live node with the highest hash of (node, job, slot), rendezvous
//! hashing — which claims it as soon as it is due. The others try it only [`STANDBY_MS`] after
//! the slot, in case the preferred node is frozen or dead. Preference only orders the
//! attempts: the claim in the database stays the one guarantee that a slot runs once.
//!
//! The live set is read by the node's own heartbeat (see `cluster::heartbeat`) and kept here
//! as a snapshot the scheduler reads without a query. On SQLite (one node) and for a node
//! alone, this node is preferred for everything and nothing waits.

use std::sync::{Arc, RwLock};

use crate::domain::EpochMs;

/// How long after a slot a node that is not its preferred node waits before claiming it.
///
/// The preferred node claims a lookahead (200 ms by default) before the slot, so a healthy
/// one has long committed by then — the standby's attempt finds the slot taken (`Lost`)
/// without waiting on a single lock — even when its batch took a few hundred milliseconds on
/// a loaded database. It stays well under the missed-run grace (1 s), so a slot taken over
/// from a frozen node still runs as an ordinary slot, only this much late, and under the
/// shortest period (1 s) less the lookahead, so the standby's attempt is over before the job's
/// next slot is claimed. A node that stopped beating drops out of the live set within
/// [`LIVE_MS`] and its slots are then claimed without this delay.
pub(super) const STANDBY_MS: EpochMs = 250;

/// A node whose heartbeat (every second) was seen within this window counts as live: a few
/// beats, so one slow write does not reshuffle the preferences.
pub(super) const LIVE_MS: EpochMs = 3000;

/// The live nodes as this node last read them, shared between its heartbeat and scheduler.
pub(super) struct Preference {
    me: u64,
    /// The hashes of the live nodes' ids, this node's always among them.
    live: RwLock<Arc<[u64]>>,
    /// Whether the heartbeat has announced this node and read the live set once since.
    joined: tokio::sync::watch::Sender<bool>,
}

impl Preference {
    /// Alone until the first heartbeat has read the others.
    pub(super) fn new(node_id: &str) -> Self {
        let me = node_hash(node_id);
        Preference { me, live: RwLock::new(Arc::from([me])), joined: tokio::sync::watch::Sender::new(false) }
    }

    /// The live set has been read once since this node announced itself.
    pub(super) fn set_joined(&self) {
        self.joined.send_replace(true);
    }

    /// Waits until this node has joined (see `cluster::heartbeat`), at most `limit`: a node
    /// that claimed before it knew the others would claim every slot they claim too, and
    /// nodes started together then trip over each other's row locks for their first seconds
    /// (bench `cluster`: groups started up to 1 s late in the first 4 s of a 3-node start).
    pub(super) async fn joined(&self, limit: std::time::Duration) {
        let mut joined = self.joined.subscribe();
        let _ = tokio::time::timeout(limit, joined.wait_for(|j| *j)).await;
    }

    /// Replaces the live set (this node is always in it).
    pub(super) fn set_live<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut live: Vec<u64> = ids.into_iter().map(node_hash).collect();
        live.push(self.me);
        live.sort_unstable();
        live.dedup();
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = live.into();
    }

    /// The live set now, for one round of decisions.
    pub(super) fn snapshot(&self) -> Live {
        Live { me: self.me, nodes: self.live.read().unwrap_or_else(|e| e.into_inner()).clone() }
    }
}

/// A snapshot of the live set.
pub(super) struct Live {
    me: u64,
    nodes: Arc<[u64]>,
}

impl Live {
    /// Whether this node is the preferred claimer of the job's slot.
    pub(super) fn mine(&self, job_id: i64, slot: EpochMs) -> bool {
        self.nodes.len() <= 1 || preferred(&self.nodes, job_id, slot) == Some(self.me)
    }
}

/// The node (by hash) with the highest score for the slot.
fn preferred(nodes: &[u64], job_id: i64, slot: EpochMs) -> Option<u64> {
    let key = mix(mix(job_id as u64) ^ slot as u64);
    nodes.iter().copied().max_by_key(|n| (mix(n ^ key), *n))
}

/// A node id's hash: FNV-1a, stable across processes and builds (unlike std's hasher).
fn node_hash(id: &str) -> u64 {
    let h =
        id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    mix(h)
}

/// SplitMix64's finaliser: every input bit moves about half the output bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("host-{}-{:08x}", 4000 + i, 0x9e37_79b9u32.wrapping_mul(i as u32 + 1)))
            .collect()
    }

    /// (job, slot) pairs like a cluster's: 1,000 jobs firing every second for 10 s.
    fn slots() -> impl Iterator<Item = (i64, EpochMs)> {
        let start = 1_764_950_000_000;
        (1..=1000).flat_map(move |job| (0..10).map(move |s| (job, start + s * 1000)))
    }

    #[test]
    fn three_nodes_split_the_slots_evenly() {
        let nodes: Vec<u64> = ids(3).iter().map(|i| node_hash(i)).collect();
        let mut counts = [0usize; 3];
        for (job, slot) in slots() {
            let p = preferred(&nodes, job, slot).unwrap();
            counts[nodes.iter().position(|n| *n == p).unwrap()] += 1;
        }
        let mean = 10_000.0 / 3.0;
        for c in counts {
            assert!((c as f64 - mean).abs() / mean < 0.04, "uneven split: {counts:?}");
        }
        // Each job's slots go round the nodes too, rather than one node owning the job.
        let per_job: Vec<usize> = (1..=1000)
            .map(|job| {
                let mut seen: Vec<u64> = (0..10).filter_map(|s| preferred(&nodes, job, s * 1000)).collect();
                seen.sort_unstable();
                seen.dedup();
                seen.len()
            })
            .collect();
        assert!(per_job.iter().filter(|n| **n == 1).count() < 10, "jobs stuck to one node");
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_share() {
        let all: Vec<u64> = ids(3).iter().map(|i| node_hash(i)).collect();
        let gone = all[1];
        let left: Vec<u64> = all.iter().copied().filter(|n| *n != gone).collect();
        let (mut moved, mut kept) = (0, 0);
        let mut took = [0usize; 2];
        for (job, slot) in slots() {
            let before = preferred(&all, job, slot).unwrap();
            let after = preferred(&left, job, slot).unwrap();
            if before == gone {
                took[left.iter().position(|n| *n == after).unwrap()] += 1;
            } else {
                assert_eq!(before, after, "a slot of a node that stayed moved");
                kept += 1;
            }
            moved += usize::from(before != after);
        }
        assert_eq!(moved + kept, 10_000);
        // The leaver's share is taken by the others about equally.
        let share = (took[0] + took[1]) as f64 / 2.0;
        for t in took {
            assert!((t as f64 - share).abs() / share < 0.08, "uneven takeover: {took:?}");
        }
    }

    #[tokio::test]
    async fn claims_wait_for_the_join_at_most_the_limit() {
        use std::time::{Duration, Instant};
        let p = Arc::new(Preference::new("host-1"));
        let t = Instant::now();
        p.joined(Duration::from_millis(50)).await;
        assert!(t.elapsed() >= Duration::from_millis(50), "not joined: waits the limit");
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.joined(Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        p.set_joined();
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken by the join").unwrap();
        let t = Instant::now();
        p.joined(Duration::from_secs(30)).await;
        assert!(t.elapsed() < Duration::from_secs(1), "joined: no wait");
    }

    #[test]
    fn the_snapshot_always_holds_this_node_and_alone_it_is_preferred() {
        let ids = ids(3);
        let p = Preference::new(&ids[0]);
        assert!((0..100).all(|job| p.snapshot().mine(job, 1000)), "alone: preferred for all");
        p.set_live(ids[1..].iter().map(String::as_str));
        let live = p.snapshot();
        assert_eq!(live.nodes.len(), 3, "this node is added to what was read");
        let mine = (0..3000).filter(|job| live.mine(*job, 5000)).count();
        assert!((800..1200).contains(&mine), "one in three: {mine}");
        // Every node agrees on who is preferred: exactly one claims at once.
        let views: Vec<Live> = ids
            .iter()
            .map(|id| {
                let p = Preference::new(id);
                p.set_live(ids.iter().map(String::as_str));
                p.snapshot()
            })
            .collect();
        for job in 0..1000 {
            assert_eq!(views.iter().filter(|v| v.mine(job, 7000)).count(), 1);
        }
    }
}
