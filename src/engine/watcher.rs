//! The watcher: notices what went wrong with jobs without anyone asking, and says so once.
//!
//! - **Missed**: a slot that passed unrun — dropped by the missed-run policy after downtime
//!   (recorded by the claim), skipped by an overlap policy (recorded by the run's end), or
//!   more than the job's `grace_s` past its time with no run started (found here: the
//!   scheduler is behind, the queue is full, the database was away). The job shows `late`
//!   and `job.missed` goes out; once a later slot starts within its grace, `job.recovered`.
//! - **Stuck**: a run going longer than its job's `max_duration_s`: the job shows `stuck` and
//!   `job.stuck` goes out; when the run ends (or the limit is raised), `job.recovered`.
//!
//! Each incident lives in the job's row, opened, announced and closed by compare-and-swap:
//! an event goes out only from the write that changed the incident, so a restart or another
//! node never announces it again. In a cluster one node watches at a time (the one holding
//! the store's watch lock, kept from pass to pass; the others take over when it stops).
//! Events go on the engine's channel like every other: persisted deliveries, retried.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{EventKind, now_ms};
use crate::events::{Event, EventSender};
use crate::store::{Incident, PruneLock, Store, StoreResult};

pub(super) async fn run(store: Store, events: EventSender, interval: Duration, stop: CancellationToken) {
    let mut lock: Option<PruneLock> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => break,
        }
        if lock.is_none() {
            match store.try_watch_lock().await {
                Ok(got) => lock = got,
                Err(e) => tracing::warn!(error = %e, "taking the watch lock"),
            }
        }
        if lock.is_none() {
            continue;
        }
        if let Err(e) = pass(&store, &events).await {
            tracing::warn!(error = %e, "watching jobs' health");
            // The lock's connection may be what failed: take it afresh.
            if let Some(lock) = lock.take() {
                lock.release().await;
            }
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
}

/// One look: opens what went late, announces new incidents, then closes the cleared ones
/// (announced first, so an incident that cleared within a pass still gets both events).
async fn pass(store: &Store, events: &EventSender) -> StoreResult<()> {
    let now = now_ms();
    store.mark_late_slots(now).await?;
    for incident in store.unannounced_incidents(now).await? {
        if store.announce_incident(incident).await? {
            let kind = match incident {
                Incident::Missed { .. } => EventKind::JobMissed,
                Incident::Stuck { .. } => EventKind::JobStuck,
            };
            announce(store, events, kind, incident).await?;
        }
    }
    for incident in store.cleared_incidents(now_ms()).await? {
        if store.close_incident(incident).await? {
            announce(store, events, EventKind::JobRecovered, incident).await?;
        }
    }
    Ok(())
}

/// Emits `kind` with the job as it is now (and the stuck run, for a stuck incident).
async fn announce(
    store: &Store,
    events: &EventSender,
    kind: EventKind,
    incident: Incident,
) -> StoreResult<()> {
    let (job_id, run_id) = match incident {
        Incident::Missed { job_id, .. } => (job_id, None),
        Incident::Stuck { job_id, run_id } => (job_id, Some(run_id)),
    };
    let Some(job) = store.job(job_id).await? else { return Ok(()) };
    tracing::info!(job = job_id, event = kind.as_str(), "job health incident");
    let run = match run_id {
        Some(id) => store.run(id).await?,
        None => None,
    };
    events.emit(match &run {
        Some(run) => Event::run(kind, &job, run),
        None => Event::job(kind, &job),
    });
    Ok(())
}
