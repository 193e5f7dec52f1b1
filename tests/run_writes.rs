//! Writes of many runs at once, against each other on one database: a batch of run starts or
//! of run ends while a lease renewal covers the same runs. On PostgreSQL each takes the runs'
//! rows in one order (by id); taken in opposite orders, two of them at once deadlocked and
//! the database aborted one (bench `history`: a batch of run starts, whose runs then kept no
//! start time). On SQLite writes take turns; the test checks the same answers there. A batch
//! of run ends records each end as it would alone, whatever the batch holds, and so does a
//! batch of claims (one statement on PostgreSQL).

mod common;

use common::*;
use cronstack::domain::{JobStatus, RunStatus, TriggerKind, now_ms};
use cronstack::store::{Claim, ClaimOutcome, NewRun, RunEnd, RunFinish, RunStart, Store};
use serde_json::json;

const NODE: &str = "node-under-test";
/// Runs per round: enough that the two writes overlap for a while.
const RUNS: usize = 500;
const ROUNDS: usize = 4;

/// `jobs` jobs of one user that never fire on their own, made through the API (the server
/// stopped after).
async fn quiet_jobs(db: &TestDb, jobs: usize) -> Vec<i64> {
    let token = add_user(db, "alice", None);
    let mut server = Server::start_on(db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    let mut ids = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        ids.push(api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule})).await);
    }
    server.stop();
    ids
}

/// A run of `job_id` queued under `node`.
fn queued_run(job_id: i64, owner: i64, trigger: TriggerKind, scheduled_for: i64, node: &str) -> NewRun {
    NewRun {
        job_id,
        owner,
        trigger,
        scheduled_for,
        attempt: 1,
        args: Vec::new(),
        status: RunStatus::Queued,
        node_id: Some(node.into()),
        lease_until: Some(scheduled_for + 3_600_000),
        chain: None,
    }
}

#[tokio::test]
async fn batched_run_writes_and_lease_renewals_never_deadlock() {
    let db = TestDb::new();
    let job_id = quiet_jobs(&db, 1).await[0];
    let store = Store::open(&db.url).await.expect("open the store");
    let owner = store.job(job_id).await.unwrap().expect("the job").owner;
    for round in 0..ROUNDS {
        let now = now_ms();
        let lease = now + 3_600_000;
        let mut ids = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let run = queued_run(job_id, owner, TriggerKind::RunNow, now, NODE);
            ids.push(store.insert_run(&run, now).await.expect("insert a run"));
        }
        // The batches newest first, the renewal as it comes: opposite orders unless the store
        // orders them.
        let starts: Vec<RunStart> =
            ids.iter().rev().map(|&run_id| RunStart { run_id, job_id, started_at: now_ms() }).collect();
        let (started, renewed) =
            tokio::join!(store.mark_runs_started(NODE, &starts), store.renew_leases(NODE, &ids, lease));
        assert_eq!(started.unwrap_or_else(|e| panic!("round {round}, starts: {e}")).len(), RUNS);
        assert_eq!(renewed.unwrap_or_else(|e| panic!("round {round}, renewal with starts: {e}")).len(), RUNS);

        let mut ends = Vec::with_capacity(RUNS);
        for &id in ids.iter().rev() {
            let run = store.run(id).await.unwrap().expect("the run");
            assert_eq!(run.status, RunStatus::Running);
            let finish = RunFinish {
                status: RunStatus::Succeeded,
                finished_at: now_ms(),
                exit_code: Some(0),
                signal: None,
                log: String::new(),
                log_truncated: false,
            };
            ends.push(RunEnd { run, finish, job_status: None, chain_lease: None });
        }
        let (ended, renewed) =
            tokio::join!(store.finish_runs(NODE, &ends), store.renew_leases(NODE, &ids, lease));
        let ended = ended.unwrap_or_else(|e| panic!("round {round}, ends: {e}"));
        assert!(ended.iter().all(Option::is_some), "round {round}: every end recorded");
        // Renewed before or after the ends: either way without an error.
        renewed.unwrap_or_else(|e| panic!("round {round}, renewal with ends: {e}"));
        for &id in &ids {
            assert_eq!(store.run(id).await.unwrap().expect("the run").status, RunStatus::Succeeded);
        }
    }
}

