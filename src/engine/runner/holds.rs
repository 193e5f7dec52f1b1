//! The runs a node holds: those whose lease it renews. A run whose end is being written stays
//! held until the write is answered (should it fail, the lease still covers the run), but a
//! renewal that no longer finds it unended must not take it for one another node took: its
//! end may have committed before the renewal read it and the writer's task not yet run again
//! (one loaded node of three at 1,000 runs a second reported 110 such runs "taken").

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Default)]
pub(super) struct Holds {
    /// Run id → whether its end is being written.
    runs: Mutex<HashMap<i64, bool>>,
}

impl Holds {
    pub(super) fn hold(&self, run_id: i64) {
        self.runs.lock().unwrap().insert(run_id, false);
    }

    /// The run's end is being written: from now a renewal that misses it is not a take-over.
    pub(super) fn ending(&self, run_id: i64) {
        if let Some(ending) = self.runs.lock().unwrap().get_mut(&run_id) {
            *ending = true;
        }
    }

    pub(super) fn release(&self, run_id: i64) {
        self.runs.lock().unwrap().remove(&run_id);
    }

    pub(super) fn contains(&self, run_id: i64) -> bool {
        self.runs.lock().unwrap().contains_key(&run_id)
    }

    pub(super) fn ids(&self) -> Vec<i64> {
        self.runs.lock().unwrap().keys().copied().collect()
    }

    /// After a renewal of `asked` that renewed `renewed`: the runs another node took, no longer
    /// held from now. Not those released meanwhile, nor those whose end is being written.
    pub(super) fn take_lost(&self, asked: Vec<i64>, renewed: &HashSet<i64>) -> Vec<i64> {
        let mut runs = self.runs.lock().unwrap();
        let taken: Vec<i64> = asked
            .into_iter()
            .filter(|id| !renewed.contains(id) && runs.get(id).is_some_and(|ending| !ending))
            .collect();
        for id in &taken {
            runs.remove(id);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_whose_end_is_being_written_is_not_taken() {
        let holds = Holds::default();
        for id in 1..=4 {
            holds.hold(id);
        }
        holds.ending(2); // its end committed before the renewal read it
        holds.release(3); // its end written and answered before the renewal returned
        let asked = holds.ids();
        holds.hold(5); // held after the renewal was sent: not asked about
        let renewed: HashSet<i64> = [4].into();
        assert_eq!(holds.take_lost(asked, &renewed), [1]);
        let mut left = holds.ids();
        left.sort_unstable();
        assert_eq!(left, [2, 4, 5]);
        holds.release(2);
        assert!(!holds.contains(2) && holds.contains(4));
    }
}
