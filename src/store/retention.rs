//! Retention: the reads and deletes of the pruner (`src/engine/pruner.rs` decides when).
//!
//! Every delete is one short statement over at most a batch of rows picked by primary key, so
//! it never holds a lock for long (on SQLite it queues on the one write connection like any
//! other write, between the scheduler's claims). Unfinished runs and actions and undelivered
//! deliveries are never deleted; monitors' pings go by age alone.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::rows::Params;
use super::{Backend, SqlxResultExt, Store, StoreResult, get_i64, get_opt_i64};
use crate::domain::{EpochMs, RunStatus};

/// The key of the PostgreSQL advisory lock held by the node that prunes (any constant of
/// ours; "cronprun" in ASCII).
const PRUNE_LOCK_KEY: i64 = 0x6372_6f6e_7072_756e;

/// The final outcomes other than `succeeded`: what `keep_failed` counts.
const OTHER_FINAL: &str = "'failed', 'timed_out', 'killed', 'lost', 'skipped'";

/// Every status but `succeeded`, quoted, from [`RunStatus::ALL`] (a status added there is
/// never counted as succeeded).
fn not_succeeded() -> String {
    RunStatus::ALL
        .iter()
        .filter(|s| **s != RunStatus::Succeeded)
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many of the job `job`'s succeeded runs are beyond `keep` (SQL, both backends): its kept
/// count of runs (migration 0018) less its other runs, counted in `runs_by_job_status`, less
/// `keep`. Read in the statement that picks them, so from the same snapshot as the runs.
fn succeeded_beyond(job: &str, keep: &str, greatest: &str) -> String {
    format!(
        "{greatest}(0, COALESCE((SELECT c.runs FROM job_run_counts c WHERE c.job_id = {job}), 0) \
         - (SELECT COUNT(*) FROM runs o WHERE o.job_id = {job} AND o.status IN ({})) - {keep})",
        not_succeeded()
    )
}

/// How many of the job `job`'s other finished runs (`OTHER_FINAL`) are beyond `keep` (SQL,
/// both backends): the `LIMIT` of the statement that reads them, 0 for a job within its limit,
/// so that it is not read and sorted at every pass (bench row `history`: 500 failed runs kept
/// of each of 1,000 jobs, two thirds of a full sweep's reads).
fn others_beyond(job: &str, keep: &str, greatest: &str) -> String {
    format!(
        "{greatest}(0, (SELECT COUNT(*) FROM runs o WHERE o.job_id = {job} AND o.status IN ({OTHER_FINAL})) \
         - {keep})"
    )
}

/// A table whose old rows go by age, and how its rows are told old and finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aged {
    /// Finished runs (with their logs), by the time they ended.
    Runs,
    /// Finished v3 actions, by the time they finished.
    Actions,
    /// Delivered or failed webhook deliveries, by their last attempt.
    Deliveries,
    /// Heartbeat monitors' pings, by when they came (besides each monitor's `keep_pings`
    /// newest, which the monitor watcher keeps to): a monitor's history lasts as long as runs.
    Pings,
}

impl Aged {
    pub const ALL: [Aged; 4] = [Aged::Runs, Aged::Actions, Aged::Deliveries, Aged::Pings];

    pub fn table(self) -> &'static str {
        match self {
            Aged::Runs => "runs",
            Aged::Actions => "actions",
            Aged::Deliveries => "webhook_deliveries",
            Aged::Pings => "monitor_pings",
        }
    }

    /// When a row was created: rows are in id order of it (give or take the clocks of the
    /// nodes), so the scan stops at the first window that reaches the cut-off.
    fn created(self) -> &'static str {
        match self {
            Aged::Runs | Aged::Deliveries | Aged::Pings => "created_at",
            Aged::Actions => "started_at",
        }
    }

    /// What the age scan reads of a row (never a run's log).
    fn columns(self) -> &'static str {
        match self {
            Aged::Runs => "id, created_at, status, finished_at",
            Aged::Actions => "id, started_at, finished_at",
            Aged::Deliveries => "id, created_at, status, updated_at",
            Aged::Pings => "id, created_at",
        }
    }

    /// Rows that may go: finished, and finished before `$3`. Never later than `created`.
    fn deletable(self) -> &'static str {
        match self {
            Aged::Runs => "status NOT IN ('queued', 'running') AND COALESCE(finished_at, created_at) < $3",
            Aged::Actions => "finished_at IS NOT NULL AND finished_at < $3",
            Aged::Deliveries => "status IN ('delivered', 'failed') AND updated_at < $3",
            Aged::Pings => "created_at < $3",
        }
    }
}

