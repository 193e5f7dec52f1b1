//! A job's slots beyond its schedule: a deterministic jitter, a window (`not_before` /
//! `not_after`) and a run limit (`max_runs`), on both backends; the jitter agrees across two
//! nodes on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().timestamp_millis()
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

/// The jitter as the README states it: FNV-1a of the job's uid, xor the slot, SplitMix64's
/// finaliser, modulo the jitter in ms.
fn expected_jitter(uid: &str, slot: i64, jitter_ms: i64) -> i64 {
    let seed =
        uid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut z = seed ^ slot as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % jitter_ms as u64) as i64
}

async fn setup(api: &Api, period: i64) -> (i64, i64) {
    let name = format!("s{period}");
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": period}})).await;
    (stack, schedule)
}

async fn scheduled_runs(api: &Api, job: i64) -> Vec<Value> {
    let v = api.get(&format!("/api/v1/jobs/byid/{job}/runs?page=1")).await.json();
    let mut runs: Vec<Value> =
        v["runs"].as_array().unwrap().iter().filter(|r| r["trigger"] == "schedule").cloned().collect();
    runs.reverse();
    runs
}

#[tokio::test(flavor = "multi_thread")]
async fn each_slot_fires_after_its_own_jitter_the_same_on_every_node() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let on_pg = std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty());
    let a = Server::start_on(&db, &[]);
    // On PostgreSQL a second node claims some of the slots: it must place them alike.
    let b = on_pg.then(|| Server::start_on(&db, &[]));
    if let Some(b) = &b {
        wait_joined(&[&a, b], &token).await;
    }
    let api = Api::new(&a, Some(&token));
    let (stack, schedule) = setup(&api, 2).await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let j = api
            .create(
                "/api/v1/jobs",
                json!({"stack_id": stack, "schedule_id": schedule, "name": format!("j{i}"), "enabled": true,
                       "jitter_s": 2, "overlap": "allow"}),
            )
            .await;
        jobs.push(j);
    }
    tokio::time::sleep(Duration::from_secs(9)).await;
    drop(b);
    let mut checked = 0;
    let mut nodes = std::collections::HashSet::new();
    let mut distinct = std::collections::HashSet::new();
    for job in &jobs {
        let uid =
            api.get(&format!("/api/v1/jobs/byid/{job}")).await.json()["uid"].as_str().unwrap().to_string();
        for run in scheduled_runs(&api, *job).await {
            let slot = ms(&run["scheduled_for"]);
            assert_eq!(slot % 2000, 0, "scheduled_for stays the slot: {run}");
            let jitter = run["jitter_ms"].as_i64().unwrap();
            assert!((0..2000).contains(&jitter), "{run}");
            assert_eq!(
                jitter,
                expected_jitter(&uid, slot, 2000),
                "the jitter is the documented function of (job, slot)"
            );
            if let Some(started) = run["started_at"].as_str() {
                let started = ms(&json!(started));
                assert!(started >= slot + jitter, "started before its jittered time: {run}");
                assert_eq!(run["lateness_ms"].as_i64().unwrap(), started - slot - jitter, "{run}");
            }
            nodes.insert(run["node"].as_str().unwrap_or_default().to_string());
            distinct.insert(jitter);
            checked += 1;
        }
    }
    assert!(checked >= 24, "{checked} runs");
    assert!(distinct.len() > checked / 2, "jitters spread: {distinct:?}");
    if on_pg {
        assert_eq!(nodes.len(), 2, "both nodes fired some slots: {nodes:?}");
    }
    // A jitter out of range is refused and changes nothing.
    let (_, sched) = setup(&api, 60).await;
    let r = api.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "jitter_s": -1})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("jitter_s"), "{}", r.text);
}

