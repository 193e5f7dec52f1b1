//! Webhooks both ways: stacks' hook jobs (inbound), subscriptions and their persisted
//! delivery queue (outbound).

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::cache::Change;
use super::rows::{JOB_COLUMNS, Params, job_from_row};
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreError, StoreResult, get_enum, get_i64, get_opt_i64,
    get_opt_string, get_string,
};
use crate::domain::{
    ChannelKind, Delivery, DeliveryStatus, EpochMs, EventKind, JOB_KIND_HOOK, Job, RunStatus, Stack, UserId,
    Webhook,
};

pub(super) const WEBHOOK_COLUMNS: &str =
    "id, owner, url, events, secret, stack_id, job_id, created_at, updated_at, kind, name, monitor_id";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event, payload, status, attempts, next_attempt_at, last_status_code, last_error, delivered_at, created_at, updated_at";

/// The fields a user sets on a subscription.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<EventKind>,
    pub secret: String,
    pub stack_id: Option<i64>,
    pub job_id: Option<i64>,
    pub kind: ChannelKind,
    pub name: Option<String>,
    pub monitor_id: Option<i64>,
}

/// A delivery to queue: the event for one subscription, with its final body.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub webhook_id: i64,
    pub event: EventKind,
    pub payload: String,
}

/// A delivery this node claimed, with where to send it and how to sign it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
    /// `email`: sent through SMTP to the `mailto:` URL's recipients; else POSTed.
    pub kind: ChannelKind,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<EpochMs>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub delivered_at: Option<EpochMs>,
}

impl Store {
    // --- inbound: the stack's hook job -------------------------------------------------------

