//! Jobs: what runs, on which schedule, with which policies.

use std::sync::Arc;

use super::FromRow;
use super::cache::Change;
use super::cache::JobListing;
use super::rows::{JOB_COLUMNS as COLUMNS, job_from_row};
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreError, StoreResult, get_bool, get_i64, get_opt_i64,
    get_opt_string, get_string,
};
use crate::domain::chain::find_cycle;
use crate::domain::{ChainAfter, EpochMs, Job, JobStatus, Missed, Overlap, SlotPolicy, UserId, bool_flag};

/// The user-settable fields of a job (create and full rewrite on update).
#[derive(Debug, Clone)]
pub struct NewJob {
    pub stack_id: i64,
    pub schedule_id: i64,
    pub name: Option<String>,
    pub kind: String,
    pub command: Option<String>,
    pub enabled: bool,
    pub timeout_s: Option<i64>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub retries: i64,
    pub retry_backoff_s: i64,
    pub retry_lost: bool,
    pub jitter_s: i64,
    pub not_before: Option<EpochMs>,
    pub not_after: Option<EpochMs>,
    pub max_runs: Option<i64>,
    pub keep_succeeded: Option<i64>,
    pub keep_failed: Option<i64>,
    pub after: Vec<ChainAfter>,
    pub after_any: bool,
    pub grace_s: Option<i64>,
    pub max_duration_s: Option<i64>,
}

impl NewJob {
    pub fn from_job(j: &Job) -> Self {
        NewJob {
            stack_id: j.stack_id,
            schedule_id: j.schedule_id,
            name: j.name.clone(),
            kind: j.kind.clone(),
            command: j.command.clone(),
            enabled: j.enabled,
            timeout_s: j.timeout_s,
            overlap: j.overlap,
            missed: j.missed,
            retries: j.retries,
            retry_backoff_s: j.retry_backoff_s,
            retry_lost: j.retry_lost,
            jitter_s: j.jitter_s,
            not_before: j.not_before,
            not_after: j.not_after,
            max_runs: j.max_runs,
            keep_succeeded: j.keep_succeeded,
            keep_failed: j.keep_failed,
            after: j.after.clone(),
            after_any: j.after_any,
            grace_s: j.grace_s,
            max_duration_s: j.max_duration_s,
        }
    }

    /// `after` as stored: JSON, NULL for none.
    fn chain_after(&self) -> Option<String> {
        (!self.after.is_empty()).then(|| serde_json::to_string(&self.after).expect("entries serialize"))
    }
}

/// A job update: the new fields plus the state the service derived from them.
#[derive(Debug, Clone)]
pub struct JobChanges {
    pub fields: NewJob,
    pub pending_delete: bool,
    /// With `pending_delete`: the schedule goes with the job (see `Job::delete_schedule`).
    pub delete_schedule: bool,
    pub paused_by_all: bool,
    /// `Some(next)` replaces the next slot; `None` keeps whatever the scheduler has set.
    pub reschedule: Option<Option<EpochMs>>,
    pub last_status: JobStatus,
    /// The run count toward `max_runs` starts again (the limit was set anew).
    pub reset_runs_fired: bool,
}

/// A job as the scheduler loads it at start.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub job_id: i64,
    pub next_run_at: EpochMs,
    pub missed: Missed,
    pub schedule_id: i64,
}

/// Everything the scheduler loads at start, kept lean for a million jobs: one row per job,
/// its schedule's text and its window and jitter apart (once per schedule, and for the few
/// jobs that have one).
pub struct ScheduledJobs {
    pub jobs: Vec<ScheduledJob>,
    /// Per schedule: its stored config JSON (parsed once by the caller) and `once`.
    pub schedules: std::collections::HashMap<i64, (String, bool)>,
    /// The jobs with a window or a jitter; the others have the default policy.
    pub policies: std::collections::HashMap<i64, SlotPolicy>,
}

