//! Runs and the claim that makes a scheduled slot fire at most once.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;

use super::cache::Change;
use super::chains::{ChainLease, fire_chains};
use super::rows::{JOB_COLUMNS, Params, RUN_COLUMNS as COLUMNS, batch_query, job_from_row, run_from_row};
use super::stacks::opt_json;
use super::{
    Backend, Listing, Page, SqlxResultExt, Store, StoreResult, get_enum, get_i64, get_opt_i64, get_opt_string,
};
use crate::domain::{ChainCause, EpochMs, Job, JobStatus, Run, RunStatus, TriggerKind, UserId, bool_flag};

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
    /// A chained run's cause (its retries keep it).
    pub chain: Option<ChainCause>,
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
    /// When `fire` is due: the slot plus the job's jitter.
    pub due: EpochMs,
    pub next: Option<EpochMs>,
    /// `slot` when it will not run (a slot missed while no node ran, dropped by the job's
    /// missed-run policy): it opens a missed incident on the job (see `health`).
    pub dropped: Option<EpochMs>,
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

impl ClaimOutcome {
    pub const NAMES: [&str; 5] = ["claimed", "advanced", "deleted", "lost", "busy"];

    /// Its name in metrics (`cronstack_claims_total`).
    pub fn name(&self) -> &'static str {
        let i = match self {
            ClaimOutcome::Claimed { .. } => 0,
            ClaimOutcome::Advanced => 1,
            ClaimOutcome::Deleted { .. } => 2,
            ClaimOutcome::Lost => 3,
            ClaimOutcome::Busy => 4,
        };
        Self::NAMES[i]
    }
}

/// A run whose process started.
#[derive(Debug, Clone, Copy)]
pub struct RunStart {
    pub run_id: i64,
    pub job_id: i64,
    pub started_at: EpochMs,
}

/// What a sweep took over: started runs it marked lost, queued runs it adopted.
#[derive(Debug, Default)]
pub struct Expired {
    pub lost: Vec<Run>,
    pub adopted: Vec<Run>,
    /// Chained runs the lost runs set off (queued under the sweeping node).
    pub chained: Vec<Run>,
}