    /// The stack's hook job, created (with its owner's internal schedule) on first use. Two
    /// nodes racing to create it end up with the same one (unique partial indexes).
    pub async fn hook_job(&self, stack: &Stack, now: EpochMs) -> StoreResult<Job> {
        if let Some(job) = self.find_hook_job(stack.id).await? {
            return Ok(job);
        }
        sqlx::query(
            "INSERT INTO schedules (owner, name, once, config, internal, created_at, updated_at) \
             VALUES ($1, NULL, 1, '{\"timestamp\":0}', 1, $2, $2) \
             ON CONFLICT (owner) WHERE internal = 1 DO NOTHING",
        )
        .bind(stack.owner)
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        let row = sqlx::query("SELECT id FROM schedules WHERE owner = $1 AND internal = 1")
            .bind(stack.owner)
            .fetch_one(&self.read)
            .await
            .db()?;
        let schedule_id = get_i64(&row, "id")?;
        sqlx::query(
            "INSERT INTO jobs (uid, owner, stack_id, schedule_id, name, kind, command, enabled, timeout_s, overlap, missed, retries, retry_backoff_s, next_run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, NULL, 0, NULL, 'allow', 'skip', 0, 10, NULL, $6, $6) \
             ON CONFLICT (stack_id) WHERE kind = 'hook' DO NOTHING",
        )
        .bind(crate::domain::new_uid())
        .bind(stack.owner)
        .bind(stack.id)
        .bind(schedule_id)
        .bind(JOB_KIND_HOOK)
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        self.changed(Change::JobAdded);
        self.find_hook_job(stack.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("hook job of stack {} vanished", stack.id)))
    }

    async fn find_hook_job(&self, stack_id: i64) -> StoreResult<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE stack_id = $1 AND kind = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stack_id)
            .bind(JOB_KIND_HOOK)
            .fetch_optional(&self.read)
            .await
            .db()?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    pub async fn set_webhook_token(&self, stack_id: i64, token: &str, now: EpochMs) -> StoreResult<()> {
        sqlx::query("UPDATE stacks SET webhook_token = $2, updated_at = $3 WHERE id = $1")
            .bind(stack_id)
            .bind(token)
            .bind(now)
            .execute(&self.write)
            .await
            .wrote()?;
        self.changed(Change::Stack(stack_id));
        Ok(())
    }

    /// The outcome of the job's run before `run_id` (skipped slots aside), for `job.fail` and
    /// `job.backon`; `None` when it never ran before.
    pub async fn previous_run_outcome(&self, job_id: i64, run_id: i64) -> StoreResult<Option<RunStatus>> {
        let row = sqlx::query(
            "SELECT status FROM runs WHERE job_id = $1 AND id < $2 \
             AND status IN ('succeeded', 'failed', 'timed_out', 'killed', 'lost') ORDER BY id DESC LIMIT 1",
        )
        .bind(job_id)
        .bind(run_id)
        .fetch_optional(&self.read)
        .await
        .db()?;
        row.map(|r| get_enum(&r, "status", RunStatus::parse)).transpose()
    }

    // --- outbound: subscriptions ---------------------------------------------------------------

    pub async fn insert_webhook(&self, owner: UserId, w: &NewWebhook, now: EpochMs) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO webhooks (owner, url, events, secret, stack_id, job_id, created_at, updated_at, kind, name, monitor_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10) RETURNING id",
        )
        .bind(owner)
        .bind(&w.url)
        .bind(events_json(&w.events))
        .bind(&w.secret)
        .bind(w.stack_id)
        .bind(w.job_id)
        .bind(now)
        .bind(w.kind.as_str())
        .bind(&w.name)
        .bind(w.monitor_id);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    pub async fn update_webhook(&self, id: i64, w: &NewWebhook, now: EpochMs) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhooks SET url = $2, events = $3, secret = $4, stack_id = $5, job_id = $6, updated_at = $7, kind = $8, name = $9, monitor_id = $10 WHERE id = $1",
        )
        .bind(id)
        .bind(&w.url)
        .bind(events_json(&w.events))
        .bind(&w.secret)
        .bind(w.stack_id)
        .bind(w.job_id)
        .bind(now)
        .bind(w.kind.as_str())
        .bind(&w.name)
        .bind(w.monitor_id)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(())
    }

    /// Deletes a subscription and its deliveries.
    pub async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await.db()?;
        tx.commit().await.wrote()?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        self.one(WEBHOOK_COLUMNS, "webhooks WHERE id = $1", id, webhook_from_row).await
    }

    pub async fn list_webhooks(&self, owner: UserId, limit: i64, offset: i64) -> StoreResult<Page<Webhook>> {
        let listing =
            Listing { columns: WEBHOOK_COLUMNS, from_where: "webhooks WHERE owner = $1", order: "id" };
        self.page(listing, owner, (limit, offset), webhook_from_row).await
    }

    /// Every subscription of these owners (the candidates for a batch of events).
    pub async fn webhooks_of_owners(&self, owners: &[UserId]) -> StoreResult<Vec<Webhook>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE owner IN ({})",
            Params::new(self.backend).list(owners.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for owner in owners {
            q = q.bind(*owner);
        }
        let rows = q.fetch_all(&self.read).await.db()?;
        rows.iter().map(webhook_from_row).collect()
    }

    // --- outbound: the delivery queue -----------------------------------------------------------

    /// Queues deliveries, due now, in one statement per chunk.
    pub async fn insert_deliveries(&self, items: &[NewDelivery], now: EpochMs) -> StoreResult<()> {
        // Six parameters per row, `now` three times (each parameter appears once: see
        // `Params`); PostgreSQL allows 65,535.
        for chunk in items.chunks(1000) {
            let mut params = Params::new(self.backend);
            let values = (0..chunk.len())
                .map(|_| {
                    let [hook, event, payload, due, created, updated] = params.take();
                    format!("({hook}, {event}, {payload}, 'pending', 0, {due}, {created}, {updated})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO webhook_deliveries (webhook_id, event, payload, status, attempts, next_attempt_at, created_at, updated_at) VALUES {values}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q
                    .bind(d.webhook_id)
                    .bind(d.event.as_str())
                    .bind(&d.payload)
                    .bind(now)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&self.write).await.wrote()?;
        }
        Ok(())
    }

    /// Claims up to `limit` due deliveries for `node` until `claim_until`, oldest due first,
    /// leaving out the subscriptions in `skip` (busy on this node). On PostgreSQL the rows are
    /// locked with `SKIP LOCKED`, so nodes claiming at once never get the same delivery.
    pub async fn claim_deliveries(
        &self,
        node: &str,
        now: EpochMs,
        claim_until: EpochMs,
        limit: usize,
        skip: &[i64],
        mail: bool,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Bound as they appear: node, claim_until, now twice, the skipped subscriptions, limit.
        let mut params = Params::new(self.backend);
        let [node_p, until_p, now_p, due_p] = params.take();
        let skip_clause = if skip.is_empty() {
            String::new()
        } else {
            format!(" AND webhook_id NOT IN ({})", params.list(skip.len()))
        };
        // A node that cannot send mail leaves it to the nodes that can.
        let mail_clause =
            if mail { "" } else { " AND webhook_id NOT IN (SELECT id FROM webhooks WHERE kind = 'email')" };
        let limit_p = params.next();
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'delivering', claimed_by = {node_p}, claim_until = {until_p}, updated_at = {now_p} \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= {due_p}{skip_clause}{mail_clause} \
             ORDER BY next_attempt_at, id LIMIT {limit_p}{lock}) RETURNING {DELIVERY_COLUMNS}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(node).bind(claim_until).bind(now).bind(now);
        for id in skip {
            q = q.bind(*id);
        }
        let rows = q.bind(limit as i64).fetch_all(&self.write).await.wrote()?;
        let deliveries = rows.iter().map(delivery_from_row).collect::<StoreResult<Vec<_>>>()?;
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<i64> = deliveries.iter().map(|d| d.webhook_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let sql = format!(
            "SELECT id, url, secret, kind FROM webhooks WHERE id IN ({})",
            Params::new(self.backend).list(ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(*id);
        }
        let mut targets = HashMap::new();
        for row in q.fetch_all(&self.read).await.db()? {
            let target = (
                get_string(&row, "url")?,
                get_string(&row, "secret")?,
                get_enum(&row, "kind", ChannelKind::parse)?,
            );
            targets.insert(get_i64(&row, "id")?, target);
        }
        // A subscription deleted meanwhile took its deliveries with it.
        Ok(deliveries
            .into_iter()
            .filter_map(|delivery| {
                let (url, secret, kind) = targets.get(&delivery.webhook_id)?.clone();
                Some(ClaimedDelivery { delivery, url, secret, kind })
            })
            .collect())
    }

    /// Records an attempt of a delivery this node holds; `Ok(false)` if it no longer does.
    pub async fn record_attempt(
        &self,
        id: i64,
        node: &str,
        a: &AttemptRecord,
        now: EpochMs,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, last_status_code = $6, \
             last_error = $7, delivered_at = $8, claimed_by = NULL, claim_until = NULL, updated_at = $9 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'delivering'",
        )
        .bind(id)
        .bind(node)
        .bind(a.status.as_str())
        .bind(a.attempts)
        .bind(a.next_attempt_at)
        .bind(a.status_code)
        .bind(&a.error)
        .bind(a.delivered_at)
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back claims of `node` without an attempt (it is busy with their subscription).
    pub async fn unclaim_deliveries(&self, ids: &[i64], node: &str, now: EpochMs) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Bound as they appear: now twice, node, the ids.
        let mut params = Params::new(self.backend);
        let [due, updated, claimed_by] = params.take();
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL, claim_until = NULL, next_attempt_at = {due}, updated_at = {updated} \
             WHERE claimed_by = {claimed_by} AND status = 'delivering' AND id IN ({})",
            params.list(ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now).bind(node);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(&self.write).await.wrote()?;
        Ok(())
    }

    /// Puts claimed deliveries back in the queue, due now: those of `node` (on shutdown),
    /// those whose claim expired (their node died), or all of them (a single node restarting
    /// on SQLite owns every claim it finds).
    pub async fn release_deliveries(&self, release: Release<'_>, now: EpochMs) -> StoreResult<u64> {
        let q = match release {
            Release::Node(node) => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL, claim_until = NULL, next_attempt_at = $2, updated_at = $2 \
                 WHERE status = 'delivering' AND claimed_by = $1",
            )
            .bind(node)
            .bind(now),
            Release::Expired => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL, claim_until = NULL, next_attempt_at = $1, updated_at = $1 \
                 WHERE status = 'delivering' AND claim_until < $1",
            )
            .bind(now),
            Release::All => sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', claimed_by = NULL, claim_until = NULL, next_attempt_at = $1, updated_at = $1 \
                 WHERE status = 'delivering'",
            )
            .bind(now),
        };
        Ok(q.execute(&self.write).await.wrote()?.rows_affected())
    }

    /// When the earliest pending delivery is due.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<EpochMs>> {
        let row = sqlx::query(
            "SELECT CAST(MIN(next_attempt_at) AS BIGINT) AS due FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.read)
        .await
        .db()?;
        get_opt_i64(&row, "due")
    }

    /// A subscription's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        webhook_id: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Page<Delivery>> {
        let listing = Listing {
            columns: DELIVERY_COLUMNS,
            from_where: "webhook_deliveries WHERE webhook_id = $1",
            order: "id DESC",
        };
        self.page(listing, webhook_id, (limit, offset), delivery_from_row).await
    }
}

