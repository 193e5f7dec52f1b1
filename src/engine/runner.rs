//! The runner: starts runs as child processes and records how they end. It applies the
//! overlap policy, the per-node concurrency limit, timeouts and retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cronstack_exec::{Command, Finished, Gate, Killer, Log, Outcome, Release};
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::{EngineSettings, Launch};
use crate::domain::{EpochMs, EventKind, Job, JobStatus, Overlap, Run, RunStatus, TriggerKind, now_ms};
use crate::events::{Event, EventSender};
use crate::store::{NewRun, RunFinish, RunStart, Store};

/// How a run ended, for callers waiting on it (inbound hooks).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub run_id: i64,
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub stdout: Option<String>,
    pub log: String,
}

/// A scheduled run's process spawned ahead of its slot (see `EngineSettings::prespawn`),
/// with the concurrency permit it holds.
pub(super) enum Prespawned {
    /// Waiting at its gate.
    Held(cronstack_exec::Prepared, OwnedSemaphorePermit),
    /// Passed its overlap check at the slot (and counted in `starting`), released.
    Released(cronstack_exec::Running, OwnedSemaphorePermit),
}

struct ActiveRun {
    job_id: i64,
    log: Log,
    killer: Killer,
}

pub(super) struct Runner {
    store: Store,
    settings: EngineSettings,
    node_id: Arc<str>,
    tasks: TaskTracker,
    permits: Arc<Semaphore>,
    active: Mutex<HashMap<i64, ActiveRun>>,
    /// Runs reserved for a job between the overlap check and registration (forbid policy).
    starting: Mutex<HashMap<i64, usize>>,
    shutting_down: Notify,
    events: EventSender,
    starts: super::starts::StartRecorder,
}

const LOG_TAIL_BYTES: usize = 4096;

