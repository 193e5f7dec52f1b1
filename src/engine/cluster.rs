//! What a node does to live among others on one PostgreSQL database: it says it is alive,
//! listens for job changes made through other nodes, and resyncs now and then in case a
//! notification was lost. On SQLite only the heartbeat runs (for `GET /api/v1/nodes`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::preference::{LIVE_MS, Preference};
use super::scheduler::SchedMsg;
use crate::domain::{EpochMs, now_ms};
use crate::store::{Backend, Change, JOBS_CHANNEL, KILL_CHANNEL, ROWS_CHANNEL, Store};

const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node starting beats this often for its first [`JOINING`], so that nodes started
/// together, or one after another, see each other within this rather than a whole heartbeat.
const JOINING_HEARTBEAT: Duration = Duration::from_millis(100);
const JOINING: Duration = Duration::from_secs(3);
/// Between a node's first heartbeat and its first read of the live set: nodes started
/// together have announced themselves by then.
const JOIN_WAIT: Duration = Duration::from_millis(150);
const RESYNC: Duration = Duration::from_secs(30);
/// Nodes not seen for a day are forgotten.
const FORGET_NODES_MS: EpochMs = 24 * 3600 * 1000;

pub(super) async fn heartbeat(
    store: Store,
    node_id: Arc<str>,
    address: String,
    started_at: EpochMs,
    preference: Arc<Preference>,
    stop: CancellationToken,
) {
    let start = std::time::Instant::now();
    let mut first = true;
    loop {
        let now = now_ms();
        if let Err(e) = store.heartbeat(&node_id, &address, started_at, now).await {
            tracing::warn!(error = %e, "node heartbeat");
        }
        // Who else is alive, for the scheduler's preferences (one node on SQLite: itself).
        if store.backend() == Backend::Postgres {
            if first {
                tokio::select! {
                    _ = tokio::time::sleep(JOIN_WAIT) => {}
                    _ = stop.cancelled() => return,
                }
            }
            match store.live_node_ids(now_ms() - LIVE_MS).await {
                Ok(ids) => preference.set_live(ids.iter().map(String::as_str)),
                Err(e) => tracing::warn!(error = %e, "reading the live nodes"),
            }
        }
        // Read or not (the database away), the scheduler waits no longer.
        preference.set_joined();
        first = false;
        let _ = store.prune_nodes(now - FORGET_NODES_MS).await;
        let every = if start.elapsed() < JOINING { JOINING_HEARTBEAT } else { HEARTBEAT };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Forwards other nodes' job changes to the scheduler and their row changes to the store's
/// read caches, which serve only while this listens; after any gap in listening, resyncs.
pub(super) async fn listen(
    store: Store,
    tx: mpsc::UnboundedSender<SchedMsg>,
    runner: Arc<super::runner::Runner>,
    stop: CancellationToken,
) {
    if store.backend() != Backend::Postgres {
        return;
    }
    loop {
        let mut listener = match PgListener::connect(store.url()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "connecting the change listener; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        };
        if let Err(e) = listener.listen_all([JOBS_CHANNEL, ROWS_CHANNEL, KILL_CHANNEL]).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            continue;
        }
        // Whatever changed while not listening is picked up from the database.
        let _ = tx.send(SchedMsg::Resync);
        store.set_caches_live(true);
        loop {
            tokio::select! {
                msg = listener.try_recv() => match msg {
                    Ok(Some(n)) if n.channel() == ROWS_CHANNEL => {
                        if let Some(Change::Claimed(moves)) = store.apply_announced(n.payload()) {
                            let _ = tx.send(SchedMsg::Claimed(moves));
                        }
                    }
                    Ok(Some(n)) if n.channel() == KILL_CHANNEL => {
                        if let Ok(run_id) = n.payload().parse::<i64>() {
                            runner.kill(run_id);
                        }
                    }
                    Ok(Some(n)) => {
                        if let Ok(job_id) = n.payload().parse::<i64>() {
                            let _ = tx.send(SchedMsg::Reload(job_id));
                        }
                    }
                    // The connection dropped: reconnect and resync.
                    Ok(None) | Err(_) => break,
                },
                _ = stop.cancelled() => {
                    store.set_caches_live(false);
                    return;
                }
            }
        }
        store.set_caches_live(false);
        tracing::warn!("change listener lost its connection; reconnecting");
    }
}

/// The safety net: rebuild the timer heap from the database every little while.
pub(super) async fn periodic_resync(
    store: Store,
    tx: mpsc::UnboundedSender<SchedMsg>,
    stop: CancellationToken,
) {
    if store.backend() != Backend::Postgres {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RESYNC) => { let _ = tx.send(SchedMsg::Resync); }
            _ = stop.cancelled() => return,
        }
    }
}
