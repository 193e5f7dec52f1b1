//! Jobs: create, change, pause, delete (deferred while enabled, as Kragle does), run now.

use std::sync::Arc;

use super::owned::{Owned, owned, owned_through};
use super::{
    Caller, Entity, PageRequest, Service, ServiceError, ServiceResult, on_unique, paged, validate_name,
};
use crate::domain::{
    ChainAfter, EpochMs, EventKind, JOB_KIND_COMMAND, Job, JobStatus, Missed, Overlap, Run, RunStatus, Scope,
    Stack, TriggerKind, new_uid, now_ms,
};
use crate::engine::Launch;
use crate::events::Event;
use crate::store::{ChainedUpdate, JobChanges, NewJob, NewRun, Page, Unique};

/// The most finished runs of each kind a job may keep (`keep_succeeded`, `keep_failed`).
pub const MAX_KEEP: i64 = 100_000;

/// The longest `grace_s` and `max_duration_s`: 31 days.
pub const MAX_HEALTH_S: i64 = 31 * 24 * 3600;

/// Job fields from a request; `None` leaves a field unchanged (or default on create).
#[derive(Debug, Clone, Default)]
pub struct JobPatch {
    pub stack_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub name: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub command: Option<Option<String>>,
    pub timeout_s: Option<Option<i64>>,
    pub overlap: Option<Overlap>,
    pub missed: Option<Missed>,
    pub retries: Option<i64>,
    pub retry_backoff_s: Option<i64>,
    pub retry_lost: Option<bool>,
    pub jitter_s: Option<i64>,
    pub not_before: Option<Option<EpochMs>>,
    pub not_after: Option<Option<EpochMs>>,
    pub max_runs: Option<Option<i64>>,
    /// `Some(None)`: back to the server's default.
    pub keep_succeeded: Option<Option<i64>>,
    pub keep_failed: Option<Option<i64>>,
    /// Job chains: the upstream jobs (replaces the whole list).
    pub after: Option<Vec<ChainAfter>>,
    pub after_any: Option<bool>,
    /// `Some(None)`: the default grace.
    pub grace_s: Option<Option<i64>>,
    /// `Some(None)`: no limit.
    pub max_duration_s: Option<Option<i64>>,
    /// v1's `do_del`: `Some(false)` cancels a queued deletion (`true` is `DELETE`'s to set).
    pub pending_delete: Option<bool>,
}

impl JobPatch {
    fn apply(&self, j: &mut NewJob) {
        if let Some(v) = self.stack_id {
            j.stack_id = v;
        }
        if let Some(v) = self.schedule_id {
            j.schedule_id = v;
        }
        if let Some(v) = &self.name {
            j.name = v.clone();
        }
        if let Some(v) = self.enabled {
            j.enabled = v;
        }
        if let Some(v) = &self.command {
            j.command = v.clone();
        }
        if let Some(v) = self.timeout_s {
            j.timeout_s = v;
        }
        if let Some(v) = self.overlap {
            j.overlap = v;
        }
        if let Some(v) = self.missed {
            j.missed = v;
        }
        if let Some(v) = self.retries {
            j.retries = v;
        }
        if let Some(v) = self.retry_backoff_s {
            j.retry_backoff_s = v;
        }
        if let Some(v) = self.retry_lost {
            j.retry_lost = v;
        }
        if let Some(v) = self.jitter_s {
            j.jitter_s = v;
        }
        if let Some(v) = self.not_before {
            j.not_before = v;
        }
        if let Some(v) = self.not_after {
            j.not_after = v;
        }
        if let Some(v) = self.max_runs {
            j.max_runs = v;
        }
        if let Some(v) = self.keep_succeeded {
            j.keep_succeeded = v;
        }
        if let Some(v) = self.keep_failed {
            j.keep_failed = v;
        }
        if let Some(v) = self.grace_s {
            j.grace_s = v;
        }
        if let Some(v) = self.max_duration_s {
            j.max_duration_s = v;
        }
        if let Some(v) = &self.after {
            j.after = v.clone();
        }
        if let Some(v) = self.after_any {
            j.after_any = v;
        }
    }