/// One batch of run ends: several of one job (its status from the last in run order, its last
/// run the one that finished last), a run given twice, a run another node holds, and a
/// skipped slot. Each is recorded as it would be alone.
#[tokio::test]
async fn a_batch_of_run_ends_records_each_as_alone() {
    let db = TestDb::new();
    let jobs = quiet_jobs(&db, 2).await;
    let (busy, other) = (jobs[0], jobs[1]);
    let store = Store::open(&db.url).await.expect("open the store");
    let owner = store.job(busy).await.unwrap().expect("the job").owner;
    let t = now_ms();
    let insert = async |job: i64, trigger: TriggerKind, slot: i64, node: &str| {
        let id =
            store.insert_run(&queued_run(job, owner, trigger, slot, node), t).await.expect("insert a run");
        store.run(id).await.unwrap().expect("the run")
    };
    let busy_runs = [
        insert(busy, TriggerKind::RunNow, t, NODE).await,
        insert(busy, TriggerKind::RunNow, t, NODE).await,
        insert(busy, TriggerKind::RunNow, t, NODE).await,
    ];
    let twice = insert(other, TriggerKind::RunNow, t, NODE).await;
    let elsewhere = insert(other, TriggerKind::RunNow, t, "another-node").await;
    let skipped_slot = t - 60_000;
    let skipped = insert(other, TriggerKind::Schedule, skipped_slot, NODE).await;

    let end =
        |run: &cronstack::domain::Run, status: RunStatus, at: i64, job_status: Option<JobStatus>| RunEnd {
            run: run.clone(),
            finish: RunFinish {
                status,
                finished_at: at,
                exit_code: (status != RunStatus::Skipped).then_some(if status == RunStatus::Failed {
                    3
                } else {
                    0
                }),
                signal: None,
                log: format!("log of run {}", run.id),
                log_truncated: status == RunStatus::Failed,
            },
            job_status,
            chain_lease: None,
        };
    // Given newest run first: the store orders them.
    let ends = vec![
        end(&busy_runs[2], RunStatus::Succeeded, t + 20, Some(JobStatus::Success)),
        end(&twice, RunStatus::Succeeded, t + 5, Some(JobStatus::Success)),
        end(&busy_runs[1], RunStatus::Succeeded, t + 10, Some(JobStatus::Success)),
        end(&busy_runs[0], RunStatus::Failed, t + 30, Some(JobStatus::Failed)),
        end(&elsewhere, RunStatus::Failed, t + 40, Some(JobStatus::Failed)),
        end(&twice, RunStatus::Failed, t + 50, Some(JobStatus::Failed)),
        end(&skipped, RunStatus::Skipped, t + 1, None),
    ];
    let answers = store.finish_runs(NODE, &ends).await.expect("the batch");
    let recorded: Vec<bool> = answers.iter().map(Option::is_some).collect();
    assert_eq!(recorded, [true, true, true, true, false, false, true]);

    let failed = store.run(busy_runs[0].id).await.unwrap().expect("the run");
    assert_eq!(
        (failed.status, failed.finished_at, failed.exit_code),
        (RunStatus::Failed, Some(t + 30), Some(3))
    );
    assert!(failed.log_truncated);
    assert_eq!(
        store.run_log(failed.id).await.unwrap().as_deref(),
        Some(format!("log of run {}", failed.id).as_str())
    );
    let first_end = store.run(twice.id).await.unwrap().expect("the run");
    assert_eq!((first_end.status, first_end.finished_at), (RunStatus::Succeeded, Some(t + 5)));
    assert_eq!(store.run(elsewhere.id).await.unwrap().expect("the run").status, RunStatus::Queued);
    assert_eq!(store.run(skipped.id).await.unwrap().expect("the run").status, RunStatus::Skipped);

    // The busy job: its status from its last run in run order (as one at a time, in that
    // order, wrote it); its last run the one that finished last; each outcome's latest time.
    let busy_job = store.job(busy).await.unwrap().expect("the job");
    assert_eq!(busy_job.last_status, JobStatus::Success);
    assert_eq!(busy_job.track.last_run, Some((busy_runs[0].id, RunStatus::Failed, t + 30)));
    assert_eq!(
        (busy_job.track.last_success_at, busy_job.track.last_failure_at),
        (Some(t + 20), Some(t + 30))
    );
    let other_job = store.job(other).await.unwrap().expect("the job");
    assert_eq!(other_job.last_status, JobStatus::Success);
    assert_eq!(other_job.track.last_run, Some((twice.id, RunStatus::Succeeded, t + 5)));
    assert_eq!(other_job.track.missed_slot, Some(skipped_slot));
}