/// The log of a run marked lost by the sweep.
pub const LOST_MESSAGE: &str =
    "lost: the node running it stopped renewing its lease (it died, froze, or lost the database)";

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
    /// Claims due slots, whatever the batch size, in one statement on PostgreSQL and one
    /// transaction of a few on SQLite: each claim is a compare-and-swap of the job's
    /// `next_run_at` (all in one `UPDATE … FROM (VALUES …)`) plus the insert of its run under
    /// `UNIQUE(job_id, scheduled_for)` (one multi-row `INSERT … ON CONFLICT DO NOTHING`).
    /// Whatever the number of nodes racing, exactly one wins a slot; the others see `Lost`.
    pub async fn claim_slots(&self, claims: &[Claim], now: EpochMs) -> StoreResult<Vec<ClaimOutcome>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let Claimed { locked, moved, run_ids } = match self.backend {
            Backend::Sqlite => self.claim_in_steps(claims, now).await?,
            Backend::Postgres => self.claim_in_one_statement(claims, now).await?,
        };
        if !moved.is_empty() {
            // Only now, committed: the other nodes skip their standby claims of these slots
            // on this word. From the rows as written (a deleted job has no next slot).
            let moves = claims
                .iter()
                // Only locked jobs can have moved.
                .filter_map(|c| {
                    let job = moved.get(&c.job_id)?;
                    Some((c.job_id, c.slot, job.next_run_at.filter(|_| !job.pending_delete)))
                })
                .collect();
            self.changed(Change::Claimed(moves));
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

    /// PostgreSQL's claim: lock, compare-and-swap, deferred deletes and run inserts in one
    /// statement, so the jobs' rows are held for that statement alone. As a transaction of
    /// five round trips they stayed locked across every await between them, and a starved
    /// node held them for tens of milliseconds: run-end batches waited on them (lock-wait
    /// log, bench `cluster`), and claims of other nodes saw them busy.
    ///
    /// Rows are locked in id order, skipping rows another node holds, so claimers never
    /// wait for each other nor deadlock. The update and the delete see the rows' latest
    /// versions (read committed re-checks `next_run_at = v.slot` on a row changed since the
    /// statement began), so a slot another node took meanwhile is `Lost`, not claimed again;
    /// the unique slot index would refuse its run anyway.
    async fn claim_in_one_statement(&self, claims: &[Claim], now: EpochMs) -> StoreResult<Claimed> {
        let mut p = Params::new(self.backend);
        let now_param = p.next();
        let values = (0..claims.len()).map(|_| p.row(10)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "WITH v AS (SELECT {CLAIM_VALUES}, column8 AS fire, column9 AS node, column10 AS lease \
               FROM (VALUES {values}) AS t), \
             locked AS (SELECT id FROM jobs WHERE id IN (SELECT id FROM v) ORDER BY id FOR UPDATE SKIP LOCKED), \
             moved AS (UPDATE jobs SET {set} FROM v \
               WHERE jobs.id = v.id AND jobs.id IN (SELECT id FROM locked) AND jobs.next_run_at = v.slot \
                 AND jobs.pending_delete = 0 RETURNING {returning}), \
             doomed AS (DELETE FROM jobs USING v \
               WHERE jobs.id = v.id AND jobs.id IN (SELECT id FROM locked) AND jobs.next_run_at = v.slot \
                 AND jobs.pending_delete = 1 RETURNING {returning}), \
             fired AS (INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at, due_at) \
               SELECT v.id, moved.owner, 'schedule', v.fire, 1, '[]', 'queued', v.node, v.lease, {now_param}, v.due \
               FROM moved JOIN v ON v.id = moved.id WHERE v.fire IS NOT NULL \
               ON CONFLICT (job_id, scheduled_for) WHERE trigger_kind IN ('schedule', 'backfill') DO NOTHING \
               RETURNING id, job_id) \
             SELECT locked.id AS held, fired.id AS run_id, j.* FROM locked \
               LEFT JOIN (SELECT * FROM moved UNION ALL SELECT * FROM doomed) AS j ON j.id = locked.id \
               LEFT JOIN fired ON fired.job_id = locked.id",
            set = claim_set(&now_param),
            returning = claim_returning(),
        );
        let mut q = batch_query(self.backend, sql).bind(now);
        for c in claims {
            q = bind_claim(q, c).bind(c.fire).bind(&c.node_id).bind(c.lease_until);
        }
        let mut claimed = Claimed::default();
        for row in q.fetch_all(&self.write).await.wrote()? {
            let job_id = get_i64(&row, "held")?;
            claimed.locked.insert(job_id);
            if get_opt_i64(&row, "id")?.is_some() {
                claimed.moved.insert(job_id, job_from_row(&row)?);
            }
            if let Some(run_id) = get_opt_i64(&row, "run_id")? {
                claimed.run_ids.insert(job_id, run_id);
            }
        }
        Ok(claimed)
    }

    /// SQLite's claim: one transaction on the single write connection (nothing else can hold
    /// a row), a statement per step.
    async fn claim_in_steps(&self, claims: &[Claim], now: EpochMs) -> StoreResult<Claimed> {
        let mut tx = self.begin_write().await?;
        let locked: HashSet<i64> = claims.iter().map(|c| c.job_id).collect();

        // Advance every job still at the expected slot. A job queued for deletion keeps its
        // slot here and is deleted below instead.
        let mut moved: HashMap<i64, Job> = HashMap::new();
        // `now` first: each parameter appears once, in the order bound (see `Params`).
        let mut p = Params::new(self.backend);
        let now_param = p.next();
        let values = (0..claims.len()).map(|_| p.row(7)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE jobs SET {set} FROM (SELECT {CLAIM_VALUES} FROM (VALUES {values}) AS t) AS v \
             WHERE jobs.id = v.id AND jobs.next_run_at = v.slot RETURNING {returning}",
            set = claim_set(&now_param),
            returning = claim_returning(),
        );
        let mut q = batch_query(self.backend, sql).bind(now);
        for c in claims {
            q = bind_claim(q, c);
        }
        for row in q.fetch_all(&mut *tx).await.db()? {
            let job = job_from_row(&row)?;
            moved.insert(job.id, job);
        }

        // Kragle's deferred delete: the job goes at its slot instead of running.
        let doomed: Vec<i64> = moved.values().filter(|j| j.pending_delete).map(|j| j.id).collect();
        if !doomed.is_empty() {
            let sql =
                format!("DELETE FROM jobs WHERE id IN ({})", Params::new(self.backend).list(doomed.len()));
            let mut q = batch_query(self.backend, sql);
            for id in &doomed {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await.db()?;
        }

        // One run row per slot to fire; a slot that already has one is not fired again.
        let to_fire: Vec<(&Claim, EpochMs, &Job)> = claims
            .iter()
            .filter_map(|c| {
                let job = moved.get(&c.job_id).filter(|j| !j.pending_delete)?;
                Some((c, c.fire?, job))
            })
            .collect();
        let mut run_ids: HashMap<i64, i64> = HashMap::new();
        if !to_fire.is_empty() {
            // Seven parameters per row, `now` among them (each appears once: see `Params`).
            let mut p = Params::new(self.backend);
            let values = (0..to_fire.len())
                .map(|_| {
                    let (job, owner, fire) = (p.next(), p.next(), p.next());
                    format!("({job}, {owner}, 'schedule', {fire}, 1, '[]', 'queued', {})", p.list(4))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at, due_at) \
                 VALUES {values} ON CONFLICT (job_id, scheduled_for) WHERE trigger_kind IN ('schedule', 'backfill') DO NOTHING RETURNING id, job_id"
            );
            let mut q = batch_query(self.backend, sql);
            for (c, fire, job) in &to_fire {
                q = q
                    .bind(c.job_id)
                    .bind(job.owner)
                    .bind(*fire)
                    .bind(&c.node_id)
                    .bind(c.lease_until)
                    .bind(now)
                    .bind(c.due);
            }
            for row in q.fetch_all(&mut *tx).await.db()? {
                run_ids.insert(get_i64(&row, "job_id")?, get_i64(&row, "id")?);
            }
        }
        tx.commit().await.wrote()?;
        Ok(Claimed { locked, moved, run_ids })
    }

    /// Records backfill runs of `job` for `slots` that never ran (scheduled or backfilled: the
    /// same uniqueness), queued under this node; answers those recorded, oldest first.
    pub async fn insert_backfill_runs(
        &self,
        job: &Job,
        slots: &[EpochMs],
        node_id: &str,
        lease_until: EpochMs,
        now: EpochMs,
    ) -> StoreResult<Vec<Run>> {
        let mut runs = Vec::new();
        for chunk in slots.chunks(500) {
            let values = (0..chunk.len())
                .map(|i| format!("($1, $2, 'backfill', ${}, 1, '[]', 'queued', $3, $4, $5)", i + 6))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at) \
                 VALUES {values} ON CONFLICT (job_id, scheduled_for) WHERE trigger_kind IN ('schedule', 'backfill') DO NOTHING \
                 RETURNING {COLUMNS}"
            );
            let mut q = batch_query(self.backend, sql)
                .bind(job.id)
                .bind(job.owner)
                .bind(node_id)
                .bind(lease_until)
                .bind(now);
            for slot in chunk {
                q = q.bind(*slot);
            }
            for row in q.fetch_all(&self.write).await.wrote()? {
                runs.push(run_from_row(&row)?);
            }
        }
        runs.sort_by_key(|r| r.scheduled_for);
        Ok(runs)
    }

    /// Records a run that is not a scheduled slot (run now, retry, webhook) or a skipped slot.
    pub async fn insert_run(&self, r: &NewRun, now: EpochMs) -> StoreResult<i64> {
        let q = sqlx::query(
            "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at, chain) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
        .bind(now)
        .bind(r.chain.as_ref().map(|c| serde_json::to_string(c).expect("a cause serializes")));
        let row = self.write_returning(q).await?;
        get_i64(&row, "id")
    }

    /// Hands this node's queued runs among `ids` back to the cluster: their lease ends now, so
    /// the next sweep (on any node, this one after a restart) adopts and starts them.
    pub async fn hand_back_runs(&self, node_id: &str, ids: &[i64]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let queued = lock_owned_runs(&mut tx, self.backend, node_id, ids, &[RunStatus::Queued]).await?;
        set_leases(&mut tx, self.backend, &queued, 0).await?;
        tx.commit().await.db()?;
        Ok(queued.len() as u64)
    }

    /// Extends the lease on the runs among `ids` that this node still holds; returns those.
    /// A held run missing from the answer was taken by another node (its lease ran out while
    /// this node was frozen or cut off): this node must stop acting on it. On the lease pool,
    /// so that a node whose writes wait on other nodes' locks still renews in time.
    pub async fn renew_leases(
        &self,
        node_id: &str,
        ids: &[i64],
        until: EpochMs,
    ) -> StoreResult<HashSet<i64>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut tx = self.begin_on(&self.lease).await?;
        let held =
            lock_owned_runs(&mut tx, self.backend, node_id, ids, &[RunStatus::Queued, RunStatus::Running])
                .await?;
        set_leases(&mut tx, self.backend, &held, until).await?;
        tx.commit().await.db()?;
        Ok(held)
    }

    /// These runs go `queued` → `running` and their jobs show "started", in one transaction
    /// however many (a released group is hundreds: one write instead of one each). Only runs
    /// still queued under this node change (compare-and-swap); the answer is their ids, and a
    /// run missing from it was taken by another node meanwhile.
    pub async fn mark_runs_started(&self, node_id: &str, starts: &[RunStart]) -> StoreResult<HashSet<i64>> {
        let mut started = HashSet::with_capacity(starts.len());
        if starts.is_empty() {
            return Ok(started);
        }
        let mut tx = self.begin_write().await?;
        let mut jobs = Vec::with_capacity(starts.len());
        let ids: Vec<i64> = starts.iter().map(|s| s.run_id).collect();
        let queued = lock_owned_runs(&mut tx, self.backend, node_id, &ids, &[RunStatus::Queued]).await?;
        let starts: Vec<&RunStart> = starts.iter().filter(|s| queued.contains(&s.run_id)).collect();
        for chunk in starts.chunks(1000) {
            // By id alone: `lock_owned_runs` checked each row it holds locked.
            let mut p = Params::new(self.backend);
            let values = (0..chunk.len()).map(|_| p.row(2)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE runs SET status = 'running', started_at = v.t \
                 FROM (SELECT column1 AS id, column2 AS t FROM (VALUES {values}) AS x) AS v \
                 WHERE runs.id = v.id"
            );
            let mut q = batch_query(self.backend, sql);
            for s in chunk {
                q = q.bind(s.run_id).bind(s.started_at);
            }
            q.execute(&mut *tx).await.db()?;
            started.extend(chunk.iter().map(|s| s.run_id));
            let chunk_jobs: Vec<i64> = chunk.iter().map(|s| s.job_id).collect();
            // "Started" is a passing status: on PostgreSQL a job row locked right now (another
            // node's claim, perhaps frozen) is skipped rather than waited for.
            let mut p = Params::new(self.backend);
            let (status, ids) = (p.next(), p.list(chunk_jobs.len()));
            let sql = match self.backend {
                Backend::Sqlite => format!("UPDATE jobs SET last_status = {status} WHERE id IN ({ids})"),
                Backend::Postgres => format!(
                    "UPDATE jobs SET last_status = {status} WHERE id IN \
                     (SELECT id FROM jobs WHERE id IN ({ids}) FOR UPDATE SKIP LOCKED)"
                ),
            };
            let mut q = batch_query(self.backend, sql).bind(JobStatus::Started as i64);
            for job_id in &chunk_jobs {
                q = q.bind(*job_id);
            }
            q.execute(&mut *tx).await.db()?;
            jobs.extend(chunk_jobs);
        }
        tx.commit().await.db()?;
        if !jobs.is_empty() {
            self.changed(Change::Jobs(jobs));
        }
        Ok(started)
    }

    /// Records how a run ended and, when given, the job's new last status — only if this node
    /// still owns the run and it has not ended (compare-and-swap: `lost` and every final
    /// outcome are final). `None`: the run was not this node's to end any more. When the run
    /// is its job's final attempt (`chain_lease`), the chained runs its end sets off are
    /// recorded in the same transaction, queued under this node: the answer.
    pub async fn finish_run(
        &self,
        node_id: &str,
        run: &Run,
        f: &RunFinish,
        job_status: Option<JobStatus>,
        chain_lease: Option<EpochMs>,
    ) -> StoreResult<Option<Vec<Run>>> {
        let end = RunEnd { run: run.clone(), finish: f.clone(), job_status, chain_lease };
        Ok(self.finish_runs(node_id, std::slice::from_ref(&end)).await?.pop().flatten())
    }

    /// [`Store::finish_run`] for several runs in one transaction (one commit instead of one
    /// each: at hundreds of run ends a second, most of their cost), answered in their order.
    /// Any failure fails them all, written or not: each is then tried again alone.
    ///
    /// A few statements whatever the batch size: the runs' rows locked in id order and
    /// written in one `UPDATE … FROM (VALUES …)`, then their jobs' rows locked in id order
    /// (as every batch of every node takes them: two batches ending runs of the same jobs
    /// wait for each other instead of deadlocking) and written in one more. A statement per
    /// run held each job's row from its write to the commit, hundreds of round trips later:
    /// on a loaded 3-node cluster the other nodes' batches queued behind it past
    /// `lock_timeout`, and their runs' lease renewals behind them (bench `cluster`).
    pub async fn finish_runs(&self, node_id: &str, ends: &[RunEnd]) -> StoreResult<Vec<Option<Vec<Run>>>> {
        let mut answers: Vec<Option<Vec<Run>>> = vec![None; ends.len()];
        if ends.is_empty() {
            return Ok(answers);
        }
        let mut tx = self.begin_write().await?;
        // One end per run: a run given twice is ended by its first.
        let mut seen = HashSet::with_capacity(ends.len());
        let unique: Vec<usize> = (0..ends.len()).filter(|&i| seen.insert(ends[i].run.id)).collect();
        let ids: Vec<i64> = unique.iter().map(|&i| ends[i].run.id).collect();
        let owned =
            lock_owned_runs(&mut tx, self.backend, node_id, &ids, &[RunStatus::Queued, RunStatus::Running])
                .await?;
        let mut ended: Vec<usize> = unique.into_iter().filter(|&i| owned.contains(&ends[i].run.id)).collect();
        end_runs(&mut tx, self.backend, ends, &ended).await?;
        for &i in &ended {
            answers[i] = Some(Vec::new());
        }
        ended.sort_by_key(|&i| (ends[i].run.job_id, ends[i].run.id));

        let (jobs, chained) = end_jobs(&mut tx, self.backend, ends, &ended).await?;
        for &i in &ended {
            let RunEnd { run, finish, chain_lease, .. } = &ends[i];
            let Some(lease_until) = chain_lease.filter(|_| chained.contains(&run.job_id)) else {
                continue;
            };
            let lease = ChainLease { node_id, lease_until, now: finish.finished_at };
            answers[i] = Some(fire_chains(&mut tx, self.backend, run, finish.status, &lease).await?);
        }
        tx.commit().await.db()?;
        if !jobs.is_empty() {
            self.changed(Change::Jobs(jobs));
        }
        Ok(answers)
    }

    /// The sweep: among runs whose lease ran out (their node died, froze or lost the database;
    /// `all_unfinished`: every unfinished run, for a single node restarting), the started
    /// ones become `lost` and the queued ones — claimed but never started — are adopted by
    /// this node, to start late. Each run is taken by exactly one sweeper. A lost run that is
    /// its job's final attempt sets off its chains, in the same transaction.
    pub async fn sweep_expired_runs(
        &self,
        now: EpochMs,
        all_unfinished: bool,
        node_id: &str,
        lease_until: EpochMs,
    ) -> StoreResult<Expired> {
        let mut tx = self.begin_write().await?;
        let lost = sqlx::query(sqlx::AssertSqlSafe(lost_sweep()))
            .bind(now)
            .bind(bool_flag(all_unfinished))
            .bind(LOST_MESSAGE)
            .fetch_all(&mut *tx)
            .await
            .db()?;
        let lost: Vec<Run> = lost.iter().map(run_from_row).collect::<StoreResult<_>>()?;
        let mut chained = Vec::new();
        let lease = ChainLease { node_id, lease_until, now };
        // Only the owners of chained jobs have chains to fire (one query, not two a run).
        let owners: HashSet<i64> = if lost.is_empty() {
            HashSet::new()
        } else {
            let rows = sqlx::query("SELECT DISTINCT owner FROM jobs WHERE chain_after IS NOT NULL")
                .fetch_all(&mut *tx)
                .await
                .db()?;
            rows.iter().map(|r| get_i64(r, "owner")).collect::<StoreResult<_>>()?
        };
        for run in lost.iter().filter(|r| owners.contains(&r.owner)) {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
            let row =
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(run.job_id).fetch_optional(&mut *tx).await.db()?;
            let Some(job) = row.as_ref().map(job_from_row).transpose()? else { continue };
            if !job.retries_after(run, RunStatus::Lost) {
                chained.extend(fire_chains(&mut tx, self.backend, run, RunStatus::Lost, &lease).await?);
            }
        }
        let adopted = sqlx::query(sqlx::AssertSqlSafe(adoption_sweep()))
            .bind(now)
            .bind(bool_flag(all_unfinished))
            .bind(node_id)
            .bind(lease_until)
            .fetch_all(&mut *tx)
            .await
            .db()?;
        let adopted = adopted.iter().map(run_from_row).collect::<StoreResult<_>>()?;
        tx.commit().await.db()?;
        // The jobs' last runs, in one statement that does not fail the sweep (the runs are
        // lost either way, and what was adopted must start: their health catches up).
        if !lost.is_empty() {
            let ended: Vec<(i64, i64)> = lost.iter().map(|r| (r.job_id, r.id)).collect();
            if let Err(e) = self.record_lost_runs(&ended, now).await {
                tracing::warn!(error = %e, "recording lost runs on their jobs");
            }
        }
        Ok(Expired { lost, adopted, chained })
    }

    pub async fn run(&self, id: i64) -> StoreResult<Option<Run>> {
        self.one(COLUMNS, "runs WHERE id = $1", id, run_from_row).await
    }

    /// A run with its pipeline steps (`None` for a one-command run), in one read of its row:
    /// the by-id view (on a long history each read of a run is an index descent).
    pub async fn run_with_steps(&self, id: i64) -> StoreResult<Option<(Run, Option<serde_json::Value>)>> {
        let columns = format!("{COLUMNS}, steps");
        self.one(&columns, "runs WHERE id = $1", id, |r| Ok((run_from_row(r)?, opt_json(r, "steps")?))).await
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

    /// A job's runs, newest first, counted by the database's kept count (migration 0018),
    /// not by counting a history of thousands of runs on every page.
    pub async fn job_runs(&self, job_id: i64, limit: i64, offset: i64) -> StoreResult<Page<Run>> {
        let listing = Listing { columns: COLUMNS, from_where: "runs WHERE job_id = $1", order: "id DESC" };
        let count = "SELECT runs AS n FROM job_run_counts WHERE job_id = $1";
        self.page_with_total(listing, count, job_id, (limit, offset), run_from_row).await
    }

    /// The outcomes of each job's newest `n` runs, newest first, for several jobs in one
    /// statement (the dashboard's overview strips). One `LIMIT`ed subquery per job walks the
    /// `runs_by_job` index backwards, so a job with a long history costs `n` rows, not all of
    /// them (a window function over `job_id IN (…)` would read every run of every job).
    pub async fn recent_outcomes(
        &self,
        job_ids: &[i64],
        n: i64,
    ) -> StoreResult<HashMap<i64, Vec<RunStatus>>> {
        let mut out: HashMap<i64, Vec<RunStatus>> = job_ids.iter().map(|&id| (id, Vec::new())).collect();
        if job_ids.is_empty() || n < 1 {
            return Ok(out);
        }
        let limit = job_ids.len() + 1;
        let sql = (0..job_ids.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT job_id, id, status FROM runs WHERE job_id = ${} \
                     ORDER BY id DESC LIMIT ${limit}) AS r{i}",
                    i + 1
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in job_ids {
            q = q.bind(*id);
        }
        let rows = q.bind(n).fetch_all(&self.read).await.db()?;
        let mut found: Vec<(i64, i64, RunStatus)> = rows
            .iter()
            .map(|r| Ok((get_i64(r, "job_id")?, get_i64(r, "id")?, get_enum(r, "status", RunStatus::parse)?)))
            .collect::<StoreResult<_>>()?;
        // UNION ALL keeps no order: newest first within each job.
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (job, _, status) in found {
            out.entry(job).or_default().push(status);
        }
        Ok(out)
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

/// A run's end to record: see [`Store::finish_runs`].
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub run: Run,
    pub finish: RunFinish,
    pub job_status: Option<JobStatus>,
    pub chain_lease: Option<EpochMs>,
}

/// A table whose rows a batch locks: see [`lock_rows`].
#[derive(Clone, Copy)]
enum Table {
    Runs,
    Jobs,
}

/// PostgreSQL: locks these rows of `table` in id order, for the rest of `tx`. Every write of
/// several runs at once (run starts, run ends, lease renewals, hand-backs) takes them in that
/// one order, and every batch of run ends takes its jobs' rows in that order too: taken in
/// two orders, two such writes at once could each wait for a row the other took first, and
/// PostgreSQL aborted one (bench `history`: a batch of run starts deadlocked with a lease
/// renewal, and hundreds of runs kept no start time). SQLite has one writer at a time:
/// nothing to do.
async fn lock_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    table: Table,
    ids: &[i64],
) -> StoreResult<()> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    select_in_lock_order(tx, backend, table, "id", ids).await.map(drop)
}