/// Which claims [`Store::release_deliveries`] gives back.
#[derive(Debug, Clone, Copy)]
pub enum Release<'a> {
    Node(&'a str),
    Expired,
    All,
}

fn events_json(events: &[EventKind]) -> String {
    serde_json::to_string(events).expect("event names serialize")
}

pub(super) fn webhook_from_row(r: &AnyRow) -> StoreResult<Webhook> {
    let raw = get_string(r, "events")?;
    let events: Vec<EventKind> =
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("webhook events {raw}: {e}")))?;
    Ok(Webhook {
        id: get_i64(r, "id")?,
        owner: get_i64(r, "owner")?,
        url: get_string(r, "url")?,
        events,
        secret: get_string(r, "secret")?,
        stack_id: get_opt_i64(r, "stack_id")?,
        job_id: get_opt_i64(r, "job_id")?,
        kind: get_enum(r, "kind", ChannelKind::parse)?,
        name: get_opt_string(r, "name")?,
        monitor_id: get_opt_i64(r, "monitor_id")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}

fn delivery_from_row(r: &AnyRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: get_i64(r, "id")?,
        webhook_id: get_i64(r, "webhook_id")?,
        event: get_enum(r, "event", EventKind::parse)?,
        payload: get_string(r, "payload")?,
        status: get_enum(r, "status", DeliveryStatus::parse)?,
        attempts: get_i64(r, "attempts")?,
        next_attempt_at: get_opt_i64(r, "next_attempt_at")?,
        last_status_code: get_opt_i64(r, "last_status_code")?,
        last_error: get_opt_string(r, "last_error")?,
        delivered_at: get_opt_i64(r, "delivered_at")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}