impl Runner {
    pub(super) fn new(
        store: Store,
        settings: EngineSettings,
        node_id: Arc<str>,
        tasks: TaskTracker,
        events: EventSender,
    ) -> Self {
        Runner {
            events,
            starts: super::starts::StartRecorder::spawn(store.clone()),
            permits: Arc::new(Semaphore::new(settings.max_concurrent_runs.max(1))),
            store,
            settings,
            node_id,
            tasks,
            active: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashMap::new()),
            shutting_down: Notify::new(),
        }
    }

    pub(super) fn spawn_launch(self: &Arc<Self>, launch: Launch) {
        let me = self.clone();
        self.tasks.spawn(async move { me.execute(launch).await });
    }

    /// Where run and job events go (the scheduler announces deferred deletes here).
    pub(super) fn events(&self) -> &EventSender {
        &self.events
    }

    pub(super) fn live_log(&self, run_id: i64) -> Option<Log> {
        self.active.lock().unwrap().get(&run_id).map(|a| a.log.clone())
    }

    fn job_is_running(&self, job_id: i64) -> bool {
        self.active.lock().unwrap().values().any(|a| a.job_id == job_id)
            || self.starting.lock().unwrap().get(&job_id).is_some_and(|n| *n > 0)
    }

    /// Counts a run of the job between its overlap check and its registration as active, so
    /// two slots due together cannot both pass a `forbid` check.
    fn reserve(&self, job_id: i64, take: bool) {
        let mut starting = self.starting.lock().unwrap();
        let n = starting.entry(job_id).or_default();
        if take {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                starting.remove(&job_id);
            }
        }
    }

    fn kill_job_runs(&self, job_id: i64) {
        for a in self.active.lock().unwrap().values().filter(|a| a.job_id == job_id) {
            a.killer.kill();
        }
    }

    /// Runs one launch to its end, then any retries it earns.
    /// A gate to hold the processes of runs due at one instant, if runs are spawned ahead.
    pub(super) fn gate(&self) -> Option<Gate> {
        if !self.settings.prespawn {
            return None;
        }
        Gate::new().map_err(|e| tracing::warn!(error = %e, "creating a gate; spawning at the slot")).ok()
    }

    /// Spawns a scheduled run's process ahead of its slot, held at `gate`, if a concurrency
    /// permit is free now; otherwise it is spawned at the slot as usual.
    pub(super) fn prepare(&self, launch: &mut Launch, gate: &mut Gate) {
        if launch.stdin.is_some() {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else { return };
        match gate.prepare(self.command(launch, None)) {
            Ok(child) => launch.prespawned = Some(Prespawned::Held(child, permit)),
            // Spawned again at the slot, where a lasting error is recorded on the run.
            Err(e) => tracing::debug!(run = launch.run.id, error = %e, "spawning ahead of the slot"),
        }
    }

    /// Starts scheduled runs due at this instant: each held process whose run passes its
    /// overlap check is released, then their gate opens for all at once (one write), then
    /// each run goes on in its own task. A held process that must not run is dropped, which
    /// kills it before the gate opens; `run_once` then records its run as skipped.
    pub(super) fn start_group(self: &Arc<Self>, mut launches: Vec<Launch>, gate: Option<Gate>) {
        let at = Release::now();
        for launch in &mut launches {
            if let Some(Prespawned::Held(child, permit)) = launch.prespawned.take()
                && self.overlap_allows(&launch.job)
            {
                self.reserve(launch.job.id, true);
                launch.prespawned = Some(Prespawned::Released(child.release(at), permit));
            }
        }
        if let Some(gate) = gate {
            gate.open();
        }
        for launch in launches {
            self.spawn_launch(launch);
        }
    }

    /// Applies the job's overlap policy to a scheduled run about to start: `false` when it
    /// must be skipped; `replace` kills the job's running runs.
    fn overlap_allows(&self, job: &Job) -> bool {
        match job.overlap {
            Overlap::Forbid => !self.job_is_running(job.id),
            Overlap::Replace => {
                self.kill_job_runs(job.id);
                true
            }
            Overlap::Allow => true,
        }
    }

    async fn execute(self: Arc<Self>, mut launch: Launch) {
        loop {
            let run = launch.run.clone();
            let result = self.run_once(&mut launch).await;
            let failed = matches!(result.status, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Lost);
            let retry_due =
                failed && run.attempt <= launch.job.retries && run.trigger != TriggerKind::Webhook;
            if let Some(done) = launch.done.take() {
                let _ = done.send(result);
            }
            if !retry_due {
                return;
            }
            match self.schedule_retry(&launch).await {
                Some(next) => launch = next,
                None => return,
            }
        }
    }

    /// Records the retry run, waits out its backoff and reloads the job: a job deleted or
    /// changed meanwhile is retried as it is now, or not at all.
    async fn schedule_retry(&self, prev: &Launch) -> Option<Launch> {
        let attempt = prev.run.attempt + 1;
        let delay = backoff_ms(prev.job.retry_backoff_s, prev.run.attempt);
        let now = now_ms();
        let new = NewRun {
            job_id: prev.job.id,
            owner: prev.job.owner,
            trigger: TriggerKind::Retry,
            scheduled_for: now + delay,
            attempt,
            args: prev.run.args.clone(),
            status: RunStatus::Queued,
            node_id: Some(self.node_id.to_string()),
            lease_until: Some(now + delay + self.settings.lease.as_millis() as i64),
        };
        let id = self.store.insert_run(&new, now).await.map_err(log_err).ok()?;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay as u64)) => {}
            _ = self.shutting_down.notified() => return None,
        }
        let run = self.store.run(id).await.map_err(log_err).ok()??;
        let job = self.store.job(prev.job.id).await.map_err(log_err).ok()??;
        let stack = self.store.stack(job.stack_id).await.map_err(log_err).ok()??;
        Some(Launch::new(run, job, stack))
    }

    async fn run_once(&self, launch: &mut Launch) -> RunResult {
        let run = launch.run.clone();
        let job = launch.job.clone();
        let scheduled = matches!(run.trigger, TriggerKind::Schedule | TriggerKind::Retry);
        // A released run passed its overlap check (and took its reservation) at the slot.
        let released = matches!(launch.prespawned, Some(Prespawned::Released(..)));
        if scheduled && !released && !self.overlap_allows(&job) {
            launch.prespawned = None;
            return self
                .finish_without_start(
                    &job,
                    &run,
                    RunStatus::Skipped,
                    "skipped: the previous run is still going (overlap: forbid)",
                )
                .await;
        }
        if !released {
            self.reserve(job.id, true);
        }
        let started = self.start_process(launch).await;
        self.reserve(job.id, false);
        match started {
            Ok((running, permit)) => {
                let started_at = running.started_at();
                metrics::histogram!("cronstack_run_lateness_seconds")
                    .record((started_at - run.scheduled_for).max(0) as f64 / 1000.0);
                let start = RunStart { run_id: run.id, job_id: run.job_id, started_at };
                if let Err(e) = self.starts.record(start).await {
                    tracing::error!(run = run.id, error = %e, "recording run start");
                }
                let run = Run { status: RunStatus::Running, started_at: Some(started_at), ..run };
                self.events.emit(Event::run(EventKind::RunStarted, &job, &run));
                metrics::gauge!("cronstack_runs_running").increment(1.0);
                let finished = running.wait().await;
                // The limit is on processes: the slot frees as soon as this one has ended.
                drop(permit);
                metrics::gauge!("cronstack_runs_running").decrement(1.0);
                self.active.lock().unwrap().remove(&run.id);
                self.record(&job, &run, finished).await
            }
            // Not started because the node is stopping: the run was stopped, not failed.
            Err(message) if self.permits.is_closed() => {
                self.finish_without_start(&job, &run, RunStatus::Killed, &message).await
            }
            Err(message) => self.finish_without_start(&job, &run, RunStatus::Failed, &message).await,
        }
    }

    /// Takes the released process, or waits for a concurrency permit and spawns one; then
    /// registers it.
    async fn start_process(
        &self,
        launch: &mut Launch,
    ) -> Result<(cronstack_exec::Running, OwnedSemaphorePermit), String> {
        let (running, permit) = match launch.prespawned.take() {
            Some(Prespawned::Released(running, permit)) => (running, permit),
            // (A held one never released here is dropped, which kills it.)
            _ => {
                metrics::gauge!("cronstack_runs_waiting").increment(1.0);
                let permit = self.permits.clone().acquire_owned().await;
                metrics::gauge!("cronstack_runs_waiting").decrement(1.0);
                let permit = permit.map_err(|_| "the node is shutting down".to_string())?;
                let stdin = launch.stdin.take();
                let running = cronstack_exec::spawn(self.command(launch, stdin))
                    .map_err(|e| format!("could not start the command: {e}"))?;
                (running, permit)
            }
        };
        let (run, job) = (&launch.run, &launch.job);
        self.active
            .lock()
            .unwrap()
            .insert(run.id, ActiveRun { job_id: job.id, log: running.log(), killer: running.killer() });
        Ok((running, permit))
    }

    fn command(&self, launch: &Launch, stdin: Option<Vec<u8>>) -> Command {
        let (run, job, stack) = (&launch.run, &launch.job, &launch.stack);
        let mut env: Vec<(String, String)> = stack.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.push(("CRONSTACK_JOB_ID".into(), job.id.to_string()));
        env.push(("CRONSTACK_RUN_ID".into(), run.id.to_string()));
        env.push(("CRONSTACK_SCHEDULED_FOR".into(), crate::domain::iso8601(run.scheduled_for)));
        env.push(("CRONSTACK_ATTEMPT".into(), run.attempt.to_string()));
        Command {
            script: job.command.clone().unwrap_or_else(|| stack.command.clone()),
            name: job.display_name(),
            args: run.args.clone(),
            env,
            workdir: stack.workdir.clone().map(Into::into),
            stdin,
            timeout: job.timeout_s.map(|s| Duration::from_secs(s as u64)),
            kill_grace: self.settings.kill_grace,
            log_cap: self.settings.log_cap,
            capture_stdout: launch.capture_stdout,
            user: self.settings.run_as.clone(),
            base_env: self.settings.job_env.clone(),
        }
    }

    async fn record(&self, job: &Job, run: &Run, f: Finished) -> RunResult {
        let status = match f.outcome {
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::Failed => RunStatus::Failed,
            Outcome::TimedOut => RunStatus::TimedOut,
            Outcome::Killed => RunStatus::Killed,
        };
        let finish = RunFinish {
            status,
            finished_at: f.finished_at,
            exit_code: f.exit_code.map(i64::from),
            signal: f.signal.map(i64::from),
            log: f.log,
            log_truncated: f.log_truncated,
        };
        metrics::counter!("cronstack_runs_total", "outcome" => status.as_str()).increment(1);
        metrics::histogram!("cronstack_run_duration_seconds")
            .record((f.finished_at - f.started_at).max(0) as f64 / 1000.0);
        self.store_finish(job, run, &finish).await;
        RunResult { run_id: run.id, status, exit_code: finish.exit_code, stdout: f.stdout, log: finish.log }
    }

    async fn finish_without_start(
        &self,
        job: &Job,
        run: &Run,
        status: RunStatus,
        message: &str,
    ) -> RunResult {
        let finish = RunFinish {
            status,
            finished_at: now_ms(),
            exit_code: None,
            signal: None,
            log: message.to_string(),
            log_truncated: false,
        };
        metrics::counter!("cronstack_runs_total", "outcome" => status.as_str()).increment(1);
        self.store_finish(job, run, &finish).await;
        RunResult { run_id: run.id, status, exit_code: None, stdout: None, log: finish.log }
    }

    /// Writes the run's end, the job's status, announces it, and finishes the actions waiting
    /// on it.
    async fn store_finish(&self, job: &Job, run: &Run, f: &RunFinish) {
        let job_status = match f.status {
            RunStatus::Succeeded => Some(JobStatus::Success),
            RunStatus::Skipped => None,
            _ => Some(JobStatus::Failed),
        };
        // The run's end must not be lost to a database outage: retry for a while.
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            match self.store.finish_run(run, f, job_status).await {
                Ok(()) => break,
                Err(e) if attempt < 40 => {
                    tracing::warn!(run = run.id, error = %e, "recording run end; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    tracing::error!(run = run.id, error = %e, "recording run end failed for good");
                    break;
                }
            }
        }
        if let Some(kind) = EventKind::for_run_end(f.status) {
            let ended = Run {
                status: f.status,
                finished_at: Some(f.finished_at),
                exit_code: f.exit_code,
                signal: f.signal,
                log_truncated: f.log_truncated,
                ..run.clone()
            };
            self.events.emit(Event::run(kind, job, &ended));
        }
        // Only run-now runs have an action waiting on them.
        if run.trigger != TriggerKind::RunNow {
            return;
        }
        let success = f.status == RunStatus::Succeeded;
        let message = match (f.status, f.exit_code) {
            (RunStatus::Succeeded, _) => "the job ran successfully".to_string(),
            (RunStatus::Failed, Some(code)) => format!("the job failed with exit code {code}"),
            (status, _) => format!("the job ended: {status}"),
        };
        let result = json!({
            "run_id": run.id,
            "status": f.status.as_str(),
            "exit_code": f.exit_code,
            "signal": f.signal,
            "args": run.args,
            "log_tail": tail(&f.log, LOG_TAIL_BYTES),
        });
        if let Err(e) = self.store.finish_run_actions(run.id, f.finished_at, success, &message, &result).await
        {
            tracing::error!(run = run.id, error = %e, "finishing run actions");
        }
    }

    /// Runs found lost at start (a crash) earn their retries like any failed run.
    pub(super) fn retry_lost(self: &Arc<Self>, lost: Vec<Run>) {
        for run in lost {
            let me = self.clone();
            self.tasks.spawn(async move {
                let Ok(Some(job)) = me.store.job(run.job_id).await else {
                    return;
                };
                me.events.emit(Event::run(EventKind::RunFailed, &job, &run));
                if run.attempt > job.retries || run.trigger == TriggerKind::Webhook {
                    return;
                }
                let Ok(Some(stack)) = me.store.stack(job.stack_id).await else {
                    return;
                };
                if let Some(next) = me.schedule_retry(&Launch::new(run, job, stack)).await {
                    me.execute(next).await;
                }
            });
        }
    }

    /// Renews this node's leases and marks runs whose node died as lost.
    pub(super) async fn maintain(self: Arc<Self>) {
        let every = (self.settings.lease / 4).max(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.shutting_down.notified() => return,
            }
            let now = now_ms();
            if let Err(e) =
                self.store.renew_leases(&self.node_id, now + self.settings.lease.as_millis() as i64).await
            {
                tracing::warn!(error = %e, "renewing run leases");
            }
            match self.store.mark_lost_runs(now, false).await {
                Ok(lost) if !lost.is_empty() => {
                    tracing::warn!(count = lost.len(), "runs of a dead node marked lost");
                    for run in &lost {
                        metrics::counter!("cronstack_runs_total", "outcome" => "lost").increment(1);
                        if let Ok(Some(job)) = self.store.job(run.job_id).await {
                            self.events.emit(Event::run(EventKind::RunFailed, &job, run));
                        }
                        let _ = self
                            .store
                            .finish_run_actions(
                                run.id,
                                now,
                                false,
                                "the node running the job died",
                                &json!({"run_id": run.id, "status": "lost"}),
                            )
                            .await;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping lost runs"),
            }
        }
    }

    /// Lets running runs finish within the grace period, then kills them (they are recorded
    /// as killed by their own tasks).
    pub(super) async fn shutdown(&self) {
        self.shutting_down.notify_waiters();
        self.permits.close();
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_grace;
        while !self.active.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for a in self.active.lock().unwrap().values() {
            a.killer.kill();
        }
    }
}

/// Exponential backoff with ±20% jitter: base · 2^(attempt-1), capped at a day.
fn backoff_ms(base_s: i64, attempt: i64) -> EpochMs {
    let exp = (attempt - 1).clamp(0, 20) as u32;
    let ms = (base_s.max(1) * 1000).saturating_mul(1 << exp).min(86_400_000);
    let jitter = rand::random_range(0.8..1.2);
    (ms as f64 * jitter) as EpochMs
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn log_err(e: impl std::fmt::Display) {
    tracing::error!(error = %e, "retry bookkeeping");
}
