//! Row helpers shared by the store's modules: the column lists and row readers of jobs and runs,
//! and SQL placeholder lists. A leaf: it imports from no sibling module.

use sqlx::any::AnyRow;

use super::{
    Backend, StoreError, StoreResult, get_bool, get_enum, get_i64, get_json, get_opt_i64, get_opt_json,
    get_opt_string, get_string,
};
use crate::domain::{Job, JobStatus, JobTrack, Missed, Overlap, Run, RunStatus, TriggerKind};

/// The columns [`job_from_row`] reads.
pub(super) const JOB_COLUMNS: &str = "id, uid, owner, stack_id, schedule_id, name, kind, command, enabled, pending_delete, delete_schedule, paused_by_all, timeout_s, overlap, missed, retries, retry_backoff_s, retry_lost, jitter_s, not_before, not_after, max_runs, runs_fired, keep_succeeded, keep_failed, chain_after, after_any, next_run_at, last_status, created_at, updated_at, grace_s, max_duration_s, last_run_id, last_run_status, last_run_finished_at, last_success_at, last_failure_at, missed_slot, missed_announced, stuck_run";

/// The columns [`run_from_row`] reads.
pub(super) const RUN_COLUMNS: &str = "id, job_id, owner, trigger_kind, scheduled_for, attempt, args, status, node_id, started_at, finished_at, exit_code, signal, log_truncated, created_at, due_at, chain";

pub(super) fn job_from_row(r: &AnyRow) -> StoreResult<Job> {
    Ok(Job {
        id: get_i64(r, "id")?,
        uid: get_string(r, "uid")?,
        owner: get_i64(r, "owner")?,
        stack_id: get_i64(r, "stack_id")?,
        schedule_id: get_i64(r, "schedule_id")?,
        name: get_opt_string(r, "name")?,
        kind: get_string(r, "kind")?,
        command: get_opt_string(r, "command")?,
        enabled: get_bool(r, "enabled")?,
        pending_delete: get_bool(r, "pending_delete")?,
        delete_schedule: get_bool(r, "delete_schedule")?,
        paused_by_all: get_bool(r, "paused_by_all")?,
        timeout_s: get_opt_i64(r, "timeout_s")?,
        overlap: get_enum(r, "overlap", Overlap::parse)?,
        missed: get_enum(r, "missed", Missed::parse)?,
        retries: get_i64(r, "retries")?,
        retry_backoff_s: get_i64(r, "retry_backoff_s")?,
        retry_lost: get_bool(r, "retry_lost")?,
        jitter_s: get_i64(r, "jitter_s")?,
        not_before: get_opt_i64(r, "not_before")?,
        not_after: get_opt_i64(r, "not_after")?,
        max_runs: get_opt_i64(r, "max_runs")?,
        runs_fired: get_i64(r, "runs_fired")?,
        keep_succeeded: get_opt_i64(r, "keep_succeeded")?,
        keep_failed: get_opt_i64(r, "keep_failed")?,
        after: get_opt_json(r, "chain_after")?.unwrap_or_default(),
        after_any: get_bool(r, "after_any")?,
        grace_s: get_opt_i64(r, "grace_s")?,
        max_duration_s: get_opt_i64(r, "max_duration_s")?,
        track: track_from_row(r)?,
        next_run_at: get_opt_i64(r, "next_run_at")?,
        last_status: {
            let code = get_i64(r, "last_status")?;
            JobStatus::from_i64(code).ok_or_else(|| StoreError::Corrupt(format!("last_status = {code}")))?
        },
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}

pub(super) fn track_from_row(r: &AnyRow) -> StoreResult<JobTrack> {
    let last_run = match (get_opt_i64(r, "last_run_id")?, get_opt_string(r, "last_run_status")?) {
        (Some(id), Some(status)) => RunStatus::parse(&status)
            .map(|s| (id, s, get_opt_i64(r, "last_run_finished_at").ok().flatten().unwrap_or(0))),
        _ => None,
    };
    Ok(JobTrack {
        last_run,
        last_success_at: get_opt_i64(r, "last_success_at")?,
        last_failure_at: get_opt_i64(r, "last_failure_at")?,
        missed_slot: get_opt_i64(r, "missed_slot")?,
        missed_announced: get_bool(r, "missed_announced")?,
        stuck_run: get_opt_i64(r, "stuck_run")?,
    })
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
        due_at: get_opt_i64(r, "due_at")?,
        chain: get_opt_json(r, "chain")?,
    })
}

/// A statement over a batch of rows (a `VALUES` or `IN` list) whose rows the parameters name.
/// On PostgreSQL it is planned for its own values every time (an unnamed statement), never
/// from a cached generic plan: PostgreSQL makes a generic plan once, after five runs of the
/// same text, and keeps it. One made while `runs` was nearly empty (EXPLAIN, bench `cluster`)
/// joined a 200-run batch of ends against every active run through `runs_active` instead of
/// the primary key, for good. This alone did not cure that batch: without statistics the
/// per-value plan picked `runs_active` too (see `lock_owned_runs` in `runs`).
pub(super) fn batch_query(
    backend: Backend,
    sql: String,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(backend == Backend::Sqlite)
}

/// The placeholders of a batch statement (thousands of parameters) whose parameters each
/// appear once, in the order they are bound: `$1, $2, …` on PostgreSQL, anonymous `?` on
/// SQLite. sqlx binds a `$N` by asking SQLite the parameter's name, which SQLite finds by
/// walking the statement's list of names: quadratic in the parameter count, and 7% of the
/// server's CPU in a claim window of 1,000 jobs a second (perf, bench `history`). An
/// anonymous `?` has no name to look up.
pub(super) struct Params {
    backend: Backend,
    bound: usize,
}

impl Params {
    pub(super) fn new(backend: Backend) -> Self {
        Params { backend, bound: 0 }
    }

    /// The next parameter's placeholder.
    pub(super) fn next(&mut self) -> String {
        self.bound += 1;
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.bound),
        }
    }

    /// The next `N` parameters' placeholders, one each, to name them in a statement.
    pub(super) fn take<const N: usize>(&mut self) -> [String; N] {
        std::array::from_fn(|_| self.next())
    }

    /// The next `n` parameters' placeholders, comma-separated.
    pub(super) fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// A row of `n` values, `(…)`, for a `VALUES` list.
    pub(super) fn row(&mut self, n: usize) -> String {
        format!("({})", self.list(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let mut pg = Params::new(Backend::Postgres);
        assert_eq!((pg.next(), pg.row(2), pg.list(2)), ("$1".into(), "($2, $3)".into(), "$4, $5".into()));
        let mut lite = Params::new(Backend::Sqlite);
        assert_eq!((lite.next(), lite.row(2), lite.list(2)), ("?".into(), "(?, ?)".into(), "?, ?".into()));
    }
}
