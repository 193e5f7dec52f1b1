//! Stacks: what their jobs run, with which environment, and how their hook is reached.

use std::collections::BTreeMap;

use super::jobs::JobPatch;
use super::owned::{Owned, owned, owned_page};
use super::{
    Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, on_unique, paged, validate_name,
};
use crate::blocks::parse_blocks;
use crate::domain::{HookAccess, HookMethod, Job, Scope, SealedEnv, Stack, new_uid, now_ms};
use crate::secrets::{Secret, SecretKey};
use crate::store::{NewStack, Page, Unique};

/// Changes to a stack's secret env, by name: a value sets the variable, `None` removes it;
/// the variables not named stay (their values cannot be read back to send them again).
pub type SecretChanges = BTreeMap<String, Option<Secret>>;

/// Shorter secret values are refused: masking every `ab` in a run's output would hide the
/// output, not the secret.
pub const MIN_SECRET_LEN: usize = 4;

/// Stack fields from a request; `None` leaves a field unchanged (or default on create).
#[derive(Debug, Clone, Default)]
pub struct StackPatch {
    pub name: Option<String>,
    pub command: Option<String>,
    pub env: Option<BTreeMap<String, String>>,
    /// `Some(None)`: remove every secret variable.
    pub secret_env: Option<Option<SecretChanges>>,
    pub workdir: Option<Option<String>>,
    pub webhook: Option<Option<HookAccess>>,
    pub webhook_method: Option<HookMethod>,
    /// Kragle: create the stack's first job on this schedule.
    pub schedule_id: Option<i64>,
    pub enabled: Option<bool>,
    /// Kragle's `blocks`, as sent (checked by `crate::blocks::parse_blocks`).
    pub blocks: Option<Vec<serde_json::Value>>,
    pub public: Option<bool>,
    /// `Some(None)`: back to the default ("production").
    pub environment: Option<Option<String>>,
}

fn validate_stack(s: &NewStack) -> ServiceResult<()> {
    validate_name("name", &s.name)?;
    if let Some(env) = &s.environment
        && (env.trim().is_empty() || env.chars().count() > 100 || env.contains('\0'))
    {
        return Err(ServiceError::invalid("environment", "must be 1 to 100 characters"));
    }
    if s.blocks.is_some() {
        // A pipeline's commands are its Shell command blocks' (checked as they were read).
    } else if s.command.trim().is_empty() {
        return Err(ServiceError::invalid("command", "must not be empty"));
    }
    if s.command.contains('\0') {
        return Err(ServiceError::invalid("command", "must not contain NUL"));
    }
    for (k, v) in &s.env {
        validate_variable("env", k, v)?;
    }
    if let Some(k) = s.env.keys().find(|k| s.secret_env.contains(k)) {
        return Err(ServiceError::invalid(
            "secret_env",
            format!("{k} is also in env: a variable is either plain or secret"),
        ));
    }
    if let Some(dir) = &s.workdir
        && (!dir.starts_with('/') || dir.contains('\0'))
    {
        return Err(ServiceError::invalid("workdir", "must be an absolute path"));
    }
    Ok(())
}

/// A variable's name (letters, digits, `_`, not starting with a digit) and value (no NUL).
fn validate_variable(field: &str, name: &str, value: &str) -> ServiceResult<()> {
    let valid_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(ServiceError::invalid(
            field,
            format!("{name:?} is not a valid variable name (letters, digits, _)"),
        ));
    }
    if value.contains('\0') {
        return Err(ServiceError::invalid(field, format!("the value of {name} contains NUL")));
    }
    Ok(())
}

/// Applies secret env changes to `sealed`, sealing new values for the stack `uid`.
fn apply_secrets(
    changes: Option<SecretChanges>,
    sealed: &mut SealedEnv,
    key: Option<&SecretKey>,
    uid: &str,
) -> ServiceResult<()> {
    let Some(changes) = changes else {
        *sealed = SealedEnv::default();
        return Ok(());
    };
    for (name, value) in changes {
        let Some(value) = value else {
            validate_variable("secret_env", &name, "")?;
            sealed.remove(&name);
            continue;
        };
        validate_variable("secret_env", &name, value.expose())?;
        if value.expose().chars().count() < MIN_SECRET_LEN {
            return Err(ServiceError::invalid(
                "secret_env",
                format!(
                    "the value of {name} is too short to be kept secret: at least {MIN_SECRET_LEN} characters (every occurrence in a run's output is masked)"
                ),
            ));
        }
        let key = key.ok_or_else(|| ServiceError::Unavailable("this server has no secret key".into()))?;
        sealed.insert(name.clone(), key.seal(uid, &name, &value));
    }
    Ok(())
}

