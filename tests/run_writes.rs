//! Writes of many runs at once, against each other on one database: a batch of run starts or
//! of run ends while a lease renewal covers the same runs. On PostgreSQL each takes the runs'
//! rows in one order (by id); taken in opposite orders, two of them at once deadlocked and
//! the database aborted one (bench `history`: a batch of run starts, whose runs then kept no
//! start time). On SQLite writes take turns; the test checks the same answers there.

mod common;

use common::*;
use cronstack::domain::{RunStatus, TriggerKind, now_ms};
use cronstack::store::{NewRun, RunEnd, RunFinish, RunStart, Store};
use serde_json::json;

const NODE: &str = "node-under-test";
/// Runs per round: enough that the two writes overlap for a while.
const RUNS: usize = 500;
const ROUNDS: usize = 4;

#[tokio::test]
async fn batched_run_writes_and_lease_renewals_never_deadlock() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let job_id = {
        let mut server = Server::start_on(&db, &[]);
        let api = Api::new(&server, Some(&token));
        let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
        let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
        let job = api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule})).await;
        server.stop();
        job
    };
    let store = Store::open(&db.url).await.expect("open the store");
    let owner = store.job(job_id).await.unwrap().expect("the job").owner;
    for round in 0..ROUNDS {
        let now = now_ms();
        let lease = now + 3_600_000;
        let mut ids = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let run = NewRun {
                job_id,
                owner,
                trigger: TriggerKind::RunNow,
                scheduled_for: now,
                attempt: 1,
                args: Vec::new(),
                status: RunStatus::Queued,
                node_id: Some(NODE.into()),
                lease_until: Some(lease),
                chain: None,
            };
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
