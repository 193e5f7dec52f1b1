//! The runner: starts runs as child processes and records how they end. It applies the
//! overlap policy, the per-node concurrency limit, timeouts and retries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cronstack_exec::{Command, Finished, Gate, Killer, Log, Outcome, Release};
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

mod holds;
mod pipeline;

use super::fence::Fence;
use super::{EngineSettings, Launch};
use crate::domain::Missed;
use crate::domain::{EpochMs, EventKind, Job, JobStatus, Overlap, Run, RunStatus, TriggerKind, now_ms};
use crate::events::{Event, EventSender};
use crate::store::{Expired, NewRun, RunEnd, RunFinish, RunStart, Store};

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
    /// Killed because this node lost its lease: the run ends `lost`, not `killed`.
    fenced: bool,
}

pub(super) struct Runner {
    store: Store,
    settings: EngineSettings,
    node_id: Arc<str>,
    tasks: TaskTracker,
    permits: Arc<Semaphore>,
    active: Mutex<HashMap<i64, ActiveRun>>,
    /// Held runs asked to stop before they started: they end `killed` instead of starting.
    cancelled: Mutex<HashSet<i64>>,
    /// Wakes runs waiting for a concurrency permit when one of them is cancelled.
    cancel_wake: Notify,
    /// Runs waiting for a concurrency permit, by when each began to wait (see [`Runner::behind`]).
    waiting: Mutex<BTreeMap<u64, Instant>>,
    next_waiting: AtomicU64,
    /// Jobs with a slot waiting for their running run to end (`overlap: queue`): one each.
    queued_behind: Mutex<HashSet<i64>>,
    /// Wakes those waiting slots when a run ends.
    run_ended: Notify,
    /// Runs reserved for a job between the overlap check and registration (forbid policy).
    starting: Mutex<HashMap<i64, usize>>,
    shutting_down: Notify,
    events: EventSender,
    starts: super::batch::StartRecorder,
    ends: super::batch::EndRecorder,
    fence: Fence,
    /// The runs a task of this process is responsible for — claimed, recorded or adopted here
    /// and not yet ended or given up: the ones whose lease it renews.
    held: holds::Holds,
    /// This runner, for tasks it spawns from a borrowed `&self` (chained runs).
    me: std::sync::Weak<Runner>,
}

const LOG_TAIL_BYTES: usize = 4096;

