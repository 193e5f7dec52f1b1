//! Jobs.

use super::*;

#[tokio::test]
async fn jobs_create_and_read_with_every_documented_field() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 86400})).await;

    let r = w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let created = assert_ok(&r);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let plain = created["id"].as_i64().unwrap();

    let j = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{plain}")).await);
    assert_keys(&j, &JOB_KEYS);
    assert_eq!(j["id"], json!(plain));
    assert_eq!(j["name"], Value::Null);
    assert_eq!(j["stack"], json!(stack));
    assert_eq!(j["schedule"], json!(sched));
    assert_eq!(j["next_run"], Value::Null, "disabled by default");
    assert_eq!(j["do_run"], false);
    assert_eq!(j["do_del"], false);
    assert!(is_hex32(&j["uid"]), "{}", j["uid"]);
    assert_eq!(j["owner"], json!(w.alice_id));

    let before = chrono::Utc::now();
    let named = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": sched, "name": "daily report", "enabled": true}),
        )
        .await;
    let j2 = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{named}")).await);
    assert_keys(&j2, &JOB_KEYS);
    assert_eq!(j2["name"], "daily report");
    assert_eq!(j2["do_run"], true);
    assert_eq!(j2["do_del"], false);
    assert_ne!(j2["uid"], j["uid"]);
    // A period of a day fires at the next UTC midnight, within the coming day.
    let next = parse_utc(&j2["next_run"]);
    assert!(next > before, "{next} not after {before}");
    assert!(next <= before + chrono::Duration::seconds(86400 + 5));
    assert_eq!(next.timestamp() % 86400, 0, "{next} is not a midnight");

    let by_name = assert_ok(&w.alice.get("/api/v1/jobs/byname/daily%20report").await);
    assert_eq!(by_name, j2);
    assert_err(&w.alice.get("/api/v1/jobs/byname/nope").await, 404, NOT_FOUND);
    assert_err(&w.alice.get("/api/v1/jobs/byid/999999").await, 404, NOT_FOUND);

    let list = assert_ok(&w.alice.get("/api/v1/jobs").await);
    assert_eq!(list["count"], 2);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    assert_eq!(list["jobs"], json!([j, j2]));
}

#[tokio::test]
async fn job_next_run_follows_cron_timezone_and_timestamp() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let paris = new_schedule(&w.alice, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})).await;
    let at = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;

    let now = chrono::Utc::now();
    let j = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": paris, "enabled": true}))
        .await;
    let job = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{j}")).await);
    let next = parse_utc(&job["next_run"]);
    assert!(next > now && next <= now + chrono::Duration::hours(25), "{next}");
    let local = next.with_timezone(&chrono_tz::Europe::Paris);
    use chrono::Timelike;
    assert_eq!((local.hour(), local.minute(), local.second()), (3, 0, 0), "{local}");

    let t =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": at, "enabled": true})).await;
    assert_eq!(w.alice.job(t).await.next_run.as_deref(), Some("2100-01-01T00:00:00Z"));

    // Disabling clears next_run; enabling again restores it.
    let r = w.alice.put(&format!("/api/v1/jobs/{t}"), json!({"enabled": false})).await;
    let put = assert_ok(&r);
    assert_eq!(put["next_run"], Value::Null);
    assert_eq!(put["do_run"], false);
    let r = w.alice.put(&format!("/api/v1/jobs/{t}"), json!({"enabled": true})).await;
    assert_eq!(assert_ok(&r)["next_run"], "2100-01-01T00:00:00Z");
}

#[tokio::test]
async fn job_put_is_a_partial_update_answering_kragle_fields() {
    let w = world().await;
    let s1 = new_stack(&w.alice, "one").await;
    let s2 = new_stack(&w.alice, "two").await;
    let sc1 = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;
    let sc2 = new_schedule(&w.alice, json!({"period": 86400})).await;
    let id = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": s1, "schedule_id": sc1, "name": "j",
                   "overlap": "allow", "missed": "catch_up", "retries": 3,
                   "retry_backoff_s": 30, "timeout_s": 120, "command": "echo hi"}),
        )
        .await;
    let orig = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{id}")).await);
    assert_eq!(orig["overlap"], "allow");
    assert_eq!(orig["missed"], "catch_up");
    assert_eq!(orig["retries"], 3);
    assert_eq!(orig["retry_backoff_s"], 30);
    assert_eq!(orig["timeout_s"], 120);
    assert_eq!(orig["command"], "echo hi");

    // Only the name.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_keys(&put, &PUT_KEYS);
    assert_eq!(put["owner"], json!(w.alice_id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s1));
    assert_eq!(put["schedule"], json!(sc1));
    assert_eq!(put["next_run"], Value::Null);
    assert_eq!(put["do_run"], false);
    assert_eq!(put["do_del"], false);
    for k in ["overlap", "missed", "retries", "retry_backoff_s", "timeout_s", "command", "uid"] {
        assert_eq!(put[k], orig[k], "{k} changed");
    }

    // Only enabled: the rest stays.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"enabled": true})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s1));
    assert_eq!(put["schedule"], json!(sc1));
    assert_eq!(put["do_run"], true);
    assert_eq!(put["next_run"], "2100-01-01T00:00:00Z");

    // Stack and schedule; a new schedule means a new next_run.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"stack_id": s2, "schedule_id": sc2})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s2));
    assert_eq!(put["schedule"], json!(sc2));
    assert_eq!(put["do_run"], true);
    assert_eq!(parse_utc(&put["next_run"]).timestamp() % 86400, 0);

    // An empty body changes nothing the user set.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({})).await;
    let put = assert_ok(&r);
    let now = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{id}")).await);
    for k in JOB_KEYS {
        assert_eq!(put.get(k), now.get(k), "{k}");
    }
    assert_eq!(now["name"], "renamed");
    assert_eq!(now["retries"], 3);

    // An explicit null clears the name; the job is then no longer found by it.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"name": null})).await;
    assert_eq!(assert_ok(&r)["name"], Value::Null);
    assert_err(&w.alice.get("/api/v1/jobs/byname/renamed").await, 404, NOT_FOUND);

    // The stack lists reflect the move.
    let one = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{s1}")).await);
    assert_eq!(one["jobs"], json!([]));
    let two = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{s2}")).await);
    assert_eq!(two["jobs"][0]["id"], json!(id));
    assert_eq!(two["jobs"][0]["schedule"], json!({"period": 86400}));
    assert_err(&w.alice.put("/api/v1/jobs/999999", json!({"name": "x"})).await, 404, NOT_FOUND);
}

