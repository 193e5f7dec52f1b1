//! The answers read back as the shared wire types (`cronstack::api::v1`).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn answers_read_back_as_the_shared_wire_types() {
    // The server's answers parse as `cronstack::api::v1`'s types (the ones the webhook
    // payloads carry), field for field: a renamed or retyped field fails here.
    use cronstack::api::v1::RunView;
    let w = world().await;
    let stack = new_stack(&w.alice, "wire").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "wire"}))
        .await;
    let view = w.alice.job(job).await;
    assert_eq!((view.id, view.stack, view.schedule, view.name.as_deref()), (job, stack, sched, Some("wire")));
    let r = w.alice.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    let run: RunView = serde_json::from_str(&r.text).unwrap();
    assert_eq!(run.job, job);
    let again = w.alice.run(run.id).await;
    assert_eq!(again.id, run.id);
    let monitor =
        w.alice.create("/api/v1/monitors", json!({"name": "wire", "schedule": {"period": 60}})).await;
    let m = w.alice.monitor(monitor).await;
    assert_eq!((m.id, m.name.as_str()), (monitor, "wire"));
}