/// `columns` of these rows of `table`, read by primary key in id order and, on PostgreSQL,
/// locked (see [`lock_rows`]).
async fn select_in_lock_order(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    table: Table,
    columns: &str,
    ids: &[i64],
) -> StoreResult<Vec<AnyRow>> {
    let table = match table {
        Table::Runs => "runs",
        Table::Jobs => "jobs",
    };
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let sql = format!(
            "SELECT {columns} FROM {table} WHERE id IN ({}){}",
            Params::new(backend).list(chunk.len()),
            in_lock_order(backend)
        );
        let mut q = batch_query(backend, sql);
        for id in chunk {
            q = q.bind(*id);
        }
        rows.extend(q.fetch_all(&mut **tx).await.db()?);
    }
    Ok(rows)
}

/// The end of a `SELECT id FROM runs …` that locks the rows it finds in id order on
/// PostgreSQL (see [`lock_rows`]).
fn in_lock_order(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " ORDER BY id FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// The ends of `ends[which]` inside `tx`: runs this node holds unended, locked (see
/// [`lock_owned_runs`]).
async fn end_runs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    ends: &[RunEnd],
    which: &[usize],
) -> StoreResult<()> {
    for chunk in which.chunks(500) {
        let mut p = Params::new(backend);
        let values = (0..chunk.len()).map(|_| p.row(7)).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE runs SET status = v.st, finished_at = v.fin, exit_code = v.code, signal = v.sig, \
               log = v.out, log_truncated = v.cut, lease_until = NULL \
             FROM (SELECT column1 AS id, column2 AS st, column3 AS fin, column4 AS code, column5 AS sig, \
               column6 AS out, column7 AS cut FROM (VALUES {values}) AS t) AS v \
             WHERE runs.id = v.id"
        );
        let mut q = batch_query(backend, sql);
        for &i in chunk {
            let RunEnd { run, finish: f, .. } = &ends[i];
            q = q
                .bind(run.id)
                .bind(f.status.as_str())
                .bind(f.finished_at)
                .bind(f.exit_code)
                .bind(f.signal)
                .bind(&f.log)
                .bind(bool_flag(f.log_truncated));
        }
        q.execute(&mut **tx).await.db()?;
    }
    Ok(())
}

