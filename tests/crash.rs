//! Crash safety with the real binary and SIGKILL (`engine.rs` covers a single running run
//! lost to a crash and the missed-run policies after a graceful stop; this is the rest):
//! - many runs in flight, scheduled ones among them, killed mid-run: after a restart every
//!   definition is intact, every run that was in flight is `lost`, no slot ever ran twice,
//!   and the slots missed while down follow each job's policy;
//! - write-path durability: whatever the API acknowledged survives a SIGKILL sent the
//!   moment the reply arrived, cycle after cycle.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const FLAGS: [&str; 6] = ["--lease-s", "2", "--shutdown-grace-s", "1", "--kill-grace-s", "1"];

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .timestamp_millis()
}

fn is_final(run: &Value) -> bool {
    !matches!(run["outcome"].as_str(), Some("queued" | "running"))
}

async fn runs(api: &Api, job: i64) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let r = api.get(&format!("/api/v1/jobs/byid/{job}/runs?page={page}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let items = v["runs"].as_array().unwrap().clone();
        let done = items.is_empty() || all.len() + items.len() >= v["count"].as_u64().unwrap() as usize;
        all.extend(items);
        if done {
            break;
        }
    }
    all
}

fn scheduled_slots(runs: &[Value]) -> Vec<i64> {
    let mut v: Vec<i64> =
        runs.iter().filter(|r| r["trigger"] == "schedule").map(|r| ms(&r["scheduled_for"])).collect();
    v.sort();
    v
}

#[track_caller]
fn assert_no_slot_twice(runs: &[Value], what: &str) {
    let mut seen = HashSet::new();
    for t in scheduled_slots(runs) {
        assert!(seen.insert(t), "{what}: slot {t} ran twice: {runs:#?}");
    }
}

/// Kills the process groups whose ids the jobs appended to a file (a SIGKILLed server leaves
/// its children running: under systemd the unit's cgroup is killed with it).
struct Orphans(std::path::PathBuf);

impl Drop for Orphans {
    fn drop(&mut self) {
        for pgid in std::fs::read_to_string(&self.0).unwrap_or_default().split_whitespace() {
            if let Ok(pgid) = pgid.parse() {
                kill_job_group(pgid);
            }
        }
    }
}

/// `v` without what moves with the clock (upcoming fire times).
fn stable(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.remove("upcoming");
            for item in map.values_mut() {
                *item = stable(item.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = stable(item.take());
            }
        }
        _ => {}
    }
    v
}

/// The definitional fields of a job (not its next slot or status).
fn definition(job: &Value) -> Value {
    let keys = [
        "id",
        "owner",
        "name",
        "stack",
        "schedule",
        "do_run",
        "do_del",
        "uid",
        "type",
        "command",
        "timeout_s",
        "overlap",
        "missed",
        "retries",
        "retry_backoff_s",
        "created_at",
    ];
    Value::Object(keys.iter().map(|k| (k.to_string(), job[*k].clone())).collect())
}

