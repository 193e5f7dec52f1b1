//! Fencing: a node acts on its runs only while it can prove, by its own monotonic clock, that
//! its lease on them is current. The lease is renewed in the database every quarter lease; the
//! other nodes take a run for lost once its `lease_until` (the renewing node's wall clock plus
//! the lease) has passed. A node that has not renewed for three quarters of a lease — it was
//! frozen, or cut off from the database — is *fenced*: it releases no held process, starts
//! nothing and kills its runs' process groups, a quarter lease before anyone else may take them.
//!
//! Fencing narrows the window in which two nodes could act on one run; what closes it is that
//! every run state change is a compare-and-swap on (node, status) in the database.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Fence {
    /// Off on SQLite: one process owns the database, nobody else can take its runs.
    enabled: bool,
    /// How long after a successful renewal was sent this node still trusts its lease.
    trust: Duration,
    /// When the newest successful renewal was sent.
    renewed: Mutex<Instant>,
}

impl Fence {
    pub(super) fn new(enabled: bool, lease: Duration) -> Self {
        Fence { enabled, trust: lease * 3 / 4, renewed: Mutex::new(Instant::now()) }
    }

    /// A renewal sent at `sent` was written.
    pub(super) fn renewed(&self, sent: Instant) {
        let mut renewed = self.renewed.lock().unwrap();
        if sent > *renewed {
            *renewed = sent;
        }
    }

    /// Whether this node may act on its runs now.
    pub(super) fn is_current(&self) -> bool {
        !self.enabled || self.renewed.lock().unwrap().elapsed() < self.trust
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_not_renewed_for_three_quarters_of_it_is_not_trusted() {
        let fence = Fence::new(true, Duration::from_millis(80));
        assert!(fence.is_current());
        std::thread::sleep(Duration::from_millis(70));
        assert!(!fence.is_current(), "60 ms of trust have passed");
        fence.renewed(Instant::now());
        assert!(fence.is_current());
        // An older renewal answered late does not move the proof back.
        fence.renewed(Instant::now() - Duration::from_secs(10));
        assert!(fence.is_current());
    }

    #[test]
    fn a_single_node_is_never_fenced() {
        let fence = Fence::new(false, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(fence.is_current());
    }
}
