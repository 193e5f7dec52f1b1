//! Inbound hooks (Kragle): a stack run by an HTTP call, its request document on stdin, its
//! stdout as the answer.
//!
//! The runs are recorded under the stack's **hook job**: one job per stack (kind `hook`),
//! created on the first hook or exec call, never scheduled, not listed among the stack's jobs
//! and not changeable through the job endpoints, but readable like any job
//! (`GET /jobs/byid/<id>`, `/jobs/byid/<id>/runs`, `/runs/<id>/log`). It always runs the
//! stack's command, with the stack's environment and working directory, stopped after the hook
//! timeout.

use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::{Caller, Entity, Service, ServiceError, ServiceResult};
use crate::domain::{HookAccess, RunStatus, Scope, Stack, TriggerKind, new_uid, now_ms, parse_output};
use crate::engine::{Launch, RunResult};

/// What the HTTP layer read from a hook call (Kragle's request document).
pub struct HookRequest {
    pub document: Value,
}

/// How a hook's (or exec's) run ended.
#[derive(Debug, Clone)]
pub struct HookAnswer {
    pub run_id: i64,
    pub job_id: i64,
    /// stdout, parsed as JSON when it is JSON; else the error message.
    pub result: Result<Value, String>,
}

impl Service {
    /// A stack that can be called as a hook: it exists and its `webhook` is set. Anyone may
    /// ask (the access mode is checked next), so a stack without a hook is "not found".
    pub async fn hook_stack(&self, id: i64) -> ServiceResult<(Stack, HookAccess)> {
        match self.store.stack(id).await? {
            Some(stack) => match stack.webhook {
                Some(access) => Ok((stack, access)),
                None => Err(ServiceError::NotFound(Entity::Stack)),
            },
            None => Err(ServiceError::NotFound(Entity::Stack)),
        }
    }

    /// `token` access: the stack's hook token, compared in constant time.
    pub fn check_hook_token(&self, stack: &Stack, given: Option<&str>) -> ServiceResult<()> {
        let (Some(expected), Some(given)) = (stack.webhook_token.as_deref(), given) else {
            return Err(ServiceError::Unauthenticated);
        };
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(ServiceError::Unauthenticated)
        }
    }

    /// `user` access: the owner's own credentials; anyone else's are refused as if the stack
    /// did not exist.
    pub fn check_hook_owner(&self, stack: &Stack, caller: &Caller) -> ServiceResult<()> {
        if caller.user_id == stack.owner {
            caller.require(Scope::Public)
        } else {
            Err(ServiceError::NotFound(Entity::Stack))
        }
    }

    /// Runs a hook call: the stack's command with the request document on stdin.
    pub async fn call_hook(&self, stack: &Stack, request: &HookRequest) -> ServiceResult<HookAnswer> {
        self.run_stack(stack, request, TriggerKind::Webhook).await
    }

    /// Kragle's `exec`: the owner runs the stack by hand, hook or no hook.
    pub async fn exec_stack(
        &self,
        caller: &Caller,
        id: i64,
        request: &HookRequest,
    ) -> ServiceResult<HookAnswer> {
        caller.require(Scope::Public)?;
        let stack = self.stack(caller, id).await?;
        self.run_stack(&stack, request, TriggerKind::RunNow).await
    }

    /// Replaces the stack's hook token (Kragle's `token_refresh`); the old one stops working.
    pub async fn refresh_hook_token(&self, caller: &Caller, id: i64) -> ServiceResult<String> {
        caller.require(Scope::Jobs)?;
        let stack = self.stack(caller, id).await?;
        let token = new_uid();
        self.store.set_webhook_token(stack.id, &token, now_ms()).await?;
        Ok(token)
    }

    /// Records a run of the stack's hook job, runs it and waits for its end.
    async fn run_stack(
        &self,
        stack: &Stack,
        request: &HookRequest,
        trigger: TriggerKind,
    ) -> ServiceResult<HookAnswer> {
        let job = self.store.hook_job(stack, now_ms()).await?;
        let run = self.new_run(&job, trigger, Vec::new()).await?;
        let mut runs_as = job.clone();
        runs_as.command = None;
        runs_as.timeout_s = Some(self.settings.hook_timeout_s.max(1) as i64);
        let (done, ended) = oneshot::channel();
        let mut launch = Launch::new(run.clone(), runs_as, stack.clone());
        launch.stdin = Some(serde_json::to_vec(&request.document).expect("JSON serializes"));
        launch.capture_stdout = true;
        launch.done = Some(done);
        self.engine.launch(launch)?;
        let ended = ended
            .await
            .map_err(|_| ServiceError::Unavailable("the node stopped before the run ended".into()))?;
        Ok(HookAnswer { run_id: run.id, job_id: job.id, result: self.hook_result(&ended) })
    }

    fn hook_result(&self, r: &RunResult) -> Result<Value, String> {
        let run = r.run_id;
        match (r.status, r.exit_code) {
            (RunStatus::Succeeded, _) => Ok(parse_output(r.stdout.as_deref().unwrap_or(""))),
            (RunStatus::TimedOut, _) => Err(format!(
                "the command timed out after {} s (run {run})",
                self.settings.hook_timeout_s.max(1)
            )),
            (RunStatus::Failed, Some(code)) => {
                Err(format!("the command failed with exit code {code} (run {run})"))
            }
            // Never started: the log holds why (the node is shutting down, a bad workdir…).
            (RunStatus::Failed, None) if r.stdout.is_none() => Err(format!("{} (run {run})", r.log.trim())),
            (RunStatus::Failed, None) => Err(format!("the command was ended by a signal (run {run})")),
            (status, _) => Err(format!("the run ended {status} (run {run})")),
        }
    }
}