#[tokio::test]
async fn job_delete_is_immediate_when_disabled_and_queued_when_enabled() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;
    let off =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "off"})).await;
    let on = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": sched, "name": "on", "enabled": true}),
        )
        .await;
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 2);

    let r = w.alice.delete(&format!("/api/v1/jobs/{off}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": off}));
    assert_err(&w.alice.get(&format!("/api/v1/jobs/byid/{off}")).await, 404, NOT_FOUND);
    assert_err(&w.alice.get("/api/v1/jobs/byname/off").await, 404, NOT_FOUND);
    assert_err(&w.alice.delete(&format!("/api/v1/jobs/{off}")).await, 404, NOT_FOUND);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 1);

    let r = w.alice.delete(&format!("/api/v1/jobs/{on}")).await;
    assert_eq!(assert_ok(&r), json!({"queued_for_deletion": on}));
    let j = w.alice.job(on).await;
    assert!(j.do_del);
    assert!(j.do_run);
    assert_eq!(j.next_run.as_deref(), Some("2100-01-01T00:00:00Z"));
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 1);
    // Asking again answers the same; a queued job can no longer be changed.
    let r = w.alice.delete(&format!("/api/v1/jobs/{on}")).await;
    assert_eq!(assert_ok(&r), json!({"queued_for_deletion": on}));
    let before = snapshot(&w.alice).await;
    let r = w.alice.put(&format!("/api/v1/jobs/{on}"), json!({"name": "revived"})).await;
    assert_err(&r, 409, BAD_PAYLOAD);
    assert_eq!(snapshot(&w.alice).await, before);
    // Its name stays taken until it is gone.
    let r =
        w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "on"})).await;
    assert_err(&r, 409, JOB_NAME_TAKEN);
}

#[tokio::test]
async fn job_names_are_unique_per_owner_code_12() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let a =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "dup"})).await;
    let b = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "other"}))
        .await;
    // Unnamed jobs never clash.
    for _ in 0..2 {
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    }
    let before = snapshot(&w.alice).await;
    let r =
        w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "dup"})).await;
    assert_err(&r, 409, JOB_NAME_TAKEN);
    let r = w.alice.put(&format!("/api/v1/jobs/{b}"), json!({"name": "dup"})).await;
    assert_err(&r, 409, JOB_NAME_TAKEN);
    assert_eq!(snapshot(&w.alice).await, before);

    // Bob may use the name; each byname finds the caller's own.
    let bs = new_stack(&w.bob, "s").await;
    let bsc = new_schedule(&w.bob, json!({"period": 3600})).await;
    let bob_dup =
        w.bob.create("/api/v1/jobs", json!({"stack_id": bs, "schedule_id": bsc, "name": "dup"})).await;
    let r = w.alice.get("/api/v1/jobs/byname/dup").await;
    assert_eq!(assert_ok(&r)["id"], json!(a));
    let r = w.bob.get("/api/v1/jobs/byname/dup").await;
    assert_eq!(assert_ok(&r)["id"], json!(bob_dup));
}

#[tokio::test]
async fn job_references_must_be_the_callers_codes_24_and_25() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job = w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let bob_stack = new_stack(&w.bob, "b").await;
    let bob_sched = new_schedule(&w.bob, json!({"period": 3600})).await;
    let before = snapshot(&w.alice).await;

    let cases = [
        (json!({"stack_id": 999999, "schedule_id": sched}), NO_SUCH_STACK),
        (json!({"stack_id": bob_stack, "schedule_id": sched}), NO_SUCH_STACK),
        (json!({"stack_id": -1, "schedule_id": sched}), NO_SUCH_STACK),
        (json!({"stack_id": stack, "schedule_id": 999999}), NO_SUCH_SCHEDULE),
        (json!({"stack_id": stack, "schedule_id": bob_sched}), NO_SUCH_SCHEDULE),
    ];
    for (body, code) in &cases {
        let r = w.alice.post("/api/v1/jobs", body.clone()).await;
        assert_err(&r, 404, *code);
        let r = w.alice.put(&format!("/api/v1/jobs/{job}"), body.clone()).await;
        assert_err(&r, 404, *code);
    }
    // Required fields, named.
    let r = w.alice.post("/api/v1/jobs", json!({"schedule_id": sched})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("stack_id"));
    let r = w.alice.post("/api/v1/jobs", json!({"stack_id": stack})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("schedule_id"));
    let r = w.alice.post("/api/v1/jobs", json!({})).await;
    assert_err(&r, 400, BAD_PAYLOAD);
    assert_eq!(snapshot(&w.alice).await, before);
}
