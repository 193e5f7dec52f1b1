//! A job's deletion takes its schedule along when asked (`DELETE /api/v1/jobs/<id>?schedule=1`,
//! what `cronstack jobs rm` asks for a job's own schedule): at once, or — for an enabled job,
//! whose deletion waits for its next slot — at that slot, on whichever node claims it; in both
//! cases only if no other job uses the schedule by then. SQLite, or PostgreSQL with
//! `CRONSTACK_TEST_POSTGRES` (two nodes there).

mod common;

use std::time::Duration;

use common::cli::*;
use common::*;
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A cron schedule (with seconds) whose next slot is the second about `ahead_s` from now.
fn slot_config(ahead_s: i64) -> (Value, i64) {
    let slot = (now_ms() / 1000 + ahead_s) * 1000;
    (json!({"cron": format!("{} * * * * *", (slot / 1000) % 60), "timezone": "UTC"}), slot)
}

async fn schedule(api: &Api, config: Value) -> i64 {
    api.create("/api/v1/schedules", json!({ "config": config })).await
}

async fn job(api: &Api, stack: i64, schedule: i64, name: &str, enabled: bool) -> i64 {
    let body = json!({"name": name, "stack_id": stack, "schedule_id": schedule, "enabled": enabled});
    api.create("/api/v1/jobs", body).await
}

async fn status(api: &Api, path: &str) -> u16 {
    api.get(path).await.status
}

/// Waits (up to `within`) until `path` answers 404.
async fn gone(api: &Api, path: &str, within: Duration) -> bool {
    eventually(within, || async { (status(api, path).await == 404).then_some(()) }).await.is_some()
}

