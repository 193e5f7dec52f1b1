//! Runs and the claim that makes a scheduled slot fire at most once.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;

use super::cache::Change;
use super::jobs::{JOB_COLUMNS, job_from_row};
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreResult, get_bool, get_enum, get_i64, get_json,
    get_opt_i64, get_opt_string,
};
use crate::domain::{EpochMs, Job, JobStatus, Run, RunStatus, TriggerKind, UserId, bool_flag};

const COLUMNS: &str = "id, job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, started_at, finished_at, exit_code, signal, log_truncated, created_at";

#[derive(Debug, Clone)]
pub struct NewRun {
    pub job_id: i64,
    pub owner: UserId,
    pub trigger: TriggerKind,
    pub scheduled_for: EpochMs,
    pub attempt: i64,
    pub args: Vec<String>,
    pub status: RunStatus,
    pub node_id: Option<String>,
    pub lease_until: Option<EpochMs>,
}

/// One due slot to claim: advance `next_run_at` from `slot` to `next` (compare-and-swap) and
/// record a run for `fire` — or, for a job queued for deletion, delete it instead.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job_id: i64,
    /// The job's `next_run_at` as this node knows it (the compare in compare-and-swap).
    pub slot: EpochMs,
    /// The slot to run: usually `slot`; another one when catching up; `None` to skip.
    pub fire: Option<EpochMs>,
    pub next: Option<EpochMs>,
    /// One-time schedule: the job disables itself once this slot is claimed.
    pub disable: bool,
    pub node_id: String,
    pub lease_until: EpochMs,
}

#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// This node owns the slot: the run row is created, `queued`.
    Claimed { run_id: i64, job: Job },
    /// The job moved to its next slot without a run (a skipped missed slot, or a slot that
    /// had already fired).
    Advanced,
    /// The job was queued for deletion and is now deleted.
    Deleted { job: Job },
    /// Another node claimed the slot, or an API change moved the job first.
    Lost,
    /// The job's row is locked right now (another node's claim, or a status write): try
    /// again in a moment.
    Busy,
}

/// A run whose process started.
#[derive(Debug, Clone, Copy)]
pub struct RunStart {
    pub run_id: i64,
    pub job_id: i64,
    pub started_at: EpochMs,
}

#[derive(Debug, Clone)]
pub struct RunFinish {
    pub status: RunStatus,
    pub finished_at: EpochMs,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub log: String,
    pub log_truncated: bool,
}