/// One batch of run starts: a run queued under this node starts; one another node holds, one
/// already running and one already ended do not, and the answer says which started.
#[tokio::test]
async fn a_batch_of_run_starts_starts_only_this_nodes_queued_runs() {
    let db = TestDb::new();
    let job = quiet_jobs(&db, 1).await[0];
    let store = Store::open(&db.url).await.expect("open the store");
    let t = now_ms();
    let FourRuns { queued, elsewhere, running, ended } = four_runs(&store, job, t).await;
    let start = |run_id: i64, at: i64| RunStart { run_id, job_id: job, started_at: at };

    let batch =
        [start(ended, t + 10), start(running, t + 10), start(elsewhere, t + 10), start(queued, t + 10)];
    let started = store.mark_runs_started(NODE, &batch).await.expect("the batch");
    assert_eq!(started, [queued].into_iter().collect());

    let status_and_start = async |id: i64| {
        let run = store.run(id).await.unwrap().expect("the run");
        (run.status, run.started_at)
    };
    assert_eq!(status_and_start(queued).await, (RunStatus::Running, Some(t + 10)));
    assert_eq!(status_and_start(elsewhere).await, (RunStatus::Queued, None));
    assert_eq!(status_and_start(running).await, (RunStatus::Running, Some(t + 1)));
    assert_eq!(status_and_start(ended).await.0, RunStatus::Killed);
    assert_eq!(store.job(job).await.unwrap().expect("the job").last_status, JobStatus::Started);
}

/// Runs of one job made at `t` (`run now`): one queued under this node, one under another
/// node, one this node started at `t + 1` and one it ended (killed) at `t + 2`.
struct FourRuns {
    queued: i64,
    elsewhere: i64,
    running: i64,
    ended: i64,
}

async fn four_runs(store: &Store, job: i64, t: i64) -> FourRuns {
    let owner = store.job(job).await.unwrap().expect("the job").owner;
    let insert = async |node: &str| {
        store
            .insert_run(&queued_run(job, owner, TriggerKind::RunNow, t, node), t)
            .await
            .expect("insert a run")
    };
    let (queued, elsewhere, running, ended) =
        (insert(NODE).await, insert("another-node").await, insert(NODE).await, insert(NODE).await);
    let start = RunStart { run_id: running, job_id: job, started_at: t + 1 };
    assert_eq!(store.mark_runs_started(NODE, &[start]).await.unwrap().len(), 1);
    let finish = RunFinish {
        status: RunStatus::Killed,
        finished_at: t + 2,
        exit_code: None,
        signal: None,
        log: String::new(),
        log_truncated: false,
    };
    let end = RunEnd {
        run: store.run(ended).await.unwrap().expect("the run"),
        finish,
        job_status: None,
        chain_lease: None,
    };
    assert!(store.finish_runs(NODE, &[end]).await.unwrap()[0].is_some());
    FourRuns { queued, elsewhere, running, ended }
}

/// A lease renewal renews the runs this node holds queued or running, not another node's nor
/// an ended one; a hand-back ends the lease of this node's queued runs alone, and the sweep
/// of another node then adopts exactly those.
#[tokio::test]
async fn lease_renewals_and_hand_backs_touch_only_this_nodes_unended_runs() {
    let db = TestDb::new();
    let job = quiet_jobs(&db, 1).await[0];
    let store = Store::open(&db.url).await.expect("open the store");
    let t = now_ms();
    let FourRuns { queued, elsewhere, running, ended } = four_runs(&store, job, t).await;

    let all = [ended, running, elsewhere, queued];
    let renewed = store.renew_leases(NODE, &all, t + 7_200_000).await.expect("the renewal");
    assert_eq!(renewed, [queued, running].into_iter().collect());
    assert_eq!(store.hand_back_runs(NODE, &all).await.expect("the hand-back"), 1);

    // Another node's sweep, a minute on: only the handed-back run's lease has ended.
    let expired =
        store.sweep_expired_runs(t + 60_000, false, "sweeper", t + 120_000).await.expect("the sweep");
    assert!(expired.lost.is_empty(), "{:?}", expired.lost);
    assert_eq!(expired.adopted.iter().map(|r| r.id).collect::<Vec<_>>(), [queued]);
}

