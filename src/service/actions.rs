//! Asynchronous actions (Cloud 66): run now, pause, unpause, pause all, unpause all.
//! Pause actions finish at once; a run-now action finishes when its run ends.

use serde_json::{Map, Value, json};

use super::owned::Owned;
use super::{Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, paged};
use crate::domain::{Action, ActionKind, Job, Scope, Stack, TriggerKind, now_ms};
use crate::engine::Launch;
use crate::store::Page;

impl Service {
    fn action_record(
        caller: &Caller,
        stack: &Owned<Stack>,
        kind: ActionKind,
        metadata: Map<String, Value>,
    ) -> Action {
        Action {
            id: 0,
            owner: caller.user_id,
            stack_id: stack.id,
            kind,
            started_via: "api".into(),
            started_at: now_ms(),
            finished_at: None,
            finished_success: None,
            finished_message: None,
            finished_result: None,
            metadata,
            run_id: None,
        }
    }

    async fn save_action(&self, mut action: Action) -> ServiceResult<Action> {
        action.id = self.store.insert_action(&action).await?;
        Ok(action)
    }

    /// Starts the job now; the action finishes when the run ends.
    /// Once per `idempotency_key` (see `once_per_key`).
    pub async fn run_now_action(
        &self,
        caller: &Caller,
        stack: &Owned<Stack>,
        job: &Owned<Job>,
        args: Vec<String>,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<Action> {
        caller.require(Scope::Public)?;
        let fingerprint = format!("v3 run_now {} {}", job.uid, json!(args));
        let start = async {
            super::jobs::check_args("job_args", job, stack, &args)?;
            let run = self.new_run(job, TriggerKind::RunNow, args.clone()).await?;
            let mut metadata = Map::new();
            metadata.insert("job_uid".into(), json!(job.uid));
            metadata.insert("run_id".into(), json!(run.id));
            metadata.insert("job_args".into(), json!(args));
            let mut action = Self::action_record(caller, stack, ActionKind::RunNow, metadata);
            action.run_id = Some(run.id);
            // The action exists before the run starts, so its end always finds it.
            let action = self.save_action(action).await?;
            self.engine.launch(Launch::new(run, job.to_inner(), stack.to_inner()))?;
            let id = action.id;
            Ok((action, id))
        };
        self.once_per_key(caller, idempotency_key, fingerprint, start, |id| self.action(stack, id)).await
    }

    pub async fn pause_action(
        &self,
        caller: &Caller,
        stack: &Owned<Stack>,
        job: &Owned<Job>,
        paused: bool,
    ) -> ServiceResult<Action> {
        caller.require(Scope::Public)?;
        let job = self.set_paused(job, paused, false).await?;
        let kind = if paused { ActionKind::Pause } else { ActionKind::Unpause };
        let mut metadata = Map::new();
        metadata.insert("job_uid".into(), json!(job.uid));
        let result = json!({ "job_uid": job.uid, "paused": !job.enabled });
        self.finished_action(caller, stack, kind, metadata, result).await
    }

    /// Pauses every enabled job of the stack, remembering which (so `unpause_all` restores
    /// only those, leaving jobs paused by hand as they were).
    pub async fn pause_all_action(
        &self,
        caller: &Caller,
        stack: &Owned<Stack>,
        paused: bool,
    ) -> ServiceResult<Action> {
        caller.require(Scope::Public)?;
        let mut changed = Vec::new();
        for job in self.all_stack_jobs(stack).await? {
            let affected = if paused { job.enabled } else { job.paused_by_all };
            if affected {
                let job = self.set_paused(&job, paused, paused).await?;
                changed.push(job.uid);
            }
        }
        let kind = if paused { ActionKind::PauseAll } else { ActionKind::UnpauseAll };
        let result = json!({ "jobs": changed });
        self.finished_action(caller, stack, kind, Map::new(), result).await
    }

    async fn finished_action(
        &self,
        caller: &Caller,
        stack: &Owned<Stack>,
        kind: ActionKind,
        metadata: Map<String, Value>,
        result: Value,
    ) -> ServiceResult<Action> {
        let mut action = Self::action_record(caller, stack, kind, metadata);
        action.finished_at = Some(now_ms());
        action.finished_success = Some(true);
        action.finished_message = Some("done".into());
        action.finished_result = Some(result);
        self.save_action(action).await
    }

    pub async fn action(&self, stack: &Owned<Stack>, id: i64) -> ServiceResult<Action> {
        match self.store.action(id).await? {
            Some(a) if a.stack_id == stack.id => Ok(a),
            _ => Err(ServiceError::NotFound(Entity::Action)),
        }
    }

    pub async fn stack_actions(&self, stack: &Owned<Stack>, req: PageRequest) -> ServiceResult<Page<Action>> {
        paged(req, |limit, offset| self.store.stack_actions(stack.id, limit, offset)).await
    }
}
