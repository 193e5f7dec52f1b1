//! Job chains: the chained runs an upstream run's end sets off, recorded in the transaction
//! that records that end — so each qualifying upstream run fires each downstream exactly once,
//! whatever the number of nodes and restarts.
//!
//! Why exactly once: an upstream run's end is written once (the compare-and-swap in
//! `finish_run`, or the sweep that marks it lost), and this runs inside that transaction. A
//! fan-in downstream (several `after` entries, not `after_any`) keeps one `chain_marks` row per
//! qualifying upstream run; the downstream's row is locked (PostgreSQL `FOR UPDATE`; SQLite has
//! one writer) while its marks are read, so of two upstream ends completing its condition on two
//! nodes at once, the second sees the marks the first consumed (deleted) with its run.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Transaction;

use super::rows::{Params, RUN_COLUMNS, run_from_row};
use super::{Backend, SqlxResultExt, Store, StoreResult, get_bool, get_i64, get_opt_json};
use crate::domain::{ChainAfter, ChainCause, EpochMs, Run, RunStatus, UserId};

/// Where chained runs go: queued under this node, which starts them once the transaction
/// commits (or, should it die first, the node that sweeps them when their lease runs out).
pub(super) struct ChainLease<'a> {
    pub node_id: &'a str,
    pub lease_until: EpochMs,
    pub now: EpochMs,
}

impl Store {
    /// The owner's jobs with `after` entries, by id: what a cycle check walks.
    pub async fn chained_jobs(&self, owner: UserId) -> StoreResult<BTreeMap<i64, Vec<ChainAfter>>> {
        owner_chains(&self.read, owner).await
    }

    /// Takes a deleted job out of its owner's other jobs' `after` (each a compare-and-swap on
    /// the entries as read; one changed meanwhile keeps its own). A job whose last upstream
    /// went is no longer chained.
    pub async fn unchain(&self, owner: UserId, deleted: i64, now: EpochMs) -> StoreResult<()> {
        let mut changed = Vec::new();
        for (id, after) in self.chained_jobs(owner).await? {
            if !after.iter().any(|a| a.job_id == deleted) {
                continue;
            }
            let kept: Vec<ChainAfter> = after.iter().copied().filter(|a| a.job_id != deleted).collect();
            let old = serde_json::to_string(&after).expect("entries serialize");
            let new = (!kept.is_empty()).then(|| serde_json::to_string(&kept).expect("entries serialize"));
            let done = sqlx::query(
                "UPDATE jobs SET chain_after = $3, updated_at = CASE WHEN updated_at < $4 THEN $4 ELSE updated_at + 1 END \
                 WHERE id = $1 AND chain_after = $2",
            )
            .bind(id)
            .bind(old)
            .bind(new)
            .bind(now)
            .execute(&self.write)
            .await
            .wrote()?;
            if done.rows_affected() > 0 {
                changed.push(id);
            }
        }
        if !changed.is_empty() {
            self.changed(super::Change::Jobs(changed));
        }
        Ok(())
    }

    /// Forgets the upstream runs a job's fan-in counted (it was paused, or its chain changed).
    pub async fn clear_chain_marks(&self, job_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM chain_marks WHERE downstream_job_id = $1")
            .bind(job_id)
            .execute(&self.write)
            .await
            .wrote()?;
        Ok(())
    }
}

/// Records what `run`'s final end (`status`) sets off: for each enabled job of the same owner
/// with a matching `after` entry, either a chained run (`after_any`, or the last missing
/// upstream of a fan-in) or a mark toward its fan-in. Answers the chained runs, queued.
pub(super) async fn fire_chains(
    tx: &mut Transaction<'static, sqlx::Any>,
    backend: Backend,
    run: &Run,
    status: RunStatus,
    lease: &ChainLease<'_>,
) -> StoreResult<Vec<Run>> {
    let candidates = sqlx::query(
        "SELECT id FROM jobs WHERE owner = $1 AND chain_after IS NOT NULL AND enabled = 1 AND pending_delete = 0 ORDER BY id",
    )
    .bind(run.owner)
    .fetch_all(&mut **tx)
    .await
    .db()?;
    let mut chained = Vec::new();
    for row in candidates {
        let downstream = get_i64(&row, "id")?;
        if downstream == run.job_id {
            continue;
        }
        // Read (and on PostgreSQL lock) the downstream as it is now: a pause or a change of
        // `after` committed by another node is seen here.
        let lock = match backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        };
        let sql =
            format!("SELECT chain_after, after_any, enabled, pending_delete FROM jobs WHERE id = $1{lock}");
        let Some(d) =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(downstream).fetch_optional(&mut **tx).await.db()?
        else {
            continue;
        };
        let after: Vec<ChainAfter> = get_opt_json(&d, "chain_after")?.unwrap_or_default();
        if !get_bool(&d, "enabled")? || get_bool(&d, "pending_delete")? {
            continue;
        }
        if !after.iter().any(|a| a.job_id == run.job_id && a.on.matches(status)) {
            continue;
        }
        let upstreams: BTreeSet<i64> = after.iter().map(|a| a.job_id).collect();
        let cause = if get_bool(&d, "after_any")? || upstreams.len() == 1 {
            Some(vec![run.id])
        } else {
            fan_in(tx, backend, downstream, &upstreams, run, status, lease.now).await?
        };
        if let Some(upstream_runs) = cause {
            let cause = ChainCause { upstream_runs, run_id: run.id, outcome: status };
            chained.push(insert_chained_run(tx, downstream, run.owner, &cause, lease).await?);
        }
    }
    Ok(chained)
}

