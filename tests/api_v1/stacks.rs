//! Stacks.

use super::*;

#[tokio::test]
async fn stacks_create_and_read_by_id_and_name_with_every_field() {
    let w = world().await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({
                "name": "nightly backup",
                "command": "tar czf /tmp/b.tgz /etc",
                "env": {"TARGET": "s3://bucket", "LEVEL": "9"},
                "workdir": "/var/tmp",
            }),
        )
        .await;
    let created = assert_ok(&r);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let id = created["id"].as_i64().unwrap();

    let r = w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
    let s = assert_ok(&r);
    assert_eq!(s["id"], json!(id));
    assert!(is_hex32(&s["uid"]), "uid: {}", s["uid"]);
    assert_eq!(s["owner"], json!(w.alice_id));
    assert_eq!(s["name"], "nightly backup");
    assert_eq!(s["command"], "tar czf /tmp/b.tgz /etc");
    assert_eq!(s["env"], json!({"TARGET": "s3://bucket", "LEVEL": "9"}));
    assert_eq!(s["workdir"], "/var/tmp");
    assert_eq!(s["webhook"], Value::Null);
    assert_eq!(s["webhook_method"], "POST");
    assert_eq!(s["webhook_token"], Value::Null);
    assert_eq!(s["jobs"], json!([]));
    let created_at = parse_utc(&s["created_at"]);
    assert!(created_at <= chrono::Utc::now() + chrono::Duration::seconds(5));

    // By name (percent-encoded space), the same object.
    let r = w.alice.get("/api/v1/blockstacks/byname/nightly%20backup").await;
    assert_eq!(assert_ok(&r), s);
    // The list holds it too.
    let r = w.alice.get("/api/v1/blockstacks").await;
    let list = assert_ok(&r);
    assert_eq!(list["count"], 1);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    assert_eq!(list["stacks"], json!([s]));

    // Defaults for the optional fields.
    let id2 = new_stack(&w.alice, "minimal").await;
    let s2 = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id2}")).await);
    assert_eq!(s2["env"], json!({}));
    assert_eq!(s2["workdir"], Value::Null);
    assert_ne!(s2["uid"], s["uid"]);

    // Unknown id and name: 404, code 6.
    assert_err(&w.alice.get("/api/v1/blockstacks/byid/999999").await, 404, NOT_FOUND);
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/nope").await, 404, NOT_FOUND);
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/Nightly%20Backup").await, 404, NOT_FOUND);
}