    /// Whether the job's definition (not just its on/off state) changes.
    fn changes_definition(&self) -> bool {
        self.stack_id.is_some()
            || self.schedule_id.is_some()
            || self.command.is_some()
            || self.timeout_s.is_some()
            || self.name.is_some()
    }
}

fn validate_job(j: &NewJob) -> ServiceResult<()> {
    if let Some(name) = &j.name {
        validate_name("name", name)?;
    }
    if let Some(cmd) = &j.command
        && (cmd.trim().is_empty() || cmd.contains('\0'))
    {
        return Err(ServiceError::invalid(
            "command",
            "must be a non-empty shell command (or null to use the stack's)",
        ));
    }
    if let Some(t) = j.timeout_s
        && !(1..=31 * 24 * 3600).contains(&t)
    {
        return Err(ServiceError::invalid(
            "timeout_s",
            "must be between 1 and 2678400 seconds (or null for none)",
        ));
    }
    if !(0..=100).contains(&j.retries) {
        return Err(ServiceError::invalid("retries", "must be between 0 and 100"));
    }
    if !(1..=24 * 3600).contains(&j.retry_backoff_s) {
        return Err(ServiceError::invalid("retry_backoff_s", "must be between 1 and 86400 seconds"));
    }
    if !(0..=24 * 3600).contains(&j.jitter_s) {
        return Err(ServiceError::invalid("jitter_s", "must be between 0 and 86400 seconds"));
    }
    if let (Some(start), Some(end)) = (j.not_before, j.not_after)
        && start > end
    {
        return Err(ServiceError::invalid("not_after", "must not be before not_before"));
    }
    if j.max_runs.is_some_and(|n| !(1..=1_000_000_000).contains(&n)) {
        return Err(ServiceError::invalid(
            "max_runs",
            "must be between 1 and 1000000000 (or null for no limit)",
        ));
    }
    for (field, seconds) in [("grace_s", j.grace_s), ("max_duration_s", j.max_duration_s)] {
        if seconds.is_some_and(|s| !(1..=MAX_HEALTH_S).contains(&s)) {
            return Err(ServiceError::invalid(
                field,
                format!("must be between 1 and {MAX_HEALTH_S} seconds (or null for the default)"),
            ));
        }
    }
    for (field, keep) in [("keep_succeeded", j.keep_succeeded), ("keep_failed", j.keep_failed)] {
        if keep.is_some_and(|k| !(0..=MAX_KEEP).contains(&k)) {
            return Err(ServiceError::invalid(
                field,
                format!("must be between 0 and {MAX_KEEP} runs (or null for the server's default)"),
            ));
        }
    }
    Ok(())
}

