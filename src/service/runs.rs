//! Run history and logs.

use super::{Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, paged};
use crate::domain::{Job, Run};
use crate::store::Page;

/// A run's log: live while the run is going on this node, stored once it ended.
pub enum RunLog {
    Live(cronstack_exec::Log),
    Stored(String),
}

impl Service {
    pub async fn job_runs(&self, job: &Job, req: PageRequest) -> ServiceResult<Page<Run>> {
        paged(req, |limit, offset| self.store.job_runs(job.id, limit, offset)).await
    }

    /// The caller's run by id; someone else's is "not found".
    pub async fn run(&self, caller: &Caller, id: i64) -> ServiceResult<Run> {
        match self.store.run(id).await? {
            Some(r) if r.owner == caller.user_id => Ok(r),
            _ => Err(ServiceError::NotFound(Entity::Run)),
        }
    }

    pub async fn run_log(&self, run: &Run) -> ServiceResult<RunLog> {
        if let Some(live) = self.engine.live_log(run.id) {
            return Ok(RunLog::Live(live));
        }
        Ok(RunLog::Stored(self.store.run_log(run.id).await?.unwrap_or_default()))
    }
}
