//! The pruner keeps history bounded: every job keeps its newest `keep_succeeded` succeeded
//! and `keep_failed` other finished runs (the server's defaults when null), and finished runs,
//! actions, webhook deliveries and monitors' pings older than `--keep-runs-days` go whatever
//! the job (or the monitor).
//!
//! It runs in its own task, never on the scheduler's path: every pass reads on the read pool
//! and deletes in batches of at most [`BATCH`] rows by primary key, pausing between them, so
//! a claim never waits behind it for more than one short delete. Passes come every interval,
//! sooner while rows go fast (see [`next_delay`]), and as soon as `after_runs` runs were
//! created (on any node) since the previous pass started, which keeps a busy history within
//! its limits plus about one batch whatever the interval (the highest run id is read every
//! [`POLL`]: one index lookup). In a cluster one node prunes at a time: the one holding the
//! store's pruning lock, which it keeps from pass to pass; the others skip theirs until it lets
//! go or dies (they try again at the interval, never paced by runs).
//!
//! Which jobs to look at: at start, and every [`FULL_SWEEP_EVERY`], every job; in between only
//! the jobs with runs created since the pass before last (ids beyond a mark: a primary key
//! range; two passes back so that a run committed late is not missed), with unfinished runs
//! (they finish later) or changed by their owner (their limits may have come down).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::domain::{EpochMs, now_ms};
use crate::store::{Aged, Keep, PruneLock, Store, StoreError};

/// Rows per delete statement.
pub const BATCH: usize = 1000;
/// How often the runs created since the previous pass are counted (see `after_runs`).
const POLL: Duration = Duration::from_millis(250);
/// Between two deletes: the writers queued behind one go first.
const PAUSE: Duration = Duration::from_millis(20);
/// After a pass that failed (the database busy or away), before the next may start.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The shortest pause between passes (while rows go fast).
const MIN_DELAY: Duration = Duration::from_secs(1);
/// Jobs looked at per read.
const JOB_CHUNK: usize = 100;
/// Every job is looked at this often (and at start), whatever ran.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(6 * 3600);
/// Owners' changes are looked for this far before the previous pass (other nodes' clocks).
const CLOCK_MARGIN_MS: EpochMs = 60_000;
/// SQLite pages given back to the file system per statement.
const VACUUM_PAGES: i64 = 1024;
/// PostgreSQL: `runs` is vacuumed after this many of its rows were pruned (see
/// [`Store::vacuum_runs`]).
const VACUUM_AFTER_ROWS: u64 = 10 * BATCH as u64;

/// Retention settings (from the command line).
#[derive(Debug, Clone)]
pub struct Retention {
    /// Finished runs, actions, deliveries and pings older than this go; `None`: no age limit.
    pub max_age: Option<Duration>,
    /// For jobs whose own limits are null.
    pub keep: Keep,
    /// Between passes (±10%, so that nodes drift apart), at most; shorter while many rows go
    /// (see [`next_delay`]).
    pub interval: Duration,
    /// A pass starts as soon as this many runs were created since the previous one started
    /// (checked every [`POLL`]), before the interval is over; 0: passes come only with the
    /// interval (`--prune-after-runs 0` with a long `--prune-interval-ms` turns pruning off).
    pub after_runs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            keep: Keep { succeeded: 100, failed: 100 },
            interval: Duration::from_secs(30),
            after_runs: BATCH as u64 / 2,
        }
    }
}

/// Rows one pass deleted.
#[derive(Debug, Default)]
struct Pruned {
    runs_by_count: u64,
    runs_by_age: u64,
    actions: u64,
    deliveries: u64,
    pings: u64,
}

impl Pruned {
    fn total(&self) -> u64 {
        self.runs_by_count + self.runs_by_age + self.actions + self.deliveries + self.pings
    }
}

