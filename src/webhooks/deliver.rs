//! The delivery worker: claims due deliveries, POSTs them signed, records each attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sign::{SIGNATURE_HEADER, header_value};
use super::{WebhookSettings, with_causes};
use crate::domain::{ChannelKind, DeliveryStatus, EpochMs, now_ms};
use crate::store::{AttemptRecord, ClaimedDelivery, Release, Store};

/// Deliveries of one subscription in flight at once on a node: a slow receiver holds at most
/// this many of the node's slots, never all of them.
const PER_WEBHOOK: usize = 4;
/// Without a wake-up, the queue is looked at this often (deliveries queued by other nodes,
/// retries coming due).
const POLL: Duration = Duration::from_secs(1);
/// Expired claims (their node died mid-send) are given back this often.
const SWEEP: Duration = Duration::from_secs(5);
/// A claim lasts the request timeout plus this: time to record the attempt.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);
/// Bytes of an error kept in `last_error`.
const ERROR_CAP: usize = 500;

pub(super) struct Worker {
    store: Store,
    settings: WebhookSettings,
    node_id: String,
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    in_flight: Mutex<HashMap<i64, usize>>,
    wake: Arc<Notify>,
    tasks: TaskTracker,
}

impl Worker {
    pub(super) fn new(
        store: Store,
        settings: WebhookSettings,
        node_id: String,
        wake: Arc<Notify>,
        tasks: TaskTracker,
    ) -> anyhow::Result<Arc<Worker>> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            // A redirect is an answer, not a delivery: follow none (and reach nothing the
            // subscriber did not name).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cronstack-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Worker {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            store,
            settings,
            node_id,
            client,
            in_flight: Mutex::new(HashMap::new()),
            wake,
            tasks,
        }))
    }

    pub(super) async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if stop.is_cancelled() {
                return;
            }
            if last_sweep.elapsed() >= SWEEP {
                last_sweep = tokio::time::Instant::now();
                match self.store.release_deliveries(Release::Expired, now_ms()).await {
                    Ok(n) if n > 0 => tracing::warn!(count = n, "webhook deliveries of a dead node requeued"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "requeueing expired webhook claims"),
                }
            }
            let claimed = self.claim_and_send().await;
            // A full batch may mean more are due: look again at once (the permits bound it).
            if claimed > 0 && self.permits.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Claims as many due deliveries as there are free slots and starts sending them.
    async fn claim_and_send(self: &Arc<Self>) -> usize {
        let free = self.permits.available_permits();
        if free == 0 {
            return 0;
        }
        let busy: Vec<i64> = {
            let in_flight = self.in_flight.lock().unwrap();
            in_flight.iter().filter(|(_, n)| **n >= PER_WEBHOOK).map(|(id, _)| *id).collect()
        };
        let now = now_ms();
        let claim_until = now + (self.settings.timeout + CLAIM_MARGIN).as_millis() as EpochMs;
        let mail = self.settings.mailer.is_some();
        let claimed =
            match self.store.claim_deliveries(&self.node_id, now, claim_until, free, &busy, mail).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries");
                    return 0;
                }
            };
        let mut started = 0;
        let mut held_back = Vec::new();
        for claim in claimed {
            let webhook_id = claim.delivery.webhook_id;
            {
                let mut in_flight = self.in_flight.lock().unwrap();
                let n = in_flight.entry(webhook_id).or_default();
                if *n >= PER_WEBHOOK {
                    // One claim brought several of a subscription's deliveries: keep its share.
                    held_back.push(claim.delivery.id);
                    continue;
                }
                *n += 1;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                self.done_with(webhook_id);
                held_back.push(claim.delivery.id);
                continue;
            };
            started += 1;
            let me = self.clone();
            self.tasks.spawn(async move {
                me.attempt(claim).await;
                drop(permit);
                me.done_with(webhook_id);
                me.wake.notify_one();
            });
        }
        if !held_back.is_empty() {
            self.give_back(&held_back).await;
        }
        started
    }

    fn done_with(&self, webhook_id: i64) {
        let mut in_flight = self.in_flight.lock().unwrap();
        if let Some(n) = in_flight.get_mut(&webhook_id) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&webhook_id);
            }
        }
    }

    /// Returns claims this node will not send now to the queue, due at once.
    async fn give_back(&self, ids: &[i64]) {
        if let Err(e) = self.store.unclaim_deliveries(ids, &self.node_id, now_ms()).await {
            // Their claim expires and they are sent then.
            tracing::warn!(error = %e, "returning webhook deliveries to the queue");
        }
    }

    /// One POST (or mail), then its record.
    async fn attempt(&self, claim: ClaimedDelivery) {
        let d = &claim.delivery;
        let (status_code, error) = match claim.kind {
            ChannelKind::Email => (None, self.mail(&claim).await.err()),
            _ => self.post(&claim).await,
        };
        self.record(d, status_code, error).await;
    }

    /// Sends an email channel's delivery through the SMTP server.
    async fn mail(&self, claim: &ClaimedDelivery) -> Result<(), String> {
        let mailer = self.settings.mailer.as_ref().ok_or("this node has no SMTP server (--smtp-url)")?;
        let to = super::email::recipients(&claim.url).ok_or("the channel has no recipients")?;
        mailer.send(&to, &claim.delivery.payload).await.map_err(|mut e| {
            truncate(&mut e);
            e
        })
    }

    /// POSTs a delivery, signed: the HTTP status and, unless it was a 2xx, what went wrong.
    async fn post(&self, claim: &ClaimedDelivery) -> (Option<u16>, Option<String>) {
        let d = &claim.delivery;
        let t = now_ms() / 1000;
        let sent = self
            .client
            .post(&claim.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-cronstack-event", d.event.as_str())
            .header("x-cronstack-delivery", d.id.to_string())
            .header(SIGNATURE_HEADER, header_value(&claim.secret, t, d.payload.as_bytes()))
            .body(d.payload.clone())
            .send()
            .await;
        let (status_code, error) = match sent {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => {
                let code = response.status();
                (Some(code.as_u16()), Some(format!("the receiver answered HTTP {code}")))
            }
            Err(e) => (e.status().map(|s| s.as_u16()), Some(describe(&e))),
        };
        (status_code, error)
    }

    /// Records an attempt: delivered, due again after a backoff, or failed for good.
    async fn record(&self, d: &crate::domain::Delivery, status_code: Option<u16>, error: Option<String>) {
        let now = now_ms();
        let attempts = d.attempts + 1;
        let record = match &error {
            None => AttemptRecord {
                status: DeliveryStatus::Delivered,
                attempts,
                next_attempt_at: None,
                status_code: status_code.map(i64::from),
                error: None,
                delivered_at: Some(now),
            },
            Some(_) if attempts >= self.settings.max_attempts => AttemptRecord {
                status: DeliveryStatus::Failed,
                attempts,
                next_attempt_at: None,
                status_code: status_code.map(i64::from),
                error: error.clone(),
                delivered_at: None,
            },
            Some(_) => {
                let delay = self.backoff_ms(attempts);
                // Wake the worker when the retry is due, rather than at the next poll.
                let wake = self.wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(delay as u64)).await;
                    wake.notify_one();
                });
                AttemptRecord {
                    status: DeliveryStatus::Pending,
                    attempts,
                    next_attempt_at: Some(now + delay),
                    status_code: status_code.map(i64::from),
                    error: error.clone(),
                    delivered_at: None,
                }
            }
        };
        let result = match record.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            _ => "retrying",
        };
        metrics::counter!("cronstack_webhook_deliveries_total", "result" => result).increment(1);
        if let Some(e) = &error {
            tracing::info!(delivery = d.id, webhook = d.webhook_id, attempts, error = %e, result, "webhook delivery attempt failed");
        }
        let mut delay = Duration::from_millis(200);
        for tries in 1.. {
            match self.store.record_attempt(d.id, &self.node_id, &record, now_ms()).await {
                Ok(_) => break,
                Err(e) if tries < 10 => {
                    tracing::warn!(delivery = d.id, error = %e, "recording a webhook attempt; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                // The claim expires and the delivery is sent again: at least once.
                Err(e) => tracing::error!(delivery = d.id, error = %e, "recording a webhook attempt failed"),
            }
        }
    }

    /// `base · 2^(attempts-1)`, capped, ±20% jitter.
    fn backoff_ms(&self, attempts: i64) -> EpochMs {
        let base = self.settings.retry_base.as_millis().max(1) as f64;
        let cap = self.settings.retry_cap.as_millis().max(1) as f64;
        let exp = (attempts - 1).clamp(0, 30) as i32;
        let ms = (base * 2f64.powi(exp)).min(cap);
        (ms * rand::random_range(0.8..1.2)) as EpochMs
    }
}

/// A send error with its causes ("connection refused", "operation timed out"), without the
/// URL (which may carry credentials).
fn describe(e: &reqwest::Error) -> String {
    let head = if e.is_timeout() { "timed out" } else { "could not send" };
    let mut text = with_causes(head.to_string(), e);
    truncate(&mut text);
    text
}

/// Cuts an error to [`ERROR_CAP`] bytes (on a character boundary).
fn truncate(text: &mut String) {
    if text.len() > ERROR_CAP {
        let mut end = ERROR_CAP;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
