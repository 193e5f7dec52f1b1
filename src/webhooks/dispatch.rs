//! Events → delivery rows, in batches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::message;
use crate::api::v1::JobView;
use crate::api::v1::RunView;
use crate::domain::{ChannelKind, EventKind, RunStatus, UserId, Webhook, iso8601, now_ms};
use crate::events::{Event, EventReceiver};
use crate::store::{NewDelivery, Store, StoreResult};

/// Events taken off the channel at once.
const BATCH: usize = 512;

pub(super) async fn run(
    store: Store,
    mut events: EventReceiver,
    wake: Arc<Notify>,
    stop: CancellationToken,
    public_url: Option<String>,
) {
    let public_url = public_url.as_deref();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = events.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
            }
            _ = stop.cancelled() => {
                // Whatever was announced before the engine stopped still gets its deliveries.
                while let Ok(event) = events.try_recv() {
                    batch.push(event);
                }
                persist(&store, &batch, public_url).await;
                return;
            }
        }
        persist(&store, &batch, public_url).await;
        batch.clear();
        wake.notify_one();
    }
}

/// Writes the batch's deliveries, retrying through a database outage for a while.
async fn persist(store: &Store, batch: &[Event], public_url: Option<&str>) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(200);
    for attempt in 1.. {
        match deliveries_for(store, batch, public_url).await {
            Ok(items) if items.is_empty() => return,
            Ok(items) => match store.insert_deliveries(&items, now_ms()).await {
                Ok(()) => return,
                Err(e) if attempt < 20 => tracing::warn!(error = %e, "queueing webhook deliveries; retrying"),
                Err(e) => {
                    tracing::error!(error = %e, count = items.len(), "webhook deliveries lost: database unavailable");
                    metrics::counter!("cronstack_webhook_deliveries_total", "result" => "lost")
                        .increment(items.len() as u64);
                    return;
                }
            },
            Err(e) if attempt < 20 => tracing::warn!(error = %e, "finding webhook subscriptions; retrying"),
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "webhook events lost: database unavailable");
                return;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// One delivery per (event, subscription that wants it), `job.fail` / `job.backon` included.
async fn deliveries_for(
    store: &Store,
    batch: &[Event],
    public_url: Option<&str>,
) -> StoreResult<Vec<NewDelivery>> {
    let mut owners: Vec<UserId> = batch.iter().map(|e| e.job.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    let mut by_owner: HashMap<UserId, Vec<Webhook>> = HashMap::new();
    for hook in store.webhooks_of_owners(&owners).await? {
        by_owner.entry(hook.owner).or_default().push(hook);
    }
    let mut items = Vec::new();
    for event in batch {
        let Some(hooks) = by_owner.get(&event.job.owner) else { continue };
        let mut kinds = vec![event.kind];
        if let Some(derived) = derived_kind(store, event, hooks).await? {
            kinds.push(derived);
        }
        for kind in kinds {
            // One body per channel kind, the chat ones with what they quote read once.
            let mut payloads: HashMap<ChannelKind, String> = HashMap::new();
            let mut context: Option<(Option<String>, Option<String>)> = None;
            for hook in hooks.iter().filter(|h| h.wants(kind, &event.job)) {
                let payload = match payloads.get(&hook.kind) {
                    Some(payload) => payload.clone(),
                    None => {
                        let payload = if hook.kind == ChannelKind::Webhook {
                            body(kind, event)
                        } else {
                            if context.is_none() {
                                context = Some(chat_context(store, event).await?);
                            }
                            let (schedule, log) = context.as_ref().expect("just read");
                            let cx = message::Context {
                                schedule: schedule.as_deref(),
                                log: log.as_deref(),
                                public_url,
                            };
                            message::render(hook.kind, kind, event, &cx).to_string()
                        };
                        payloads.insert(hook.kind, payload.clone());
                        payload
                    }
                };
                items.push(NewDelivery { webhook_id: hook.id, event: kind, payload });
            }
        }
    }
    Ok(items)
}

/// Cloud 66's `job.fail` (a run fails and the job's previous run succeeded, or there was
/// none) and `job.backon` (a run succeeds and the previous one failed), from the run history:
/// the job's `last_status` already says "started" by the time a run ends, and overlapping
/// runs or several nodes would make an in-memory "previous" unreliable. Looked up only when a
/// subscription wants them.
async fn derived_kind(store: &Store, event: &Event, hooks: &[Webhook]) -> StoreResult<Option<EventKind>> {
    let Some(run) = &event.run else { return Ok(None) };
    let candidate = match event.kind {
        EventKind::RunFailed | EventKind::RunTimedOut => EventKind::JobFail,
        EventKind::RunSucceeded => EventKind::JobBackon,
        _ => return Ok(None),
    };
    if !hooks.iter().any(|h| h.wants(candidate, &event.job)) {
        return Ok(None);
    }
    let previous = store.previous_run_outcome(event.job.id, run.id).await?;
    let previous_failed = previous.is_some_and(RunStatus::is_failure);
    Ok(match candidate {
        EventKind::JobFail if !previous_failed => Some(EventKind::JobFail),
        EventKind::JobBackon if previous_failed => Some(EventKind::JobBackon),
        _ => None,
    })
}

/// What a chat message quotes: the job's schedule in words and the finished run's log.
async fn chat_context(store: &Store, event: &Event) -> StoreResult<(Option<String>, Option<String>)> {
    let schedule = store.schedule(event.job.schedule_id).await?.and_then(|s| {
        s.config.trigger_for(crate::domain::job_hash_key(&event.job.uid)).ok().map(|t| t.describe())
    });
    let log = match &event.run {
        Some(run) if run.status.is_final() => store.run_log(run.id).await?,
        _ => None,
    };
    Ok((schedule, log))
}

/// The delivery body: the event, when it happened, and the job and run as the v1 API shows them.
fn body(kind: EventKind, event: &Event) -> String {
    let value: Value = json!({
        "event": kind.as_str(),
        "timestamp": iso8601(event.at),
        "job": JobView::from(&event.job),
        "run": event.run.as_ref().map(RunView::from),
    });
    value.to_string()
}
