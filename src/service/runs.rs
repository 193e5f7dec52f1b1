//! Run history and logs.

use serde_json::Value;

use super::owned::{Owned, owned};
use super::{Caller, PageRequest, Service, ServiceError, ServiceResult, paged};
use crate::domain::{Job, Run, Scope};
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
    pub async fn run(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Run>> {
        owned(caller, self.store.run(id).await?)
    }

    /// The caller's run by id with its pipeline steps (`None` for a one-command run), read
    /// together.
    pub async fn run_with_steps(
        &self,
        caller: &Caller,
        id: i64,
    ) -> ServiceResult<(Owned<Run>, Option<Value>)> {
        let (run, steps) = self.store.run_with_steps(id).await?.map_or((None, None), |(r, s)| (Some(r), s));
        Ok((owned(caller, run)?, steps))
    }

    /// Kills the caller's run, on whichever node it goes (it ends `killed`); answers the run as
    /// it stands a moment later. A run that has ended is a conflict.
    pub async fn kill_run(&self, caller: &Caller, id: i64) -> ServiceResult<Run> {
        caller.require(Scope::Public)?;
        let run = self.run(caller, id).await?;
        if run.status.is_final() {
            return Err(ServiceError::Conflict(format!("run {id} has already ended ({})", run.status)));
        }
        self.engine.kill_run(&self.store, id).await?;
        // A process that honours SIGTERM ends within milliseconds: answer its end if it comes.
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = self.run(caller, id).await?;
            if now.status.is_final() {
                return Ok(now.into_inner());
            }
        }
        self.run(caller, id).await.map(Owned::into_inner)
    }

    pub async fn run_log(&self, run: &Run) -> ServiceResult<RunLog> {
        if let Some(live) = self.engine.live_log(run.id) {
            return Ok(RunLog::Live(live));
        }
        Ok(RunLog::Stored(self.store.run_log(run.id).await?.unwrap_or_default()))
    }
}