/// One window of an age scan: the rows with ids in `(after, last]`.
#[derive(Debug, Clone, Copy)]
pub struct AgeWindow {
    pub after: i64,
    pub last: i64,
    /// Whether every row of the window was created before the cut-off (then the next window
    /// may hold old rows too).
    pub all_old: bool,
    /// How many of its rows may go.
    pub deletable: i64,
}

/// How many finished runs a job keeps, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub succeeded: i64,
    pub failed: i64,
}

/// The right to prune. On PostgreSQL a session-level advisory lock, held by a connection of
/// its own (outside the pools) for as long as this lives: the node holding it prunes, the
/// others skip their passes; when the node dies or this is dropped, the connection closes and
/// the lock goes with it, to the next node that asks. SQLite has one node: nothing to hold.
pub struct PruneLock {
    conn: Option<sqlx::AnyConnection>,
}

impl PruneLock {
    /// Lets the lock go (closing its connection cleanly).
    pub async fn release(self) {
        if let Some(conn) = self.conn {
            let _ = sqlx::Connection::close(conn).await;
        }
    }
}

impl Store {
    /// Takes the pruning lock, or `None` when another node holds it.
    pub async fn try_prune_lock(&self) -> StoreResult<Option<PruneLock>> {
        self.try_advisory_lock(PRUNE_LOCK_KEY).await
    }

