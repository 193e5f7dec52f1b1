//! Schedules: reusable fire-time rules, refused while invalid, frozen while in use.

use super::owned::{Owned, owned};
use super::{Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, paged, validate_name};
use crate::domain::{Schedule, ScheduleConfig, Scope, now_ms};
use crate::store::Page;

impl Service {
    pub async fn create_schedule(
        &self,
        caller: &Caller,
        name: Option<String>,
        once: Option<bool>,
        config: Option<&serde_json::Value>,
    ) -> ServiceResult<i64> {
        caller.require(Scope::Jobs)?;
        if let Some(name) = &name {
            validate_name("name", name)?;
        }
        let config = config.ok_or_else(|| ServiceError::InvalidSchedule("config is required".into()))?;
        let config = parse_config(config)?;
        let once = effective_once(&config, once.unwrap_or(false));
        let id = self.store.insert_schedule(caller.user_id, name.as_deref(), once, &config, now_ms()).await?;
        Ok(id)
    }

    pub async fn schedule(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Schedule>> {
        owned(caller, self.store.schedule(id).await?)
    }

    pub async fn list_schedules(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Page<Schedule>> {
        paged(req, |limit, offset| self.store.list_schedules(caller.user_id, limit, offset)).await
    }

    /// Kragle refuses to change a schedule that jobs still use (code 27): their slots were
    /// computed from it.
    pub async fn update_schedule(
        &self,
        caller: &Caller,
        id: i64,
        name: Option<Option<String>>,
        once: Option<bool>,
        config: Option<&serde_json::Value>,
    ) -> ServiceResult<Schedule> {
        caller.require(Scope::Jobs)?;
        let mut schedule = self.schedule(caller, id).await?.into_inner();
        if let Some(name) = name {
            if let Some(n) = &name {
                validate_name("name", n)?;
            }
            schedule.name = name;
        }
        if let Some(config) = config {
            schedule.config = parse_config(config)?;
        }
        if let Some(once) = once {
            schedule.once = once;
        }
        schedule.once = effective_once(&schedule.config, schedule.once);
        if !self.store.update_schedule_if_unused(&schedule, now_ms()).await? {
            return Err(ServiceError::ScheduleInUse);
        }
        self.schedule(caller, id).await.map(Owned::into_inner)
    }

    pub async fn delete_schedule(&self, caller: &Caller, id: i64) -> ServiceResult<()> {
        caller.require(Scope::Jobs)?;
        self.schedule(caller, id).await?;
        if !self.store.delete_schedule_if_unused(id).await? {
            return Err(ServiceError::ScheduleInUse);
        }
        Ok(())
    }

    /// The caller's manual schedule (`{"manual": true}`, unnamed), created on first need: a job
    /// created with `after` and no schedule runs only after its upstream jobs (or when run now).
    pub(super) async fn manual_schedule(&self, caller: &Caller) -> ServiceResult<i64> {
        if let Some(id) = self.store.manual_schedule(caller.user_id).await? {
            return Ok(id);
        }
        let config = ScheduleConfig::Manual;
        Ok(self.store.insert_schedule(caller.user_id, None, false, &config, now_ms()).await?)
    }

    /// Checks a schedule id given in a payload (Kragle code 25 when it is not the caller's).
    pub(super) async fn owned_schedule_ref(
        &self,
        caller: &Caller,
        id: i64,
    ) -> ServiceResult<Owned<Schedule>> {
        self.schedule(caller, id).await.map_err(|e| e.into_reference(Entity::Schedule))
    }
}

/// A config from a request, held to the rules for new schedules (Kragle code 26).
fn parse_config(config: &serde_json::Value) -> ServiceResult<ScheduleConfig> {
    ScheduleConfig::from_request(config, now_ms()).map_err(ServiceError::InvalidSchedule)
}

/// A timestamp fires once by nature, whatever `once` says.
fn effective_once(config: &ScheduleConfig, once: bool) -> bool {
    once || matches!(config, ScheduleConfig::Timestamp { .. })
}
