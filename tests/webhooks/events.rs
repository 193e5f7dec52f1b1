//! Which events are announced, and to which subscriptions.

use super::*;

#[tokio::test]
async fn job_fail_and_backon_follow_the_run_history() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let flag = db.dir().join("healthy");
    let (_, job) = stack_and_job(&api, "flappy", &format!("test -f '{}'", flag.display())).await;
    let (webhook, _) =
        subscribe(&api, json!({"url": receiver.url("/"), "events": ["job.fail", "job.backon"]})).await;

    let mut runs = Vec::new();
    // never ran → fails: job.fail; fails again: nothing; succeeds: job.backon; succeeds: nothing;
    // fails: job.fail.
    for healthy in [false, false, true, true, false] {
        if healthy {
            std::fs::write(&flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&flag);
        }
        let run = run_to_end(&api, job).await;
        assert_eq!(run["outcome"], if healthy { "succeeded" } else { "failed" });
        runs.push(run["id"].as_i64().unwrap());
    }
    let got = receiver.wait_delivered(3).await;
    // Every event was queued before the last one: nothing more is coming.
    let page = deliveries(&api, webhook).await;
    assert_eq!(page["count"], 3, "{page}");
    let mut seen: Vec<(i64, String)> =
        got.iter().map(|r| (r.json()["run"]["id"].as_i64().unwrap(), r.body_event())).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (runs[0], "job.fail".to_string()),
            (runs[2], "job.backon".to_string()),
            (runs[4], "job.fail".to_string())
        ]
    );
    let fail = got.iter().find(|r| r.json()["run"]["id"] == runs[0]).unwrap().json();
    assert_eq!(fail["job"]["id"], job);
    assert_eq!(fail["run"]["outcome"], "failed");
    assert_eq!(fail["run"]["exit_code"], 1);
}

#[tokio::test]
async fn a_subscription_can_be_scoped_to_one_job_or_one_stack() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let (stack, job_a) = stack_and_job(&api, "scoped-a", "true").await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let job_b = api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "scoped-b"}))
        .await;
    let (_, job_other) = stack_and_job(&api, "other-stack", "true").await;

    let only_a = Receiver::start().await;
    let only_stack = Receiver::start().await;
    let all = Receiver::start().await;
    subscribe(&api, json!({"url": only_a.url("/"), "events": ["run.succeeded"], "job_id": job_a})).await;
    subscribe(&api, json!({"url": only_stack.url("/"), "events": ["run.succeeded"], "stack_id": stack}))
        .await;
    subscribe(&api, json!({"url": all.url("/"), "events": ["run.succeeded"]})).await;

    for job in [job_a, job_b, job_other] {
        run_to_end(&api, job).await;
    }
    let jobs_of = |got: Vec<Received>| {
        let mut ids: Vec<i64> = got.iter().map(|r| r.json()["job"]["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids
    };
    let everything = jobs_of(all.wait_delivered(3).await);
    assert_eq!(everything, vec![job_a, job_b, job_other]);
    // All three runs' events were queued by now.
    assert_eq!(jobs_of(only_stack.wait_delivered(2).await), vec![job_a, job_b]);
    assert_eq!(jobs_of(only_a.wait_delivered(1).await), vec![job_a]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(only_a.delivered().len(), 1);
    assert_eq!(only_stack.delivered().len(), 2);
}

#[tokio::test]
async fn pause_unpause_and_delete_are_announced_including_a_deferred_delete() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let (stack, job) = stack_and_job(&api, "lifecycle", "true").await;
    subscribe(
        &api,
        json!({"url": receiver.url("/"), "events": ["job.paused", "job.unpaused", "job.deleted"]}),
    )
    .await;

    // v1: PUT enabled; v3: pause / unpause.
    assert_eq!(api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await.status, 200);
    let got = receiver.wait_delivered(1).await;
    assert_eq!(got[0].body_event(), "job.unpaused");
    assert_eq!(got[0].json()["job"]["do_run"], true);
    assert!(got[0].json()["run"].is_null());
    let (stack_uid, job_uid) = api.v3_uids(stack, job).await;
    let r = api.post(&format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/pause"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = receiver.wait_delivered(2).await;
    assert_eq!(got[1].body_event(), "job.paused");
    assert_eq!(got[1].json()["job"]["do_run"], false);
    // Pausing a paused job changes nothing and announces nothing.
    assert_eq!(api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await.status, 200);

    // Immediate delete of a disabled job.
    assert_eq!(api.delete(&format!("/api/v1/jobs/{job}")).await.json(), json!({"deleted": job}));
    let got = receiver.wait_delivered(3).await;
    assert_eq!(got[2].body_event(), "job.deleted");
    assert_eq!(got[2].json()["job"]["id"], job);

    // Deferred: an enabled job is deleted by the scheduler at its next slot.
    let every_second = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let doomed = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": every_second, "enabled": true, "name": "doomed"}),
        )
        .await;
    let r = api.delete(&format!("/api/v1/jobs/{doomed}")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": doomed}));
    // Creating a job enabled is no "unpause": the next event is its deletion by the scheduler.
    let got = receiver.wait_delivered(4).await;
    assert_eq!(got[3].body_event(), "job.deleted", "{got:#?}");
    assert_eq!(got[3].json()["job"]["id"], doomed);
    assert_eq!(got[3].json()["job"]["do_del"], true);
    assert_eq!(api.get(&format!("/api/v1/jobs/byid/{doomed}")).await.status, 404);
}
