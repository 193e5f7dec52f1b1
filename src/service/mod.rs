//! The service layer: every domain rule (ownership, validation, deferred delete, actions) in
//! one place. The two HTTP dialects and the CLI are thin adapters over it.

mod accounts;
mod actions;
mod chains;
mod hooks;
mod idempotency;
mod jobs;
mod monitors;
mod overview;
mod owned;
mod pipelines;
mod runs;
mod schedules;
mod stacks;
mod webhooks;

pub use accounts::{Caller, CredentialKind, Session};
pub use chains::MAX_AFTER;
pub use hooks::{AdmittedHook, HOOK_TOKEN_HEADER, HookAnswer, HookCall, HookRequest};
pub use jobs::{DeleteOutcome, JobPatch, MAX_HEALTH_S, MAX_KEEP};
pub use monitors::{DEFAULT_GRACE_S, MonitorPatch, PingRequest};
pub use overview::{MAX_PER_PAGE, Overview, OverviewQuery, OverviewRow, RECENT_RUNS};
pub use owned::{HasOwner, Owned, Visible};
pub use pipelines::health;
pub use runs::RunLog;
pub use stacks::{MIN_SECRET_LEN, SecretChanges, StackPatch};
pub use webhooks::{WebhookPatch, generate_secret};

use crate::domain::{EpochMs, Job, ScheduleConfig};
use std::sync::Arc;

use crate::domain::monitor::Monitor;
use crate::engine::{EngineError, EngineHandle};
use crate::rate_limit::{Quota, RateLimiter};
use crate::store::{JobHealthRow, Page, Store, StoreError, Unique, page_window};

/// The kinds of object a user owns, for "not found" messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Token,
    Stack,
    Schedule,
    Job,
    Run,
    Action,
    Webhook,
    Monitor,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::User => "user",
            Entity::Token => "token",
            Entity::Stack => "stack",
            Entity::Schedule => "schedule",
            Entity::Job => "job",
            Entity::Run => "run",
            Entity::Action => "action",
            Entity::Webhook => "webhook",
            Entity::Monitor => "monitor",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The object does not exist or belongs to someone else (never told apart).
    #[error("{0} not found")]
    NotFound(Entity),
    /// A payload names a stack or schedule that does not exist or is not the caller's.
    #[error("the {0} referenced does not exist or is not yours")]
    BadReference(Entity),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("invalid schedule config: {0}")]
    InvalidSchedule(String),
    #[error("a {0} with that name already exists")]
    NameTaken(Entity),
    #[error("the schedule is still used by jobs")]
    ScheduleInUse,
    #[error("unknown user or wrong password")]
    BadLogin,
    #[error("{0}")]
    Conflict(String),
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("this token lacks the {0} scope")]
    MissingScope(crate::domain::Scope),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A hook called with another method than its stack's `webhook_method`.
    #[error("this hook takes {0} only (the stack's webhook_method)")]
    HookMethod(crate::domain::HookMethod),
    /// A rate limit's window is spent.
    #[error("rate limit of {limit} per hour reached; retry in {retry_after} s")]
    Throttled { limit: u32, retry_after: u64 },
    /// The database is full: the write was refused and nothing of it is stored.
    #[error("the database is full; nothing was stored")]
    StorageFull,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ServiceError {
    /// A "not found" for an id that came inside a payload becomes a bad reference.
    fn into_reference(self, what: Entity) -> Self {
        match self {
            ServiceError::NotFound(_) => ServiceError::BadReference(what),
            other => other,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid { field: field.to_string(), message: message.into() }
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoRunner => ServiceError::Unavailable(e.to_string()),
            EngineError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(e) => ServiceError::Unavailable(format!("database: {e}")),
            // Logged by the store, once per incident.
            StoreError::Full(_) => ServiceError::StorageFull,
            other => ServiceError::Internal(other.into()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Settings the service applies (from the command line).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Requests per token per hour.
    pub rate_limit_per_hour: u32,
    /// Calls of one stack's hook per hour.
    pub hook_rate_limit_per_hour: u32,
    /// Pings of one heartbeat monitor per hour.
    pub ping_rate_limit_per_hour: u32,
    /// A hook's (or exec's) command is stopped after this long; the caller gets an error.
    pub hook_timeout_s: u64,
    /// At most this many slots per backfill call (`--catch-up-max`).
    pub backfill_max: usize,
    /// Seals stacks' secret env values (`None`: an administrative command, which sets none).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// `/metrics` shows each job's health and last success and failure.
    pub metrics_per_job: bool,
    /// The dashboard's public address (`--public-url`), linked from monitor messages.
    pub public_url: Option<String>,
    /// The server can send mail (`--smtp-url`): email channels may be created.
    pub email: bool,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            rate_limit_per_hour: 3600,
            hook_rate_limit_per_hour: 3600,
            ping_rate_limit_per_hour: 3600,
            hook_timeout_s: 60,
            backfill_max: 100,
            secret_key: None,
            metrics_per_job: true,
            public_url: None,
            email: false,
        }
    }
}

#[derive(Clone)]
pub struct Service {
    store: Store,
    engine: EngineHandle,
    settings: ServiceSettings,
    limits: Arc<Limits>,
}

/// The rate limits, each an hourly window per key.
pub struct Limits {
    /// Requests per token (and sign-in attempts per login name).
    pub requests: RateLimiter,
    /// Calls of one stack's hook, whoever calls.
    pub hooks: RateLimiter,
    /// Pings of one heartbeat monitor, whoever pings.
    pub pings: RateLimiter,
}

/// A 1-based page request with its size.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
}