/// Why a pass ended early.
enum Stop {
    Shutdown,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

struct Pruner {
    store: Store,
    settings: Retention,
    stop: CancellationToken,
    /// The last run id seen at the previous two passes: runs after the older one are new.
    marks: [i64; 2],
    /// When the previous pass started (owners' changes since then are looked at).
    last_pass: EpochMs,
    last_full_sweep: Option<Instant>,
    /// Runs pruned since `runs` was last vacuumed (PostgreSQL).
    since_vacuum: u64,
}

pub(super) async fn run(store: Store, settings: Retention, stop: CancellationToken) {
    let mut pruner =
        Pruner { store, settings, stop, marks: [0, 0], last_pass: 0, last_full_sweep: None, since_vacuum: 0 };
    // The pruning lock, while this node holds it (not in `Pruner`: its connection is not
    // `Sync`, and the pruner is borrowed across awaits).
    let mut lock = None;
    let mut delay = pruner.settings.interval;
    let mut previous = Instant::now();
    // Paced by new runs from the runs there are at start (a restart prunes a backlog at the
    // interval, not at once), while the last pass did its work.
    let mut paced = true;
    let mut baseline = pruner.store.last_run_id().await.unwrap_or(i64::MAX);
    loop {
        let jitter = 0.9 + rand::random::<f64>() * 0.2;
        let due = tokio::time::Instant::now() + delay.mul_f64(jitter);
        if !pruner.wait(due, paced.then_some(baseline)).await {
            break;
        }
        let started = Instant::now();
        let mut pruned = Pruned::default();
        let result = pruner.pass(&mut lock, &mut pruned).await;
        // A pass counts new runs from the last run it saw (a failed one from the last pass
        // that did its work: it is tried again after [`RETRY_AFTER`], as soon as runs came
        // meanwhile, never a whole interval later with the history growing); a node that found
        // another pruning waits for the interval.
        paced = !matches!(result, Ok(false));
        baseline = pruner.marks[1];
        let failed = matches!(result, Err(Stop::Store(_)));
        match result {
            Ok(true) if pruned.total() > 0 => tracing::debug!(
                runs_by_count = pruned.runs_by_count,
                runs_by_age = pruned.runs_by_age,
                actions = pruned.actions,
                deliveries = pruned.deliveries,
                pings = pruned.pings,
                took_ms = started.elapsed().as_millis() as u64,
                "history pruned"
            ),
            Ok(true) => {}
            Ok(false) => tracing::debug!("another node is pruning"),
            Err(Stop::Shutdown) => break,
            Err(Stop::Store(e)) => tracing::warn!(error = %e, "pruning history"),
        }
        for (table, rows) in [
            (Aged::Runs, pruned.runs_by_count + pruned.runs_by_age),
            (Aged::Actions, pruned.actions),
            (Aged::Deliveries, pruned.deliveries),
            (Aged::Pings, pruned.pings),
        ] {
            metrics::counter!("cronstack_pruned_rows_total", "table" => table.table()).increment(rows);
        }
        delay = next_delay(pruned.total(), started - previous, pruner.settings.interval);
        previous = started;
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(RETRY_AFTER.min(pruner.settings.interval)) => {}
                _ = pruner.stop.cancelled() => break,
            }
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
}

/// The pause before the next pass: short enough that about one batch piles up beyond the
/// limits meanwhile, at the rate rows went in the last one; at least [`MIN_DELAY`] (or the
/// interval if shorter), at most the interval.
fn next_delay(deleted: u64, since_previous: Duration, interval: Duration) -> Duration {
    if deleted == 0 {
        return interval;
    }
    let per_second = deleted as f64 / since_previous.as_secs_f64().max(0.001);
    Duration::from_secs_f64(BATCH as f64 / per_second).clamp(MIN_DELAY.min(interval), interval)
}

impl Pruner {
    /// Waits until `due`, or until [`Retention::after_runs`] runs were created after run
    /// `baseline` (when given); `false` on shutdown.
    async fn wait(&self, due: tokio::time::Instant, baseline: Option<i64>) -> bool {
        let after_runs = i64::try_from(self.settings.after_runs).unwrap_or(i64::MAX);
        let poll = POLL.min(self.settings.interval);
        loop {
            let paced = baseline.filter(|_| after_runs > 0);
            let until = match paced {
                Some(_) => due.min(tokio::time::Instant::now() + poll),
                None => due,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = self.stop.cancelled() => return false,
            }
            if tokio::time::Instant::now() >= due {
                return true;
            }
            if let Some(baseline) = paced
                && let Ok(last) = self.store.last_run_id().await
                && last.saturating_sub(baseline) >= after_runs
            {
                return true;
            }
        }
    }