/// Locks these runs' rows in id order (PostgreSQL; see [`lock_rows`]) and answers those this
/// node holds in one of `statuses`. Read by primary key alone, then checked here: with the
/// status in the statement, PostgreSQL chose the partial index `runs_active` (a bitmap over
/// every active run's entries, dead ones included) over the key, 1.0–3.9 s a batch.
async fn lock_owned_runs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    node_id: &str,
    ids: &[i64],
    statuses: &[RunStatus],
) -> StoreResult<HashSet<i64>> {
    let mut owned = HashSet::with_capacity(ids.len());
    for row in select_in_lock_order(tx, backend, Table::Runs, "id, node_id, status", ids).await? {
        let held = statuses.contains(&get_enum(&row, "status", RunStatus::parse)?);
        if held && get_opt_string(&row, "node_id")?.as_deref() == Some(node_id) {
            owned.insert(get_i64(&row, "id")?);
        }
    }
    Ok(owned)
}

/// Sets the lease of these runs, which `tx` holds locked (see [`lock_owned_runs`]), to
/// `until`: by primary key alone, for the reason given there.
async fn set_leases(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    runs: &HashSet<i64>,
    until: EpochMs,
) -> StoreResult<()> {
    let mut ids: Vec<i64> = runs.iter().copied().collect();
    ids.sort_unstable();
    for chunk in ids.chunks(1000) {
        let mut p = Params::new(backend);
        let sql = format!("UPDATE runs SET lease_until = {} WHERE id IN ({})", p.next(), p.list(chunk.len()));
        let mut q = batch_query(backend, sql).bind(until);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await.db()?;
    }
    Ok(())
}

