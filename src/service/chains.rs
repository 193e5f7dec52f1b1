//! Job chains: checks on a job's `after` entries (the chained runs themselves are recorded by
//! the store with the upstream run's end, see `store::chains`).

use std::collections::BTreeSet;

use super::{Caller, Entity, Service, ServiceError, ServiceResult};
use crate::domain::{ChainAfter, Job};

/// The most `after` entries a job may have.
pub const MAX_AFTER: usize = 32;

impl Service {
    /// Checks a job's `after` entries: each names another job of the caller's (not a hook job;
    /// else 404, code 25), at most once, not the job itself. That the chains close no cycle
    /// is checked as the change is written (`Store::update_job_chained`), under the owner's
    /// chain lock: two concurrent changes cannot each close half of one.
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
            let upstream = self.job(caller, entry.job_id).await.map_err(|e| e.into_reference(Entity::Job))?;
            if upstream.is_hook() {
                return Err(ServiceError::BadReference(Entity::Job));
            }
        }
        Ok(())
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

/// The error for a change that would close the chain cycle `cycle` (in the order runs flow).
pub(super) fn cycle_error(cycle: &[i64]) -> ServiceError {
    ServiceError::invalid(
        "after",
        format!(
            "a chain cycle: {} (each job runs after the one before it)",
            cycle.iter().map(i64::to_string).collect::<Vec<_>>().join(" → ")
        ),
    )
}
