//! Heartbeat monitors and their pings (see `crate::domain::monitor`).
//!
//! A state change that announces an event (`monitor.down`, `monitor.up`) writes the change
//! and its webhook deliveries in one transaction, behind a compare-and-swap on the monitor's
//! row: whichever node (or ping) makes the change emits it, and only once.

use sqlx::any::AnyRow;

use super::retention::PruneLock;
use super::webhooks::{WEBHOOK_COLUMNS, webhook_from_row};
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreResult, get_bool, get_enum, get_i64, get_json,
    get_opt_i64, get_opt_string, get_string,
};
use crate::domain::monitor::{Monitor, MonitorState, Ping, PingEffect, PingKind};
use crate::domain::{ChannelKind, EpochMs, EventKind, ScheduleConfig, UserId};

const MONITOR_COLUMNS: &str = "id, uuid, owner, name, schedule, grace_s, keep_pings, state, started_at, last_ping_at, last_ping_kind, late_at, down_at, created_at, updated_at";
const PING_COLUMNS: &str =
    "id, monitor_id, kind, exit_code, duration_ms, method, user_agent, body, body_truncated, created_at";

/// The key of the PostgreSQL advisory lock held by the node that watches monitors ("cronmoni").
const MONITOR_WATCH_LOCK_KEY: i64 = 0x6372_6f6e_6d6f_6e69;

/// The fields a user sets on a monitor.
#[derive(Debug, Clone)]
pub struct MonitorFields {
    pub name: String,
    pub schedule: ScheduleConfig,
    pub grace_s: i64,
    pub keep_pings: i64,
}

/// A ping as it arrives (its duration comes from the monitor).
#[derive(Debug, Clone)]
pub struct NewPing {
    pub kind: PingKind,
    pub exit_code: Option<i64>,
    pub method: String,
    pub user_agent: Option<String>,
    pub body: String,
    pub body_truncated: bool,
}

/// Renders the delivery body of a monitor event for a channel of a kind (the monitor as it
/// now is, and the ping that caused it, if one did).
pub type RenderEvent<'a> = &'a (dyn Fn(ChannelKind, EventKind, &Monitor, Option<&Ping>) -> String + Sync);

/// The watcher's hold on its lock (PostgreSQL: one node watches at a time).
pub struct WatchLock(PruneLock);

impl WatchLock {
    pub async fn release(self) {
        self.0.release().await;
    }
}