/// After the runs `ends[ended]` ended (sorted by job, then run): their jobs' status and last
/// run (see `health`), or the slot a skip missed. Answers the jobs written, and the jobs
/// whose owner may have chained jobs: asked with the status write, so that the common case
/// (none) costs no statement more.
async fn end_jobs(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    ends: &[RunEnd],
    ended: &[usize],
) -> StoreResult<(Vec<i64>, HashSet<i64>)> {
    let with_status: Vec<usize> = ended.iter().copied().filter(|&i| ends[i].job_status.is_some()).collect();
    let skipped: Vec<usize> = ended
        .iter()
        .copied()
        .filter(|&i| {
            let RunEnd { run, finish, job_status, .. } = &ends[i];
            job_status.is_none()
                && finish.status == RunStatus::Skipped
                && run.trigger == TriggerKind::Schedule
        })
        .collect();
    let mut jobs: Vec<i64> = with_status.iter().chain(&skipped).map(|&i| ends[i].run.job_id).collect();
    jobs.sort_unstable();
    jobs.dedup();
    lock_rows(tx, backend, Table::Jobs, &jobs).await?;

    // A job whose status this batch does not write may have chains: the caller asks.
    let mut chained: HashSet<i64> =
        ended.iter().filter(|&&i| ends[i].job_status.is_none()).map(|&i| ends[i].run.job_id).collect();
    // Several ends of one job go in rounds, in run order (one row per job a statement: an
    // `UPDATE … FROM` writes a row once however many source rows match it).
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut previous: Option<(i64, usize)> = None;
    for &i in &with_status {
        let job_id = ends[i].run.job_id;
        let round = match previous {
            Some((job, round)) if job == job_id => round + 1,
            _ => 0,
        };
        previous = Some((job_id, round));
        if rounds.len() <= round {
            rounds.push(Vec::new());
        }
        rounds[round].push(i);
    }
    for round in &rounds {
        for chunk in round.chunks(500) {
            let mut p = Params::new(backend);
            let values = (0..chunk.len()).map(|_| p.row(5)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE jobs SET last_status = v.js, {} \
                 FROM (SELECT column1 AS id, column2 AS run, column3 AS fin, column4 AS st, column5 AS js \
                   FROM (VALUES {values}) AS t) AS v WHERE jobs.id = v.id RETURNING jobs.id, \
                 (SELECT COUNT(*) FROM jobs c WHERE c.owner = jobs.owner AND c.chain_after IS NOT NULL) AS chained",
                super::health::run_end_set("v.run", "v.fin", "v.st")
            );
            let mut q = batch_query(backend, sql);
            for &i in chunk {
                let RunEnd { run, finish: f, job_status, .. } = &ends[i];
                q = q
                    .bind(run.job_id)
                    .bind(run.id)
                    .bind(f.finished_at)
                    .bind(f.status.as_str())
                    .bind(job_status.map(|s| s as i64));
            }
            for row in q.fetch_all(&mut **tx).await.db()? {
                if get_i64(&row, "chained")? > 0 {
                    chained.insert(get_i64(&row, "id")?);
                }
            }
        }
    }
    // Rare (an overlap policy skipped the slot): one statement each.
    for &i in &skipped {
        let run = &ends[i].run;
        sqlx::query(super::health::SKIPPED_SLOT)
            .bind(run.job_id)
            .bind(run.scheduled_for)
            .execute(&mut **tx)
            .await
            .db()?;
        chained.insert(run.job_id);
    }
    Ok((jobs, chained))
}

