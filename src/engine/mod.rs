//! The engine: the scheduler (timer heap + database claims) and the runner (child processes,
//! overlap, concurrency, retries, recording). The service talks to it through [`EngineHandle`].

mod batch;
mod cluster;
mod fence;
mod monitor_watch;
mod preference;
mod pruner;
mod release;
mod runner;
mod scheduler;
mod watcher;

use std::sync::Arc;
use std::time::Duration;

use cronstack_cron::Trigger;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::{EpochMs, Job, Missed, Run, SlotPolicy, Stack, now_ms};
use crate::events::EventSender;
use crate::store::Store;

pub use pruner::{BATCH as PRUNE_BATCH, Retention};
pub use runner::RunResult;
use runner::Runner;
use scheduler::{SchedMsg, Scheduler, SlotRule};

/// What the engine refuses (the service maps it to its own error).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A process started without an executor (`serve --no-executor` and the like).
    #[error("this process does not run jobs")]
    NoRunner,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Engine settings (from the command line).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Runs beyond this many at once wait, in order.
    pub max_concurrent_runs: usize,
    /// Per-run log cap in bytes (head and tail are kept).
    pub log_cap: usize,
    /// Between SIGTERM and SIGKILL on timeout, replace and shutdown.
    pub kill_grace: Duration,
    /// How long running runs may finish on shutdown before they are killed.
    pub shutdown_grace: Duration,
    /// Slots are claimed this far ahead of their time, so the child starts on the dot.
    pub lookahead: Duration,
    /// Scheduled runs' processes are spawned when their slot is claimed and held at a gate
    /// until the slot: a burst due at one instant then starts within a millisecond.
    pub prespawn: bool,
    /// A slot later than this is "missed" and follows the job's missed-run policy.
    pub missed_grace: Duration,
    /// `run_once`: the newest missed slot runs if it is at most this old.
    pub run_once_deadline: Duration,
    /// `catch_up`: at most this many missed slots are run.
    pub catch_up_max: usize,
    /// A node's hold on its runs; renewed while it lives, expired runs are marked lost.
    pub lease: Duration,
    /// Jobs run as this user (`--run-as`); `None`: as the service's own user.
    pub run_as: Option<cronstack_exec::RunAs>,
    /// The environment every job starts from (`--pass-env`), never the service's own.
    pub job_env: cronstack_exec::JobEnv,
    /// How much run history is kept (`pruner`).
    pub retention: Retention,
    /// Opens stacks' secret env values for their runs (`None`: a stack with any fails its runs).
    pub secret_key: Option<crate::secrets::SecretKey>,
    /// Between two looks of the job health watcher (`watcher`).
    pub watch_interval: Duration,
    /// The dashboard's public address (`--public-url`), linked from monitor messages.
    pub public_url: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_concurrent_runs: 256,
            log_cap: 1024 * 1024,
            kill_grace: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            lookahead: Duration::from_millis(200),
            prespawn: true,
            missed_grace: Duration::from_secs(1),
            run_once_deadline: Duration::from_secs(3600),
            catch_up_max: 100,
            lease: Duration::from_secs(60),
            run_as: None,
            job_env: cronstack_exec::JobEnv::default(),
            retention: Retention::default(),
            secret_key: None,
            watch_interval: Duration::from_secs(5),
            public_url: None,
        }
    }
}

/// A run ready to start: the run row, and the job and stack it runs for.
pub struct Launch {
    pub run: Run,
    pub job: Job,
    pub stack: Stack,
    pub stdin: Option<Vec<u8>>,
    pub capture_stdout: bool,
    pub done: Option<oneshot::Sender<RunResult>>,
    /// Its process, spawned ahead of the slot (see [`EngineSettings::prespawn`]).
    prespawned: Option<runner::Prespawned>,
}

impl Launch {
    pub fn new(run: Run, job: Job, stack: Stack) -> Self {
        Launch { run, job, stack, stdin: None, capture_stdout: false, done: None, prespawned: None }
    }
}