#[tokio::test]
async fn sigkill_mid_run_loses_no_definition_fires_no_slot_twice_and_follows_missed_policies() {
    let db = TestDb::new();
    let token = add_user(&db, "tester", None);
    let dir = tempfile::tempdir().unwrap();
    let pgids = dir.path().join("pgids");
    let _orphans = Orphans(pgids.clone());
    let mut server = Server::start_on(&db, &FLAGS);
    let mut api = Api::new(&server, Some(&token));

    let stack = api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "s", "command": "true", "env": {"P": pgids.display().to_string()}, "workdir": "/tmp"}),
        )
        .await;
    let every_second = api.create("/api/v1/schedules", json!({"config": {"cron": "* * * * * *"}})).await;
    // Long runs, one more every second: several are in flight when the server dies.
    let long = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": every_second, "name": "long", "enabled": true,
                   "overlap": "allow", "command": "echo $$ >> \"$P\"; exec sleep 120"}),
        )
        .await;
    // And one started by hand.
    let manual_sched =
        api.create("/api/v1/schedules", json!({"config": {"timestamp": 4_102_444_800i64}})).await;
    let manual = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": manual_sched, "name": "manual",
                   "command": "echo $$ >> \"$P\"; exec sleep 120"}),
        )
        .await;

    // Three slots that fall while the server is down, for one job per missed-run policy.
    let s1 = (now_ms() / 1000 + 7) * 1000;
    let slots = [s1, s1 + 1000, s1 + 2000];
    let seconds: Vec<String> = slots.iter().map(|t| ((t / 1000) % 60).to_string()).collect();
    let three = api
        .create("/api/v1/schedules", json!({"config": {"cron": format!("{} * * * * *", seconds.join(","))}}))
        .await;
    let mut policy_jobs = Vec::new();
    for missed in ["skip", "run_once", "catch_up"] {
        let id = api
            .create(
                "/api/v1/jobs",
                json!({"stack_id": stack, "schedule_id": three, "name": missed, "enabled": true,
                       "missed": missed, "command": "true"}),
            )
            .await;
        policy_jobs.push((missed, id));
    }

    let manual_run =
        api.post(&format!("/api/v1/jobs/byid/{manual}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    let in_flight = eventually(Duration::from_secs(15), || async {
        let rs = runs(&api, long).await;
        let running: Vec<i64> =
            rs.iter().filter(|r| r["outcome"] == "running").map(|r| r["id"].as_i64().unwrap()).collect();
        (running.len() >= 3).then_some(running)
    })
    .await
    .expect("three long runs in flight");
    assert!(now_ms() < s1 - 1500, "too slow to kill before the policy slots");

    let mut before = Vec::new();
    for job in [long, manual].into_iter().chain(policy_jobs.iter().map(|p| p.1)) {
        before.push(definition(&api.get(&format!("/api/v1/jobs/byid/{job}")).await.json()));
    }
    let stacks_before = stable(api.get("/api/v1/blockstacks").await.json());
    let schedules_before = stable(api.get("/api/v1/schedules").await.json());

    server.kill9();
    let killed_at = now_ms();
    // Down until the last policy slot is well past the missed-run grace.
    tokio::time::sleep(Duration::from_millis((slots[2] + 2500 - now_ms()).max(0) as u64)).await;
    server = Server::start_on(&db, &FLAGS);
    api = Api::new(&server, Some(&token));
    let restarted_at = now_ms();

    // Definitions intact.
    for (i, job) in [long, manual].into_iter().chain(policy_jobs.iter().map(|p| p.1)).enumerate() {
        assert_eq!(definition(&api.get(&format!("/api/v1/jobs/byid/{job}")).await.json()), before[i]);
    }
    assert_eq!(stable(api.get("/api/v1/blockstacks").await.json()), stacks_before);
    assert_eq!(stable(api.get("/api/v1/schedules").await.json()), schedules_before);

    // Every run that was in flight is lost (after the lease on PostgreSQL), none succeeded.
    let a = &api;
    let lost = eventually(Duration::from_secs(30), || async move {
        let rs = runs(a, long).await;
        let old: Vec<Value> = rs.into_iter().filter(|r| ms(&r["scheduled_for"]) <= killed_at).collect();
        old.iter().all(is_final).then_some(old)
    })
    .await
    .unwrap_or_else(|| panic!("in-flight runs never ended; log:\n{}", server.log()));
    for id in &in_flight {
        let r = lost.iter().find(|r| r["id"] == *id).expect("the in-flight run is still listed");
        assert_eq!(r["outcome"], "lost", "{r}");
        assert!(!r["finished_at"].is_null(), "{r}");
    }
    for r in &lost {
        assert!(matches!(r["outcome"].as_str(), Some("lost")), "a run left by the crash: {r}");
    }
    let m = api.get(&format!("/api/v1/runs/{manual_run}")).await.json();
    assert_eq!(m["outcome"], "lost", "{m}");
    // The long job (missed: skip) ran nothing for the downtime, and never a slot twice.
    let long_runs = runs(&api, long).await;
    assert_no_slot_twice(&long_runs, "long");
    let during: Vec<i64> = scheduled_slots(&long_runs)
        .into_iter()
        .filter(|&t| t > killed_at + 1000 && t < restarted_at - 2000)
        .collect();
    assert!(during.is_empty(), "skip ran downtime slots {during:?}");

    // The policy jobs: skip runs nothing, run_once the newest slot, catch_up all three.
    eventually(Duration::from_secs(20), || async {
        let mut ok = true;
        for (missed, job) in &policy_jobs {
            let want = match *missed {
                "skip" => 0,
                "run_once" => 1,
                _ => 3,
            };
            let rs = runs(a, *job).await;
            ok &= rs.len() >= want && rs.iter().all(is_final);
        }
        ok.then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("missed slots were not run; log:\n{}", server.log()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (missed, job) in &policy_jobs {
        let rs = runs(&api, *job).await;
        assert_no_slot_twice(&rs, missed);
        let want: Vec<i64> = match *missed {
            "skip" => vec![],
            "run_once" => vec![slots[2]],
            _ => slots.to_vec(),
        };
        assert_eq!(scheduled_slots(&rs), want, "{missed}: {rs:#?}");
        for r in &rs {
            assert_eq!(r["outcome"], "succeeded", "{missed}: {r}");
        }
        let j = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
        assert_eq!(ms(&j["next_run"]), slots[0] + 60_000, "{missed}: {j}");
    }
    server.stop();
}

#[tokio::test]
async fn acknowledged_writes_survive_a_sigkill_right_after_the_reply() {
    let db = TestDb::new();
    let token = add_user(&db, "tester", None);
    let cycles = if std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) { 10 } else { 20 };
    // What each cycle was told: (stack id, schedule id, job id, job uid, stack uid, token).
    let mut acked: Vec<(i64, i64, i64, String, String, String)> = Vec::new();
    let mut deleted_jobs: Vec<i64> = Vec::new();
    for cycle in 0..cycles {
        let mut server = Server::start_on(&db, &FLAGS);
        let api = Api::new(&server, Some(&token));
        // Everything acknowledged so far is there, exactly as last written.
        for (i, (stack, sched, job, _, stack_uid, tok)) in acked.iter().enumerate() {
            let s = api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await;
            assert_eq!(s.status, 200, "cycle {cycle}: stack {i} lost: {}", s.text);
            assert_eq!(
                s.json()["command"],
                format!("echo updated-{i}"),
                "cycle {cycle}: stack {i}'s update lost"
            );
            let j = api.get(&format!("/api/v1/jobs/byid/{job}")).await;
            assert_eq!(j.status, 200, "cycle {cycle}: job {i} lost: {}", j.text);
            assert_eq!(j.json()["name"], format!("renamed-{i}"), "cycle {cycle}: job {i}'s update lost");
            assert_eq!(j.json()["schedule"], *sched);
            let v3 = api.get(&format!("/api/3/stacks/{stack_uid}/jobs")).await.json();
            assert_eq!(v3["response"][0]["paused"], true, "cycle {cycle}: pause {i} lost: {v3}");
            let minted = Api::new(&server, Some(tok));
            assert_eq!(minted.get("/api/v1/whoami").await.status, 200, "cycle {cycle}: token {i} lost");
        }
        for job in &deleted_jobs {
            assert_eq!(
                api.get(&format!("/api/v1/jobs/byid/{job}")).await.status,
                404,
                "deleted job {job} is back"
            );
        }
        let i = acked.len();
        let stack =
            api.create("/api/v1/blockstacks", json!({"name": format!("s{i}"), "command": "true"})).await;
        let sched = api.create("/api/v1/schedules", json!({"config": {"period": 86_400}})).await;
        let job = api
            .create(
                "/api/v1/jobs",
                json!({"stack_id": stack, "schedule_id": sched, "name": format!("j{i}"), "enabled": true}),
            )
            .await;
        let doomed = api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
        assert_eq!(api.delete(&format!("/api/v1/jobs/{doomed}")).await.status, 200);
        let tok = api.post("/api/v1/tokens", json!({"scopes": ["public"]})).await.json()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let (stack_uid, job_uid) = api.v3_uids(stack, job).await;
        assert_eq!(
            api.put(&format!("/api/v1/jobs/{job}"), json!({"name": format!("renamed-{i}")})).await.status,
            200
        );
        let r = api.post(&format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/pause"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = api
            .put(&format!("/api/v1/blockstacks/{stack}"), json!({"command": format!("echo updated-{i}")}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // The reply is in: kill at once.
        server.kill9();
        acked.push((stack, sched, job, job_uid, stack_uid, tok));
        deleted_jobs.push(doomed);
    }
    // A last look after a clean start: exact counts, nothing duplicated.
    let server = Server::start_on(&db, &FLAGS);
    let api = Api::new(&server, Some(&token));
    assert_eq!(api.get("/api/v1/blockstacks").await.json()["count"], cycles);
    assert_eq!(api.get("/api/v1/jobs").await.json()["count"], cycles);
    assert_eq!(api.get("/api/v1/tokens").await.json()["count"], cycles + 1);
}
