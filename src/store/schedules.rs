//! Schedules: named, reusable fire-time rules.

use sqlx::any::AnyRow;

use super::cache::Change;
use super::{
    Listing, Page, SqlxResultExt, Store, StoreError, StoreResult, get_bool, get_i64, get_opt_string,
    get_string,
};
use crate::domain::{EpochMs, Schedule, ScheduleConfig, UserId, bool_flag};

const COLUMNS: &str = "id, owner, name, once, config, created_at, updated_at";

impl Store {
    pub async fn insert_schedule(
        &self,
        owner: UserId,
        name: Option<&str>,
        once: bool,
        config: &ScheduleConfig,
        now: EpochMs,
    ) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO schedules (owner, name, once, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(owner)
        .bind(name)
        .bind(bool_flag(once))
        .bind(config.to_json().to_string())
        .bind(now);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// The owner's oldest unnamed `{"manual": true}` schedule, the one jobs that run only
    /// after others are put on.
    pub async fn manual_schedule(&self, owner: UserId) -> StoreResult<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM schedules WHERE owner = $1 AND internal = 0 AND name IS NULL AND config = $2 ORDER BY id LIMIT 1",
        )
        .bind(owner)
        .bind(ScheduleConfig::Manual.to_json().to_string())
        .fetch_optional(&self.read)
        .await
        .db()?;
        row.map(|r| get_i64(&r, "id")).transpose()
    }

    pub async fn schedule(&self, id: i64) -> StoreResult<Option<Schedule>> {
        // The internal schedule of hook jobs is never shown nor used for anything else.
        let load = self.one(COLUMNS, "schedules WHERE id = $1 AND internal = 0", id, schedule_from_row);
        self.cache.schedules.get_or_load(id, load).await
    }

    pub async fn list_schedules(
        &self,
        owner: UserId,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Page<Schedule>> {
        let listing = Listing {
            columns: COLUMNS,
            from_where: "schedules WHERE owner = $1 AND internal = 0",
            order: "id",
        };
        self.page(listing, owner, (limit, offset), schedule_from_row).await
    }

    /// Rewrites a schedule unless a job uses it; `Ok(false)` when one does. The check and the
    /// write share one transaction so a job cannot slip in between.
    pub async fn update_schedule_if_unused(&self, s: &Schedule, now: EpochMs) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if schedule_in_use(&mut tx, s.id).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE schedules SET name = $2, once = $3, config = $4, updated_at = $5 WHERE id = $1")
            .bind(s.id)
            .bind(&s.name)
            .bind(bool_flag(s.once))
            .bind(s.config.to_json().to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .db()?;
        tx.commit().await.wrote()?;
        self.changed(Change::Schedule(s.id));
        Ok(true)
    }

    /// Deletes a schedule unless a job uses it; `Ok(false)` when one does.
    pub async fn delete_schedule_if_unused(&self, id: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if schedule_in_use(&mut tx, id).await? {
            return Ok(false);
        }
        sqlx::query("DELETE FROM schedules WHERE id = $1").bind(id).execute(&mut *tx).await.db()?;
        tx.commit().await.wrote()?;
        self.changed(Change::Schedule(id));
        Ok(true)
    }
}

async fn schedule_in_use(tx: &mut sqlx::AnyConnection, id: i64) -> StoreResult<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE schedule_id = $1")
        .bind(id)
        .fetch_one(tx)
        .await
        .db()?;
    Ok(get_i64(&row, "n")? > 0)
}

fn schedule_from_row(r: &AnyRow) -> StoreResult<Schedule> {
    let raw = get_string(r, "config")?;
    let json: serde_json::Value =
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("config: {e}")))?;
    let config = ScheduleConfig::from_json(&json)
        .map_err(|e| StoreError::Corrupt(format!("schedule config {raw}: {e}")))?;
    Ok(Schedule {
        id: get_i64(r, "id")?,
        owner: get_i64(r, "owner")?,
        name: get_opt_string(r, "name")?,
        once: get_bool(r, "once")?,
        config,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}