/// The service's handle on the engine. Cheap to clone. An inert handle (no engine running,
/// as in `cronstack user add`) ignores schedule changes and refuses launches.
#[derive(Clone)]
pub struct EngineHandle {
    node_id: Arc<str>,
    lease: Duration,
    sched_tx: Option<mpsc::UnboundedSender<SchedMsg>>,
    runner: Option<Arc<Runner>>,
    events: EventSender,
}

impl EngineHandle {
    /// Whether this process's scheduler is alive (its message channel is open only while its
    /// loop runs).
    pub fn scheduler_running(&self) -> bool {
        self.sched_tx.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    pub fn inert() -> Self {
        EngineHandle {
            node_id: new_node_id().into(),
            lease: Duration::from_secs(60),
            sched_tx: None,
            runner: None,
            events: EventSender::inert(),
        }
    }

    /// Where the service announces job events (pause, unpause, delete).
    pub fn events(&self) -> &EventSender {
        &self.events
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn lease_until(&self, now: EpochMs) -> EpochMs {
        now + self.lease.as_millis() as i64
    }

    /// Tells the scheduler a job's next slot (None: not scheduled) and how to compute the
    /// following ones.
    pub fn job_changed(
        &self,
        job_id: i64,
        next: Option<EpochMs>,
        rule: Option<(Trigger, bool, Missed, SlotPolicy)>,
    ) {
        if let Some(tx) = &self.sched_tx {
            let rule = rule.map(|(trigger, once, missed, policy)| {
                Arc::new(SlotRule { trigger: Arc::new(trigger), once, missed, policy })
            });
            let _ = tx.send(SchedMsg::JobChanged { job_id, next, rule });
        }
    }

    /// Starts a run now (it was recorded `queued` by the caller).
    pub fn launch(&self, launch: Launch) -> Result<(), EngineError> {
        let runner = self.runner.as_ref().ok_or(EngineError::NoRunner)?;
        runner.spawn_launch(launch);
        Ok(())
    }

    /// Starts runs (recorded `queued` by the caller) all at once, or one after another.
    pub fn launch_all(&self, launches: Vec<Launch>, one_after_another: bool) -> Result<(), EngineError> {
        let runner = self.runner.as_ref().ok_or(EngineError::NoRunner)?;
        if one_after_another {
            runner.spawn_in_order(launches);
        } else {
            for launch in launches {
                runner.spawn_launch(launch);
            }
        }
        Ok(())
    }

    /// Kills a run wherever it goes: here if this node holds it, else by asking the other
    /// nodes (PostgreSQL NOTIFY; the node holding it acts within milliseconds).
    pub async fn kill_run(&self, store: &Store, run_id: i64) -> Result<(), EngineError> {
        if self.runner.as_ref().is_some_and(|r| r.kill(run_id)) {
            return Ok(());
        }
        Ok(store.notify_kill(run_id).await?)
    }

    /// The live log of a run going on this node.
    pub fn live_log(&self, run_id: i64) -> Option<cronstack_exec::Log> {
        self.runner.as_ref().and_then(|r| r.live_log(run_id))
    }
}

/// The running engine: its tasks and the way to stop them.
pub struct Engine {
    handle: EngineHandle,
    runner: Arc<Runner>,
    sched_tx: mpsc::UnboundedSender<SchedMsg>,
    scheduler: tokio::task::JoinHandle<()>,
    /// The groups of claimed runs waiting for their instant.
    groups: TaskTracker,
    lookahead: Duration,
    tasks: TaskTracker,
    stop: CancellationToken,
    store: Store,
}

impl Engine {
    /// Loads the schedule, marks runs left by a dead process as lost, and starts firing.
    /// `address` is where this node's API listens (shown in the node list); run and job events
    /// go to `events`.
    pub async fn start(
        store: Store,
        settings: EngineSettings,
        address: String,
        events: EventSender,
    ) -> anyhow::Result<Engine> {
        let node_id: Arc<str> = new_node_id().into();
        let tasks = TaskTracker::new();
        let runner = Arc::new_cyclic(|me| {
            Runner::new(
                store.clone(),
                settings.clone(),
                node_id.clone(),
                tasks.clone(),
                events.clone(),
                me.clone(),
            )
        });
        let (sched_tx, sched_rx) = mpsc::unbounded_channel();
        let handle = EngineHandle {
            node_id: node_id.clone(),
            lease: settings.lease,
            sched_tx: Some(sched_tx.clone()),
            runner: Some(runner.clone()),
            events: events.clone(),
        };
        // One node on SQLite owns every unfinished run it finds: they were left by a crash or
        // handed back at the last shutdown. In a cluster only runs whose lease ran out.
        let single_node = store.backend() == crate::store::Backend::Sqlite;
        let now = now_ms();
        let expired = store
            .sweep_expired_runs(now, single_node, &node_id, now + settings.lease.as_millis() as i64)
            .await?;
        runner.take_over(expired);
        let groups = TaskTracker::new();
        let preference = Arc::new(preference::Preference::new(&node_id));
        let scheduler = Scheduler::load(
            store.clone(),
            runner.clone(),
            settings.clone(),
            node_id.clone(),
            preference.clone(),
            sched_rx,
            groups.clone(),
        )
        .await?;
        let stop = CancellationToken::new();
        let scheduler = tokio::spawn(scheduler.run());
        tasks.spawn(runner.clone().maintain());
        tasks.spawn(runner.clone().watch_fence());
        tasks.spawn(cluster::heartbeat(store.clone(), node_id, address, now_ms(), preference, stop.clone()));
        tasks.spawn(cluster::listen(store.clone(), sched_tx.clone(), runner.clone(), stop.clone()));
        tasks.spawn(cluster::periodic_resync(store.clone(), sched_tx.clone(), stop.clone()));
        tasks.spawn(pruner::run(store.clone(), settings.retention.clone(), stop.clone()));
        tasks.spawn(watcher::run(store.clone(), events, settings.watch_interval, stop.clone()));
        tasks.spawn(monitor_watch::run(store.clone(), settings.public_url.clone(), stop.clone()));
        Ok(Engine {
            handle,
            runner,
            sched_tx,
            scheduler,
            groups,
            lookahead: settings.lookahead,
            tasks,
            stop,
            store,
        })
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Stops claiming first; fires what it had already claimed (at most one lookahead away);
    /// lets running runs finish within the grace period, then kills the rest and records
    /// them; hands the runs it holds but never started back to the cluster. A rolling restart
    /// therefore loses no slot and runs none twice.
    pub async fn shutdown(self) {
        let _ = self.sched_tx.send(SchedMsg::Shutdown);
        // Returns after the claim in progress, if any, is done: no claim after this.
        let _ = self.scheduler.await;
        self.groups.close();
        if tokio::time::timeout(self.lookahead + Duration::from_secs(2), self.groups.wait()).await.is_err() {
            tracing::warn!("claimed runs not released in time at shutdown; handed back");
        }
        self.stop.cancel();
        self.runner.shutdown().await;
        self.tasks.close();
        self.tasks.wait().await;
        // Claimed, retried or run-now runs that never started: another node adopts them at its
        // next sweep (this one, after a restart on SQLite), starting them late or skipping them
        // per the job's missed-run policy.
        let held = self.runner.held_runs();
        match self.store.hand_back_runs(self.handle.node_id(), &held).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "runs not started before shutdown handed back"),
            Err(e) => tracing::warn!(error = %e, "handing back queued runs at shutdown"),
        }
    }
}

fn new_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}-{}", host.trim(), std::process::id(), &crate::domain::new_uid()[..8])
}