impl Store {
    pub async fn insert_job(
        &self,
        owner: UserId,
        uid: &str,
        j: &NewJob,
        next_run_at: Option<EpochMs>,
        now: EpochMs,
    ) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO jobs (uid, owner, stack_id, schedule_id, name, kind, command, enabled, timeout_s, overlap, missed, retries, retry_backoff_s, next_run_at, created_at, updated_at, retry_lost, jitter_s, not_before, not_after, max_runs, keep_succeeded, keep_failed, chain_after, after_any, grace_s, max_duration_s) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26) RETURNING id",
        )
        .bind(uid)
        .bind(owner)
        .bind(j.stack_id)
        .bind(j.schedule_id)
        .bind(&j.name)
        .bind(&j.kind)
        .bind(&j.command)
        .bind(bool_flag(j.enabled))
        .bind(j.timeout_s)
        .bind(j.overlap.as_str())
        .bind(j.missed.as_str())
        .bind(j.retries)
        .bind(j.retry_backoff_s)
        .bind(next_run_at)
        .bind(now)
        .bind(bool_flag(j.retry_lost))
        .bind(j.jitter_s)
        .bind(j.not_before)
        .bind(j.not_after)
        .bind(j.max_runs)
        .bind(j.keep_succeeded)
        .bind(j.keep_failed)
        .bind(j.chain_after())
        .bind(bool_flag(j.after_any))
        .bind(j.grace_s)
        .bind(j.max_duration_s);
        let row = self.write_returning(q).await?;
        self.changed(Change::JobAdded);
        get_i64(&row, "id")
    }

    /// Rewrites a job's fields. Guarded by `updated_at` (bumped by every user change) so that
    /// of two concurrent updates the later one does not silently undo the first: `Ok(false)`
    /// means "read again and retry".
    pub async fn update_job(
        &self,
        id: i64,
        seen_updated_at: EpochMs,
        c: &JobChanges,
        now: EpochMs,
    ) -> StoreResult<bool> {
        let done = update_job_query(id, seen_updated_at, c, now).execute(&self.write).await.wrote()?;
        self.changed(Change::Jobs(vec![id]));
        Ok(done.rows_affected() == 1)
    }

    /// [`update_job`](Self::update_job) for a change of the job's `after`: in one write
    /// transaction holding the owner's chain lock (SQLite: the write lock; PostgreSQL: an
    /// advisory lock per owner), the owner's chains with this change must close no cycle —
    /// so two concurrent changes cannot each close half of one.
    pub async fn update_job_chained(
        &self,
        owner: UserId,
        id: i64,
        seen_updated_at: EpochMs,
        c: &JobChanges,
        now: EpochMs,
    ) -> StoreResult<ChainedUpdate> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1, CAST($2 % 2147483647 AS INTEGER))")
                .bind(CHAIN_LOCK_CLASS)
                .bind(owner)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        let mut graph = super::chains::owner_chains(&mut *tx, owner).await?;
        graph.insert(id, c.fields.after.clone());
        if let Some(cycle) = find_cycle(&graph, id) {
            return Ok(ChainedUpdate::Cycle(cycle));
        }
        let done = update_job_query(id, seen_updated_at, c, now).execute(&mut *tx).await.wrote()?;
        tx.commit().await.wrote()?;
        self.changed(Change::Jobs(vec![id]));
        Ok(ChainedUpdate::Written(done.rows_affected() == 1))
    }

    pub async fn delete_job(&self, id: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM jobs WHERE id = $1").bind(id).execute(&self.write).await.wrote()?;
        self.changed(Change::Jobs(vec![id]));
        Ok(done.rows_affected() > 0)
    }

    /// A deleted job's schedule, deleted too unless another job uses it: whether it went.
    /// The deletion has committed by then; a job that takes the schedule meanwhile keeps it
    /// (on PostgreSQL the foreign key refuses the delete: the schedule stays, rightly).
    pub async fn delete_schedule_of_deleted_job(&self, schedule_id: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM schedules WHERE id = $1 AND internal = 0 \
             AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.schedule_id = $1)",
        )
        .bind(schedule_id)
        .execute(&self.write)
        .await;
        match done {
            Ok(done) => {
                self.changed(Change::Schedule(schedule_id));
                Ok(done.rows_affected() > 0)
            }
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => Ok(false),
            Err(e) => Err(e).wrote(),
        }
    }

    pub async fn job(&self, id: i64) -> StoreResult<Option<Job>> {
        self.cache.jobs.get_or_load(id, self.job_fresh(id)).await
    }

    /// A job as the database holds it now, past the read cache: for the scheduler, told of
    /// another node's change (`JOBS_CHANNEL`) possibly before the cache is (`ROWS_CHANNEL`
    /// announcements are batched a few milliseconds later), which must not reload the job
    /// as it was.
    pub async fn job_fresh(&self, id: i64) -> StoreResult<Option<Job>> {
        self.one(COLUMNS, "jobs WHERE id = $1", id, job_from_row).await
    }

    pub async fn job_by_uid(&self, uid: &str) -> StoreResult<Option<Job>> {
        let query = (COLUMNS, "jobs WHERE uid = $1", job_from_row as FromRow<Job>);
        self.one_by_uid(&self.cache.job_uids, uid, |id| self.job(id), query).await
    }

    pub async fn job_by_name(&self, owner: UserId, name: &str) -> StoreResult<Option<Job>> {
        self.one_by_name(COLUMNS, "jobs", owner, name, job_from_row).await
    }

    pub async fn list_jobs(&self, owner: UserId, limit: i64, offset: i64) -> StoreResult<Arc<Page<Job>>> {
        self.job_page(JobListing::Owner, owner, (limit, offset)).await
    }

    pub async fn stack_jobs(&self, stack_id: i64, limit: i64, offset: i64) -> StoreResult<Arc<Page<Job>>> {
        self.job_page(JobListing::Stack, stack_id, (limit, offset)).await
    }

    /// A page of an owner's or a stack's jobs, through the page cache.
    async fn job_page(
        &self,
        of: JobListing,
        key: i64,
        (limit, offset): (i64, i64),
    ) -> StoreResult<Arc<Page<Job>>> {
        // A stack's hook job (kind 'hook') is not listed: cronstack manages it.
        let from_where = match of {
            JobListing::Owner => "jobs WHERE owner = $1 AND kind <> 'hook'",
            JobListing::Stack => "jobs WHERE stack_id = $1 AND kind <> 'hook'",
        };
        let load = self.page(
            Listing { columns: COLUMNS, from_where, order: "id" },
            key,
            (limit, offset),
            job_from_row,
        );
        let page = self
            .cache
            .job_pages
            .get_or_load((of, key, limit, offset), async { load.await.map(|p| Some(Arc::new(p))) });
        Ok(page.await?.unwrap_or_default())
    }

    /// Every job with a next slot, for the scheduler's timer heap, with what it needs to
    /// compute the slots after it.
    ///
    /// Read in ranges of ids, up to 100,000 jobs each, two ranges at a time (each range is one
    /// statement and a core's work for the database), each aggregated by the database into
    /// one text of `id,next_run_at,schedule_id,missed` entries: decoding a million rows one by
    /// one through the Any driver took 14 s of a restart with a million jobs (bench/run).
    pub async fn scheduled_jobs(&self) -> StoreResult<ScheduledJobs> {
        use futures_util::{StreamExt, TryStreamExt};
        const CHUNK: i64 = 100_000;
        let mut schedules = std::collections::HashMap::new();
        for r in sqlx::query("SELECT id, config, once FROM schedules").fetch_all(&self.read).await.db()? {
            schedules.insert(get_i64(&r, "id")?, (get_string(&r, "config")?, get_bool(&r, "once")?));
        }
        let bounds = sqlx::query("SELECT CAST(COALESCE(MIN(id), 0) AS BIGINT) AS lo, CAST(COALESCE(MAX(id), -1) AS BIGINT) AS hi FROM jobs")
            .fetch_one(&self.read)
            .await
            .db()?;
        let (lo, hi) = (get_i64(&bounds, "lo")?, get_i64(&bounds, "hi")?);
        let entry = "CAST(id AS TEXT) || ',' || CAST(next_run_at AS TEXT) || ',' || CAST(schedule_id AS TEXT) || ',' || missed";
        let aggregate = match self.backend {
            Backend::Sqlite => "group_concat(e, ';')",
            Backend::Postgres => "string_agg(e, ';')",
        };
        let sql = format!(
            "SELECT {aggregate} AS entries FROM \
             (SELECT id, {entry} AS e FROM jobs WHERE next_run_at IS NOT NULL AND id >= $1 AND id < $2 ORDER BY id) c"
        );
        let ranges = (lo..=hi).step_by(CHUNK as usize).map(|from| (from, from.saturating_add(CHUNK)));
        let texts: Vec<Option<String>> = futures_util::stream::iter(ranges)
            .map(|(from, to)| {
                let q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(from).bind(to);
                async move { get_opt_string(&q.fetch_one(&self.read).await.db()?, "entries") }
            })
            .buffered(2)
            .try_collect()
            .await?;
        let mut jobs = Vec::new();
        for text in texts.iter().flatten() {
            for e in text.split(';') {
                let mut fields = e.split(',');
                let mut int = || fields.next().and_then(|f| f.parse::<i64>().ok());
                let (Some(job_id), Some(next_run_at), Some(schedule_id)) = (int(), int(), int()) else {
                    return Err(StoreError::Corrupt(format!("scheduled job entry {e:?}")));
                };
                let missed = e
                    .rsplit(',')
                    .next()
                    .and_then(Missed::parse)
                    .ok_or_else(|| StoreError::Corrupt(format!("scheduled job entry {e:?}")))?;
                // A job whose schedule is gone is not scheduled (as an inner join would drop it).
                if schedules.contains_key(&schedule_id) {
                    jobs.push(ScheduledJob { job_id, next_run_at, missed, schedule_id });
                }
            }
        }
        // The few jobs with a window or a jitter, read apart so the bulk load stays lean.
        let mut policies = std::collections::HashMap::new();
        // (The condition is the index `jobs_with_policy`'s alone, so that the index is used; jobs
        // without a next slot are not loaded, their policies never looked up.)
        let rows = sqlx::query(
            "SELECT id, uid, jitter_s, not_before, not_after FROM jobs \
             WHERE jitter_s > 0 OR not_before IS NOT NULL OR not_after IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await
        .db()?;
        for r in rows {
            let policy = SlotPolicy {
                not_before: get_opt_i64(&r, "not_before")?,
                not_after: get_opt_i64(&r, "not_after")?,
                jitter_ms: get_i64(&r, "jitter_s")? * 1000,
                seed: crate::domain::job_hash_key(&get_string(&r, "uid")?),
            };
            policies.insert(get_i64(&r, "id")?, policy);
        }
        Ok(ScheduledJobs { jobs, schedules, policies })
    }

    /// The uids of the jobs on these schedules (those whose expression uses `H`).
    pub async fn job_uids_on_schedules(
        &self,
        schedule_ids: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, String>> {
        let mut uids = std::collections::HashMap::new();
        for chunk in schedule_ids.chunks(1000) {
            let params = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT id, uid FROM jobs WHERE schedule_id IN ({params})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.read).await.db()? {
                uids.insert(get_i64(&r, "id")?, get_string(&r, "uid")?);
            }
        }
        Ok(uids)
    }

    /// Sets a job's last status (Cloud 66's 0-3) without touching anything else.
    pub async fn set_job_status(&self, id: i64, status: JobStatus) -> StoreResult<()> {
        sqlx::query("UPDATE jobs SET last_status = $2 WHERE id = $1")
            .bind(id)
            .bind(status as i64)
            .execute(&self.write)
            .await
            .wrote()?;
        self.changed(Change::Jobs(vec![id]));
        Ok(())
    }
}