impl Store {
    pub async fn insert_monitor(
        &self,
        owner: UserId,
        uuid: &str,
        f: &MonitorFields,
        now: EpochMs,
    ) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO monitors (uuid, owner, name, schedule, grace_s, keep_pings, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'new', $7, $7) RETURNING id",
        )
        .bind(uuid)
        .bind(owner)
        .bind(&f.name)
        .bind(f.schedule.to_json().to_string())
        .bind(f.grace_s)
        .bind(f.keep_pings)
        .bind(now);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// Changes what the user sets; the expected times follow from the next ping.
    pub async fn update_monitor(&self, id: i64, f: &MonitorFields, now: EpochMs) -> StoreResult<()> {
        sqlx::query(
            "UPDATE monitors SET name = $2, schedule = $3, grace_s = $4, keep_pings = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&f.name)
        .bind(f.schedule.to_json().to_string())
        .bind(f.grace_s)
        .bind(f.keep_pings)
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(())
    }

    /// Pauses (`paused`) or resumes (`new`: waiting for the next ping) a monitor; nothing is
    /// expected of it until its next ping.
    pub async fn set_monitor_state(&self, id: i64, state: MonitorState, now: EpochMs) -> StoreResult<()> {
        sqlx::query(
            "UPDATE monitors SET state = $2, late_at = NULL, down_at = NULL, started_at = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(())
    }

    /// Deletes a monitor and its pings.
    pub async fn delete_monitor(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM monitor_pings WHERE monitor_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        sqlx::query("DELETE FROM monitors WHERE id = $1").bind(id).execute(&mut *tx).await.db()?;
        tx.commit().await.wrote()?;
        Ok(())
    }

    pub async fn monitor(&self, id: i64) -> StoreResult<Option<Monitor>> {
        self.one(MONITOR_COLUMNS, "monitors WHERE id = $1", id, monitor_from_row).await
    }

    pub async fn list_monitors(&self, owner: UserId, limit: i64, offset: i64) -> StoreResult<Page<Monitor>> {
        let listing =
            Listing { columns: MONITOR_COLUMNS, from_where: "monitors WHERE owner = $1", order: "id" };
        self.page(listing, owner, (limit, offset), monitor_from_row).await
    }

    /// A monitor's pings, newest first.
    pub async fn list_pings(&self, monitor_id: i64, limit: i64, offset: i64) -> StoreResult<Page<Ping>> {
        let listing = Listing {
            columns: PING_COLUMNS,
            from_where: "monitor_pings WHERE monitor_id = $1",
            order: "id DESC",
        };
        self.page(listing, monitor_id, (limit, offset), ping_from_row).await
    }

    /// Records a ping to the monitor `uuid` (`None`: no such monitor) and applies `effect`'s
    /// verdict on it, with the deliveries of the event it announces, in one transaction.
    pub async fn record_ping(
        &self,
        uuid: &str,
        ping: &NewPing,
        now: EpochMs,
        effect: impl FnOnce(&Monitor) -> PingEffect,
        render: RenderEvent<'_>,
    ) -> StoreResult<Option<(Monitor, Ping)>> {
        let mut tx = self.begin_write().await?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE" } else { "" };
        let sql = format!("SELECT {MONITOR_COLUMNS} FROM monitors WHERE uuid = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(uuid).fetch_optional(&mut *tx).await.db()?;
        let Some(row) = row else { return Ok(None) };
        let before = monitor_from_row(&row)?;
        let e = effect(&before);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO monitor_pings (monitor_id, kind, exit_code, duration_ms, method, user_agent, body, body_truncated, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {PING_COLUMNS}"
        )))
        .bind(before.id)
        .bind(ping.kind.as_str())
        .bind(ping.exit_code)
        .bind(e.duration_ms)
        .bind(&ping.method)
        .bind(&ping.user_agent)
        .bind(&ping.body)
        .bind(i64::from(ping.body_truncated))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .db()?;
        let recorded = rows.first().map(ping_from_row).transpose()?.ok_or(sqlx::Error::RowNotFound)?;
        sqlx::query(
            "UPDATE monitors SET state = $2, started_at = $3, late_at = $4, down_at = $5, last_ping_at = $6, last_ping_kind = $7 WHERE id = $1",
        )
        .bind(before.id)
        .bind(e.state.as_str())
        .bind(e.started_at)
        .bind(e.late_at)
        .bind(e.down_at)
        .bind(now)
        .bind(ping.kind.as_str())
        .execute(&mut *tx)
        .await
        .db()?;
        let after = Monitor {
            state: e.state,
            started_at: e.started_at,
            late_at: e.late_at,
            down_at: e.down_at,
            last_ping_at: Some(now),
            last_ping_kind: Some(ping.kind),
            ..before
        };
        if let Some(kind) = e.event {
            let body = |channel| render(channel, kind, &after, Some(&recorded));
            queue_event(&mut tx, kind, &after, &body, now).await?;
        }
        tx.commit().await.wrote()?;
        Ok(Some((after, recorded)))
    }

    /// Takes the watcher's lock, or `None` when another node watches.
    pub async fn try_monitor_watch_lock(&self) -> StoreResult<Option<WatchLock>> {
        Ok(self.try_advisory_lock(MONITOR_WATCH_LOCK_KEY).await?.map(WatchLock))
    }

    /// Up monitors whose expected time has passed become late (nothing is announced).
    pub async fn mark_monitors_late(&self, now: EpochMs) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE monitors SET state = 'late' WHERE state = 'up' AND late_at <= $1")
            .bind(now)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(done.rows_affected())
    }

    /// Up or late monitors past their grace at `now`, at most `limit`.
    pub async fn monitors_past_grace(&self, now: EpochMs, limit: i64) -> StoreResult<Vec<Monitor>> {
        let sql = format!(
            "SELECT {MONITOR_COLUMNS} FROM monitors WHERE state IN ('up', 'late') AND down_at <= $1 ORDER BY down_at LIMIT $2"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(&self.read).await.db()?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Takes a monitor down if it still is up or late past its grace (a ping may have come
    /// meanwhile), queueing its `monitor.down` deliveries with the change. `false`: it was not.
    pub async fn take_monitor_down(
        &self,
        m: &Monitor,
        now: EpochMs,
        render: RenderEvent<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE monitors SET state = 'down', late_at = NULL, down_at = NULL \
             WHERE id = $1 AND state IN ('up', 'late') AND down_at <= $2",
        )
        .bind(m.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db()?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let down = Monitor { state: MonitorState::Down, late_at: None, down_at: None, ..m.clone() };
        let kind = EventKind::MonitorDown;
        let body = |channel| render(channel, kind, &down, None);
        queue_event(&mut tx, kind, &down, &body, now).await?;
        tx.commit().await.wrote()?;
        Ok(true)
    }

    /// Every user's monitors, for `/metrics`.
    pub async fn all_monitors(&self) -> StoreResult<Vec<Monitor>> {
        let sql = format!("SELECT {MONITOR_COLUMNS} FROM monitors ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.read).await.db()?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Monitors pinged since `since`: the ones whose history may have grown past its limit.
    pub async fn monitors_pinged_since(&self, since: EpochMs) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT id, keep_pings FROM monitors WHERE last_ping_at >= $1")
            .bind(since)
            .fetch_all(&self.read)
            .await
            .db()?;
        rows.iter().map(|r| Ok((get_i64(r, "id")?, get_i64(r, "keep_pings")?))).collect()
    }

    /// Deletes a monitor's pings beyond its newest `keep`.
    pub async fn prune_pings(&self, monitor_id: i64, keep: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM monitor_pings WHERE monitor_id = $1 AND id <= \
             (SELECT id FROM monitor_pings WHERE monitor_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(monitor_id)
        .bind(keep)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(done.rows_affected())
    }
}

/// Queues the deliveries of a monitor event to the owner's subscriptions that want it, each
/// shaped for its kind of channel (`body`, rendered once per kind).
async fn queue_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    kind: EventKind,
    monitor: &Monitor,
    body: &(dyn Fn(ChannelKind) -> String + Sync),
    now: EpochMs,
) -> StoreResult<()> {
    let mut payloads: std::collections::HashMap<ChannelKind, String> = std::collections::HashMap::new();
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE owner = $1");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(monitor.owner).fetch_all(&mut **tx).await.db()?;
    for hook in rows.iter().map(webhook_from_row) {
        let hook = hook?;
        if !hook.wants_monitor(kind, monitor) {
            continue;
        }
        let payload = payloads.entry(hook.kind).or_insert_with(|| body(hook.kind));
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event, payload, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4)",
        )
        .bind(hook.id)
        .bind(kind.as_str())
        .bind(&*payload)
        .bind(now)
        .execute(&mut **tx)
        .await
        .db()?;
    }
    Ok(())
}

fn monitor_from_row(r: &AnyRow) -> StoreResult<Monitor> {
    let raw: serde_json::Value = get_json(r, "schedule")?;
    let schedule = ScheduleConfig::from_json(&raw)
        .map_err(|e| super::StoreError::Corrupt(format!("monitor schedule {raw}: {e}")))?;
    Ok(Monitor {
        id: get_i64(r, "id")?,
        uuid: get_string(r, "uuid")?,
        owner: get_i64(r, "owner")?,
        name: get_string(r, "name")?,
        schedule,
        grace_s: get_i64(r, "grace_s")?,
        keep_pings: get_i64(r, "keep_pings")?,
        state: get_enum(r, "state", MonitorState::parse)?,
        started_at: get_opt_i64(r, "started_at")?,
        last_ping_at: get_opt_i64(r, "last_ping_at")?,
        last_ping_kind: get_opt_string(r, "last_ping_kind")?.as_deref().and_then(PingKind::parse),
        late_at: get_opt_i64(r, "late_at")?,
        down_at: get_opt_i64(r, "down_at")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}

fn ping_from_row(r: &AnyRow) -> StoreResult<Ping> {
    Ok(Ping {
        id: get_i64(r, "id")?,
        monitor_id: get_i64(r, "monitor_id")?,
        kind: get_enum(r, "kind", PingKind::parse)?,
        exit_code: get_opt_i64(r, "exit_code")?,
        duration_ms: get_opt_i64(r, "duration_ms")?,
        method: get_string(r, "method")?,
        user_agent: get_opt_string(r, "user_agent")?,
        body: get_string(r, "body")?,
        body_truncated: get_bool(r, "body_truncated")?,
        created_at: get_i64(r, "created_at")?,
    })
}
