//! Job health: what a run's end records on its job (last run, last success, last failure, a
//! skipped slot), the watcher's incidents (a missed slot, a stuck run), each opened and
//! closed by a compare-and-swap so that it is announced once whatever the nodes, and the
//! per-job metrics.

use super::cache::Change;
use super::retention::PruneLock;
use super::rows::{JOB_COLUMNS, job_from_row};
use super::{SqlxResultExt, Store, StoreResult, get_i64};
use crate::domain::{DEFAULT_GRACE_S, EpochMs, Health};

/// The advisory lock key of the watcher (one node watches at a time): "cronstac" + 1.
const WATCH_LOCK_KEY: i64 = 0x6372_6f6e_7374_6164;

/// The job's last-run columns after a run ended: the SQL expressions of the run's id, when it
/// ended and its outcome. A run that ended before the one recorded (overlapping runs) does not
/// replace it.
pub(super) fn run_end_set(run: &str, at: &str, status: &str) -> String {
    let newer = format!("last_run_finished_at IS NULL OR last_run_finished_at <= {at}");
    format!(
        "last_run_id = CASE WHEN {newer} THEN {run} ELSE last_run_id END, \
         last_run_status = CASE WHEN {newer} THEN {status} ELSE last_run_status END, \
         last_run_finished_at = CASE WHEN {newer} THEN {at} ELSE last_run_finished_at END, \
         last_success_at = CASE WHEN {status} = 'succeeded' AND (last_success_at IS NULL OR last_success_at < {at}) THEN {at} ELSE last_success_at END, \
         last_failure_at = CASE WHEN {status} IN ('failed', 'timed_out', 'killed', 'lost') AND (last_failure_at IS NULL OR last_failure_at < {at}) THEN {at} ELSE last_failure_at END"
    )
}

/// The grace of a job row in milliseconds, in SQL.
fn grace_sql(table: &str) -> String {
    format!("COALESCE({table}.grace_s, {DEFAULT_GRACE_S}) * 1000")
}

/// A skipped slot opens a missed incident (or joins the one open): `$1` job, `$2` slot.
pub(super) const SKIPPED_SLOT: &str = "UPDATE jobs SET missed_slot = COALESCE(missed_slot, $2) WHERE id = $1";

/// An incident the watcher found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    /// A slot passed unrun or late: `slot` is the first one.
    Missed { job_id: i64, slot: EpochMs },
    /// A run going longer than its job's `max_duration_s`.
    Stuck { job_id: i64, run_id: i64 },
}

/// One job's series for `/metrics`.
#[derive(Debug, Clone)]
pub struct JobHealthRow {
    pub id: i64,
    pub name: String,
    pub health: Health,
    pub last_success_at: Option<EpochMs>,
    pub last_failure_at: Option<EpochMs>,
}

/// The watcher's looks for queued and running runs read the few in `runs_active`, never the
/// whole history: `status IN ('queued', 'running')` is that partial index's own condition,
/// which SQLite needs spelled out to use it (it does not infer it from `status = 'queued'`;
/// without it, it went through every run of `runs` in job order: 25–43 s a look with
/// 10,000,000 runs, bench row `history`).
fn queued_past_grace() -> String {
    format!(
        "SELECT r.job_id AS id, CAST(MIN(r.scheduled_for) AS BIGINT) AS slot FROM runs r JOIN jobs j ON j.id = r.job_id \
         WHERE r.status IN ('queued', 'running') AND r.status = 'queued' AND r.trigger_kind = 'schedule' \
         AND j.missed_slot IS NULL AND COALESCE(r.due_at, r.scheduled_for) + {} < $1 GROUP BY r.job_id",
        grace_sql("j")
    )
}

/// Jobs whose missed incident cleared: a later scheduled slot started within its grace. The
/// runs of the slots after the missed one come from `runs_one_per_slot` (job, slot), whose
/// condition `trigger_kind IN ('schedule', 'backfill')` is spelled out for SQLite (see
/// [`queued_past_grace`]); without it, it walked every run of each such job: 14–40 s a look
/// with 507 open incidents among 10,000,000 runs (bench row `history`), every few seconds.
fn slots_started_after_missed() -> String {
    format!(
        "SELECT j.id, j.missed_slot FROM jobs j WHERE (j.missed_slot IS NOT NULL OR j.stuck_run IS NOT NULL) \
         AND j.missed_slot IS NOT NULL AND j.missed_announced = 1 AND EXISTS (SELECT 1 FROM runs r \
         WHERE r.job_id = j.id AND r.trigger_kind IN ('schedule', 'backfill') AND r.trigger_kind = 'schedule' \
         AND r.scheduled_for > j.missed_slot \
         AND r.started_at IS NOT NULL AND r.started_at <= COALESCE(r.due_at, r.scheduled_for) + {})",
        grace_sql("j")
    )
}