/// The outcome of [`Store::update_job_chained`].
#[derive(Debug)]
pub enum ChainedUpdate {
    /// As [`Store::update_job`]'s answer: `false` means "read again and retry".
    Written(bool),
    /// The change would close this cycle (in the order runs flow); nothing was written.
    Cycle(Vec<i64>),
}

/// The first key of the PostgreSQL advisory locks (two-key form) taken while an owner's
/// chains change ("chai").
const CHAIN_LOCK_CLASS: i32 = 0x6368_6169;

/// The statement rewriting a job's fields, guarded by `updated_at` (see [`Store::update_job`]).
fn update_job_query<'q>(
    id: i64,
    seen_updated_at: EpochMs,
    c: &'q JobChanges,
    now: EpochMs,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let j = &c.fields;
    sqlx::query(
        "UPDATE jobs SET stack_id = $3, schedule_id = $4, name = $5, command = $6, enabled = $7, pending_delete = $8, paused_by_all = $9, \
         timeout_s = $10, overlap = $11, missed = $12, retries = $13, retry_backoff_s = $14, \
         next_run_at = CASE WHEN $18 = 1 THEN $15 ELSE next_run_at END, last_status = $16, updated_at = $17, retry_lost = $19, \
         jitter_s = $20, not_before = $21, not_after = $22, max_runs = $23, runs_fired = CASE WHEN $24 = 1 THEN 0 ELSE runs_fired END, \
         keep_succeeded = $25, keep_failed = $26, chain_after = $27, after_any = $28, grace_s = $29, max_duration_s = $30, \
         delete_schedule = $31 WHERE id = $1 AND updated_at = $2",
    )
    .bind(id)
    .bind(seen_updated_at)
    .bind(j.stack_id)
    .bind(j.schedule_id)
    .bind(&j.name)
    .bind(&j.command)
    .bind(bool_flag(j.enabled))
    .bind(bool_flag(c.pending_delete))
    .bind(bool_flag(c.paused_by_all))
    .bind(j.timeout_s)
    .bind(j.overlap.as_str())
    .bind(j.missed.as_str())
    .bind(j.retries)
    .bind(j.retry_backoff_s)
    .bind(c.reschedule.flatten())
    .bind(c.last_status as i64)
    .bind(now.max(seen_updated_at + 1))
    .bind(bool_flag(c.reschedule.is_some()))
    .bind(bool_flag(j.retry_lost))
    .bind(j.jitter_s)
    .bind(j.not_before)
    .bind(j.not_after)
    .bind(j.max_runs)
    .bind(bool_flag(c.reset_runs_fired))
    .bind(j.keep_succeeded)
    .bind(j.keep_failed)
    .bind(j.chain_after())
    .bind(bool_flag(j.after_any))
    .bind(j.grace_s)
    .bind(j.max_duration_s)
    .bind(bool_flag(c.pending_delete && c.delete_schedule))
}
