//! Asynchronous action records (the Cloud 66 dialect's run now / pause / unpause).

use serde_json::Value;
use sqlx::any::AnyRow;

use super::{
    Listing, Page, SqlxResultExt, Store, StoreResult, get_enum, get_i64, get_json, get_opt_i64,
    get_opt_string, get_string,
};
use crate::domain::{Action, ActionKind, EpochMs, bool_flag};

const COLUMNS: &str = "id, owner, stack_id, action, started_via, started_at, finished_at, finished_success, finished_message, finished_result, metadata, run_id";

impl Store {
    pub async fn insert_action(&self, a: &Action) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO actions (owner, stack_id, action, started_via, started_at, finished_at, finished_success, finished_message, finished_result, metadata, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(a.owner)
        .bind(a.stack_id)
        .bind(a.kind.as_str())
        .bind(&a.started_via)
        .bind(a.started_at)
        .bind(a.finished_at)
        .bind(a.finished_success.map(bool_flag))
        .bind(&a.finished_message)
        .bind(a.finished_result.as_ref().map(Value::to_string))
        .bind(Value::Object(a.metadata.clone()).to_string())
        .bind(a.run_id);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// Finishes every action waiting on `run_id` (a run-now action ends with its run).
    pub async fn finish_run_actions(
        &self,
        run_id: i64,
        at: EpochMs,
        success: bool,
        message: &str,
        result: &Value,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE actions SET finished_at = $2, finished_success = $3, finished_message = $4, finished_result = $5 WHERE run_id = $1 AND finished_at IS NULL",
        )
        .bind(run_id)
        .bind(at)
        .bind(bool_flag(success))
        .bind(message)
        .bind(result.to_string())
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(())
    }

    pub async fn action(&self, id: i64) -> StoreResult<Option<Action>> {
        self.one(COLUMNS, "actions WHERE id = $1", id, action_from_row).await
    }

    /// A stack's actions, newest first.
    pub async fn stack_actions(&self, stack_id: i64, limit: i64, offset: i64) -> StoreResult<Page<Action>> {
        let listing =
            Listing { columns: COLUMNS, from_where: "actions WHERE stack_id = $1", order: "id DESC" };
        self.page(listing, stack_id, (limit, offset), action_from_row).await
    }
}

fn action_from_row(r: &AnyRow) -> StoreResult<Action> {
    let result = get_opt_string(r, "finished_result")?;
    Ok(Action {
        id: get_i64(r, "id")?,
        owner: get_i64(r, "owner")?,
        stack_id: get_i64(r, "stack_id")?,
        kind: get_enum(r, "action", ActionKind::parse)?,
        started_via: get_string(r, "started_via")?,
        started_at: get_i64(r, "started_at")?,
        finished_at: get_opt_i64(r, "finished_at")?,
        finished_success: get_opt_i64(r, "finished_success")?.map(|v| v != 0),
        finished_message: get_opt_string(r, "finished_message")?,
        finished_result: result.and_then(|s| serde_json::from_str(&s).ok()),
        metadata: get_json(r, "metadata")?,
        run_id: get_opt_i64(r, "run_id")?,
    })
}