/// A stack's hook job records the hook's runs; it is not changed, paused, run or deleted
/// through the job endpoints.
fn refuse_hook_job(job: &Job) -> ServiceResult<()> {
    if job.is_hook() {
        return Err(ServiceError::Conflict(
            "this is the stack's hook job, managed by cronstack: call the stack's hook or /blockstacks/exec/<id>"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses, before anything is recorded, arguments the job's command does not take (the rule
/// is `cronstack_exec::ArgRule`'s); `field` is the dialect's name for them.
pub(super) fn check_args(field: &str, job: &Job, stack: &Stack, args: &[String]) -> ServiceResult<()> {
    let refuse = |e: cronstack_exec::TakesNoArgs| ServiceError::invalid(field, e.to_string());
    if let Some(blocks) = &stack.blocks {
        // A pipeline passes the arguments to each of its Shell command steps.
        return crate::blocks::literal_commands(blocks)
            .try_for_each(|c| cronstack_exec::check_args(c, args))
            .map_err(refuse);
    }
    let command = job.command.as_deref().unwrap_or(&stack.command);
    cronstack_exec::check_args(command, args).map_err(refuse)
}

/// The event announcing a change of a job's on/off state, if it changed.
fn pause_event(before: &Job, after: &Job) -> Option<Event> {
    match (before.enabled, after.enabled) {
        (true, false) => Some(Event::job(EventKind::JobPaused, after)),
        (false, true) => Some(Event::job(EventKind::JobUnpaused, after)),
        _ => None,
    }
}

/// What `DELETE /jobs/<id>` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone, with its schedule (`Some(id)`) when asked for and no other job used it.
    Deleted { schedule: Option<i64> },
    /// Enabled with a next slot: it is deleted at that slot instead of running; with its
    /// schedule (`Some(id)`, if no other job uses it then) when asked for.
    QueuedForDeletion { schedule: Option<i64> },
}

impl Service {
    pub async fn create_job(&self, caller: &Caller, patch: JobPatch) -> ServiceResult<Job> {
        caller.require(Scope::Jobs)?;
        if patch.pending_delete == Some(true) {
            return Err(ServiceError::invalid("do_del", "a new job cannot be queued for deletion"));
        }
        let stack_id = patch.stack_id.ok_or_else(|| ServiceError::invalid("stack_id", "is required"))?;
        let chained = patch.after.as_ref().is_some_and(|after| !after.is_empty());
        if patch.schedule_id.is_none() && !chained {
            return Err(ServiceError::invalid(
                "schedule_id",
                "is required (leave it out only for a job that runs after others: give `after`)",
            ));
        }
        let mut job = NewJob {
            stack_id,
            schedule_id: patch.schedule_id.unwrap_or_default(),
            name: None,
            kind: JOB_KIND_COMMAND.to_string(),
            command: None,
            enabled: false,
            timeout_s: None,
            overlap: Overlap::Forbid,
            missed: Missed::Skip,
            retries: 0,
            retry_backoff_s: 10,
            retry_lost: true,
            jitter_s: 0,
            not_before: None,
            not_after: None,
            max_runs: None,
            keep_succeeded: None,
            keep_failed: None,
            after: Vec::new(),
            after_any: false,
            grace_s: None,
            max_duration_s: None,
        };
        patch.apply(&mut job);
        validate_job(&job)?;
        self.check_after(caller, None, &job.after).await?;
        self.owned_stack_ref(caller, stack_id).await?;
        if patch.schedule_id.is_none() {
            job.schedule_id = self.manual_schedule(caller).await?;
        }
        let schedule = self.owned_schedule_ref(caller, job.schedule_id).await?;
        let now = now_ms();
        let uid = new_uid();
        let next = if job.enabled { Self::next_slot(&schedule.config, &uid, &job, now)? } else { None };
        let id = on_unique(
            self.store.insert_job(caller.user_id, &uid, &job, next, now).await,
            &[Unique::JobName],
            ServiceError::NameTaken(Entity::Job),
        )?;
        let job = self.job(caller, id).await?;
        self.reschedule(&job).await?;
        Ok(job.into_inner())
    }

    pub async fn update_job(&self, caller: &Caller, id: i64, patch: JobPatch) -> ServiceResult<Job> {
        caller.require(Scope::Jobs)?;
        // Optimistic concurrency: retry when another update landed between read and write.
        for _ in 0..5 {
            let current = self.job(caller, id).await?;
            refuse_hook_job(&current)?;
            match patch.pending_delete {
                Some(true) => {
                    return Err(ServiceError::invalid(
                        "do_del",
                        "only false (cancel a queued deletion) is accepted here: DELETE /jobs/<id> deletes a job",
                    ));
                }
                // Cancelled: the job stays, as it was, and takes the rest of the patch.
                Some(false) => {}
                None if current.pending_delete => {
                    return Err(ServiceError::Conflict(
                        "the job is queued for deletion at its next slot and can no longer be changed: send {\"do_del\": false} to cancel the deletion (cronstack jobs rm --cancel)".into(),
                    ));
                }
                None => {}
            }
            let mut fields = NewJob::from_job(&current);
            patch.apply(&mut fields);
            validate_job(&fields)?;
            if patch.after.is_some() {
                self.check_after(caller, Some(id), &fields.after).await?;
            }
            if fields.stack_id != current.stack_id {
                self.owned_stack_ref(caller, fields.stack_id).await?;
            }
            let schedule = self.owned_schedule_ref(caller, fields.schedule_id).await?;
            let now = now_ms();
            let reset_runs_fired = patch.max_runs.is_some();
            if fields.enabled
                && !current.enabled
                && !reset_runs_fired
                && fields.max_runs.is_some_and(|max| current.runs_fired >= max)
            {
                return Err(ServiceError::Conflict(format!(
                    "the job has fired its max_runs ({}) scheduled runs: set max_runs again to enable it",
                    current.runs_fired
                )));
            }
            let reschedule = if !fields.enabled {
                Some(None)
            } else if !current.enabled
                || fields.schedule_id != current.schedule_id
                || fields.not_before != current.not_before
                || fields.not_after != current.not_after
                || current.next_run_at.is_none()
            {
                Some(Self::next_slot(&schedule.config, &current.uid, &fields, now)?)
            } else {
                None
            };
            let changes = JobChanges {
                pending_delete: false,
                delete_schedule: false,
                // An explicit on/off from the user takes the job out of pause_all's hands.
                paused_by_all: current.paused_by_all && patch.enabled.is_none(),
                reschedule,
                last_status: if patch.changes_definition() {
                    JobStatus::Updated
                } else {
                    current.last_status
                },
                fields,
                reset_runs_fired,
            };
            let written = if patch.after.is_some() {
                let update =
                    self.store.update_job_chained(current.owner, id, current.updated_at, &changes, now);
                match on_unique(update.await, &[Unique::JobName], ServiceError::NameTaken(Entity::Job))? {
                    ChainedUpdate::Written(written) => written,
                    ChainedUpdate::Cycle(cycle) => return Err(super::chains::cycle_error(&cycle)),
                }
            } else {
                on_unique(
                    self.store.update_job(id, current.updated_at, &changes, now).await,
                    &[Unique::JobName],
                    ServiceError::NameTaken(Entity::Job),
                )?
            };
            if written {
                let job = self.job(caller, id).await?;
                self.reschedule(&job).await?;
                self.forget_chain_marks(&current, &job).await?;
                if let Some(event) = pause_event(&current, &job) {
                    self.engine.events().emit(event);
                }
                return Ok(job.into_inner());
            }
        }
        Err(ServiceError::Conflict("the job is being changed concurrently; try again".into()))
    }

    /// Kragle's delete: immediate for a job that will not run again, deferred to its next
    /// slot for an enabled one — unless `now`, which deletes any job at once (queued for
    /// deletion or not). With `schedule`, the job's schedule goes with it when the job goes
    /// (now, or at its slot on whichever node claims it) if no other job uses it then; a
    /// queued deletion asked for it once keeps it.
    pub async fn delete_job(
        &self,
        caller: &Caller,
        id: i64,
        now: bool,
        schedule: bool,
    ) -> ServiceResult<DeleteOutcome> {
        caller.require(Scope::Jobs)?;
        for _ in 0..5 {
            let current = self.job(caller, id).await?;
            refuse_hook_job(&current)?;
            let with_schedule = schedule || current.delete_schedule;
            if current.pending_delete && !now && current.delete_schedule == with_schedule {
                return Ok(DeleteOutcome::QueuedForDeletion {
                    schedule: with_schedule.then_some(current.schedule_id),
                });
            }
            if now || !(current.enabled && current.next_run_at.is_some()) {
                self.store.delete_job(id).await?;
                self.store.unchain(current.owner, id, now_ms()).await?;
                self.unschedule(id).await?;
                self.engine.events().emit(Event::job(EventKind::JobDeleted, &current));
                let gone =
                    with_schedule && self.store.delete_schedule_of_deleted_job(current.schedule_id).await?;
                return Ok(DeleteOutcome::Deleted { schedule: gone.then_some(current.schedule_id) });
            }
            let changes = JobChanges {
                fields: NewJob::from_job(&current),
                pending_delete: true,
                delete_schedule: with_schedule,
                paused_by_all: current.paused_by_all,
                reschedule: None,
                last_status: current.last_status,
                reset_runs_fired: false,
            };
            if self.store.update_job(id, current.updated_at, &changes, now_ms()).await? {
                return Ok(DeleteOutcome::QueuedForDeletion {
                    schedule: with_schedule.then_some(current.schedule_id),
                });
            }
        }
        Err(ServiceError::Conflict("the job is being changed concurrently; try again".into()))
    }

    /// Pauses or unpauses one job; idempotent. `by_all` marks a pause made by `pause_all`
    /// (so `unpause_all` restores exactly those).
    pub(super) async fn set_paused(&self, job: &Job, paused: bool, by_all: bool) -> ServiceResult<Job> {
        refuse_hook_job(job)?;
        let mut current = job.clone();
        for _ in 0..5 {
            let enabled = !paused;
            let paused_by_all = paused && by_all;
            if current.enabled == enabled && current.paused_by_all == paused_by_all {
                return Ok(current);
            }
            let mut fields = NewJob::from_job(&current);
            fields.enabled = enabled;
            let now = now_ms();
            let reschedule = if !enabled {
                Some(None)
            } else if current.next_run_at.is_none() {
                let schedule = self
                    .store
                    .schedule(current.schedule_id)
                    .await?
                    .ok_or(ServiceError::NotFound(Entity::Schedule))?;
                Some(Self::next_slot(&schedule.config, &current.uid, &fields, now)?)
            } else {
                None
            };
            let changes = JobChanges {
                fields,
                pending_delete: current.pending_delete,
                delete_schedule: current.delete_schedule,
                paused_by_all,
                reschedule,
                last_status: current.last_status,
                reset_runs_fired: false,
            };
            if self.store.update_job(current.id, current.updated_at, &changes, now).await? {
                let job = self.store.job(current.id).await?.ok_or(ServiceError::NotFound(Entity::Job))?;
                self.reschedule(&job).await?;
                self.forget_chain_marks(&current, &job).await?;
                if let Some(event) = pause_event(&current, &job) {
                    self.engine.events().emit(event);
                }
                return Ok(job);
            }
            current = self.store.job(current.id).await?.ok_or(ServiceError::NotFound(Entity::Job))?;
        }
        Err(ServiceError::Conflict("the job is being changed concurrently; try again".into()))
    }

    pub async fn pause_job(&self, caller: &Caller, id: i64, paused: bool) -> ServiceResult<Job> {
        caller.require(Scope::Public)?;
        let job = self.job(caller, id).await?;
        self.set_paused(&job, paused, false).await
    }

    /// The caller's job by id; someone else's is "not found".
    pub async fn job(&self, caller: &Caller, id: i64) -> ServiceResult<Owned<Job>> {
        owned(caller, self.store.job(id).await?)
    }

    pub async fn job_by_name(&self, caller: &Caller, name: &str) -> ServiceResult<Owned<Job>> {
        owned(caller, self.store.job_by_name(caller.user_id, name).await?)
    }

    /// A job of a stack, by uid (the Cloud 66 dialect's addressing).
    pub async fn stack_job_by_uid(&self, stack: &Owned<Stack>, uid: &str) -> ServiceResult<Owned<Job>> {
        match self.store.job_by_uid(uid).await? {
            Some(j) if j.stack_id == stack.id && !j.is_hook() => Ok(owned_through(stack, j)),
            _ => Err(ServiceError::NotFound(Entity::Job)),
        }
    }

    pub async fn list_jobs(&self, caller: &Caller, req: PageRequest) -> ServiceResult<Arc<Page<Job>>> {
        paged(req, |limit, offset| self.store.list_jobs(caller.user_id, limit, offset)).await
    }

    pub async fn list_stack_jobs(
        &self,
        stack: &Owned<Stack>,
        req: PageRequest,
    ) -> ServiceResult<Arc<Page<Job>>> {
        paged(req, |limit, offset| self.store.stack_jobs(stack.id, limit, offset)).await
    }

    /// Starts a run of the job now with `args` (each a separate `$N`), outside its schedule —
    /// once per `idempotency_key` (see `once_per_key`).
    pub async fn run_now(
        &self,
        caller: &Caller,
        job: &Job,
        args: Vec<String>,
        idempotency_key: Option<&str>,
    ) -> ServiceResult<Run> {
        caller.require(Scope::Public)?;
        refuse_hook_job(job)?;
        let fingerprint = format!("v1 run {} {}", job.id, serde_json::Value::from(args.clone()));
        let start = async {
            let stack = self.stack(caller, job.stack_id).await?;
            check_args("args", job, &stack, &args)?;
            let run = self.new_run(job, TriggerKind::RunNow, args).await?;
            self.engine.launch(Launch::new(run.clone(), job.clone(), stack.into_inner()))?;
            Ok((run.clone(), run.id))
        };
        self.once_per_key(caller, idempotency_key, fingerprint, start, |id| async move {
            Ok(self.run(caller, id).await?.into_inner())
        })
        .await
    }

    /// Runs every slot of the job's schedule in `[from, to]` that has not run yet (Temporal's
    /// backfill): trigger `backfill`, `scheduled_for` the slot, oldest first — all at once, or
    /// one after another with `queue`. Each slot runs at most once, ever: a backfilled slot
    /// and a scheduled one share one uniqueness. At most `backfill_max` slots per call.
    pub async fn backfill(
        &self,
        caller: &Caller,
        job: &Job,
        from: EpochMs,
        to: EpochMs,
        queue: bool,
    ) -> ServiceResult<Vec<Run>> {
        caller.require(Scope::Jobs)?;
        refuse_hook_job(job)?;
        if from > to {
            return Err(ServiceError::invalid("to", "must not be before from"));
        }
        let schedule =
            self.store.schedule(job.schedule_id).await?.ok_or(ServiceError::NotFound(Entity::Schedule))?;
        let trigger = schedule
            .config
            .trigger_for(crate::domain::job_hash_key(&job.uid))
            .map_err(ServiceError::InvalidSchedule)?;
        let max = self.settings.backfill_max;
        let (mut slots, mut count) = (Vec::new(), 0usize);
        let mut at = from - 1;
        while let Some(slot) = trigger.next_after(at).filter(|s| *s <= to) {
            count += 1;
            if count <= max {
                slots.push(slot);
            } else if count > 1_000_000 {
                break;
            }
            at = slot;
        }
        if count > max {
            let count = if count > 1_000_000 { "over 1000000".to_string() } else { count.to_string() };
            return Err(ServiceError::invalid(
                "to",
                format!(
                    "the range holds {count} slots, more than the {max} a backfill may run (--catch-up-max): narrow it"
                ),
            ));
        }
        let stack = self.stack(caller, job.stack_id).await?;
        let now = now_ms();
        let runs = self
            .store
            .insert_backfill_runs(job, &slots, self.engine.node_id(), self.engine.lease_until(now), now)
            .await?;
        let launches = runs.iter().map(|r| Launch::new(r.clone(), job.clone(), stack.to_inner())).collect();
        self.engine.launch_all(launches, queue)?;
        Ok(runs)
    }

    /// Records a queued run held by this node.
    pub(super) async fn new_run(
        &self,
        job: &Job,
        trigger: TriggerKind,
        args: Vec<String>,
    ) -> ServiceResult<Run> {
        let now = now_ms();
        let run = NewRun {
            job_id: job.id,
            owner: job.owner,
            trigger,
            scheduled_for: now,
            attempt: 1,
            args,
            status: RunStatus::Queued,
            node_id: Some(self.engine.node_id().to_string()),
            lease_until: Some(self.engine.lease_until(now)),
            chain: None,
        };
        let id = self.store.insert_run(&run, now).await?;
        self.store.run(id).await?.ok_or(ServiceError::NotFound(Entity::Run))
    }
}