impl Runner {
    pub(super) fn new(
        store: Store,
        settings: EngineSettings,
        node_id: Arc<str>,
        tasks: TaskTracker,
        events: EventSender,
        me: std::sync::Weak<Runner>,
    ) -> Self {
        Runner {
            me,
            events,
            starts: super::batch::start_recorder(store.clone(), node_id.clone()),
            ends: super::batch::end_recorder(store.clone(), node_id.clone()),
            fence: Fence::new(store.backend() == crate::store::Backend::Postgres, settings.lease),
            held: holds::Holds::default(),
            cancelled: Mutex::new(HashSet::new()),
            cancel_wake: Notify::new(),
            waiting: Mutex::new(BTreeMap::new()),
            next_waiting: AtomicU64::new(0),
            queued_behind: Mutex::new(HashSet::new()),
            run_ended: Notify::new(),
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
        self.hold(launch.run.id);
        let me = self.clone();
        self.tasks.spawn(async move { me.execute(launch).await });
    }

    /// Runs these one after another, each once the previous one (with its retries) has ended.
    pub(super) fn spawn_in_order(self: &Arc<Self>, launches: Vec<Launch>) {
        for launch in &launches {
            self.hold(launch.run.id);
        }
        let me = self.clone();
        self.tasks.spawn(async move {
            for launch in launches {
                me.clone().execute(launch).await;
            }
        });
    }

    /// Takes responsibility for a run recorded under this node (its lease is renewed).
    pub(super) fn hold(&self, run_id: i64) {
        self.held.hold(run_id);
    }

    /// Gives up a run: its lease is no longer renewed here.
    fn release_hold(&self, run_id: i64) {
        self.held.release(run_id);
    }

    fn holds(&self, run_id: i64) -> bool {
        self.held.contains(run_id)
    }

    /// Kills a run this node holds (`POST /runs/<id>/kill`): a running one's process group
    /// gets SIGTERM, then SIGKILL after the kill grace; a queued one ends `killed` instead of
    /// starting. `false`: not held here.
    pub(super) fn kill(&self, run_id: i64) -> bool {
        if let Some(a) = self.active.lock().unwrap().get(&run_id) {
            a.killer.kill();
            return true;
        }
        if self.holds(run_id) {
            self.cancelled.lock().unwrap().insert(run_id);
            self.cancel_wake.notify_waiters();
            return true;
        }
        false
    }

    /// Whether this node may claim and start runs (see [`Fence`]).
    pub(super) fn lease_is_current(&self) -> bool {
        self.fence.is_current()
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
    pub(super) fn prepare(&self, launch: &mut Launch, gate: &Gate) {
        if launch.stdin.is_some() || launch.stack.blocks.is_some() {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else { return };
        // A command that cannot be built fails at the slot, where its error is recorded.
        let Ok(command) = self.command(launch, None) else { return };
        match gate.prepare(command) {
            Ok(child) => launch.prespawned = Some(Prespawned::Held(child, permit)),
            // Spawned again at the slot, where a lasting error is recorded on the run.
            Err(e) => tracing::debug!(run = launch.run.id, error = %e, "spawning ahead of the slot"),
        }
    }

    /// How long the run that has waited longest for a concurrency permit has waited: zero
    /// unless every permit is taken. The scheduler claims nothing more while it is past the
    /// missed-run grace (see `Scheduler::fire_due`).
    pub(super) fn behind(&self) -> Duration {
        let waiting = self.waiting.lock().unwrap();
        waiting.values().next().map_or(Duration::ZERO, Instant::elapsed)
    }

    /// Starts scheduled runs due at this instant: each held process whose run passes its
    /// overlap check is released, then their gate opens for all at once (one write), then
    /// each run goes on in its own task. A held process that must not run is dropped, which
    /// kills it before the gate opens; `run_once` then records its run as skipped.
    pub(super) fn start_group(self: &Arc<Self>, mut launches: Vec<Launch>, gate: Option<Gate>) {
        if !self.fence.is_current() {
            // Frozen past the point where another node may take these runs: release none.
            // Dropping the held processes kills them; the runs' leases run out and whichever
            // node sweeps first adopts them.
            tracing::warn!(runs = launches.len(), "lease not current at the slot: claimed runs given up");
            for launch in launches {
                self.release_hold(launch.run.id);
            }
            return;
        }
        let at = Release::now();
        for launch in &mut launches {
            // A run this node no longer holds was taken by another node while this one could
            // not renew (its renewal just found out): its process must never pass the gate.
            if let Some(Prespawned::Held(child, permit)) = launch.prespawned.take()
                && self.holds(launch.run.id)
                && self.overlap_allows(&launch.job)
            {
                self.reserve(launch.job.id, true);
                launch.prespawned = Some(Prespawned::Released(child.release(at), permit));
            }
        }
        if let Some(gate) = gate {
            gate.open();
        }
        // A run given up meanwhile (taken by another node) is not started here in any form:
        // `spawn_launch` would hold it again and spawn it afresh.
        for launch in launches {
            if self.holds(launch.run.id) {
                self.spawn_launch(launch);
            }
        }
    }

    /// Applies the job's overlap policy to a scheduled run about to start: `false` when it
    /// must be skipped; `replace` kills the job's running runs.
    fn overlap_allows(&self, job: &Job) -> bool {
        match job.overlap {
            Overlap::Forbid | Overlap::Queue => !self.job_is_running(job.id),
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
            if result.is_none() {
                // Given up without a trace here (shutdown, lost lease, taken by another
                // node): whoever holds the run now ends it and retries it.
                return;
            }
            let result = result.expect("checked above");
            let retry_due = launch.job.retries_after(&run, result.status);
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
            chain: prev.run.chain.clone(),
        };
        let id = self.store.insert_run(&new, now).await.map_err(log_err).ok()?;
        self.hold(id);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay as u64)) => {}
            _ = self.shutting_down.notified() => return None,
        }
        let run = self.store.run(id).await.map_err(log_err).ok()??;
        let job = self.store.job(prev.job.id).await.map_err(log_err).ok()??;
        let stack = self.store.stack(job.stack_id).await.map_err(log_err).ok()??;
        Some(Launch::new(run, job, stack))
    }