impl Store {
    /// Claims due slots in one transaction of a few statements, whatever the batch size:
    /// each claim is a compare-and-swap of the job's `next_run_at` (all in one `UPDATE … FROM
    /// (VALUES …)`) plus the insert of its run under `UNIQUE(job_id, scheduled_for)` (one
    /// multi-row `INSERT … ON CONFLICT DO NOTHING`). Whatever the number of nodes racing,
    /// exactly one wins a slot; the others see `Lost`.
    pub async fn claim_slots(&self, claims: &[Claim], now: EpochMs) -> StoreResult<Vec<ClaimOutcome>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        // PostgreSQL: lock the rows first, in id order and skipping rows another node holds,
        // so claimers never wait for each other nor deadlock. SQLite has a single writer.
        let locked: HashSet<i64> = match self.backend {
            Backend::Sqlite => claims.iter().map(|c| c.job_id).collect(),
            Backend::Postgres => {
                let sql = format!(
                    "SELECT id FROM jobs WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED",
                    placeholders(1, claims.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for c in claims {
                    q = q.bind(c.job_id);
                }
                let rows = q.fetch_all(&mut *tx).await.db()?;
                rows.iter().map(|r| get_i64(r, "id")).collect::<StoreResult<_>>()?
            }
        };
        let mine: Vec<&Claim> = claims.iter().filter(|c| locked.contains(&c.job_id)).collect();

        // Advance every job still at the expected slot. A job queued for deletion keeps its
        // slot here and is deleted below instead.
        let mut moved: HashMap<i64, Job> = HashMap::new();
        if !mine.is_empty() {
            let returning =
                JOB_COLUMNS.split(", ").map(|c| format!("jobs.{c}")).collect::<Vec<_>>().join(", ");
            let values = (0..mine.len())
                .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE jobs SET \
                   next_run_at = CASE WHEN jobs.pending_delete = 1 THEN jobs.next_run_at ELSE v.nxt END, \
                   enabled = CASE WHEN jobs.pending_delete = 0 AND v.dis = 1 THEN 0 ELSE jobs.enabled END \
                 FROM (SELECT column1 AS id, column2 AS slot, column3 AS nxt, column4 AS dis FROM (VALUES {values}) AS t) AS v \
                 WHERE jobs.id = v.id AND jobs.next_run_at = v.slot RETURNING {returning}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in &mine {
                q = q.bind(c.job_id).bind(c.slot).bind(c.next).bind(bool_flag(c.disable));
            }
            for row in q.fetch_all(&mut *tx).await.db()? {
                let job = job_from_row(&row)?;
                moved.insert(job.id, job);
            }
        }

        // Kragle's deferred delete: the job goes at its slot instead of running.
        let doomed: Vec<i64> = moved.values().filter(|j| j.pending_delete).map(|j| j.id).collect();
        if !doomed.is_empty() {
            let sql = format!("DELETE FROM jobs WHERE id IN ({})", placeholders(1, doomed.len()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &doomed {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await.db()?;
        }

        // One run row per slot to fire; a slot that already has one is not fired again.
        let to_fire: Vec<(&Claim, EpochMs, &Job)> = mine
            .iter()
            .filter_map(|c| {
                let job = moved.get(&c.job_id).filter(|j| !j.pending_delete)?;
                Some((*c, c.fire?, job))
            })
            .collect();
        let mut run_ids: HashMap<i64, i64> = HashMap::new();
        if !to_fire.is_empty() {
            // Five parameters per row, then `now` once at the end.
            let now_param = 5 * to_fire.len() + 1;
            let values = (0..to_fire.len())
                .map(|i| {
                    let p = 5 * i;
                    format!(
                        "(${}, ${}, 'schedule', ${}, 1, '[]', 'queued', ${}, ${}, ${now_param})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at) \
                 VALUES {values} ON CONFLICT (job_id, scheduled_for) WHERE trigger_kind = 'schedule' DO NOTHING RETURNING id, job_id"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (c, fire, job) in &to_fire {
                q = q.bind(c.job_id).bind(job.owner).bind(*fire).bind(&c.node_id).bind(c.lease_until);
            }
            q = q.bind(now);
            for row in q.fetch_all(&mut *tx).await.db()? {
                run_ids.insert(get_i64(&row, "job_id")?, get_i64(&row, "id")?);
            }
        }
        tx.commit().await.db()?;
        if !moved.is_empty() {
            self.changed(Change::Jobs(moved.keys().copied().collect()));
        }

        Ok(claims
            .iter()
            .map(|c| {
                if !locked.contains(&c.job_id) {
                    return ClaimOutcome::Busy;
                }
                let Some(job) = moved.get(&c.job_id) else { return ClaimOutcome::Lost };
                if job.pending_delete {
                    return ClaimOutcome::Deleted { job: job.clone() };
                }
                match run_ids.get(&c.job_id) {
                    Some(run_id) => ClaimOutcome::Claimed { run_id: *run_id, job: job.clone() },
                    // Skipped by the missed-run policy, or the slot had already fired.
                    None => ClaimOutcome::Advanced,
                }
            })
            .collect())
    }

    /// Records a run that is not a scheduled slot (run now, retry, webhook) or a skipped slot.
    pub async fn insert_run(&self, r: &NewRun, now: EpochMs) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(r.job_id)
        .bind(r.owner)
        .bind(r.trigger.as_str())
        .bind(r.scheduled_for)
        .bind(r.attempt)
        .bind(serde_json::to_string(&r.args).expect("strings serialize"))
        .bind(r.status.as_str())
        .bind(&r.node_id)
        .bind(r.lease_until)
        .bind(now);
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// Marks the runs this node claimed but never started as lost (graceful shutdown).
    pub async fn abandon_queued_runs(&self, node_id: &str, now: EpochMs) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE runs SET status = 'lost', finished_at = $2, lease_until = NULL, log = 'the node shut down before the slot' \
             WHERE node_id = $1 AND status = 'queued'",
        )
        .bind(node_id)
        .bind(now)
        .execute(&self.write)
        .await
        .db()?;
        Ok(done.rows_affected())
    }

    /// Extends the lease on the runs this node holds, so other nodes do not take them for lost.
    pub async fn renew_leases(&self, node_id: &str, until: EpochMs) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runs SET lease_until = $2 WHERE node_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(node_id)
        .bind(until)
        .execute(&self.write)
        .await
        .db()?;
        Ok(())
    }

    /// These runs go `queued` → `running` and their jobs show "started", in one transaction
    /// however many (a released group is hundreds: one write instead of one each).
    pub async fn mark_runs_started(&self, starts: &[RunStart]) -> StoreResult<()> {
        if starts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in starts.chunks(1000) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE runs SET status = 'running', started_at = v.t \
                 FROM (SELECT column1 AS id, column2 AS t FROM (VALUES {values}) AS x) AS v WHERE runs.id = v.id"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                q = q.bind(s.run_id).bind(s.started_at);
            }
            q.execute(&mut *tx).await.db()?;
            let sql =
                format!("UPDATE jobs SET last_status = $1 WHERE id IN ({})", placeholders(2, chunk.len()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(JobStatus::Started as i64);
            for s in chunk {
                q = q.bind(s.job_id);
            }
            q.execute(&mut *tx).await.db()?;
        }
        tx.commit().await.db()?;
        self.changed(Change::Jobs(starts.iter().map(|s| s.job_id).collect()));
        Ok(())
    }

    /// Records how a run ended and, when given, the job's new last status.
    pub async fn finish_run(
        &self,
        run: &Run,
        f: &RunFinish,
        job_status: Option<JobStatus>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runs SET status = $2, finished_at = $3, exit_code = $4, signal = $5, log = $6, log_truncated = $7, lease_until = NULL WHERE id = $1",
        )
        .bind(run.id)
        .bind(f.status.as_str())
        .bind(f.finished_at)
        .bind(f.exit_code)
        .bind(f.signal)
        .bind(&f.log)
        .bind(bool_flag(f.log_truncated))
        .execute(&self.write)
        .await
        .db()?;
        match job_status {
            Some(status) => self.set_job_status(run.job_id, status).await,
            None => Ok(()),
        }
    }

    /// Runs left `queued`/`running` whose lease ran out (their node died) become `lost`;
    /// `all_unfinished` takes every one (a single node restarting owns them all).
    pub async fn mark_lost_runs(&self, now: EpochMs, all_unfinished: bool) -> StoreResult<Vec<Run>> {
        let sql = format!(
            "UPDATE runs SET status = 'lost', finished_at = $1, lease_until = NULL \
             WHERE status IN ('queued', 'running') AND ($2 = 1 OR lease_until < $1) RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(bool_flag(all_unfinished))
            .fetch_all(&self.write)
            .await
            .db()?;
        rows.iter().map(run_from_row).collect()
    }

    pub async fn run(&self, id: i64) -> StoreResult<Option<Run>> {
        self.one(COLUMNS, "runs WHERE id = $1", id, run_from_row).await
    }

    /// The stored log of a finished run (a running run's log lives in memory).
    pub async fn run_log(&self, id: i64) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT log FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .db()?;
        Ok(row.map(|r| get_opt_string(&r, "log")).transpose()?.flatten())
    }

    /// A job's runs, newest first.
    pub async fn job_runs(&self, job_id: i64, limit: i64, offset: i64) -> StoreResult<Page<Run>> {
        let listing = Listing { columns: COLUMNS, from_where: "runs WHERE job_id = $1", order: "id DESC" };
        self.page(listing, job_id, (limit, offset), run_from_row).await
    }

    /// Whether another run of the job is active (for the `forbid` overlap policy).
    pub async fn job_has_active_run(&self, job_id: i64, except_run: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE job_id = $1 AND status = 'running' AND id <> $2",
        )
        .bind(job_id)
        .bind(except_run)
        .fetch_one(&self.read)
        .await
        .db()?;
        Ok(get_i64(&row, "n")? > 0)
    }
}

pub(super) fn run_from_row(r: &AnyRow) -> StoreResult<Run> {
    Ok(Run {
        id: get_i64(r, "id")?,
        job_id: get_i64(r, "job_id")?,
        owner: get_i64(r, "owner")?,
        trigger: get_enum(r, "trigger_kind", TriggerKind::parse)?,
        scheduled_for: get_i64(r, "scheduled_for")?,
        attempt: get_i64(r, "attempt")?,
        args: get_json(r, "args")?,
        status: get_enum(r, "status", RunStatus::parse)?,
        node_id: get_opt_string(r, "node_id")?,
        started_at: get_opt_i64(r, "started_at")?,
        finished_at: get_opt_i64(r, "finished_at")?,
        exit_code: get_opt_i64(r, "exit_code")?,
        signal: get_opt_i64(r, "signal")?,
        log_truncated: get_bool(r, "log_truncated")?,
        created_at: get_i64(r, "created_at")?,
    })
}

/// `$first, $first+1, …` for `n` parameters.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
