//! Outbound webhooks: events become persisted deliveries, which a worker POSTs, signed, to the
//! subscribers, retrying with backoff.
//!
//! - The **dispatcher** takes events off the channel in batches, finds the subscriptions that
//!   want them (deriving `job.fail` / `job.backon` from the job's run history), and writes one
//!   delivery row per (event, subscription), due now, before anything is sent: a restart
//!   loses no delivery.
//! - The **worker** claims due deliveries in the database (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL, so nodes never send one twice), sends each in its own task under a global and
//!   a per-subscription concurrency limit with a request timeout, and records the attempt:
//!   delivered on 2xx, else due again after an exponential backoff with jitter, or failed once
//!   the attempts are used up. A claim lasts the request timeout plus a margin; a node that
//!   dies mid-send leaves claims that expire and are sent again (at-least-once: receivers
//!   dedupe on `X-Cronstack-Delivery`).
//!
//! Nothing here runs on the scheduling path: the engine only sends events on a channel.

mod deliver;
mod dispatch;
pub mod email;
pub mod message;
mod monitor_events;
pub mod sign;
pub mod smtp;

pub use monitor_events::monitor_event_body;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::now_ms;
use crate::events::EventReceiver;
use crate::store::{Backend, Release, Store};

/// Outbound webhook settings (from the command line).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Per-request timeout (connect included).
    pub timeout: Duration,
    /// Deliveries in flight at once on this node.
    pub concurrency: usize,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: i64,
    /// First retry delay; doubles with each attempt (±20% jitter), capped at `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// The dashboard's public address, linked from chat messages (`--public-url`).
    pub public_url: Option<String>,
    /// The SMTP server email channels are sent through (`--smtp-url`); `None`: this node
    /// sends no mail.
    pub mailer: Option<smtp::Mailer>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(10),
            concurrency: 16,
            max_attempts: 12,
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
            public_url: None,
            mailer: None,
        }
    }
}

/// The running subsystem.
pub struct Webhooks {
    tasks: TaskTracker,
    stop: CancellationToken,
    /// Stops the dispatcher once the engine has stopped announcing events.
    stop_dispatch: CancellationToken,
    store: Store,
    node_id: String,
}

impl Webhooks {
    /// Starts the dispatcher (fed by `events`) and the delivery worker of node `node_id`.
    pub async fn start(
        store: Store,
        settings: WebhookSettings,
        node_id: &str,
        events: EventReceiver,
    ) -> anyhow::Result<Webhooks> {
        // A single node on SQLite owns every claim it finds: they were left by a crash.
        if store.backend() == Backend::Sqlite {
            let released = store.release_deliveries(Release::All, now_ms()).await?;
            if released > 0 {
                tracing::warn!(
                    count = released,
                    "webhook deliveries left in flight by a previous process requeued"
                );
            }
        }
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let stop_dispatch = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let public_url = settings.public_url.clone();
        tasks.spawn(dispatch::run(store.clone(), events, wake.clone(), stop_dispatch.clone(), public_url));
        let worker = deliver::Worker::new(store.clone(), settings, node_id.to_string(), wake, tasks.clone())?;
        tasks.spawn(worker.run(stop.clone()));
        Ok(Webhooks { tasks, stop, stop_dispatch, store, node_id: node_id.to_string() })
    }

    /// Persists the events still queued, lets deliveries in flight finish for a moment, and
    /// gives the rest back to the queue.
    pub async fn shutdown(self) {
        self.stop_dispatch.cancel();
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(3), self.tasks.wait()).await.is_err() {
            tracing::info!("webhook deliveries still in flight at shutdown are requeued");
        }
        if let Err(e) = self.store.release_deliveries(Release::Node(&self.node_id), now_ms()).await {
            tracing::warn!(error = %e, "requeueing in-flight webhook deliveries");
        }
    }
}

/// `text` followed by `e`'s causes ("connection refused", "operation timed out"), each once.
fn with_causes(mut text: String, e: &dyn std::error::Error) -> String {
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