    /// Takes the PostgreSQL advisory lock `key` on a connection of its own, held until the
    /// answer is released or dropped; `None` when another node holds it. SQLite's single
    /// node always has it.
    pub(super) async fn try_advisory_lock(&self, key: i64) -> StoreResult<Option<PruneLock>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(PruneLock { conn: None }));
        }
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url).await.db()?;
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(super::pg_session_bounds())).await.db()?;
        let row =
            sqlx::query("SELECT CAST(CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END AS BIGINT) AS got")
                .bind(key)
                .fetch_one(&mut conn)
                .await
                .db()?;
        if get_i64(&row, "got")? == 1 {
            return Ok(Some(PruneLock { conn: Some(conn) }));
        }
        let _ = sqlx::Connection::close(conn).await;
        Ok(None)
    }

    /// Runs a delete under the pruning lock: on its connection (PostgreSQL) or the write
    /// connection (SQLite).
    async fn prune_delete<'q>(
        &self,
        lock: &mut PruneLock,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> StoreResult<u64> {
        let done = match &mut lock.conn {
            Some(conn) => query.execute(conn).await,
            None => query.execute(&self.write).await,
        };
        Ok(done.db()?.rows_affected())
    }

    /// The highest run id so far (0 without runs).
    pub async fn last_run_id(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS n FROM runs")
            .fetch_one(&self.read)
            .await
            .db()?;
        get_i64(&row, "n")
    }

    /// The jobs that may have runs beyond their limits since the last look: those with runs
    /// after run `after` (a primary key range), with unfinished runs (they finish later), or
    /// changed by their owner since `changed_since` (their limits may be lower).
    pub async fn prune_candidates(&self, after: i64, changed_since: EpochMs) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT job_id AS id FROM runs WHERE id > $1 \
             UNION SELECT job_id AS id FROM runs WHERE status IN ('queued', 'running') \
             UNION SELECT id FROM jobs WHERE updated_at > $2",
        )
        .bind(after)
        .bind(changed_since)
        .fetch_all(&self.read)
        .await
        .db()?;
        ids(&rows)
    }

    /// Up to `limit` job ids after `after`, in order (a full sweep goes through every job).
    pub async fn job_ids_after(&self, after: i64, limit: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM jobs WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .db()?;
        ids(&rows)
    }

    /// Each of these jobs' limits: its own, else `default`. Left out: jobs gone, and jobs
    /// with no more runs (all of them, by the database's kept count) than the smaller of
    /// their limits, which can have none beyond either: a pass then reads the runs of the
    /// jobs near their limits only (10,000 jobs with a few runs each: 100 reads of 6 ms
    /// each pass, all finding nothing).
    pub async fn job_keeps(&self, jobs: &[i64], default: Keep) -> StoreResult<HashMap<i64, Keep>> {
        if jobs.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT j.id, j.keep_succeeded, j.keep_failed, COALESCE(c.runs, 0) AS runs \
             FROM jobs j LEFT JOIN job_run_counts c ON c.job_id = j.id WHERE j.id IN ({})",
            Params::new(self.backend).list(jobs.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in jobs {
            q = q.bind(*id);
        }
        let mut keeps = HashMap::with_capacity(jobs.len());
        for row in q.fetch_all(&self.read).await.db()? {
            let keep = Keep {
                succeeded: get_opt_i64(&row, "keep_succeeded")?.unwrap_or(default.succeeded),
                failed: get_opt_i64(&row, "keep_failed")?.unwrap_or(default.failed),
            };
            if get_i64(&row, "runs")? > keep.succeeded.min(keep.failed) {
                keeps.insert(get_i64(&row, "id")?, keep);
            }
        }
        Ok(keeps)
    }

    /// The finished runs of these jobs beyond their limits, newest kept: per job and kind at
    /// most `limit` ids, all in one statement. The succeeded runs beyond are the oldest, as
    /// many as the job's count says are too many (see [`succeeded_beyond`]): read from the
    /// job's oldest, they cost what goes, where skipping the `keep` newest cost `keep` index
    /// entries a job at every pass (bench row `history`, 9,500 kept: 10,000,000 entries a
    /// pass over 1,000 jobs). The others are few: counted, then read and sorted only for a job
    /// with some beyond (see [`others_beyond`]).
    pub async fn runs_beyond_keep(&self, keeps: &[(i64, Keep)], limit: i64) -> StoreResult<Vec<i64>> {
        if keeps.is_empty() {
            return Ok(Vec::new());
        }
        if self.backend == Backend::Postgres {
            return self.runs_beyond_keep_pg(keeps, limit).await;
        }
        let q = sqlx::query(sqlx::AssertSqlSafe(beyond_keep_sqlite(keeps.len())));
        ids(&bind_beyond_keep(q, keeps, limit).fetch_all(&self.read).await.db()?)
    }

    /// PostgreSQL: the same as one statement whose text never changes, the jobs and their
    /// limits passed as lists: PostgreSQL plans it once per connection, where the `UNION ALL`
    /// of 200 members with 600 parameters cost more to plan at every pass than to run
    /// (pg_stat_statements during bench/retention.py: 54 ms of planning to 33 ms of work).
    async fn runs_beyond_keep_pg(&self, keeps: &[(i64, Keep)], limit: i64) -> StoreResult<Vec<i64>> {
        let list = |f: &dyn Fn(&(i64, Keep)) -> i64| {
            keeps.iter().map(|k| f(k).to_string()).collect::<Vec<_>>().join(",")
        };
        let sql = format!(
            "SELECT r.id FROM (SELECT CAST(j AS BIGINT) AS job_id, CAST(s AS BIGINT) AS keep_s, \
             CAST(f AS BIGINT) AS keep_f FROM unnest(string_to_array($1, ','), string_to_array($2, ','), \
             string_to_array($3, ',')) AS k(j, s, f)) AS k CROSS JOIN LATERAL (\
             (SELECT id FROM runs WHERE job_id = k.job_id AND status = 'succeeded' \
             ORDER BY id LIMIT LEAST($4, {})) UNION ALL \
             (SELECT id FROM runs WHERE job_id = k.job_id AND status IN ({OTHER_FINAL}) \
             ORDER BY id DESC LIMIT LEAST($4, {}) OFFSET k.keep_f)) AS r",
            succeeded_beyond("k.job_id", "k.keep_s", "GREATEST"),
            others_beyond("k.job_id", "k.keep_f", "GREATEST")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(list(&|(id, _)| *id))
            .bind(list(&|(_, keep)| keep.succeeded))
            .bind(list(&|(_, keep)| keep.failed))
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .db()?;
        ids(&rows)
    }

    /// Deletes these runs (a batch), finished ones only.
    pub async fn delete_finished_runs(&self, lock: &mut PruneLock, ids: &[i64]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "DELETE FROM runs WHERE id IN ({}) AND status NOT IN ('queued', 'running')",
            Params::new(self.backend).list(ids.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(*id);
        }
        self.prune_delete(lock, q).await
    }

    /// The next window of `size` rows of `table` after id `after`, and how many of its rows
    /// may go; `None` past the last row.
    pub async fn age_window(
        &self,
        table: Aged,
        after: i64,
        size: i64,
        cutoff: EpochMs,
    ) -> StoreResult<Option<AgeWindow>> {
        let sql = format!(
            "SELECT CAST(MAX(id) AS BIGINT) AS last, CAST(MAX({created}) AS BIGINT) AS newest, \
             CAST(SUM(CASE WHEN {deletable} THEN 1 ELSE 0 END) AS BIGINT) AS old \
             FROM (SELECT {columns} FROM {table} WHERE id > $1 ORDER BY id LIMIT $2) AS w",
            created = table.created(),
            deletable = table.deletable(),
            columns = table.columns(),
            table = table.table()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(size)
            .bind(cutoff)
            .fetch_one(&self.read)
            .await
            .db()?;
        let Some(last) = get_opt_i64(&row, "last")? else { return Ok(None) };
        let newest = get_opt_i64(&row, "newest")?.unwrap_or(EpochMs::MAX);
        Ok(Some(AgeWindow {
            after,
            last,
            all_old: newest < cutoff,
            deletable: get_opt_i64(&row, "old")?.unwrap_or(0),
        }))
    }

    /// Deletes the rows of a window that ended before `cutoff`.
    pub async fn delete_aged(
        &self,
        lock: &mut PruneLock,
        table: Aged,
        window: AgeWindow,
        cutoff: EpochMs,
    ) -> StoreResult<u64> {
        let sql =
            format!("DELETE FROM {} WHERE id > $1 AND id <= $2 AND {}", table.table(), table.deletable());
        let q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(window.after).bind(window.last).bind(cutoff);
        self.prune_delete(lock, q).await
    }

    /// SQLite: gives up to `pages` free pages back to the file system while more than a
    /// quarter of the file is free (that much is left for the next inserts to reuse: a steady
    /// history frees and refills less than that between passes, and moving pages around for
    /// nothing would cost writes); answers how many more would go. PostgreSQL: autovacuum's
    /// job; answers 0.
    pub async fn reclaim_space(&self, pages: i64) -> StoreResult<i64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let count = |pragma: &'static str| async move {
            let row = sqlx::query(pragma).fetch_one(&self.write).await.db()?;
            row.try_get::<i64, _>(0).db()
        };
        let (free, total) = (count("PRAGMA freelist_count").await?, count("PRAGMA page_count").await?);
        // Giving back n pages leaves free − n of total − n: at most a quarter for n ≥ this.
        let excess = (4 * free - total + 2) / 3;
        if excess <= 0 {
            return Ok(0);
        }
        let n = excess.min(pages);
        // Each step of the statement frees one page: read them all.
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA incremental_vacuum({n})")))
            .fetch_all(&self.write)
            .await
            .db()?;
        Ok(excess - n)
    }

    /// PostgreSQL: vacuums `runs` (on the pruning lock's connection), so that the space of the
    /// runs pruned is reused whatever autovacuum is set to (it may be off, or wake up once a
    /// minute, when a busy history deletes hundreds of runs a second). A plain `VACUUM` takes
    /// no lock that reads or writes wait for; `SKIP_LOCKED`: none if autovacuum is at it.
    /// `jobs` too: every run rewrites its job's row twice (claim, end), and without a vacuum
    /// the dead versions slow every lookup of a job by id (measured with autovacuum off: 1.6 ms
    /// per run end's job update after three minutes of 500 runs a second). A table of jobs
    /// mostly idle costs little: the visibility map skips its pages.
    /// SQLite: nothing (`reclaim_space`).
    pub async fn vacuum_runs(&self, lock: &mut PruneLock) -> StoreResult<()> {
        if let Some(conn) = &mut lock.conn {
            sqlx::Executor::execute(conn, "VACUUM (SKIP_LOCKED) runs, jobs").await.db()?;
        }
        Ok(())
    }

    /// SQLite: a database created before retention has no incremental vacuum; it is turned
    /// on once, which takes a `VACUUM` of the whole file (logged: it may take a while).
    pub(super) async fn ensure_incremental_vacuum(&self) -> StoreResult<()> {
        let row = sqlx::query("PRAGMA auto_vacuum").fetch_one(&self.write).await.db()?;
        let mode: i64 = row.try_get(0).db()?;
        if mode == 2 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        tracing::info!("turning on SQLite's incremental vacuum (one VACUUM of the whole database)");
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&self.write).await.db()?;
        sqlx::query("VACUUM").execute(&self.write).await.db()?;
        tracing::info!(took_ms = started.elapsed().as_millis() as u64, "incremental vacuum on");
        Ok(())
    }
}