#[tokio::test]
async fn stacks_put_is_a_partial_update() {
    let w = world().await;
    let id = w
        .alice
        .create(
            "/api/v1/blockstacks",
            json!({"name": "a", "command": "echo a", "env": {"X": "1"}, "workdir": "/tmp"}),
        )
        .await;
    let before = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await);

    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["id"], json!(id));
    assert_eq!(put["owner"], json!(w.alice_id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo a");
    assert_eq!(put["env"], json!({"X": "1"}));
    assert_eq!(put["workdir"], "/tmp");
    assert_eq!(put["uid"], before["uid"]);
    assert_eq!(put["webhook"], Value::Null);
    assert_eq!(put["webhook_method"], "POST");
    assert_eq!(put["jobs"], json!([]));

    let r = w
        .alice
        .put(
            &format!("/api/v1/blockstacks/{id}"),
            json!({"command": "echo b", "env": {"Y": "2"}, "workdir": null}),
        )
        .await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo b");
    assert_eq!(put["env"], json!({"Y": "2"}));
    assert_eq!(put["workdir"], Value::Null);

    // An empty PUT changes nothing visible but the timestamp.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo b");

    // The old name is free again; the new one is looked up.
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/a").await, 404, NOT_FOUND);
    let r = w.alice.get("/api/v1/blockstacks/byname/renamed").await;
    assert_eq!(assert_ok(&r)["id"], json!(id));
    assert_err(&w.alice.put("/api/v1/blockstacks/999999", json!({"name": "x"})).await, 404, NOT_FOUND);
}

#[tokio::test]
async fn stack_names_are_unique_per_owner_code_10() {
    let w = world().await;
    let a = new_stack(&w.alice, "alpha").await;
    let b = new_stack(&w.alice, "beta").await;
    let before = snapshot(&w.alice).await;

    let r = w.alice.post("/api/v1/blockstacks", json!({"name": "alpha", "command": "true"})).await;
    assert!(assert_err(&r, 409, STACK_NAME_TAKEN).contains("name"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{b}"), json!({"name": "alpha"})).await;
    assert_err(&r, 409, STACK_NAME_TAKEN);
    assert_eq!(snapshot(&w.alice).await, before);

    // Renaming a stack to its own name is no conflict.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{a}"), json!({"name": "alpha"})).await;
    assert_eq!(assert_ok(&r)["name"], "alpha");
    // Another user may use the same name.
    let bob_alpha = new_stack(&w.bob, "alpha").await;
    assert_ne!(bob_alpha, a);
    let r = w.alice.get("/api/v1/blockstacks/byname/alpha").await;
    assert_eq!(assert_ok(&r)["id"], json!(a));
    let r = w.bob.get("/api/v1/blockstacks/byname/alpha").await;
    assert_eq!(assert_ok(&r)["id"], json!(bob_alpha));
}

#[tokio::test]
async fn stack_webhook_fields() {
    let w = world().await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({"name": "hooked", "command": "true", "webhook": "token", "webhook_method": "GET"}),
        )
        .await;
    let id = assert_ok(&r)["id"].as_i64().unwrap();
    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await);
    assert_eq!(s["webhook"], "token");
    assert_eq!(s["webhook_method"], "GET");
    assert!(is_hex32(&s["webhook_token"]), "{}", s["webhook_token"]);
    let token = s["webhook_token"].clone();

    // Changing the method keeps the token.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook_method": "POST"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["webhook"], "token");
    assert_eq!(put["webhook_method"], "POST");
    assert_eq!(put["webhook_token"], token);

    for access in ["public", "user"] {
        let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook": access})).await;
        assert_eq!(assert_ok(&r)["webhook"], access);
    }
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook": null})).await;
    assert_eq!(assert_ok(&r)["webhook"], Value::Null);

    let p = w
        .alice
        .create("/api/v1/blockstacks", json!({"name": "pub", "command": "true", "webhook": "public"}))
        .await;
    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{p}")).await);
    assert_eq!(s["webhook"], "public");
    assert_eq!(s["webhook_method"], "POST");
    assert_eq!(s["webhook_token"], Value::Null);

    // Invalid enum values name the field and change nothing.
    let before = snapshot(&w.alice).await;
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "bad", "command": "true", "webhook": "everyone"}))
        .await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("webhook"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{p}"), json!({"webhook_method": "PUT"})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("webhook_method"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{p}"), json!({"webhook_method": "get"})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("webhook_method"));
    assert_eq!(snapshot(&w.alice).await, before);
}

