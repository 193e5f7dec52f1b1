//! Stacks: named groups of jobs with the command, environment and hook settings they share.

use std::collections::{BTreeMap, HashMap};

use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;

use super::FromRow;
use super::cache::Change;
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreError, StoreResult, get_bool, get_enum, get_i64,
    get_json, get_opt_i64, get_opt_string, get_string,
};
use crate::blocks::{Block, BlockState};
use crate::domain::{EpochMs, HookAccess, HookMethod, SealedEnv, Stack, UserId, bool_flag};
use crate::secrets::StoredSample;

const COLUMNS: &str = "id, uid, owner, name, command, env, secret_env, workdir, webhook, webhook_method, webhook_token, blocks, public, environment, created_at, updated_at";

/// The fields a user sets on a stack.
#[derive(Debug, Clone)]
pub struct NewStack {
    pub name: String,
    pub command: String,
    pub env: BTreeMap<String, String>,
    /// Sealed by the service: the store never sees a secret value.
    pub secret_env: SealedEnv,
    pub workdir: Option<String>,
    pub webhook: Option<HookAccess>,
    pub webhook_method: HookMethod,
    pub webhook_token: Option<String>,
    /// `None`: the stack runs `command`; `Some`: a pipeline (see `crate::blocks`).
    pub blocks: Option<Vec<Block>>,
    pub public: bool,
    pub environment: Option<String>,
}

fn blocks_text(blocks: &Option<Vec<Block>>) -> Option<String> {
    blocks.as_ref().map(|b| serde_json::to_string(b).expect("blocks serialize"))
}

