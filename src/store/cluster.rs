//! Cluster bookkeeping: node heartbeats, change notifications, the shared rate-limit windows.

use super::{Backend, SqlxResultExt, Store, StoreResult, get_i64, get_string};
use crate::domain::{EpochMs, UserId};

/// The channel on which nodes tell each other that a job changed (payload: the job id).
pub const JOBS_CHANNEL: &str = "cronstack_jobs";

/// The channel on which a node asks the others to kill a run (payload: the run id).
pub const KILL_CHANNEL: &str = "cronstack_kill";

#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub id: String,
    pub address: String,
    pub started_at: EpochMs,
    pub last_seen: EpochMs,
    /// Of one user's runs: how busy a node is with others' work is not theirs to know.
    pub running_runs: i64,
}

impl Store {
    /// Records that this node is alive.
    pub async fn heartbeat(
        &self,
        id: &str,
        address: &str,
        started_at: EpochMs,
        now: EpochMs,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO nodes (id, address, started_at, last_seen) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET last_seen = $4, address = $2",
        )
        .bind(id)
        .bind(address)
        .bind(started_at)
        .bind(now)
        .execute(&self.write)
        .await
        .wrote()?;
        Ok(())
    }

    /// Nodes seen since `since`, with how many of `owner`'s runs each is running.
    pub async fn nodes(&self, since: EpochMs, owner: UserId) -> StoreResult<Vec<NodeRecord>> {
        let rows = sqlx::query(NODES).bind(since).bind(owner).fetch_all(&self.read).await.db()?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    id: get_string(r, "id")?,
                    address: get_string(r, "address")?,
                    started_at: get_i64(r, "started_at")?,
                    last_seen: get_i64(r, "last_seen")?,
                    running_runs: get_i64(r, "running")?,
                })
            })
            .collect()
    }

    /// The ids of the nodes seen since `since` (the live set of `engine::preference`).
    pub async fn live_node_ids(&self, since: EpochMs) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM nodes WHERE last_seen >= $1")
            .bind(since)
            .fetch_all(&self.read)
            .await
            .db()?;
        rows.iter().map(|r| get_string(r, "id")).collect()
    }

    /// Forgets nodes not seen since `before`.
    pub async fn prune_nodes(&self, before: EpochMs) -> StoreResult<()> {
        sqlx::query("DELETE FROM nodes WHERE last_seen < $1")
            .bind(before)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(())
    }

    /// Tells the other nodes that a job changed (PostgreSQL NOTIFY; nothing to do on SQLite,
    /// where one node owns the database).
    pub async fn notify_job_changed(&self, job_id: i64) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(JOBS_CHANNEL)
                .bind(job_id.to_string())
                .execute(&self.write)
                .await
                .wrote()?;
        }
        Ok(())
    }

    /// Asks every node to kill the run (PostgreSQL NOTIFY; on SQLite this node holds them all).
    pub async fn notify_kill(&self, run_id: i64) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(KILL_CHANNEL)
                .bind(run_id.to_string())
                .execute(&self.write)
                .await
                .db()?;
        }
        Ok(())
    }

    /// Counts `n` hits in `key`'s hourly window, shared by all nodes; returns the hits in the
    /// window (these `n` included, even past the limit) and the window's start.
    pub async fn hit_rate_window(
        &self,
        key: &str,
        n: i64,
        now: EpochMs,
        window_ms: EpochMs,
    ) -> StoreResult<(i64, EpochMs)> {
        let q = sqlx::query(
            "INSERT INTO rate_windows (key, window_start, hits) VALUES ($1, $2, $4) \
             ON CONFLICT (key) DO UPDATE SET \
               hits = CASE WHEN rate_windows.window_start <= $2 - $3 THEN $4 ELSE rate_windows.hits + $4 END, \
               window_start = CASE WHEN rate_windows.window_start <= $2 - $3 THEN $2 ELSE rate_windows.window_start END \
             RETURNING hits, window_start",
        )
        .bind(key)
        .bind(now)
        .bind(window_ms)
        .bind(n);
        let row = self.write_returning(q).await?;
        Ok((get_i64(&row, "hits")?, get_i64(&row, "window_start")?))
    }

    /// The database URL, for a dedicated PostgreSQL listener connection.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Nodes seen since `$1`, with how many of owner `$2`'s runs each is running: counted through
/// `runs_active`, whose condition SQLite needs spelled out (see `runs::lost_sweep`).
const NODES: &str = "SELECT n.id, n.address, n.started_at, n.last_seen, \
     CAST((SELECT COUNT(*) FROM runs r \
           WHERE r.node_id = n.id AND r.status IN ('queued', 'running') AND r.status = 'running' \
           AND r.owner = $2) AS BIGINT) AS running \
     FROM nodes n WHERE n.last_seen >= $1 ORDER BY n.started_at";

#[cfg(test)]
mod tests {
    /// A node's running runs are counted through `runs_active` on SQLite, not by reading the
    /// whole history once per node.
    #[tokio::test]
    async fn the_nodes_running_runs_are_counted_through_runs_active() {
        let (_dir, store) = crate::store::testing::scratch_sqlite().await;
        let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", super::NODES)));
        let plan = crate::store::testing::plan(&store, explain).await;
        assert!(plan.iter().any(|d| d.contains("SEARCH r USING INDEX runs_active")), "{plan:#?}");
    }
}
