//! Job chains: checks on a job's `after` entries (the chained runs themselves are recorded by
//! the store with the upstream run's end, see `store::chains`).

use std::collections::{BTreeMap, BTreeSet};

use super::{Caller, Entity, Service, ServiceError, ServiceResult};
use crate::domain::{ChainAfter, Job};

/// The most `after` entries a job may have.
pub const MAX_AFTER: usize = 32;

impl Service {
    /// Checks a job's `after` entries: each names another job of the caller's (not a hook job;
    /// else 404, code 25), at most once; and, for an existing job (`job_id`), the chains
    /// close no cycle (400, code 4, naming it).
    pub(super) async fn check_after(
        &self,
        caller: &Caller,
        job_id: Option<i64>,
        after: &[ChainAfter],
    ) -> ServiceResult<()> {
        if after.len() > MAX_AFTER {
            return Err(ServiceError::invalid("after", format!("takes at most {MAX_AFTER} entries")));
        }
        let mut seen = BTreeSet::new();
        for entry in after {
            if !seen.insert(entry.job_id) {
                return Err(ServiceError::invalid(
                    "after",
                    format!("names job {} twice: one entry per upstream job", entry.job_id),
                ));
            }
            if Some(entry.job_id) == job_id {
                return Err(ServiceError::invalid(
                    "after",
                    format!("a chain cycle: {0} → {0} (a job cannot run after itself)", entry.job_id),
                ));
            }
            match self.store.job(entry.job_id).await? {
                Some(j) if j.owner == caller.user_id && !j.is_hook() => {}
                _ => return Err(ServiceError::BadReference(Entity::Job)),
            }
        }
        let Some(job_id) = job_id else { return Ok(()) };
        let mut graph = self.store.chained_jobs(caller.user_id).await?;
        graph.insert(job_id, after.to_vec());
        match find_cycle(&graph, job_id) {
            Some(cycle) => Err(ServiceError::invalid(
                "after",
                format!(
                    "a chain cycle: {} (each job runs after the one before it)",
                    cycle.iter().map(i64::to_string).collect::<Vec<_>>().join(" → ")
                ),
            )),
            None => Ok(()),
        }
    }
}

impl Service {
    /// After a change of a job: a paused job, or one whose `after` changed, forgets the
    /// upstream runs its fan-in had counted — it neither runs nor queues while paused, and a
    /// new chain starts afresh.
    pub(super) async fn forget_chain_marks(&self, before: &Job, after: &Job) -> ServiceResult<()> {
        if (before.enabled && !after.enabled) || before.after != after.after {
            self.store.clear_chain_marks(after.id).await?;
        }
        Ok(())
    }
}

/// A cycle through `start` in the chains of `graph` (job → the jobs it runs after), in the
/// order runs flow (upstream → downstream), from `start` back to it.
fn find_cycle(graph: &BTreeMap<i64, Vec<ChainAfter>>, start: i64) -> Option<Vec<i64>> {
    // Depth-first along `after` (downstream → upstream) until `start` comes round again.
    let mut path = vec![start];
    let mut visited = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<i64, Vec<ChainAfter>>,
        start: i64,
        at: i64,
        path: &mut Vec<i64>,
        visited: &mut BTreeSet<i64>,
    ) -> bool {
        for up in graph.get(&at).into_iter().flatten().map(|a| a.job_id) {
            if up == start {
                path.push(up);
                return true;
            }
            if visited.insert(up) {
                path.push(up);
                if walk(graph, start, up, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    if !walk(graph, start, start, &mut path, &mut visited) {
        return None;
    }
    path.reverse();
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChainOn;

    fn graph(edges: &[(i64, &[i64])]) -> BTreeMap<i64, Vec<ChainAfter>> {
        edges
            .iter()
            .map(|(job, ups)| {
                (*job, ups.iter().map(|u| ChainAfter { job_id: *u, on: ChainOn::Success }).collect())
            })
            .collect()
    }

    #[test]
    fn cycles_are_named_in_the_order_runs_flow() {
        // 3 runs after 5, 5 after 7, 7 after 3: runs flow 3 → 7 → 5 → 3.
        let g = graph(&[(3, &[5]), (5, &[7]), (7, &[3])]);
        assert_eq!(find_cycle(&g, 3), Some(vec![3, 7, 5, 3]));
        assert_eq!(find_cycle(&graph(&[(3, &[5]), (5, &[3])]), 5), Some(vec![5, 3, 5]));
        // A diamond is no cycle: 4 after 2 and 3, both after 1.
        let g = graph(&[(4, &[2, 3]), (2, &[1]), (3, &[1])]);
        assert_eq!(find_cycle(&g, 4), None);
        assert_eq!(find_cycle(&g, 1), None);
    }
}