/// One claim batch answers each claim as it would be answered alone, on both backends: a slot
/// fired (its job moved on, its run queued under this node), a slot skipped (moved on, no
/// run), a stale slot (another node moved the job first: lost, nothing written), a job queued
/// for deletion (deleted at its slot, no run). Claimed again, the batch loses every slot: no
/// slot fires twice. On PostgreSQL, a job row another transaction holds is busy (skipped, not
/// waited for), and claimed once free.
#[tokio::test]
async fn a_claim_batch_answers_each_claim_as_alone() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let mut server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let job = json!({"stack_id": stack, "schedule_id": schedule, "enabled": true});
        jobs.push(api.create("/api/v1/jobs", job).await);
    }
    let (fires, skips, stale, doomed) = (jobs[0], jobs[1], jobs[2], jobs[3]);
    // An enabled job with a next slot is deleted at that slot (Kragle's deferred delete).
    let queued = api.delete(&format!("/api/v1/jobs/{doomed}")).await;
    assert!(queued.status < 300, "queue the job for deletion: {}", queued.status);
    server.stop();
    let store = Store::open(&db.url).await.expect("open the store");
    let slot_of =
        async |id: i64| store.job(id).await.unwrap().expect("the job").next_run_at.expect("a next slot");
    let t = now_ms();
    let next = |slot: i64| slot + 86_400_000;
    let claim = |job_id: i64, slot: i64, fire: Option<i64>| Claim {
        job_id,
        slot,
        fire,
        due: slot,
        next: Some(next(slot)),
        dropped: fire.is_none().then_some(slot),
        disable: false,
        node_id: NODE.into(),
        lease_until: t + 60_000,
    };
    let (fire_slot, doomed_slot) = (slot_of(fires).await, slot_of(doomed).await);
    let stale_slot = slot_of(stale).await - 60_000;
    let claims = [
        claim(fires, fire_slot, Some(fire_slot)),
        claim(skips, slot_of(skips).await, None),
        claim(stale, stale_slot, Some(stale_slot)),
        claim(doomed, doomed_slot, Some(doomed_slot)),
    ];
    assert!(store.job(doomed).await.unwrap().expect("the job").pending_delete);

    let outcomes = store.claim_slots(&claims, t).await.expect("claim");
    let ClaimOutcome::Claimed { run_id, job } = &outcomes[0] else { panic!("fired: {:?}", outcomes[0]) };
    assert_eq!(job.next_run_at, Some(next(fire_slot)));
    let run = store.run(*run_id).await.unwrap().expect("the fired run");
    assert_eq!(
        (run.status, run.scheduled_for, run.node_id.as_deref()),
        (RunStatus::Queued, fire_slot, Some(NODE))
    );
    assert!(matches!(outcomes[1], ClaimOutcome::Advanced), "skipped: {:?}", outcomes[1]);
    assert_eq!(store.job(skips).await.unwrap().unwrap().next_run_at, Some(next(claims[1].slot)));
    assert!(matches!(outcomes[2], ClaimOutcome::Lost), "stale: {:?}", outcomes[2]);
    assert_eq!(store.job(stale).await.unwrap().unwrap().next_run_at, Some(stale_slot + 60_000));
    assert!(
        matches!(&outcomes[3], ClaimOutcome::Deleted { job } if job.id == doomed),
        "doomed: {:?}",
        outcomes[3]
    );
    assert!(store.job(doomed).await.unwrap().is_none(), "the job queued for deletion is deleted");
    for (job, runs) in [(fires, 1), (skips, 0), (stale, 0)] {
        assert_eq!(store.job_runs(job, 10, 0).await.unwrap().total, runs, "runs of job {job}");
    }

    let again = store.claim_slots(&claims[..3], t).await.expect("claim again");
    assert!(again.iter().all(|o| matches!(o, ClaimOutcome::Lost)), "claimed again: {again:?}");
    assert_eq!(store.job_runs(fires, 10, 0).await.unwrap().total, 1, "the slot fired once");

    if !db.url.starts_with("postgres") {
        return;
    }
    let holder = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE").bind(fires).execute(&mut *tx).await.unwrap();
    let following = [claim(fires, next(fire_slot), Some(next(fire_slot)))];
    let busy = store.claim_slots(&following, t).await.expect("claim a held row");
    assert!(matches!(busy[0], ClaimOutcome::Busy), "held: {:?}", busy[0]);
    tx.rollback().await.unwrap();
    let free = store.claim_slots(&following, t).await.expect("claim the row, free");
    assert!(matches!(free[0], ClaimOutcome::Claimed { .. }), "free: {:?}", free[0]);
    assert_eq!(store.job_runs(fires, 10, 0).await.unwrap().total, 2);
}