#[tokio::test]
async fn slots_outside_the_window_never_fire() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let (stack, schedule) = setup(&api, 1).await;
    let start = (now_ms() / 1000 + 3) * 1000;
    let end = start + 2000;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "window", "enabled": true,
                   "not_before": iso(start), "not_after": iso(end)}),
        )
        .await;
    let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert_eq!(ms(&v["next_run"]), start, "next_run respects not_before: {v}");
    assert_eq!(ms(&v["not_before"]), start);
    tokio::time::sleep(Duration::from_millis((end - now_ms() + 2500) as u64)).await;
    let slots: Vec<i64> = scheduled_runs(&api, job).await.iter().map(|r| ms(&r["scheduled_for"])).collect();
    assert_eq!(slots, vec![start, start + 1000, end], "exactly the window's slots");
    let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert!(v["next_run"].is_null(), "no slot after not_after: {v}");
    assert_eq!(v["do_run"], false, "a job whose window is over disables itself, like a one-time job: {v}");

    // Refusals: an end before the start, a time that is not RFC 3339.
    for (body, field) in [
        (json!({"not_before": iso(end), "not_after": iso(start)}), "not_after"),
        (json!({"not_before": "tomorrow"}), "not_before"),
    ] {
        let r = api.put(&format!("/api/v1/jobs/{job}"), body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
    }
    // null clears the window; enabled again, it fires on.
    let r = api.put(&format!("/api/v1/jobs/{job}"), json!({"not_after": null, "enabled": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert!(v["not_after"].is_null() && !v["next_run"].is_null(), "{v}");
}

#[tokio::test]
async fn a_job_disables_itself_after_max_runs() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let (stack, schedule) = setup(&api, 1).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "thrice", "enabled": true, "max_runs": 3}),
        )
        .await;
    let done = eventually(Duration::from_secs(10), || async {
        let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
        (v["do_run"] == false).then_some(v)
    })
    .await
    .expect("the job disabled itself");
    assert_eq!(done["runs_fired"], 3, "{done}");
    assert!(done["next_run"].is_null(), "{done}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(scheduled_runs(&api, job).await.len(), 3, "exactly max_runs scheduled runs");

    // Enabling it again without a new limit is refused; a new limit counts afresh.
    let r = api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("max_runs"), "{}", r.text);
    let r = api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true, "max_runs": 1})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = eventually(Duration::from_secs(5), || async {
        let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
        (v["do_run"] == false).then_some(v)
    })
    .await
    .expect("disabled again after one more run");
    assert_eq!(again["runs_fired"], 1, "{again}");
    assert_eq!(scheduled_runs(&api, job).await.len(), 4);
    let r = api.put(&format!("/api/v1/jobs/{job}"), json!({"max_runs": 0})).await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn a_queued_slot_waits_for_the_running_run_and_one_more_is_skipped() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "slow", "command": "sleep 2.5"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "q", "enabled": true, "overlap": "queue"}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = scheduled_runs(&api, job).await;
    let ran: Vec<&Value> = runs.iter().filter(|r| r["outcome"] == "succeeded").collect();
    let skipped = runs.iter().filter(|r| r["outcome"] == "skipped").count();
    assert!(ran.len() >= 2 && skipped >= 2, "{runs:#?}");
    // Never two at once: each started after the previous one finished, and a queued one
    // started late, with that lateness recorded.
    for pair in ran.windows(2) {
        assert!(ms(&pair[1]["started_at"]) >= ms(&pair[0]["finished_at"]), "{pair:#?}");
    }
    assert!(ran.iter().skip(1).all(|r| r["lateness_ms"].as_i64().unwrap() > 500), "{ran:#?}");
}

#[tokio::test]
async fn a_backfill_runs_each_missing_slot_once_oldest_first() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let ledger = db.dir().join("backfill");
    let server = Server::start_on(&db, &["--catch-up-max", "10"]);
    let api = Api::new(&server, Some(&token));
    let command = format!("echo \"$CRONSTACK_SCHEDULED_FOR\" >> '{}'", ledger.display());
    let stack = api.create("/api/v1/blockstacks", json!({"name": "b", "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 * * * *"}})).await;
    let job = api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "hourly"}))
        .await;
    let path = format!("/api/v1/jobs/byid/{job}/backfill");

    // Hours 01:00 … 04:00 of a past day: four slots, queued one after another.
    let body = json!({"from": "2026-01-01T00:30:00Z", "to": "2026-01-01T04:00:00Z", "overlap": "queue"});
    let r = api.post(&path, body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["count"], 4, "{v}");
    assert!(v["runs"].as_array().unwrap().iter().all(|r| r["trigger"] == "backfill"), "{v}");
    let wrote = eventually(Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(&ledger).unwrap_or_default();
        (text.lines().count() == 4).then_some(text)
    })
    .await
    .expect("four backfill runs");
    let expected: Vec<String> = (1..=4).map(|h| format!("2026-01-01T0{h}:00:00Z")).collect();
    assert_eq!(wrote.lines().collect::<Vec<_>>(), expected, "oldest first");

    // Again, over a wider range: only the slots that never ran.
    let r = api.post(&path, json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T05:00:00Z"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let slots: Vec<String> = r.json()["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scheduled_for"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(slots, vec!["2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z"]);

    // More than --catch-up-max slots: refused, naming the count; nothing runs.
    let r = api.post(&path, json!({"from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("25 slots"), "{}", r.text);
    let r = api.post(&path, json!({"from": "yesterday", "to": "2026-02-02T00:00:00Z"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 6);
}

#[tokio::test]
async fn each_job_on_an_h_schedule_gets_the_values_its_uid_picks() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "h", "command": "true"})).await;
    let schedule = api
        .create("/api/v1/schedules", json!({"config": {"cron": "H H * * *", "timezone": "Europe/Paris"}}))
        .await;
    let mut next_runs = std::collections::HashSet::new();
    for i in 0..4 {
        let job = api
            .create(
                "/api/v1/jobs",
                json!({"stack_id": stack, "schedule_id": schedule, "name": format!("h{i}"), "enabled": true}),
            )
            .await;
        let v = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
        // What `cronstack next --hash-key UID` says the job gets.
        let out = std::process::Command::new(BIN)
            .args([
                "next",
                "H H * * *",
                "--tz",
                "Europe/Paris",
                "-n",
                "1",
                "-o",
                "json",
                "--hash-key",
                v["uid"].as_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let next: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(ms(&v["next_run"]), ms(&next["upcoming"][0]), "job {job}: {v} vs {next}");
        next_runs.insert(v["next_run"].to_string());
    }
    assert!(next_runs.len() > 1, "H spreads the jobs: {next_runs:?}");
}