impl Service {
    pub fn new(store: Store, engine: EngineHandle, settings: ServiceSettings) -> Self {
        let limits = Arc::new(Limits {
            requests: RateLimiter::new(settings.rate_limit_per_hour, &store),
            hooks: RateLimiter::new(settings.hook_rate_limit_per_hour, &store),
            pings: RateLimiter::new(settings.ping_rate_limit_per_hour, &store),
        });
        Service { store, engine, settings, limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts a hit of `key` against `limiter`: its quota, or `Throttled` once the window is
    /// spent.
    pub(crate) async fn hit(&self, limiter: &RateLimiter, key: &str) -> ServiceResult<Quota> {
        limiter
            .hit(key)
            .await?
            .map_err(|q| ServiceError::Throttled { limit: q.limit, retry_after: q.retry_after() })
    }

    /// Ready when the database answers.
    pub async fn database_ready(&self) -> ServiceResult<()> {
        Ok(self.store.ping().await?)
    }

    /// The database pools' figures: (pool, open, idle, max).
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, usize, u32)> {
        self.store.pool_stats()
    }

    /// Every job's health row and every monitor, for `/metrics`' per-job and per-monitor
    /// series (whoever owns them: the scrape is the operator's).
    pub async fn health_for_metrics(&self) -> ServiceResult<(Vec<JobHealthRow>, Vec<Monitor>)> {
        Ok((self.store.job_health_rows().await?, self.store.all_monitors().await?))
    }

    /// The store's change stamp, for bodies kept across reads (`http::memo`).
    pub fn change_stamp(&self) -> Option<u64> {
        self.store.change_stamp()
    }

    /// How long a kept read may be served (see `Store::cache_ttl`).
    pub fn cache_ttl(&self) -> Option<std::time::Duration> {
        self.store.cache_ttl()
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The next slot of a job that is enabled with `config`, strictly after `now`, inside the
    /// job's window.
    fn next_slot(
        config: &ScheduleConfig,
        uid: &str,
        job: &crate::store::NewJob,
        now: EpochMs,
    ) -> ServiceResult<Option<EpochMs>> {
        let trigger =
            config.trigger_for(crate::domain::job_hash_key(uid)).map_err(ServiceError::InvalidSchedule)?;
        let window = crate::domain::SlotPolicy {
            not_before: job.not_before,
            not_after: job.not_after,
            ..Default::default()
        };
        Ok(window.next_after(&trigger, now))
    }

    /// Tells the scheduler (and, through the database, the other nodes) where a job stands.
    async fn reschedule(&self, job: &Job) -> ServiceResult<()> {
        let trigger = match job.next_run_at {
            Some(_) => {
                let schedule = self
                    .store
                    .schedule(job.schedule_id)
                    .await?
                    .ok_or(ServiceError::NotFound(Entity::Schedule))?;
                let trigger = schedule
                    .config
                    .trigger_for(crate::domain::job_hash_key(&job.uid))
                    .map_err(ServiceError::InvalidSchedule)?;
                Some((trigger, schedule.once, job.missed, crate::domain::SlotPolicy::of(job)))
            }
            None => None,
        };
        self.engine.job_changed(job.id, job.next_run_at, trigger);
        self.store.notify_job_changed(job.id).await?;
        Ok(())
    }

    /// Tells the scheduler (and the other nodes) that a job is gone.
    async fn unschedule(&self, job_id: i64) -> ServiceResult<()> {
        self.engine.job_changed(job_id, None, None);
        self.store.notify_job_changed(job_id).await?;
        Ok(())
    }
}

/// A page, owned or shared (from the store's read cache).
trait AnyPage {
    /// The same count with no items.
    fn emptied(self) -> Self;
}

impl<T> AnyPage for Page<T> {
    fn emptied(mut self) -> Self {
        self.items.clear();
        self
    }
}

impl<T> AnyPage for std::sync::Arc<Page<T>> {
    fn emptied(self) -> Self {
        std::sync::Arc::new(Page { items: Vec::new(), total: self.total })
    }
}

/// Runs a paged query, answering an empty page past any possible row.
async fn paged<P, F, Fut>(req: PageRequest, query: F) -> ServiceResult<P>
where
    P: AnyPage,
    F: FnOnce(i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<P, StoreError>>,
{
    if req.page < 1 {
        return Err(ServiceError::invalid("page", "must be an integer of 1 or more"));
    }
    match page_window(req.page, req.per_page) {
        Some((limit, offset)) => Ok(query(limit, offset).await?),
        // A page number so large its offset overflows: nothing there, but say how many exist.
        None => Ok(query(1, 0).await?.emptied()),
    }
}

/// Names: non-empty, at most 200 characters, no control characters.
fn validate_name(field: &str, name: &str) -> ServiceResult<()> {
    if name.trim().is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(ServiceError::invalid(field, "must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Maps a violation of one of `constraints` to the caller-facing conflict (any other unique
/// violation stays an internal error: no request should be able to cause it).
fn on_unique<T>(
    r: Result<T, StoreError>,
    constraints: &[Unique],
    conflict: ServiceError,
) -> ServiceResult<T> {
    match r {
        Err(StoreError::Unique(c, _)) if constraints.contains(&c) => Err(conflict),
        other => Ok(other?),
    }
}

/// Splits a `job_args` string like a POSIX shell splits words (no expansion).
pub fn split_args(field: &str, line: &str) -> ServiceResult<Vec<String>> {
    cronstack_exec::split_args(line).map_err(|e| ServiceError::invalid(field, e))
}
