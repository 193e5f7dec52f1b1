//! Stacks: what their jobs run, with which environment, and how their hook is reached.

use std::collections::BTreeMap;

use super::jobs::JobPatch;
use super::{
    Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, on_unique, paged, validate_name,
};
use crate::domain::{HookAccess, HookMethod, Job, Scope, Stack, new_uid, now_ms};
use crate::store::{NewStack, Page};

/// Stack fields from a request; `None` leaves a field unchanged (or default on create).
#[derive(Debug, Clone, Default)]
pub struct StackPatch {
    pub name: Option<String>,
    pub command: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    pub workdir: Option<Option<String>>,
    pub webhook: Option<Option<HookAccess>>,
    pub webhook_method: Option<HookMethod>,
    /// Kragle: create the stack's first job on this schedule.
    pub schedule_id: Option<i64>,
    pub enabled: Option<bool>,
}

fn validate_stack(s: &NewStack) -> ServiceResult<()> {
    validate_name("name", &s.name)?;
    if s.command.trim().is_empty() {
        return Err(ServiceError::invalid("command", "must not be empty"));
    }
    if s.command.contains('\0') {
        return Err(ServiceError::invalid("command", "must not contain NUL"));
    }
    for (k, v) in &s.env {
        let valid_key = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(ServiceError::invalid(
                "env",
                format!("{k:?} is not a valid variable name (letters, digits, _)"),
            ));
        }
        if v.contains('\0') {
            return Err(ServiceError::invalid("env", format!("the value of {k} contains NUL")));
        }
    }
    if let Some(dir) = &s.workdir
        && (!dir.starts_with('/') || dir.contains('\0'))
    {
        return Err(ServiceError::invalid("workdir", "must be an absolute path"));
    }
    Ok(())
}

impl StackPatch {
    fn apply(self, s: &mut NewStack) {
        if let Some(v) = self.name {
            s.name = v;
        }
        if let Some(v) = self.command {
            s.command = v;
        }
        if let Some(v) = self.env {
            s.env = v;
        }
        if let Some(v) = self.workdir {
            s.workdir = v;
        }
        if let Some(v) = self.webhook {
            s.webhook = v;
        }
        if let Some(v) = self.webhook_method {
            s.webhook_method = v;
        }
        // A token hook needs a token; keep an existing one.
        if s.webhook == Some(HookAccess::Token) && s.webhook_token.is_none() {
            s.webhook_token = Some(new_uid());
        }
    }
}

impl Service {
    pub async fn create_stack(&self, caller: &Caller, patch: StackPatch) -> ServiceResult<i64> {
        caller.require(Scope::Jobs)?;
        let name = patch.name.clone().ok_or_else(|| ServiceError::invalid("name", "is required"))?;
        if patch.command.is_none() {
            return Err(ServiceError::invalid("command", "is required"));
        }
        let first_job = patch.schedule_id.map(|schedule_id| JobPatch {
            schedule_id: Some(schedule_id),
            enabled: patch.enabled,
            ..JobPatch::default()
        });
        if first_job.is_none() && patch.enabled.is_some() {
            return Err(ServiceError::invalid("enabled", "only makes sense with schedule_id"));
        }
        let mut stack = NewStack {
            name,
            command: String::new(),
            env: BTreeMap::new(),
            workdir: None,
            webhook: None,
            webhook_method: HookMethod::Post,
            webhook_token: None,
        };
        patch.apply(&mut stack);
        validate_stack(&stack)?;
        if let Some(job) = &first_job {
            // Check the schedule before creating anything.
            self.owned_schedule_ref(caller, job.schedule_id.unwrap_or_default()).await?;
        }
        let id = on_unique(
            self.store.insert_stack(caller.user_id, &new_uid(), &stack, now_ms()).await,
            ServiceError::NameTaken(Entity::Stack),
        )?;
        if let Some(mut job) = first_job {
            job.stack_id = Some(id);
            self.create_job(caller, job).await?;
        }
        Ok(id)
    }

    pub async fn update_stack(&self, caller: &Caller, id: i64, patch: StackPatch) -> ServiceResult<Stack> {
        caller.require(Scope::Jobs)?;
        let current = self.stack(caller, id).await?;
        let first_job = patch.schedule_id.map(|schedule_id| JobPatch {
            stack_id: Some(id),
            schedule_id: Some(schedule_id),
            enabled: patch.enabled,
            ..JobPatch::default()
        });
        let mut stack = NewStack {
            name: current.name,
            command: current.command,
            env: current.env,
            workdir: current.workdir,
            webhook: current.webhook,
            webhook_method: current.webhook_method,
            webhook_token: current.webhook_token,
        };
        patch.apply(&mut stack);
        validate_stack(&stack)?;
        on_unique(
            self.store.update_stack(id, &stack, now_ms()).await,
            ServiceError::NameTaken(Entity::Stack),
        )?;
        if let Some(job) = first_job {
            self.create_job(caller, job).await?;
        }
        self.stack(caller, id).await
    }

    /// The caller's stack by id; someone else's is "not found".
    pub async fn stack(&self, caller: &Caller, id: i64) -> ServiceResult<Stack> {
        match self.store.stack(id).await? {
            Some(s) if s.owner == caller.user_id => Ok(s),
            _ => Err(ServiceError::NotFound(Entity::Stack)),
        }
    }

    pub async fn stack_by_name(&self, caller: &Caller, name: &str) -> ServiceResult<Stack> {
        self.store.stack_by_name(caller.user_id, name).await?.ok_or(ServiceError::NotFound(Entity::Stack))
    }

    pub async fn stack_by_uid(&self, caller: &Caller, uid: &str) -> ServiceResult<Stack> {
        match self.store.stack_by_uid(uid).await? {
            Some(s) if s.owner == caller.user_id => Ok(s),
            _ => Err(ServiceError::NotFound(Entity::Stack)),
        }
    }

    pub async fn list_stacks(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Page<Stack>> {
        paged(req, |limit, offset| self.store.list_stacks(caller.user_id, limit, offset)).await
    }

    /// Every job of a stack (for the stack objects' `jobs` lists).
    pub async fn all_stack_jobs(&self, stack: &Stack) -> ServiceResult<Vec<Job>> {
        Ok(self.store.stack_jobs(stack.id, i64::MAX, 0).await?.items.clone())
    }

    /// Checks a stack id given in a payload (Kragle code 24 when it is not the caller's).
    pub(super) async fn owned_stack_ref(&self, caller: &Caller, id: i64) -> ServiceResult<Stack> {
        self.stack(caller, id).await.map_err(|e| e.into_reference(Entity::Stack))
    }
}