/// What a claim wrote: the jobs whose rows it held (the others were busy), those it moved
/// or deleted as written, and the run it recorded for each job that fired.
#[derive(Default)]
struct Claimed {
    locked: HashSet<i64>,
    moved: HashMap<i64, Job>,
    run_ids: HashMap<i64, i64>,
}

/// A claim's values as the columns `v` of its statement; [`bind_claim`] binds them.
const CLAIM_VALUES: &str = "column1 AS id, column2 AS slot, column3 AS nxt, column4 AS dis, \
     column5 AS f, column6 AS ms, column7 AS due";

/// Binds a claim's [`CLAIM_VALUES`].
fn bind_claim<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    c: &Claim,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(c.job_id)
        .bind(c.slot)
        .bind(c.next)
        .bind(bool_flag(c.disable))
        .bind(i64::from(c.fire.is_some()))
        .bind(c.dropped)
        .bind(c.due)
}

/// A claim's write to a job row still at its slot, from the claim's values `v`; `now` is the
/// claim time's placeholder. `max_runs`: the run that reaches it disables the job (no next
/// slot). A slot dropped, or claimed past the job's grace, opens a missed incident (`health`).
/// A job queued for deletion keeps its slot (it is deleted instead).
fn claim_set(now: &str) -> String {
    format!(
        "next_run_at = CASE WHEN jobs.pending_delete = 1 THEN jobs.next_run_at \
           WHEN jobs.max_runs IS NOT NULL AND jobs.runs_fired + v.f >= jobs.max_runs THEN NULL ELSE v.nxt END, \
         enabled = CASE WHEN jobs.pending_delete = 0 AND (v.dis = 1 \
           OR (jobs.max_runs IS NOT NULL AND jobs.runs_fired + v.f >= jobs.max_runs)) THEN 0 ELSE jobs.enabled END, \
         runs_fired = jobs.runs_fired + v.f, \
         missed_slot = CASE WHEN jobs.pending_delete = 1 OR jobs.missed_slot IS NOT NULL THEN jobs.missed_slot \
           WHEN v.ms IS NOT NULL THEN v.ms \
           WHEN v.due + COALESCE(jobs.grace_s, {grace}) * 1000 < {now} THEN v.slot ELSE NULL END",
        grace = crate::domain::DEFAULT_GRACE_S,
    )
}