/// SQLite: the statement of [`Store::runs_beyond_keep`] for `jobs` jobs (its parameters:
/// [`bind_beyond_keep`]).
///
/// Both read `runs_by_job_status` alone. The succeeded runs walk it from the job's oldest,
/// as many as are beyond (see [`succeeded_beyond`]); the others are counted, and when some
/// are beyond (see [`others_beyond`]) read from one range per status and sorted (few rows):
/// `+id` keeps SQLite from walking `runs_by_job` for the order instead, which reads every run
/// of the job from the table to test its status.
fn beyond_keep_sqlite(jobs: usize) -> String {
    // Anonymous placeholders, as `Params` writes them on SQLite (why: see there), but a job's
    // id appears five times: bound once each, in order, by `bind_beyond_keep`.
    let succeeded = format!(
        "SELECT id FROM (SELECT id FROM runs WHERE job_id = ? AND status = 'succeeded' \
         ORDER BY id LIMIT MIN(?, {}))",
        succeeded_beyond("?", "?", "MAX")
    );
    let others = format!(
        "SELECT id FROM (SELECT id FROM runs WHERE job_id = ? AND status IN ({OTHER_FINAL}) \
         ORDER BY +id DESC LIMIT MIN(?, {}) OFFSET ?)",
        others_beyond("?", "?", "MAX")
    );
    (0..jobs)
        .flat_map(|j| [format!("{succeeded} AS k{}", 2 * j), format!("{others} AS k{}", 2 * j + 1)])
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Binds [`beyond_keep_sqlite`]'s parameters: per job, the succeeded member's (its job, the
/// limit, its job twice more for its counts, its keep), then the others' (its job, the limit,
/// its job again for its count, its keep twice: beyond it, and the offset).
fn bind_beyond_keep<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    keeps: &[(i64, Keep)],
    limit: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for (job_id, keep) in keeps {
        q = q.bind(*job_id).bind(limit).bind(*job_id).bind(*job_id).bind(keep.succeeded);
        q = q.bind(*job_id).bind(limit).bind(*job_id).bind(keep.failed).bind(keep.failed);
    }
    q
}

fn ids(rows: &[AnyRow]) -> StoreResult<Vec<i64>> {
    rows.iter().map(|r| get_i64(r, "id")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job's runs beyond its limits are found in `runs_by_job_status` alone, never by
    /// reading the job's runs from the table (`runs_by_job` then the row for its status): with
    /// 10,000 runs a job that cost a pass over 1,000 every-second jobs more than its second.
    /// Its count is one lookup by key, and its succeeded runs are walked in the index's order
    /// (from the oldest, no sort): only the other outcomes are sorted, after being counted.
    #[tokio::test]
    async fn runs_beyond_keep_read_the_job_and_status_index_only() {
        let (_dir, store) = crate::store::testing::scratch_sqlite().await;
        let q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", beyond_keep_sqlite(2))));
        let keep = Keep { succeeded: 100, failed: 100 };
        let q = bind_beyond_keep(q, &[(1, keep), (2, keep)], 1000);
        let plan = crate::store::testing::plan(&store, q).await;
        let searches: Vec<&String> = plan.iter().filter(|d| d.contains("runs")).collect();
        // Per job: its other runs counted (for each member), its succeeded ones walked, its
        // others read.
        assert_eq!(searches.len(), 8, "{plan:#?}");
        for d in searches {
            assert!(d.contains("COVERING INDEX runs_by_job_status (job_id=? AND status=?)"), "{plan:#?}");
        }
        let counts = plan.iter().filter(|d| *d == "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)").count();
        assert_eq!(counts, 2, "{plan:#?}");
        assert_eq!(plan.iter().filter(|d| d.contains("TEMP B-TREE")).count(), 2, "{plan:#?}");
    }
}