/// Runs past their job's `max_duration_s` on jobs with no stuck incident (see
/// [`queued_past_grace`] for the first condition).
const STUCK_RUNS: &str = "SELECT CAST(MIN(r.id) AS BIGINT) AS run_id, r.job_id FROM runs r JOIN jobs j ON j.id = r.job_id \
     WHERE r.status IN ('queued', 'running') AND r.status = 'running' AND j.max_duration_s IS NOT NULL \
     AND j.stuck_run IS NULL AND r.started_at + j.max_duration_s * 1000 < $1 GROUP BY r.job_id";

impl Store {
    /// Records runs the sweep marked lost (at `at`) as their jobs' last runs, in one statement.
    pub(super) async fn record_lost_runs(&self, lost: &[(i64, i64)], at: EpochMs) -> StoreResult<()> {
        for chunk in lost.chunks(1000) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE jobs SET {} FROM (SELECT column1 AS id, column2 AS run FROM (VALUES {values}) AS t) AS v \
                 WHERE jobs.id = v.id",
                run_end_set("v.run", "$1", "'lost'")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at);
            for (job_id, run_id) in chunk {
                q = q.bind(*job_id).bind(*run_id);
            }
            q.execute(&self.write).await.wrote()?;
        }
        self.changed(Change::Jobs(lost.iter().map(|(job, _)| *job).collect()));
        Ok(())
    }

    /// Takes the watcher's lock, or `None` when another node holds it (SQLite: always).
    pub async fn try_watch_lock(&self) -> StoreResult<Option<PruneLock>> {
        self.try_advisory_lock(WATCH_LOCK_KEY).await
    }

    /// Opens a missed incident on every enabled job whose next slot is past its grace
    /// without having been claimed (the scheduler is behind, or the database was away), and
    /// on every job with a scheduled run claimed but still not started past its grace (the
    /// concurrency queue is full, or a `queue` overlap waits). Answers how many opened.
    pub async fn mark_late_slots(&self, now: EpochMs) -> StoreResult<u64> {
        // The jitter may put a slot's due time up to `jitter_s` after it.
        let sql = format!(
            "UPDATE jobs SET missed_slot = next_run_at WHERE next_run_at IS NOT NULL AND next_run_at < $1 \
             AND enabled = 1 AND missed_slot IS NULL AND kind <> 'hook' \
             AND next_run_at + jitter_s * 1000 + {} < $1 RETURNING id",
            grace_sql("jobs")
        );
        let unclaimed =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&self.write).await.wrote()?;
        let mut ids = unclaimed.iter().map(|r| get_i64(r, "id")).collect::<StoreResult<Vec<_>>>()?;
        let queued = sqlx::query(sqlx::AssertSqlSafe(queued_past_grace()))
            .bind(now)
            .fetch_all(&self.read)
            .await
            .db()?;
        for r in queued {
            let (id, slot) = (get_i64(&r, "id")?, get_i64(&r, "slot")?);
            let done = sqlx::query(SKIPPED_SLOT).bind(id).bind(slot).execute(&self.write).await.wrote()?;
            if done.rows_affected() > 0 {
                ids.push(id);
            }
        }
        let opened = ids.len() as u64;
        if !ids.is_empty() {
            self.changed(Change::Jobs(ids));
        }
        Ok(opened)
    }

    /// The incidents to announce: missed incidents not yet announced, and runs going longer
    /// than their job's `max_duration_s` on jobs with no stuck incident open.
    pub async fn unannounced_incidents(&self, now: EpochMs) -> StoreResult<Vec<Incident>> {
        let mut found = Vec::new();
        let rows = sqlx::query(
            "SELECT id, missed_slot FROM jobs WHERE (missed_slot IS NOT NULL OR stuck_run IS NOT NULL) \
             AND missed_slot IS NOT NULL AND missed_announced = 0",
        )
        .fetch_all(&self.read)
        .await
        .db()?;
        for r in rows {
            found.push(Incident::Missed { job_id: get_i64(&r, "id")?, slot: get_i64(&r, "missed_slot")? });
        }
        let rows = sqlx::query(STUCK_RUNS).bind(now).fetch_all(&self.read).await.db()?;
        for r in rows {
            found.push(Incident::Stuck { job_id: get_i64(&r, "job_id")?, run_id: get_i64(&r, "run_id")? });
        }
        Ok(found)
    }

    /// The open incidents that cleared: a missed incident once a later slot started within
    /// its grace; a stuck one once its run ended (or is no longer past the limit).
    pub async fn cleared_incidents(&self, now: EpochMs) -> StoreResult<Vec<Incident>> {
        let mut found = Vec::new();
        for r in
            sqlx::query(sqlx::AssertSqlSafe(slots_started_after_missed())).fetch_all(&self.read).await.db()?
        {
            found.push(Incident::Missed { job_id: get_i64(&r, "id")?, slot: get_i64(&r, "missed_slot")? });
        }
        let rows = sqlx::query(
            "SELECT j.id, j.stuck_run FROM jobs j WHERE (j.missed_slot IS NOT NULL OR j.stuck_run IS NOT NULL) \
             AND j.stuck_run IS NOT NULL AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = j.stuck_run \
             AND r.status = 'running' AND j.max_duration_s IS NOT NULL AND r.started_at + j.max_duration_s * 1000 < $1)",
        )
        .bind(now)
        .fetch_all(&self.read)
        .await
        .db()?;
        for r in rows {
            found.push(Incident::Stuck { job_id: get_i64(&r, "id")?, run_id: get_i64(&r, "stuck_run")? });
        }
        Ok(found)
    }

    /// Marks an incident announced (a missed one) or opens it (a stuck one), if it is still as
    /// found: `true` means this caller announces it, and no other ever will.
    pub async fn announce_incident(&self, incident: Incident) -> StoreResult<bool> {
        let (sql, job_id, value) = match incident {
            Incident::Missed { job_id, slot } => (
                "UPDATE jobs SET missed_announced = 1 WHERE id = $1 AND missed_slot = $2 AND missed_announced = 0",
                job_id,
                slot,
            ),
            Incident::Stuck { job_id, run_id } => {
                ("UPDATE jobs SET stuck_run = $2 WHERE id = $1 AND stuck_run IS NULL", job_id, run_id)
            }
        };
        self.incident_cas(sql, job_id, value).await
    }

    /// Closes an incident if it is still open as found: `true` means this caller announces
    /// its recovery.
    pub async fn close_incident(&self, incident: Incident) -> StoreResult<bool> {
        let (sql, job_id, value) = match incident {
            Incident::Missed { job_id, slot } => (
                "UPDATE jobs SET missed_slot = NULL, missed_announced = 0 WHERE id = $1 AND missed_slot = $2",
                job_id,
                slot,
            ),
            Incident::Stuck { job_id, run_id } => {
                ("UPDATE jobs SET stuck_run = NULL WHERE id = $1 AND stuck_run = $2", job_id, run_id)
            }
        };
        self.incident_cas(sql, job_id, value).await
    }

    async fn incident_cas(&self, sql: &'static str, job_id: i64, value: i64) -> StoreResult<bool> {
        let done = sqlx::query(sql).bind(job_id).bind(value).execute(&self.write).await.wrote()?;
        let won = done.rows_affected() == 1;
        if won {
            self.changed(Change::Jobs(vec![job_id]));
        }
        Ok(won)
    }

    /// Every listed job's health and last success and failure, for `/metrics`.
    pub async fn job_health_rows(&self) -> StoreResult<Vec<JobHealthRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE kind <> 'hook' ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.read).await.db()?;
        rows.iter()
            .map(|r| {
                let job = job_from_row(r)?;
                Ok(JobHealthRow {
                    id: job.id,
                    name: job.display_name(),
                    health: job.health(),
                    last_success_at: job.track.last_success_at,
                    last_failure_at: job.track.last_failure_at,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watcher's looks for queued and running runs go through `runs_active` on SQLite.
    #[tokio::test]
    async fn the_watchers_looks_for_unfinished_runs_read_runs_active() {
        let (_dir, store) = crate::store::testing::scratch_sqlite().await;
        for sql in [queued_past_grace(), STUCK_RUNS.to_string()] {
            let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).bind(0_i64);
            let plan = crate::store::testing::plan(&store, explain).await;
            assert!(plan.iter().any(|d| d.contains("SEARCH r USING INDEX runs_active")), "{sql}: {plan:#?}");
        }
    }

    /// The look for cleared missed incidents reads only the slots after the missed one.
    #[tokio::test]
    async fn the_look_for_cleared_missed_incidents_reads_the_slots_after_the_missed_one() {
        let (_dir, store) = crate::store::testing::scratch_sqlite().await;
        let sql = slots_started_after_missed();
        let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        let plan = crate::store::testing::plan(&store, explain).await;
        let slots = "USING INDEX runs_one_per_slot (job_id=? AND scheduled_for>?)";
        assert!(plan.iter().any(|d| d.contains(slots)), "{sql}: {plan:#?}");
    }
}
