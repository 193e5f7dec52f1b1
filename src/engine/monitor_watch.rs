//! The monitor watcher: moves heartbeat monitors whose ping is overdue from `up` to `late`,
//! and past their grace to `down`, announcing `monitor.down` (see `crate::domain::monitor`).
//! It also keeps each monitor's ping history to its `keep_pings` newest.
//!
//! In a cluster one node watches at a time: the one holding a PostgreSQL advisory lock (as
//! the pruner does); the others ask again every 10 s and take over once it stops or dies.
//! Each change is a compare-and-swap on the monitor's row that writes its deliveries in the
//! same transaction, so a change is announced once even if two nodes (or a ping) raced it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::monitor::{Monitor, Ping};
use crate::domain::{EpochMs, now_ms};
use crate::store::{Store, StoreResult, WatchLock};

/// How often overdue monitors are looked for: a state changes at most this late.
const TICK: Duration = Duration::from_secs(1);
/// How often a node that does not watch asks for the lock (each ask is a connection of its
/// own on PostgreSQL): another node takes over within this long of the watcher's end.
const LOCK_RETRY: Duration = Duration::from_secs(10);
/// Monitors taken down per read.
const BATCH: i64 = 500;
/// Ping histories are trimmed this often.
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Monitors pinged this long before the previous trim are looked at again (other nodes' clocks).
const CLOCK_MARGIN_MS: EpochMs = 60_000;

/// `public_url`: the dashboard's address, linked from the messages of chat and email channels.
pub(super) async fn run(store: Store, public_url: Option<String>, stop: CancellationToken) {
    let mut lock: Option<WatchLock> = None;
    let mut last_prune: Option<(tokio::time::Instant, EpochMs)> = None;
    let mut next_ask = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => break,
        }
        if lock.is_none() && tokio::time::Instant::now() >= next_ask {
            match store.try_monitor_watch_lock().await {
                Ok(got) => lock = got,
                Err(e) => tracing::warn!(error = %e, "taking the monitor watch lock"),
            }
            next_ask = tokio::time::Instant::now() + LOCK_RETRY;
        }
        if lock.is_none() {
            continue;
        }
        if let Err(e) = tick(&store, public_url.as_deref(), &mut last_prune).await {
            tracing::warn!(error = %e, "watching monitors");
            // The lock's connection may be gone with the error: ask again next time.
            if let Some(held) = lock.take() {
                held.release().await;
            }
        }
    }
    if let Some(held) = lock {
        held.release().await;
    }
}

async fn tick(
    store: &Store,
    public_url: Option<&str>,
    last_prune: &mut Option<(tokio::time::Instant, EpochMs)>,
) -> StoreResult<()> {
    let now = now_ms();
    let render = |channel, kind, m: &Monitor, p: Option<&Ping>| {
        crate::webhooks::monitor_event_body(channel, kind, m, p, public_url)
    };
    loop {
        let due = store.monitors_past_grace(now, BATCH).await?;
        for monitor in &due {
            if store.take_monitor_down(monitor, now, &render).await? {
                tracing::info!(monitor = monitor.id, name = %monitor.name, "monitor down: no ping within its grace");
            }
        }
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    store.mark_monitors_late(now).await?;
    if last_prune.is_none_or(|(at, _)| at.elapsed() >= PRUNE_EVERY) {
        // At start, every monitor pinged at all; then those pinged since the last trim.
        let since = last_prune.map_or(0, |(_, t)| t - CLOCK_MARGIN_MS);
        for (id, keep) in store.monitors_pinged_since(since).await? {
            store.prune_pings(id, keep).await?;
        }
        *last_prune = Some((tokio::time::Instant::now(), now));
    }
    Ok(())
}