    /// One pass; `false` when another node holds the pruning lock.
    async fn pass(&mut self, held: &mut Option<PruneLock>, pruned: &mut Pruned) -> Result<bool, Stop> {
        let started = now_ms();
        let last_run = self.store.last_run_id().await?;
        // Kept from pass to pass while this node holds it; dropped (released) on an error.
        let mut lock = match held.take() {
            Some(lock) => lock,
            None => match self.store.try_prune_lock().await? {
                Some(lock) => lock,
                None => {
                    // The node pruning covers these runs.
                    self.mark(last_run, started);
                    return Ok(false);
                }
            },
        };
        if let Some(age) = self.settings.max_age {
            let cutoff = started - age.as_millis() as EpochMs;
            for table in Aged::ALL {
                let n = self.prune_aged(&mut lock, table, cutoff).await?;
                match table {
                    Aged::Runs => pruned.runs_by_age += n,
                    Aged::Actions => pruned.actions += n,
                    Aged::Deliveries => pruned.deliveries += n,
                    Aged::Pings => pruned.pings += n,
                }
            }
        }
        // Runs found beyond their limits, deleted a full batch at a time.
        let mut doomed = Vec::new();
        if self.last_full_sweep.is_none_or(|t| t.elapsed() >= FULL_SWEEP_EVERY) {
            let mut after = 0;
            loop {
                let jobs = self.store.job_ids_after(after, JOB_CHUNK as i64).await?;
                let Some(last) = jobs.last() else { break };
                after = *last;
                pruned.runs_by_count += self.trim(&mut lock, &jobs, &mut doomed).await?;
            }
            self.last_full_sweep = Some(Instant::now());
            self.marks = [last_run, last_run];
        } else {
            let candidates =
                self.store.prune_candidates(self.marks[0], self.last_pass - CLOCK_MARGIN_MS).await?;
            for jobs in candidates.chunks(JOB_CHUNK) {
                pruned.runs_by_count += self.trim(&mut lock, jobs, &mut doomed).await?;
            }
        }
        pruned.runs_by_count += self.delete_runs(&mut lock, &mut doomed, true).await?;
        self.mark(last_run, started);
        if pruned.total() > 0 {
            while self.store.reclaim_space(VACUUM_PAGES).await? > 0 {
                self.pause().await?;
            }
        }
        self.since_vacuum += pruned.runs_by_count + pruned.runs_by_age;
        if self.since_vacuum >= VACUUM_AFTER_ROWS {
            self.store.vacuum_runs(&mut lock).await?;
            self.since_vacuum = 0;
        }
        *held = Some(lock);
        Ok(true)
    }

    fn mark(&mut self, last_run: i64, started: EpochMs) {
        self.marks = [self.marks[1], last_run];
        self.last_pass = started;
    }

    /// Finds these jobs' finished runs beyond their limits and adds them to `doomed`,
    /// deleting whole batches of it as they fill up.
    async fn trim(&self, lock: &mut PruneLock, jobs: &[i64], doomed: &mut Vec<i64>) -> Result<u64, Stop> {
        let keeps = self.store.job_keeps(jobs, self.settings.keep).await?;
        let keeps: Vec<(i64, Keep)> = jobs.iter().filter_map(|id| Some((*id, *keeps.get(id)?))).collect();
        let mut deleted = 0;
        loop {
            let ids = self.store.runs_beyond_keep(&keeps, BATCH as i64).await?;
            // A full read: some job may have more beyond its limit, found once these are gone.
            let more = ids.len() >= BATCH;
            doomed.extend(ids);
            let round = self.delete_runs(lock, doomed, more).await?;
            deleted += round;
            if !more || round == 0 {
                return Ok(deleted);
            }
        }
    }

    /// Deletes the runs of `doomed` a batch at a time: the full batches, or all of them.
    async fn delete_runs(&self, lock: &mut PruneLock, doomed: &mut Vec<i64>, all: bool) -> Result<u64, Stop> {
        let mut deleted = 0;
        while doomed.len() >= BATCH || (all && !doomed.is_empty()) {
            let batch: Vec<i64> = doomed.drain(..doomed.len().min(BATCH)).collect();
            deleted += self.store.delete_finished_runs(lock, &batch).await?;
            self.pause().await?;
        }
        Ok(deleted)
    }

    /// Deletes `table`'s rows that ended before `cutoff`, oldest first, a window at a time;
    /// stops at the first window holding a row created after the cut-off.
    async fn prune_aged(&self, lock: &mut PruneLock, table: Aged, cutoff: EpochMs) -> Result<u64, Stop> {
        let mut after = 0;
        let mut deleted = 0;
        while let Some(window) = self.store.age_window(table, after, BATCH as i64, cutoff).await? {
            if window.deletable > 0 {
                deleted += self.store.delete_aged(lock, table, window, cutoff).await?;
                self.pause().await?;
            }
            if !window.all_old {
                break;
            }
            after = window.last;
        }
        Ok(deleted)
    }

    async fn pause(&self) -> Result<(), Stop> {
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => Ok(()),
            _ = self.stop.cancelled() => Err(Stop::Shutdown),
        }
    }
}