/// The job columns a claim's writes return, named through `jobs` (its values `v` has an `id`);
/// built once, not per batch.
fn claim_returning() -> &'static str {
    static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        JOB_COLUMNS.split(", ").map(|c| format!("jobs.{c}")).collect::<Vec<_>>().join(", ")
    });
    &COLUMNS
}

// The lease sweep's two statements. `status IN ('queued', 'running')` is the partial index
// `runs_active`'s own condition, spelled out because SQLite does not infer it from
// `status = 'running'`: without it each sweep read the whole history (0.9 s on 10,000,000
// runs, bench `history`) with the one write connection held, and every claim and run start
// of those seconds waited behind it.

/// Running runs whose lease ran out (or all of them: `$2`) are lost.
fn lost_sweep() -> String {
    format!(
        "UPDATE runs SET status = 'lost', finished_at = $1, lease_until = NULL, log = $3 \
         WHERE status IN ('queued', 'running') AND status = 'running' AND ($2 = 1 OR lease_until < $1) \
         RETURNING {COLUMNS}"
    )
}

/// Queued runs whose lease ran out (or all of them: `$2`) are this node's.
fn adoption_sweep() -> String {
    format!(
        "UPDATE runs SET node_id = $3, lease_until = $4 \
         WHERE status IN ('queued', 'running') AND status = 'queued' AND ($2 = 1 OR lease_until < $1) \
         RETURNING {COLUMNS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lease sweeps find unfinished runs through `runs_active` on SQLite, never by reading
    /// the whole history.
    #[tokio::test]
    async fn the_lease_sweeps_read_runs_active() {
        let (_dir, store) = crate::store::testing::scratch_sqlite().await;
        for sql in [lost_sweep(), adoption_sweep()] {
            // (Unbound parameters are NULL: the plan does not depend on them.)
            let explain = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
            let plan = crate::store::testing::plan(&store, explain).await;
            assert!(plan.iter().any(|d| d.contains("USING INDEX runs_active")), "{sql}: {plan:#?}");
        }
    }
}