    /// Runs the launch's process to its end and records it; `None` when the run was given up
    /// instead (see [`Runner::give_up`]).
    async fn run_once(&self, launch: &mut Launch) -> Option<RunResult> {
        let run = launch.run.clone();
        let job = launch.job.clone();
        if !self.holds(run.id) || !self.fence.is_current() {
            launch.prespawned = None;
            return self.give_up(&run, "this node's lease is not current, or another node took the run");
        }
        let scheduled = matches!(run.trigger, TriggerKind::Schedule | TriggerKind::Retry);
        // A released run passed its overlap check (and took its reservation) at the slot.
        let mut reserved = matches!(launch.prespawned, Some(Prespawned::Released(..)));
        if scheduled && !reserved && !self.overlap_allows(&job) {
            launch.prespawned = None;
            let why = match job.overlap {
                Overlap::Queue => match self.queue_behind(job.id).await {
                    Some(true) => None,
                    Some(false) => Some("skipped: a slot already waits for the running run (overlap: queue)"),
                    None => return self.give_up(&run, "the node is shutting down"),
                },
                _ => Some("skipped: the previous run is still going (overlap: forbid)"),
            };
            match why {
                Some(why) => return self.finish_without_start(&job, &run, RunStatus::Skipped, why).await,
                None => reserved = true,
            }
        }
        if !self.holds(run.id) {
            return self.give_up(&run, "another node took the run");
        }
        if self.cancelled.lock().unwrap().remove(&run.id) {
            launch.prespawned = None;
            return self.finish_without_start(&job, &run, RunStatus::Killed, KILLED_BEFORE_START).await;
        }
        if !reserved {
            self.reserve(job.id, true);
        }
        if launch.stack.blocks.is_some() {
            // A pipeline: reserved (for the overlap policy) until its last step ends.
            let result = self.run_pipeline(launch).await;
            self.reserve(job.id, false);
            self.run_ended.notify_waiters();
            return result;
        }
        let started = self.start_process(launch).await;
        self.reserve(job.id, false);
        match started {
            Ok((running, permit)) => {
                let started_at = running.started_at();
                metrics::histogram!("cronstack_run_lateness_seconds")
                    .record((started_at - run.due()).max(0) as f64 / 1000.0);
                let start = RunStart { run_id: run.id, job_id: run.job_id, started_at };
                match self.starts.record(start).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // Another node adopted the run while this one was frozen: its process
                        // must not go on.
                        self.active.lock().unwrap().remove(&run.id);
                        drop(running);
                        return self.give_up(&run, "another node took the run before it started here");
                    }
                    Err(e) => tracing::error!(run = run.id, error = %e, "recording run start"),
                }
                let run = Run { status: RunStatus::Running, started_at: Some(started_at), ..run };
                self.events.emit(Event::run(EventKind::RunStarted, &job, &run));
                metrics::gauge!("cronstack_runs_running").increment(1.0);
                let finished = running.wait().await;
                // The limit is on processes: the slot frees as soon as this one has ended.
                drop(permit);
                metrics::gauge!("cronstack_runs_running").decrement(1.0);
                let fenced = self.active.lock().unwrap().remove(&run.id).is_some_and(|a| a.fenced);
                self.run_ended.notify_waiters();
                self.record(&job, &run, finished, fenced).await
            }
            // Not started because the node is stopping: handed back to the cluster at
            // shutdown (`Engine::shutdown`), to start on another node or after the restart.
            Err(message) if self.cancelled.lock().unwrap().remove(&run.id) => {
                self.finish_without_start(&job, &run, RunStatus::Killed, &message).await
            }
            Err(_) if self.permits.is_closed() => None,
            Err(message) => self.finish_without_start(&job, &run, RunStatus::Failed, &message).await,
        }
    }

    /// `overlap: queue`: waits for the job's running run to end, then reserves the start
    /// (`Some(true)`). `Some(false)`: another slot already waits (this one is skipped);
    /// `None`: the node is shutting down.
    async fn queue_behind(&self, job_id: i64) -> Option<bool> {
        if !self.queued_behind.lock().unwrap().insert(job_id) {
            return Some(false);
        }
        let started = loop {
            let ended = self.run_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            {
                // The check and the reservation under the same locks: no other slot of the
                // job can start in between.
                let active = self.active.lock().unwrap();
                let mut starting = self.starting.lock().unwrap();
                if !active.values().any(|a| a.job_id == job_id)
                    && starting.get(&job_id).is_none_or(|n| *n == 0)
                {
                    *starting.entry(job_id).or_default() += 1;
                    break Some(true);
                }
            }
            tokio::select! {
                () = &mut ended => {}
                () = self.shutting_down.notified() => break None,
            }
        };
        self.queued_behind.lock().unwrap().remove(&job_id);
        started
    }

    /// This node stops acting on a run without writing anything: it was taken by another node,
    /// or this node cannot prove its lease. Its lease runs out and the sweep adopts it.
    fn give_up(&self, run: &Run, why: &str) -> Option<RunResult> {
        tracing::warn!(run = run.id, why, "run given up by this node");
        self.release_hold(run.id);
        None
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
                let waiting = Waiting::new(self);
                // The same acquire future throughout, so the run keeps its place in line.
                let acquire = self.permits.clone().acquire_owned();
                tokio::pin!(acquire);
                let permit = loop {
                    tokio::select! {
                        permit = &mut acquire => break permit,
                        () = self.cancel_wake.notified() => {
                            if self.cancelled.lock().unwrap().contains(&launch.run.id) {
                                return Err(KILLED_BEFORE_START.to_string());
                            }
                        }
                    }
                };
                drop(waiting);
                let permit = permit.map_err(|_| "the node is shutting down".to_string())?;
                let stdin = launch.stdin.take();
                let running = cronstack_exec::spawn(self.command(launch, stdin)?)
                    .map_err(|e| format!("could not start the command: {e}"))?;
                (running, permit)
            }
        };
        let (run, job) = (&launch.run, &launch.job);
        self.active.lock().unwrap().insert(
            run.id,
            ActiveRun { job_id: job.id, log: running.log(), killer: running.killer(), fenced: false },
        );
        Ok((running, permit))
    }

    /// The run's command. Its environment, each later part on top: the base (`--pass-env`, the
    /// user's identity), the stack's env, its secret env (opened here, and masked in the
    /// output), the `CRONSTACK_*` run variables. Err: a secret that does not open.
    fn command(&self, launch: &Launch, stdin: Option<Vec<u8>>) -> Result<Command, String> {
        let (run, job, stack) = (&launch.run, &launch.job, &launch.stack);
        let mut env: Vec<(String, String)> = stack.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut redact = Vec::new();
        if !stack.secret_env.is_empty() {
            let key = self
                .settings
                .secret_key
                .as_ref()
                .ok_or("this node has no secret key to open the stack's secret env")?;
            let secrets = key
                .open_env(&stack.uid, &stack.secret_env)
                .map_err(|e| format!("{e}: is --secret-key-file the key of the node that set it?"))?;
            for (name, value) in secrets {
                redact.push(value.expose().to_string());
                env.push((name, value.expose().to_string()));
            }
        }
        env.push(("CRONSTACK_JOB_ID".into(), job.id.to_string()));
        env.push(("CRONSTACK_RUN_ID".into(), run.id.to_string()));
        env.push(("CRONSTACK_SCHEDULED_FOR".into(), crate::domain::iso8601(run.scheduled_for)));
        env.push(("CRONSTACK_ATTEMPT".into(), run.attempt.to_string()));
        if let Some(cause) = &run.chain {
            env.push(("CRONSTACK_UPSTREAM_RUN_ID".into(), cause.run_id.to_string()));
            env.push(("CRONSTACK_UPSTREAM_OUTCOME".into(), cause.outcome.to_string()));
        }
        Ok(Command {
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
            redact,
        })
    }

    async fn record(&self, job: &Job, run: &Run, f: Finished, fenced: bool) -> Option<RunResult> {
        let status = match f.outcome {
            _ if fenced => RunStatus::Lost,
            Outcome::Succeeded => RunStatus::Succeeded,
            Outcome::Failed => RunStatus::Failed,
            Outcome::TimedOut => RunStatus::TimedOut,
            Outcome::Killed => RunStatus::Killed,
        };
        let mut log = f.log;
        if fenced {
            log.push_str(
                "\n[cronstack] killed: this node lost its lease (frozen, or cut off from the database)\n",
            );
        }
        let finish = RunFinish {
            status,
            finished_at: f.finished_at,
            exit_code: f.exit_code.map(i64::from),
            signal: f.signal.map(i64::from),
            log,
            log_truncated: f.log_truncated,
        };
        metrics::histogram!("cronstack_run_duration_seconds")
            .record((f.finished_at - f.started_at).max(0) as f64 / 1000.0);
        let written = self.store_finish(job, run, finish).await?;
        Some(RunResult {
            run_id: run.id,
            status: written.status,
            exit_code: written.exit_code,
            stdout: f.stdout,
            log: written.log,
        })
    }

    async fn finish_without_start(
        &self,
        job: &Job,
        run: &Run,
        status: RunStatus,
        message: &str,
    ) -> Option<RunResult> {
        let finish = RunFinish {
            status,
            finished_at: now_ms(),
            exit_code: None,
            signal: None,
            log: message.to_string(),
            log_truncated: false,
        };
        let written = self.store_finish(job, run, finish).await?;
        Some(RunResult {
            run_id: run.id,
            status: written.status,
            exit_code: None,
            stdout: None,
            log: written.log,
        })
    }

    /// Writes the run's end (see [`Runner::write_finish`]), the job's status, announces it, and
    /// finishes the actions waiting on it; answers what was written. `None`: the run was not
    /// this node's to end any more — another node took it as lost and said so — or the end
    /// could not be written at all (the sweep will find the run): nothing is announced.
    async fn store_finish(&self, job: &Job, run: &Run, f: RunFinish) -> Option<RunFinish> {
        self.held.ending(run.id);
        let written = self.write_finish(job, run, f).await;
        self.release_hold(run.id);
        let (f, chained) = written?;
        self.start_chained(chained);
        metrics::counter!("cronstack_runs_total", "outcome" => f.status.as_str()).increment(1);
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
            return Some(f);
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
        Some(f)
    }

    /// Writes a run's end as a compare-and-swap on (this node, unfinished). A database outage
    /// is retried with backoff; a write the database keeps refusing is retried a bounded number
    /// of times, then the end is recorded as `failed` with the reason and without the log, so
    /// that no run is left `running` for ever. The job's final attempt also records the chained
    /// runs it sets off (answered with the end). `None`: not this node's run any more, or
    /// nothing could be written.
    async fn write_finish(&self, job: &Job, run: &Run, f: RunFinish) -> Option<(RunFinish, Vec<Run>)> {
        let job_status = |status| match status {
            RunStatus::Succeeded => Some(JobStatus::Success),
            RunStatus::Skipped => None,
            _ => Some(JobStatus::Failed),
        };
        let mut error = String::new();
        let fallback = |error: &str| RunFinish {
            status: RunStatus::Failed,
            log: format!(
                "[cronstack] this run ended ({}), but its end could not be recorded: {error}",
                f.status
            ),
            log_truncated: false,
            ..f.clone()
        };
        for finish in [Some(f.clone()), None] {
            let finish = finish.unwrap_or_else(|| fallback(&error));
            let mut delay = Duration::from_millis(200);
            for attempt in 1..=FINISH_TRIES {
                let chain_lease = (!job.retries_after(run, finish.status))
                    .then(|| now_ms() + self.settings.lease.as_millis() as EpochMs);
                let job_status = job_status(finish.status);
                // The first try goes with other runs' ends, in one transaction; a retry alone.
                let written = if attempt == 1 {
                    let end = RunEnd { run: run.clone(), finish: finish.clone(), job_status, chain_lease };
                    self.ends.record(end).await
                } else {
                    self.store
                        .finish_run(&self.node_id, run, &finish, job_status, chain_lease)
                        .await
                        .map_err(|e| e.to_string())
                };
                match written {
                    Ok(Some(chained)) => return Some((finish, chained)),
                    Ok(None) => {
                        tracing::warn!(run = run.id, "run end not recorded: another node took the run");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!(run = run.id, attempt, error = %e, "recording run end; retrying");
                        error = e.to_string();
                        if attempt < FINISH_TRIES {
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            }
        }
        tracing::error!(
            run = run.id,
            error,
            "recording run end failed for good; the sweep will mark it lost"
        );
        None
    }

    /// Takes over what a sweep found: lost runs are announced, their actions finished, and
    /// retried per the job (`retries`, unless `retry_lost` is off); adopted runs — claimed by a
    /// node that stopped before starting them — are started here, late, with their true
    /// lateness, or skipped when the job's missed-run policy says so.
    pub(super) fn take_over(self: &Arc<Self>, expired: Expired) {
        if !expired.lost.is_empty() || !expired.adopted.is_empty() {
            tracing::warn!(
                lost = expired.lost.len(),
                adopted = expired.adopted.len(),
                "runs of a stopped node (or of this one before a restart) taken over"
            );
        }
        let now = now_ms();
        for run in expired.lost {
            let me = self.clone();
            self.tasks.spawn(async move {
                metrics::counter!("cronstack_runs_total", "outcome" => "lost").increment(1);
                let _ = me
                    .store
                    .finish_run_actions(
                        run.id,
                        now,
                        false,
                        "the node running the job stopped before it ended",
                        &json!({"run_id": run.id, "status": "lost"}),
                    )
                    .await;
                let Ok(Some(job)) = me.store.job(run.job_id).await else { return };
                me.events.emit(Event::run(EventKind::RunFailed, &job, &run));
                if !job.retries_after(&run, RunStatus::Lost) {
                    return;
                }
                let Ok(Some(stack)) = me.store.stack(job.stack_id).await else { return };
                if let Some(next) = me.schedule_retry(&Launch::new(run, job, stack)).await {
                    me.execute(next).await;
                }
            });
        }
        self.start_chained(expired.chained);
        for run in expired.adopted {
            // Still in a task of this process (its own lease lapsed for a moment): that task
            // goes on with it.
            if self.holds(run.id) {
                continue;
            }
            self.hold(run.id);
            tracing::info!(run = run.id, job = run.job_id, "run adopted from a stopped node");
            let me = self.clone();
            self.tasks.spawn(async move { me.adopt(run).await });
        }
    }

    /// Starts the chained runs an upstream run's end recorded under this node (held from now:
    /// should this node stop first, they are handed back or swept like any queued run).
    fn start_chained(&self, runs: Vec<Run>) {
        let Some(me) = self.me.upgrade() else { return };
        for run in runs {
            tracing::debug!(run = run.id, job = run.job_id, cause = ?run.chain, "chained run");
            self.hold(run.id);
            let me = me.clone();
            self.tasks.spawn(async move { me.adopt(run).await });
        }
    }

    /// Starts a queued run this node holds but no task of it runs: loads its job and stack,
    /// skips it when the run's trigger says so, waits for its due time.
    async fn adopt(self: Arc<Self>, run: Run) {
        let loaded = async {
            let Some(job) = self.store.job(run.job_id).await? else { return Ok(None) };
            let Some(stack) = self.store.stack(job.stack_id).await? else { return Ok(None) };
            Ok::<_, crate::store::StoreError>(Some((job, stack)))
        };
        let Ok(Some((job, stack))) = loaded.await else {
            // The job is gone (its runs go with it), or the database is away: the run's lease
            // runs out again and the next sweep retries.
            self.release_hold(run.id);
            return;
        };
        let now = now_ms();
        let late = now - run.due() > self.settings.missed_grace.as_millis() as EpochMs;
        let skip = match run.trigger {
            TriggerKind::Schedule if late && job.missed == Missed::Skip => Some(
                "skipped: the node that claimed this slot stopped before it, and the job's missed-run policy is skip",
            ),
            // The caller that waited for the hook's answer is gone with that node.
            TriggerKind::Webhook => {
                Some("skipped: the node that took this hook call stopped before running it")
            }
            _ => None,
        };
        if let Some(why) = skip {
            self.finish_without_start(&job, &run, RunStatus::Skipped, why).await;
            return;
        }
        // A slot or a retry handed back before its time starts at its time.
        if run.due() > now {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis((run.due() - now) as u64)) => {}
                _ = self.shutting_down.notified() => return,
            }
        }
        self.clone().execute(Launch::new(run, job, stack)).await;
    }

    /// Renews the leases of the runs this node holds, and sweeps runs whose node stopped.
    pub(super) async fn maintain(self: Arc<Self>) {
        let every = (self.settings.lease / 4).max(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.shutting_down.notified() => return,
            }
            self.renew().await;
            let now = now_ms();
            let lease_until = now + self.settings.lease.as_millis() as EpochMs;
            match self.store.sweep_expired_runs(now, false, &self.node_id, lease_until).await {
                Ok(expired) => self.take_over(expired),
                Err(e) => tracing::warn!(error = %e, "sweeping runs of stopped nodes"),
            }
        }
    }

    /// One lease renewal. Held runs the database no longer shows as this node's were taken by
    /// another node while this one could not renew: their processes are stopped at once.
    async fn renew(&self) {
        let ids = self.held.ids();
        let sent = std::time::Instant::now();
        let until = now_ms() + self.settings.lease.as_millis() as EpochMs;
        let renewed = match self.store.renew_leases(&self.node_id, &ids, until).await {
            Ok(renewed) => renewed,
            Err(e) => {
                tracing::warn!(error = %e, "renewing run leases");
                return;
            }
        };
        let taken = self.held.take_lost(ids, &renewed);
        if !taken.is_empty() {
            tracing::warn!(
                runs = taken.len(),
                "runs taken by another node while this one could not renew; stopping them"
            );
            let active = self.active.lock().unwrap();
            for id in &taken {
                if let Some(a) = active.get(id) {
                    a.killer.kill();
                }
            }
        }
        self.fence.renewed(sent);
    }

    /// Watches the lease: the moment this node notices it cannot prove it current, it kills
    /// its runs' process groups (they end `lost`, unless another node recorded them first).
    pub(super) async fn watch_fence(self: Arc<Self>) {
        if !self.fence.enabled() {
            return;
        }
        let mut fenced = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = self.shutting_down.notified() => return,
            }
            let current = self.fence.is_current();
            if !current && !fenced {
                let mut active = self.active.lock().unwrap();
                tracing::error!(
                    runs = active.len(),
                    "lease not renewed in time (frozen, or cut off from the database): killing this node's runs"
                );
                for a in active.values_mut() {
                    a.fenced = true;
                    a.killer.kill();
                }
            }
            fenced = !current;
            if fenced {
                // Prove the lease again as soon as the database answers, rather than at the
                // next quarter lease: until then this node claims and starts nothing.
                self.renew().await;
            }
        }
    }

    /// The runs this node holds, to hand back to the cluster when it stops.
    pub(super) fn held_runs(&self) -> Vec<i64> {
        self.held.ids()
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

const KILLED_BEFORE_START: &str = "killed before it started, on request";

/// Tries to record a run's end before it is recorded `failed` without its log.
const FINISH_TRIES: u32 = 8;

fn log_err(e: impl std::fmt::Display) {
    tracing::error!(error = %e, "retry bookkeeping");
}

/// A run waiting for a concurrency permit, counted in [`Runner::behind`] and the
/// `cronstack_runs_waiting` gauge until dropped (it got its permit, or gave up).
struct Waiting<'a> {
    runner: &'a Runner,
    id: u64,
}

impl<'a> Waiting<'a> {
    fn new(runner: &'a Runner) -> Self {
        let id = runner.next_waiting.fetch_add(1, Ordering::Relaxed);
        runner.waiting.lock().unwrap().insert(id, Instant::now());
        metrics::gauge!("cronstack_runs_waiting").increment(1.0);
        Waiting { runner, id }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.runner.waiting.lock().unwrap().remove(&self.id);
        metrics::gauge!("cronstack_runs_waiting").decrement(1.0);
    }
}
