//! Schedules.

use super::*;

#[tokio::test]
async fn schedules_period_timestamp_and_cron_configs() {
    let w = world().await;
    let period =
        w.alice.create("/api/v1/schedules", json!({"name": "hourly", "config": {"period": 3600}})).await;
    let ts = w
        .alice
        .create(
            "/api/v1/schedules",
            json!({"name": "new year", "once": true, "config": {"timestamp": FAR_TS}}),
        )
        .await;
    // A timestamp fires once by nature, whatever `once` says.
    let ts2 = w.alice.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    let cron = w
        .alice
        .create(
            "/api/v1/schedules",
            json!({"name": "paris 3am", "config": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}}),
        )
        .await;
    let cron_utc = w.alice.create("/api/v1/schedules", json!({"config": {"cron": "*/5 * * * * *"}})).await;
    let once_period =
        w.alice.create("/api/v1/schedules", json!({"once": true, "config": {"period": 1}})).await;

    let expect = [
        (period, json!("hourly"), false, json!({"period": 3600})),
        (ts, json!("new year"), true, json!({"timestamp": FAR_TS})),
        (ts2, Value::Null, true, json!({"timestamp": FAR_TS})),
        (cron, json!("paris 3am"), false, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})),
        (cron_utc, Value::Null, false, json!({"cron": "*/5 * * * * *", "timezone": "UTC"})),
        (once_period, Value::Null, true, json!({"period": 1})),
    ];
    let list = assert_ok(&w.alice.get("/api/v1/schedules").await);
    assert_eq!(list["count"], 6);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    let items = list["schedules"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for (i, (id, name, once, config)) in expect.iter().enumerate() {
        let one = assert_ok(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await);
        assert_eq!(one["id"], json!(id));
        assert_eq!(one["name"], *name, "{one}");
        assert_eq!(one["once"], json!(once), "{one}");
        assert_eq!(one["config"], *config, "{one}");
        if items[i] != one {
            // `upcoming` moves on as the clock passes a slot (every second for `period: 1`), and
            // a slow run may pass one between the list and this read: read both again, close
            // together, before calling it a difference.
            let again = eventually(std::time::Duration::from_secs(5), || async {
                let listed = assert_ok(&w.alice.get("/api/v1/schedules").await)["schedules"][i].clone();
                let one = assert_ok(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await);
                (listed == one).then_some(())
            })
            .await;
            if again.is_none() {
                assert_eq!(items[i], one, "list entry {i} differs from byid");
            }
        }
    }
    assert_err(&w.alice.get("/api/v1/schedules/byid/999999").await, 404, NOT_FOUND);
}

#[tokio::test]
async fn schedule_put_updates_and_delete_removes_when_unused() {
    let w = world().await;
    let id = w.alice.create("/api/v1/schedules", json!({"name": "s", "config": {"period": 60}})).await;
    let r = w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["id"], json!(id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["once"], false);
    assert_eq!(put["config"], json!({"period": 60}));

    let r = w
        .alice
        .put(
            &format!("/api/v1/schedules/{id}"),
            json!({"config": {"cron": "15 4 * * 1-5", "timezone": "America/New_York"}, "once": true}),
        )
        .await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["once"], true);
    assert_eq!(put["config"], json!({"cron": "15 4 * * 1-5", "timezone": "America/New_York"}));
    let got = assert_ok(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await);
    assert_eq!(got["config"], put["config"]);
    assert_eq!(got["once"], true);

    let r = w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": null, "once": false})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], Value::Null);
    assert_eq!(put["once"], false);

    let r = w.alice.delete(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": id}));
    assert_err(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await, 404, NOT_FOUND);
    assert_err(&w.alice.delete(&format!("/api/v1/schedules/{id}")).await, 404, NOT_FOUND);
    assert_err(&w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": "x"})).await, 404, NOT_FOUND);
    assert_eq!(count(&w.alice, "/api/v1/schedules").await, 0);
}

#[tokio::test]
async fn schedule_in_use_cannot_be_changed_or_deleted_code_27() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched =
        w.alice.create("/api/v1/schedules", json!({"name": "used", "config": {"period": 86400}})).await;
    let job = w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let before = snapshot(&w.alice).await;
    for body in [json!({"config": {"period": 60}}), json!({"name": "other"}), json!({"once": true})] {
        let r = w.alice.put(&format!("/api/v1/schedules/{sched}"), body).await;
        assert!(assert_err(&r, 409, SCHEDULE_IN_USE).contains("used"));
    }
    let r = w.alice.delete(&format!("/api/v1/schedules/{sched}")).await;
    assert_err(&r, 409, SCHEDULE_IN_USE);
    assert_eq!(snapshot(&w.alice).await, before);

    // Still refused while the job is enabled; free once the job is gone.
    let r = w.alice.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await;
    assert_ok(&r);
    assert_err(&w.alice.delete(&format!("/api/v1/schedules/{sched}")).await, 409, SCHEDULE_IN_USE);
    let r = w.alice.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
    assert_ok(&r);
    let r = w.alice.delete(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": job}));
    let r = w.alice.put(&format!("/api/v1/schedules/{sched}"), json!({"config": {"period": 60}})).await;
    assert_eq!(assert_ok(&r)["config"], json!({"period": 60}));
    let r = w.alice.delete(&format!("/api/v1/schedules/{sched}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": sched}));
}

#[tokio::test]
async fn invalid_schedule_configs_are_refused_with_code_26_saying_why() {
    let w = world().await;
    let existing = new_schedule(&w.alice, json!({"period": 60})).await;
    let before = snapshot(&w.alice).await;
    let cases = [
        (json!({"cron": "61 * * * *"}), "minute"),
        (json!({"cron": "* * *"}), "5 or 6 fields"),
        (json!({"cron": "not a cron"}), "cron"),
        (json!({"cron": ""}), "cron"),
        (json!({"cron": "0 3 * * *", "timezone": "Mars/Olympus_Mons"}), "Mars/Olympus_Mons"),
        (json!({"period": 0}), "at least 1"),
        (json!({"period": -5}), "at least 1"),
        (json!({"period": "60"}), "integer"),
        (json!({"period": 1.5}), "integer"),
        (json!({"every": 5}), "unknown config key \"every\""),
        (json!({"period": 60, "jitter": 3}), "jitter"),
        (json!({}), "needs one of"),
        (json!({"period": 60, "cron": "* * * * *"}), "only one"),
        (json!({"period": 60, "timezone": "UTC"}), "timezone"),
        (json!({"timestamp": -1}), "timestamp"),
        (json!("every day"), "object"),
        (json!([60]), "object"),
    ];
    for (config, needle) in &cases {
        let r = w.alice.post("/api/v1/schedules", json!({ "config": config })).await;
        let msg = assert_err(&r, 400, BAD_SCHEDULE);
        assert!(msg.contains(needle), "{config}: {msg:?} lacks {needle:?}");
        let r = w.alice.put(&format!("/api/v1/schedules/{existing}"), json!({ "config": config })).await;
        let msg = assert_err(&r, 400, BAD_SCHEDULE);
        assert!(msg.contains(needle), "PUT {config}: {msg:?} lacks {needle:?}");
    }
    // No config at all, or a null one.
    let r = w.alice.post("/api/v1/schedules", json!({"name": "x"})).await;
    assert!(assert_err(&r, 400, BAD_SCHEDULE).contains("config"));
    let r = w.alice.post("/api/v1/schedules", json!({"config": null})).await;
    assert!(assert_err(&r, 400, BAD_SCHEDULE).contains("config"));
    assert_eq!(snapshot(&w.alice).await, before);
    healthy(&w.server).await;
}