#[tokio::test]
async fn stack_with_schedule_id_creates_its_first_job_and_lists_jobs() {
    let w = world().await;
    let sched = new_schedule(&w.alice, json!({"period": 86400})).await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({"name": "daily", "command": "true", "schedule_id": sched, "enabled": true}),
        )
        .await;
    let stack = assert_ok(&r)["id"].as_i64().unwrap();

    let jobs = assert_ok(&w.alice.get("/api/v1/jobs").await);
    assert_eq!(jobs["count"], 1);
    let job = &jobs["jobs"][0];
    let job_id = job["id"].as_i64().unwrap();
    assert_eq!(job["stack"], json!(stack));
    assert_eq!(job["schedule"], json!(sched));
    assert_eq!(job["do_run"], true);
    assert_eq!(job["do_del"], false);
    assert!(parse_utc(&job["next_run"]) > chrono::Utc::now());

    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{stack}")).await);
    assert_eq!(
        s["jobs"],
        json!([{"id": job_id, "name": null, "do_run": true, "schedule": {"period": 86400}}])
    );

    // A second, named, disabled job on a cron schedule shows in the stack's list.
    let cron = new_schedule(&w.alice, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})).await;
    let j2 = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": cron, "name": "second"}))
        .await;
    let s = assert_ok(&w.alice.get("/api/v1/blockstacks/byname/daily").await);
    assert_eq!(
        s["jobs"],
        json!([
            {"id": job_id, "name": null, "do_run": true, "schedule": {"period": 86400}},
            {"id": j2, "name": "second", "do_run": false,
             "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}},
        ])
    );
    // PUT answers the stack with its jobs as ids (Kragle's PUT shape).
    let r = w.alice.put(&format!("/api/v1/blockstacks/{stack}"), json!({"command": "date"})).await;
    assert_eq!(assert_ok(&r)["jobs"], json!([job_id, j2]));
    // PUT with schedule_id adds a job.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{stack}"), json!({"schedule_id": sched})).await;
    let ids = assert_ok(&r)["jobs"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 3);

    // A stack without schedule_id: enabled makes no sense; a foreign/missing schedule is 25.
    let before = snapshot(&w.alice).await;
    let r =
        w.alice.post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "enabled": true})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("enabled"));
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "schedule_id": 999999}))
        .await;
    assert_err(&r, 404, NO_SUCH_SCHEDULE);
    let bob_sched = new_schedule(&w.bob, json!({"period": 60})).await;
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "schedule_id": bob_sched}))
        .await;
    assert_err(&r, 404, NO_SUCH_SCHEDULE);
    assert_eq!(snapshot(&w.alice).await, before);
}

#[tokio::test]
async fn a_stack_is_deleted_only_once_no_job_uses_it() {
    let w = world().await;
    let id = new_stack(&w.alice, "keep").await;
    let schedule = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": id, "schedule_id": schedule, "name": "user"}))
        .await;
    // Its hook job (created by an exec) does not count, and goes with it.
    let r = w.alice.post(&format!("/api/v1/blockstacks/exec/{id}"), json!({})).await;
    assert!(r.status < 300, "{}", r.text);
    let exec_run = r.json()["success"][0].as_i64().unwrap_or_else(|| panic!("no run id: {}", r.text));
    let before = snapshot(&w.alice).await;
    let r = w.alice.delete(&format!("/api/v1/blockstacks/{id}")).await;
    assert!(assert_err(&r, 409, BAD_PAYLOAD).contains("user"), "{}", r.text);
    assert_eq!(snapshot(&w.alice).await, before);
    // Someone else's stack, or none: not found.
    assert_err(&w.bob.delete(&format!("/api/v1/blockstacks/{id}")).await, 404, NOT_FOUND);
    assert_err(&w.alice.delete("/api/v1/blockstacks/999999").await, 404, NOT_FOUND);
    assert_eq!(w.alice.delete(&format!("/api/v1/jobs/{job}?now=1")).await.status, 200);
    // Let the exec's run end before its job goes (a run in flight is not what this checks).
    w.alice.run_ended(exec_run).await;
    let r = w.alice.delete(&format!("/api/v1/blockstacks/{id}")).await;
    assert_eq!((r.status, r.json()), (200, json!({"deleted": id})), "{}", r.text);
    assert_err(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await, 404, NOT_FOUND);
    assert_err(
        &w.alice.send("PATCH", &format!("/api/v1/blockstacks/{id}"), Some(json!({}))).await,
        405,
        BAD_PAYLOAD,
    );
    // Unknown endpoints under /api/v1 speak Kragle too.
    assert_err(&w.alice.get("/api/v1/nothing-here").await, 404, NOT_FOUND);
}