impl StackPatch {
    /// Applies the patch to `s`, the stack `uid`'s fields (secret values are sealed here).
    fn apply(self, s: &mut NewStack, key: Option<&SecretKey>, uid: &str) -> ServiceResult<()> {
        if let Some(changes) = self.secret_env {
            apply_secrets(changes, &mut s.secret_env, key, uid)?;
        }
        if let Some(v) = self.name {
            s.name = v;
        }
        if self.command.is_some() && self.blocks.is_some() {
            return Err(ServiceError::invalid("blocks", "give either command or blocks, not both"));
        }
        if let Some(v) = self.command {
            // `command` is shorthand for one Shell command block: the stack runs it as before.
            s.command = v;
            s.blocks = None;
        }
        if let Some(raw) = self.blocks {
            // New blocks are numbered after the stack's earlier ones: state never passes on
            // to a block it was not kept for.
            let first_id = s.blocks.iter().flatten().map(|b| b.id).max().unwrap_or(0) + 1;
            let blocks =
                parse_blocks(&raw, first_id).map_err(|e| ServiceError::invalid(&e.field, e.message))?;
            s.command = String::new();
            s.blocks = Some(blocks);
        }
        if let Some(v) = self.public {
            s.public = v;
        }
        if let Some(v) = self.environment {
            s.environment = v;
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
        Ok(())
    }
}

impl Service {
    pub async fn create_stack(&self, caller: &Caller, patch: StackPatch) -> ServiceResult<i64> {
        caller.require(Scope::Jobs)?;
        let name = patch.name.clone().ok_or_else(|| ServiceError::invalid("name", "is required"))?;
        if patch.command.is_none() && patch.blocks.is_none() {
            return Err(ServiceError::invalid("command", "is required (or blocks)"));
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
            secret_env: SealedEnv::default(),
            workdir: None,
            webhook: None,
            webhook_method: HookMethod::Post,
            webhook_token: None,
            blocks: None,
            public: false,
            environment: None,
        };
        let uid = new_uid();
        patch.apply(&mut stack, self.settings.secret_key.as_ref(), &uid)?;
        validate_stack(&stack)?;
        if let Some(job) = &first_job {
            // Check the schedule before creating anything.
            self.owned_schedule_ref(caller, job.schedule_id.unwrap_or_default()).await?;
        }
        let id = on_unique(
            self.store.insert_stack(caller.user_id, &uid, &stack, now_ms()).await,
            &[Unique::StackName],
            ServiceError::NameTaken(Entity::Stack),
        )?;
        if let Some(mut job) = first_job {
            job.stack_id = Some(id);
            self.create_job(caller, job).await?;
        }
        Ok(id)
    }

    pub async fn update_stack(
        &self,
        caller: &Caller,
        id: i64,
        patch: StackPatch,
    ) -> ServiceResult<Owned<Stack>> {
        caller.require(Scope::Jobs)?;
        let current = self.stack(caller, id).await?.into_inner();
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
            secret_env: current.secret_env,
            workdir: current.workdir,
            webhook: current.webhook,
            webhook_method: current.webhook_method,
            webhook_token: current.webhook_token,
            blocks: current.blocks,
            public: current.public,
            environment: current.environment,
        };
        patch.apply(&mut stack, self.settings.secret_key.as_ref(), &current.uid)?;
        validate_stack(&stack)?;
        on_unique(
            self.store.update_stack(id, &stack, now_ms()).await,
            &[Unique::StackName],
            ServiceError::NameTaken(Entity::Stack),
        )?;
        if let Some(job) = first_job {
            self.create_job(caller, job).await?;
        }
        self.stack(caller, id).await
    }

    /// The caller's stack by id; someone else's is "not found".
    pub async fn stack(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Stack>> {
        owned(caller, self.store.stack(id).await?)
    }

    pub async fn stack_by_name(&self, caller: &Caller, name: &str) -> ServiceResult<Owned<Stack>> {
        owned(caller, self.store.stack_by_name(caller.user_id, name).await?)
    }

    pub async fn stack_by_uid(&self, caller: &Caller, uid: &str) -> ServiceResult<Owned<Stack>> {
        owned(caller, self.store.stack_by_uid(uid).await?)
    }

    pub async fn list_stacks(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Page<Owned<Stack>>> {
        let page = paged(req, |limit, offset| self.store.list_stacks(caller.user_id, limit, offset)).await?;
        owned_page(caller, page)
    }

    /// Every job of a stack (for the stack objects' `jobs` lists).
    pub async fn all_stack_jobs(&self, stack: &Owned<Stack>) -> ServiceResult<Vec<Job>> {
        Ok(self.store.stack_jobs(stack.id, i64::MAX, 0).await?.items.clone())
    }

    /// Checks a stack id given in a payload (Kragle code 24 when it is not the caller's).
    pub(super) async fn owned_stack_ref(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Stack>> {
        self.stack(caller, id).await.map_err(|e| e.into_reference(Entity::Stack))
    }
}