#[tokio::test]
async fn deleted_at_once_the_schedule_goes_too_unless_another_job_uses_it() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;

    // A paused job goes at once; with schedule=1 its schedule with it.
    let own = schedule(&api, json!({"period": 3600})).await;
    let paused = job(&api, stack, own, "paused", false).await;
    let r = api.delete(&format!("/api/v1/jobs/{paused}?schedule=1")).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"deleted": paused, "deleted_schedule": own})),
        "{}",
        r.text
    );
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{own}")).await, 404);

    // A schedule another job uses stays; the answer says nothing of it.
    let shared = schedule(&api, json!({"period": 3600})).await;
    let first = job(&api, stack, shared, "first", true).await;
    let second = job(&api, stack, shared, "second", true).await;
    let r = api.delete(&format!("/api/v1/jobs/{first}?now=1&schedule=1")).await;
    assert_eq!((r.status, r.json()), (200, json!({"deleted": first})), "{}", r.text);
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{shared}")).await, 200);

    // Without schedule=1 nothing changes: the last job's schedule stays.
    let r = api.delete(&format!("/api/v1/jobs/{second}?now=1")).await;
    assert_eq!((r.status, r.json()), (200, json!({"deleted": second})), "{}", r.text);
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{shared}")).await, 200);

    // A queued deletion asks for the schedule when queued or later; a cancel forgets it.
    let kept = schedule(&api, json!({"period": 3600})).await;
    let queued = job(&api, stack, kept, "queued", true).await;
    let r = api.delete(&format!("/api/v1/jobs/{queued}")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": queued}));
    let r = api.delete(&format!("/api/v1/jobs/{queued}?schedule=1")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": queued, "with_schedule": kept}));
    let r = api.delete(&format!("/api/v1/jobs/{queued}")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": queued, "with_schedule": kept}), "asked once, kept");
    let r = api.put(&format!("/api/v1/jobs/{queued}"), json!({"do_del": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.delete(&format!("/api/v1/jobs/{queued}?now=1")).await;
    assert_eq!(r.json(), json!({"deleted": queued}), "the cancel forgot the schedule");
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{kept}")).await, 200);

    // Strict input: a bad id is a 4xx in Kragle's shape, nothing is deleted.
    let r = api.delete("/api/v1/jobs/nope?schedule=1").await;
    assert!((400..500).contains(&r.status), "{}", r.text);
}

#[tokio::test]
async fn a_queued_deletion_takes_the_schedule_at_the_jobs_slot() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let (config, slot) = slot_config(4);
    let alone = schedule(&api, config.clone()).await;
    let shared = schedule(&api, config).await;
    let doomed = job(&api, stack, alone, "doomed", true).await;
    let also_doomed = job(&api, stack, shared, "also-doomed", true).await;
    for (id, sid) in [(doomed, alone), (also_doomed, shared)] {
        let r = api.delete(&format!("/api/v1/jobs/{id}?schedule=1")).await;
        assert_eq!(r.json(), json!({"queued_for_deletion": id, "with_schedule": sid}), "{}", r.text);
    }
    // Another job takes `shared` before the slot: it must stay then. (Paused: it never fires.)
    let newcomer = job(&api, stack, shared, "newcomer", false).await;
    assert!(now_ms() < slot - 500, "the test itself was too slow to show the deferral");
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{alone}")).await, 200, "not before the slot");

    assert!(
        gone(&api, &format!("/api/v1/jobs/byid/{doomed}"), Duration::from_secs(15)).await,
        "{}",
        server.log()
    );
    assert!(now_ms() >= slot - 1000, "deleted at its slot, not at once");
    assert!(gone(&api, &format!("/api/v1/schedules/byid/{alone}"), Duration::from_secs(5)).await);
    assert!(gone(&api, &format!("/api/v1/jobs/byid/{also_doomed}"), Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(&api, &format!("/api/v1/schedules/byid/{shared}")).await, 200, "the newcomer's");
    assert_eq!(status(&api, &format!("/api/v1/jobs/byid/{newcomer}")).await, 200);
    let runs = api.get("/api/v1/jobs").await.json();
    assert_eq!(runs["count"], 1, "{runs}");
}

/// `cronstack jobs rm` of an enabled job asks for its own schedule (named after it), and the
/// schedule goes at the slot; a shared, named schedule is not its own and stays.
#[tokio::test]
async fn jobs_rm_queues_the_jobs_own_schedule_with_it() {
    let w = world();
    let api = Api::new(&w.server, Some(&w.token));
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    let (config, slot) = slot_config(5);
    let cron = config["cron"].as_str().unwrap().to_string();
    w.ok(&["jobs", "create", "doomed", "--stack", "s", "--cron", &cron, "--tz", "UTC"]);
    w.ok(&["schedules", "create", "shared", "--cron", &cron, "--tz", "UTC"]);
    w.ok(&["jobs", "create", "other", "--stack", "s", "--schedule", "shared"]);
    let own = w.json(&["jobs", "show", "doomed"])["schedule"].as_i64().unwrap();

    let out = w.ok(&["jobs", "rm", "doomed"]);
    assert!(
        out.contains("deleted at its next slot") && out.contains(&format!("its schedule {own} with it")),
        "{out}"
    );
    let answer = w.json(&["jobs", "rm", "other"]);
    assert_eq!(answer.get("with_schedule"), None, "a named, shared schedule is not the job's own: {answer}");
    assert!(now_ms() < slot - 500, "the test itself was too slow to show the deferral");

    let doomed_path = format!("/api/v1/schedules/byid/{own}");
    assert!(gone(&api, &doomed_path, Duration::from_secs(15)).await, "{}", w.server.log());
    let names: Vec<Value> =
        w.json(&["schedules", "ls"]).as_array().unwrap().iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, vec![json!("shared")]);
    assert!(w.json(&["jobs", "ls"]).as_array().unwrap().is_empty());
}

/// PostgreSQL: the node that queued the deletion is gone by the slot; the other node claims
/// the slot, deletes the job and its schedule.
#[tokio::test]
async fn on_a_cluster_whichever_node_claims_the_slot_deletes_the_schedule() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let mut a = Server::start_on(&db, &[]);
    let b = Server::start_on(&db, &[]);
    let on_a = Api::new(&a, Some(&token));
    let on_b = Api::new(&b, Some(&token));
    let stack = on_a.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let (config, slot) = slot_config(5);
    let sched = schedule(&on_a, config).await;
    let doomed = job(&on_a, stack, sched, "doomed", true).await;
    let r = on_a.delete(&format!("/api/v1/jobs/{doomed}?schedule=1")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": doomed, "with_schedule": sched}));
    a.stop();
    assert!(now_ms() < slot - 500, "the test itself was too slow to show the deferral");
    assert!(
        gone(&on_b, &format!("/api/v1/jobs/byid/{doomed}"), Duration::from_secs(20)).await,
        "{}",
        b.log()
    );
    assert!(
        gone(&on_b, &format!("/api/v1/schedules/byid/{sched}"), Duration::from_secs(5)).await,
        "{}",
        b.log()
    );
}
