//! Run control: `POST /api/v1/runs/<id>/kill` on a running run, a queued one, an ended one,
//! someone else's, and (on PostgreSQL) a run going on another node.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

async fn job(api: &Api, name: &str, command: &str) -> i64 {
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": name})).await
}

async fn run_now(api: &Api, job: i64) -> i64 {
    let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["id"].as_i64().unwrap()
}

async fn wait_outcome(api: &Api, run: i64, outcome: &str) -> Value {
    eventually(Duration::from_secs(10), || async {
        let v = api.get(&format!("/api/v1/runs/{run}")).await.json();
        (v["outcome"] == outcome).then_some(v)
    })
    .await
    .unwrap_or_else(|| panic!("run {run} never became {outcome}"))
}

#[tokio::test]
async fn a_running_run_is_killed_and_an_ended_one_is_a_conflict() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let other = add_user(&db, "bob", None);
    let server = Server::start_on(&db, &["--kill-grace-s", "1"]);
    let api = Api::new(&server, Some(&token));
    let sleeper = job(&api, "sleeper", "sleep 30").await;
    let run = run_now(&api, sleeper).await;
    wait_outcome(&api, run, "running").await;

    // Someone else's run, or none, is not found; nothing is killed.
    let bob = Api::new(&server, Some(&other));
    assert_eq!(bob.post(&format!("/api/v1/runs/{run}/kill"), json!({})).await.status, 404);
    assert_eq!(api.post("/api/v1/runs/999999/kill", json!({})).await.status, 404);
    assert_eq!(api.get(&format!("/api/v1/runs/{run}")).await.json()["outcome"], "running");

    let asked = Instant::now();
    let r = api.post(&format!("/api/v1/runs/{run}/kill"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["id"], run);
    let ended = wait_outcome(&api, run, "killed").await;
    assert!(asked.elapsed() < Duration::from_secs(3), "killed in {:?}", asked.elapsed());
    assert!(ended["signal"].is_number() || ended["exit_code"].is_number(), "{ended}");

    let again = api.post(&format!("/api/v1/runs/{run}/kill"), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(again.json()["msg"].as_str().unwrap().contains("already ended"), "{}", again.text);
}

#[tokio::test]
async fn a_queued_run_is_killed_before_it_starts() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let ledger = db.dir().join("started");
    // One run at a time: the second waits for the first's slot.
    let server = Server::start_on(&db, &["--max-concurrent-runs", "1", "--kill-grace-s", "1"]);
    let api = Api::new(&server, Some(&token));
    let command = format!("echo \"$CRONSTACK_RUN_ID\" >> '{}'; sleep 3", ledger.display());
    let j = job(&api, "one-at-a-time", &command).await;
    let first = run_now(&api, j).await;
    wait_outcome(&api, first, "running").await;
    let second = run_now(&api, j).await;
    assert_eq!(api.get(&format!("/api/v1/runs/{second}")).await.json()["outcome"], "queued");

    let r = api.post(&format!("/api/v1/runs/{second}/kill"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let killed = wait_outcome(&api, second, "killed").await;
    assert!(killed["started_at"].is_null(), "{killed}");
    wait_outcome(&api, first, "succeeded").await;
    let started = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(started.trim(), first.to_string(), "the killed run never started");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_on_another_node_is_killed_within_a_second() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let a = Server::start_on(&db, &["--kill-grace-s", "1"]);
    let b = Server::start_on(&db, &["--kill-grace-s", "1"]);
    let api_a = Api::new(&a, Some(&token));
    let api_b = Api::new(&b, Some(&token));
    let j = job(&api_a, "far", "sleep 30").await;
    // Run through A: it goes on A.
    let run = run_now(&api_a, j).await;
    wait_outcome(&api_a, run, "running").await;
    let asked = Instant::now();
    let r = api_b.post(&format!("/api/v1/runs/{run}/kill"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ended = wait_outcome(&api_b, run, "killed").await;
    assert!(asked.elapsed() < Duration::from_secs(2), "killed in {:?}: {ended}", asked.elapsed());
}
