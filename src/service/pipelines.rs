//! Stacks as pipelines, seen from the API: public stacks, the Cloud 66 stack fields that sum
//! up a stack's runs (health, last activity).

use super::owned::{Owned, Visible, owned_page, visible};
use super::{Caller, PageRequest, Service, ServiceResult, paged};
use crate::domain::{EpochMs, JobStatus, Stack};
use crate::store::Page;

/// Cloud 66's stack health: 3 healthy, 2 impaired, 4 failed, 0 unknown.
pub fn health(statuses: &[JobStatus]) -> i64 {
    let ran: Vec<&JobStatus> =
        statuses.iter().filter(|s| matches!(s, JobStatus::Success | JobStatus::Failed)).collect();
    let failed = ran.iter().filter(|s| ***s == JobStatus::Failed).count();
    match (ran.len(), failed) {
        (0, _) => 0,
        (_, 0) => 3,
        (n, f) if f == n => 4,
        _ => 2,
    }
}

impl Service {
    /// `GET /blockstacks`: public stacks and the caller's own (public ones only without
    /// credentials).
    pub async fn list_visible_stacks(
        &self,
        caller: Option<&Caller>,
        req: PageRequest,
    ) -> ServiceResult<Page<Visible<Stack>>> {
        let viewer = caller.map(|c| c.user_id);
        let page = paged(req, |limit, offset| self.store.list_visible_stacks(viewer, limit, offset)).await?;
        let items = page
            .items
            .into_iter()
            .map(|s| visible(caller, Some(s), |s| s.public))
            .collect::<ServiceResult<_>>()?;
        Ok(Page { items, total: page.total })
    }

    /// A stack the viewer may read: their own, or a public one (read-only).
    pub async fn visible_stack(&self, caller: Option<&Caller>, id: i64) -> ServiceResult<Visible<Stack>> {
        visible(caller, self.store.stack(id).await?, |s| s.public)
    }

    /// The caller's stacks whose name holds `filter` (Cloud 66's `filter_name`).
    pub async fn list_stacks_named(
        &self,
        caller: &Caller,
        filter: &str,
        req: PageRequest,
    ) -> ServiceResult<Page<Owned<Stack>>> {
        let all = self.store.list_stacks(caller.user_id, i64::MAX, 0).await?;
        let all = owned_page(caller, all)?;
        let matching: Vec<Owned<Stack>> = all.items.into_iter().filter(|s| s.name.contains(filter)).collect();
        let total = matching.len() as i64;
        paged(req, |limit, offset| async move {
            let items = matching.into_iter().skip(offset as usize).take(limit as usize).collect();
            Ok(Page { items, total })
        })
        .await
    }

    /// The stack's Cloud 66 health, from its jobs' last runs.
    pub async fn stack_health(&self, stack: &Owned<Stack>) -> ServiceResult<i64> {
        let statuses: Vec<JobStatus> =
            self.all_stack_jobs(stack).await?.iter().map(|j| j.last_status).collect();
        Ok(health(&statuses))
    }

    /// When the stack last ran or acted, if ever.
    pub async fn stack_last_activity(&self, stack: &Owned<Stack>) -> ServiceResult<Option<EpochMs>> {
        Ok(self.store.stack_last_activity(stack.id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::health;
    use crate::domain::JobStatus::*;

    #[test]
    fn health_follows_the_jobs_last_runs() {
        assert_eq!(health(&[]), 0);
        assert_eq!(health(&[Updated, Started]), 0);
        assert_eq!(health(&[Success, Updated]), 3);
        assert_eq!(health(&[Success, Failed]), 2);
        assert_eq!(health(&[Failed, Failed, Updated]), 4);
    }
}
