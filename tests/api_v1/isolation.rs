//! Ownership isolation.

use super::*;

#[tokio::test]
async fn another_users_objects_are_invisible_and_untouchable() {
    let w = world().await;
    let a_sched = w
        .alice
        .create("/api/v1/schedules", json!({"name": "a-sched", "config": {"timestamp": FAR_TS}}))
        .await;
    let a_stack = w
        .alice
        .create("/api/v1/blockstacks", json!({"name": "a-stack", "command": "true", "webhook": "token"}))
        .await;
    let a_job = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": a_stack, "schedule_id": a_sched, "name": "a-job", "enabled": true}),
        )
        .await;
    let a_off = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": a_stack, "schedule_id": a_sched, "name": "a-off"}))
        .await;
    let a_unused = new_schedule(&w.alice, json!({"period": 60})).await;
    let alice_before = snapshot(&w.alice).await;

    // Bob's own objects, to try to mix with alice's.
    let b_stack = new_stack(&w.bob, "b-stack").await;
    let b_sched = new_schedule(&w.bob, json!({"period": 60})).await;
    let b_job = w
        .bob
        .create("/api/v1/jobs", json!({"stack_id": b_stack, "schedule_id": b_sched, "name": "b-job"}))
        .await;
    let bob_before = snapshot(&w.bob).await;

    let b = &w.bob;
    let not_found = [
        b.get(&format!("/api/v1/blockstacks/byid/{a_stack}")).await,
        b.get("/api/v1/blockstacks/byname/a-stack").await,
        b.put(&format!("/api/v1/blockstacks/{a_stack}"), json!({"name": "mine"})).await,
        b.put(&format!("/api/v1/blockstacks/{a_stack}"), json!({"schedule_id": b_sched})).await,
        b.get(&format!("/api/v1/schedules/byid/{a_sched}")).await,
        b.put(&format!("/api/v1/schedules/{a_unused}"), json!({"name": "mine"})).await,
        b.put(&format!("/api/v1/schedules/{a_sched}"), json!({"config": {"period": 5}})).await,
        b.delete(&format!("/api/v1/schedules/{a_unused}")).await,
        b.delete(&format!("/api/v1/schedules/{a_sched}")).await,
        b.get(&format!("/api/v1/jobs/byid/{a_job}")).await,
        b.get("/api/v1/jobs/byname/a-job").await,
        b.put(&format!("/api/v1/jobs/{a_job}"), json!({"enabled": false})).await,
        b.put(&format!("/api/v1/jobs/{a_off}"), json!({"name": "mine"})).await,
        b.delete(&format!("/api/v1/jobs/{a_job}")).await,
        b.delete(&format!("/api/v1/jobs/{a_off}")).await,
    ];
    for (i, r) in not_found.iter().enumerate() {
        let msg = assert_err(r, 404, NOT_FOUND);
        assert!(!msg.contains("a-"), "case {i} leaks a name: {msg}");
    }
    // Referencing alice's stack or schedule from bob's payloads: 24 / 25, also 404.
    let refs = [
        (b.post("/api/v1/jobs", json!({"stack_id": a_stack, "schedule_id": b_sched})).await, NO_SUCH_STACK),
        (
            b.post("/api/v1/jobs", json!({"stack_id": b_stack, "schedule_id": a_sched})).await,
            NO_SUCH_SCHEDULE,
        ),
        (b.put(&format!("/api/v1/jobs/{b_job}"), json!({"stack_id": a_stack})).await, NO_SUCH_STACK),
        (b.put(&format!("/api/v1/jobs/{b_job}"), json!({"schedule_id": a_unused})).await, NO_SUCH_SCHEDULE),
        (
            b.post(
                "/api/v1/blockstacks",
                json!({"name": "steal", "command": "true", "schedule_id": a_sched}),
            )
            .await,
            NO_SUCH_SCHEDULE,
        ),
    ];
    for (r, code) in &refs {
        assert_err(r, 404, *code);
    }

    // Nothing changed on either side; lists never mix.
    assert_eq!(snapshot(&w.alice).await, alice_before);
    assert_eq!(snapshot(&w.bob).await, bob_before);
    assert_eq!(count(&w.bob, "/api/v1/jobs").await, 1);
    assert_eq!(count(&w.bob, "/api/v1/schedules").await, 1);
    assert_eq!(count(&w.bob, "/api/v1/blockstacks").await, 1);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 2);
    assert_eq!(count(&w.alice, "/api/v1/schedules").await, 2);
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 1);
    let j = w.alice.job(a_job).await;
    assert!(j.do_run);
    assert!(!j.do_del);
    // Alice's webhook token never appears in bob's answers.
    let token =
        alice_before["/api/v1/blockstacks"]["stacks"][0]["webhook_token"].as_str().unwrap().to_string();
    assert!(!bob_before.to_string().contains(&token));

    // Same names on both sides: byname resolves to the caller's own.
    let b_same = new_stack(&w.bob, "a-stack").await;
    let r = w.bob.get("/api/v1/blockstacks/byname/a-stack").await;
    assert_eq!(assert_ok(&r)["id"], json!(b_same));
    let r = w.alice.get("/api/v1/blockstacks/byname/a-stack").await;
    assert_eq!(assert_ok(&r)["id"], json!(a_stack));
    assert_eq!(assert_ok(&r)["owner"], json!(w.alice_id));
    let r = w.bob.get(&format!("/api/v1/blockstacks/byid/{b_same}")).await;
    assert_eq!(assert_ok(&r)["owner"], json!(w.bob_id));
}