/// Marks `run` toward the downstream's fan-in; when every upstream still existing has a mark,
/// consumes them all and answers the upstream runs (ascending).
async fn fan_in(
    tx: &mut Transaction<'static, sqlx::Any>,
    backend: Backend,
    downstream: i64,
    upstreams: &BTreeSet<i64>,
    run: &Run,
    status: RunStatus,
    now: EpochMs,
) -> StoreResult<Option<Vec<i64>>> {
    sqlx::query(
        "INSERT INTO chain_marks (downstream_job_id, upstream_job_id, upstream_run_id, outcome, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (downstream_job_id, upstream_run_id) DO NOTHING",
    )
    .bind(downstream)
    .bind(run.job_id)
    .bind(run.id)
    .bind(status.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .db()?;
    // An upstream deleted since the entry was written no longer holds the chain back.
    let ids: Vec<i64> = upstreams.iter().copied().collect();
    let sql = format!("SELECT id FROM jobs WHERE id IN ({})", Params::new(backend).list(ids.len()));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(*id);
    }
    let existing: BTreeSet<i64> =
        q.fetch_all(&mut **tx).await.db()?.iter().map(|r| get_i64(r, "id")).collect::<StoreResult<_>>()?;
    let marks =
        sqlx::query("SELECT upstream_job_id, upstream_run_id FROM chain_marks WHERE downstream_job_id = $1")
            .bind(downstream)
            .fetch_all(&mut **tx)
            .await
            .db()?;
    let mut marked = BTreeSet::new();
    let mut runs = Vec::with_capacity(marks.len());
    for m in &marks {
        let upstream = get_i64(m, "upstream_job_id")?;
        if existing.contains(&upstream) {
            marked.insert(upstream);
            runs.push(get_i64(m, "upstream_run_id")?);
        }
    }
    if !existing.is_subset(&marked) {
        return Ok(None);
    }
    sqlx::query("DELETE FROM chain_marks WHERE downstream_job_id = $1")
        .bind(downstream)
        .execute(&mut **tx)
        .await
        .db()?;
    runs.sort_unstable();
    Ok(Some(runs))
}

async fn insert_chained_run(
    tx: &mut Transaction<'static, sqlx::Any>,
    job_id: i64,
    owner: UserId,
    cause: &ChainCause,
    lease: &ChainLease<'_>,
) -> StoreResult<Run> {
    let sql = format!(
        "INSERT INTO runs (job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, lease_until, created_at, chain) \
         VALUES ($1, $2, 'chain', $3, 1, '[]', 'queued', $4, $5, $3, $6) RETURNING {RUN_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(job_id)
        .bind(owner)
        .bind(lease.now)
        .bind(lease.node_id)
        .bind(lease.lease_until)
        .bind(serde_json::to_string(cause).expect("a cause serializes"))
        .fetch_one(&mut **tx)
        .await
        .db()?;
    run_from_row(&row)
}

/// The `after` of each of `owner`'s chained jobs, read through `db` (a pool, or a transaction
/// that must see its own writes and locks).
pub(super) async fn owner_chains<'c, E>(db: E, owner: UserId) -> StoreResult<BTreeMap<i64, Vec<ChainAfter>>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let rows = sqlx::query("SELECT id, chain_after FROM jobs WHERE owner = $1 AND chain_after IS NOT NULL")
        .bind(owner)
        .fetch_all(db)
        .await
        .db()?;
    let mut jobs = BTreeMap::new();
    for r in rows {
        jobs.insert(get_i64(&r, "id")?, get_opt_json(&r, "chain_after")?.unwrap_or_default());
    }
    Ok(jobs)
}