impl Store {
    pub async fn insert_stack(
        &self,
        owner: UserId,
        uid: &str,
        s: &NewStack,
        now: EpochMs,
    ) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO stacks (uid, owner, name, command, env, secret_env, workdir, webhook, webhook_method, webhook_token, blocks, public, environment, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $14, $11, $11) RETURNING id",
        )
        .bind(uid)
        .bind(owner)
        .bind(&s.name)
        .bind(&s.command)
        .bind(serde_json::to_string(&s.env).expect("string map serializes"))
        .bind(serde_json::to_string(&s.secret_env).expect("string map serializes"))
        .bind(&s.workdir)
        .bind(s.webhook.map(|w| w.as_str()))
        .bind(s.webhook_method.as_str())
        .bind(&s.webhook_token)
        .bind(now)
        .bind(blocks_text(&s.blocks))
        .bind(bool_flag(s.public))
        .bind(&s.environment);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    pub async fn update_stack(&self, id: i64, s: &NewStack, now: EpochMs) -> StoreResult<()> {
        sqlx::query(
            "UPDATE stacks SET name = $2, command = $3, env = $4, secret_env = $5, workdir = $6, webhook = $7, webhook_method = $8, webhook_token = $9, updated_at = $10, blocks = $11, public = $12, environment = $13 WHERE id = $1",
        )
        .bind(id)
        .bind(&s.name)
        .bind(&s.command)
        .bind(serde_json::to_string(&s.env).expect("string map serializes"))
        .bind(serde_json::to_string(&s.secret_env).expect("string map serializes"))
        .bind(&s.workdir)
        .bind(s.webhook.map(|w| w.as_str()))
        .bind(s.webhook_method.as_str())
        .bind(&s.webhook_token)
        .bind(now)
        .bind(blocks_text(&s.blocks))
        .bind(bool_flag(s.public))
        .bind(&s.environment)
        .execute(&self.write)
        .await
        .wrote()?;
        self.changed(Change::Stack(id));
        Ok(())
    }

    /// A stack by id, whoever owns it (the service checks ownership).
    pub async fn stack(&self, id: i64) -> StoreResult<Option<Stack>> {
        let load = self.one(COLUMNS, "stacks WHERE id = $1", id, stack_from_row);
        self.cache.stacks.get_or_load(id, load).await
    }

    /// Several stacks at once, by id.
    pub async fn stacks_by_ids(&self, ids: &[i64]) -> StoreResult<HashMap<i64, Stack>> {
        let mut unique: Vec<i64> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let list = (1..=unique.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!("SELECT {COLUMNS} FROM stacks WHERE id IN ({list})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &unique {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(&self.read).await.db()?;
        rows.iter().map(|r| stack_from_row(r).map(|s| (s.id, s))).collect()
    }

    pub async fn stack_by_uid(&self, uid: &str) -> StoreResult<Option<Stack>> {
        let query = (COLUMNS, "stacks WHERE uid = $1", stack_from_row as FromRow<Stack>);
        self.one_by_uid(&self.cache.stack_uids, uid, |id| self.stack(id), query).await
    }

    pub async fn stack_by_name(&self, owner: UserId, name: &str) -> StoreResult<Option<Stack>> {
        self.one_by_name(COLUMNS, "stacks", owner, name, stack_from_row).await
    }

    /// One sealed secret value (of the oldest stack that has any), if any is stored: the server
    /// checks its key against it at start.
    pub async fn any_sealed_secret(&self) -> StoreResult<Option<StoredSample>> {
        let row =
            sqlx::query("SELECT uid, secret_env FROM stacks WHERE secret_env <> '{}' ORDER BY id LIMIT 1")
                .fetch_optional(&self.read)
                .await
                .db()?;
        let Some(row) = row else { return Ok(None) };
        let stack_uid = get_string(&row, "uid")?;
        let env: SealedEnv = get_json(&row, "secret_env")?;
        Ok(env.iter().next().map(|(name, sealed)| StoredSample {
            stack_uid,
            name: name.clone(),
            sealed: sealed.clone(),
        }))
    }

    /// Deletes a stack that no job uses, with its hook job (and that job's runs) and its v3
    /// actions; `Ok(false)`, deleting nothing, while a job uses it.
    pub async fn delete_stack_if_unused(&self, id: i64) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            // A job being created on the stack holds a key-share lock on its row: wait for it
            // (and be counted below), or make it wait and fail on the missing stack.
            sqlx::query("SELECT id FROM stacks WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
        }
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE stack_id = $1 AND kind <> 'hook'")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .db()?;
        if get_i64(&row, "n")? > 0 {
            return Ok(false);
        }
        let hook_jobs: Vec<i64> = sqlx::query("SELECT id FROM jobs WHERE stack_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .db()?
            .iter()
            .map(|r| get_i64(r, "id"))
            .collect::<StoreResult<_>>()?;
        for sql in [
            "DELETE FROM jobs WHERE stack_id = $1",
            "DELETE FROM actions WHERE stack_id = $1",
            "DELETE FROM stacks WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await.wrote()?;
        }
        tx.commit().await.wrote()?;
        if !hook_jobs.is_empty() {
            self.changed(Change::Jobs(hook_jobs));
        }
        self.changed(Change::Stack(id));
        Ok(true)
    }

    pub async fn list_stacks(&self, owner: UserId, limit: i64, offset: i64) -> StoreResult<Page<Stack>> {
        let listing = Listing { columns: COLUMNS, from_where: "stacks WHERE owner = $1", order: "id" };
        self.page(listing, owner, (limit, offset), stack_from_row).await
    }
}

/// Pipelines: block state, public stacks, a stack's last activity.
impl Store {
    /// A stack's blocks as stored now (not cached: a run starts from the latest state).
    pub async fn stack_blocks_now(&self, id: i64) -> StoreResult<Option<Vec<Block>>> {
        self.json_cell("SELECT blocks FROM stacks WHERE id = $1", id, "blocks").await
    }

    /// An optional JSON column of the row `id` (`None`: no such row, or NULL).
    async fn json_cell<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        id: i64,
        col: &str,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await.db()?;
        row.map(|r| opt_json(&r, col)).transpose().map(Option::flatten)
    }

    /// Keeps the state of the blocks a run's steps succeeded in, by block id; blocks replaced
    /// meanwhile (a `PUT` with new blocks) keep theirs. The stack's `updated_at` stays.
    pub async fn set_block_states(&self, id: i64, states: &[(i64, BlockState)]) -> StoreResult<()> {
        if states.is_empty() {
            return Ok(());
        }
        // Read and written in one transaction (the row locked on PostgreSQL; SQLite's write
        // lock is taken up front): two runs of the stack ending together keep both states.
        let mut tx = self.begin_write().await?;
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT blocks FROM stacks WHERE id = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut *tx).await.db()?;
        let Some(mut blocks) = row.map(|r| opt_json::<Vec<Block>>(&r, "blocks")).transpose()?.flatten()
        else {
            return Ok(());
        };
        for (block_id, state) in states {
            if let Some(b) = blocks.iter_mut().find(|b| b.id == *block_id) {
                b.state = state.clone();
            }
        }
        sqlx::query("UPDATE stacks SET blocks = $2 WHERE id = $1")
            .bind(id)
            .bind(blocks_text(&Some(blocks)))
            .execute(&mut *tx)
            .await
            .wrote()?;
        tx.commit().await.wrote()?;
        self.changed(Change::Stack(id));
        Ok(())
    }

    /// Public stacks, and the viewer's own (`None`: public ones only), by id.
    pub async fn list_visible_stacks(
        &self,
        viewer: Option<UserId>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Page<Stack>> {
        let listing =
            Listing { columns: COLUMNS, from_where: "stacks WHERE public = 1 OR owner = $1", order: "id" };
        self.page(listing, viewer.unwrap_or(-1), (limit, offset), stack_from_row).await
    }

    /// A pipeline run's steps (JSON), written as the run ends.
    pub async fn set_run_steps(&self, run_id: i64, steps: &serde_json::Value) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET steps = $2 WHERE id = $1")
            .bind(run_id)
            .bind(steps.to_string())
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(())
    }

    /// When the stack last ran or acted: its newest run's creation or action's start.
    ///
    /// Each job's newest run is its highest id, one step back along `runs_by_job`; a
    /// `MAX(created_at)` over the stack's runs read every run of every job in it
    /// (`created_at` has no index), once per v3 stack answered.
    pub async fn stack_last_activity(&self, id: i64) -> StoreResult<Option<EpochMs>> {
        let row = sqlx::query(
            "SELECT (SELECT MAX(newest.created_at) FROM (SELECT (SELECT r.created_at FROM runs r \
                     WHERE r.job_id = j.id ORDER BY r.id DESC LIMIT 1) AS created_at FROM jobs j WHERE j.stack_id = $1) newest) AS run_at, \
                    (SELECT MAX(started_at) FROM actions WHERE stack_id = $1) AS action_at",
        )
        .bind(id)
        .fetch_one(&self.read)
        .await
        .db()?;
        let (run_at, action_at) = (get_opt_i64(&row, "run_at")?, get_opt_i64(&row, "action_at")?);
        Ok(run_at.max(action_at))
    }
}

/// A nullable JSON text column.
pub(super) fn opt_json<T: DeserializeOwned>(r: &AnyRow, col: &str) -> StoreResult<Option<T>> {
    get_opt_string(r, col)?
        .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}"))))
        .transpose()
}

fn stack_from_row(r: &AnyRow) -> StoreResult<Stack> {
    Ok(Stack {
        id: get_i64(r, "id")?,
        uid: get_string(r, "uid")?,
        owner: get_i64(r, "owner")?,
        name: get_string(r, "name")?,
        command: get_string(r, "command")?,
        env: get_json(r, "env")?,
        secret_env: get_json(r, "secret_env")?,
        workdir: get_opt_string(r, "workdir")?,
        webhook: get_opt_string(r, "webhook")?.as_deref().and_then(HookAccess::parse),
        webhook_method: get_enum(r, "webhook_method", HookMethod::parse)?,
        webhook_token: get_opt_string(r, "webhook_token")?,
        blocks: opt_json(r, "blocks")?,
        public: get_bool(r, "public")?,
        environment: get_opt_string(r, "environment")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}
