//! Idempotent run-now (`Idempotency-Key`) in both dialects: a repeat answers the first call's
//! run or action and starts nothing; the same key with another body is a conflict; keys are
//! per caller.

mod common;

use common::*;
use serde_json::{Value, json};

async fn post_with_key(api: &Api, path: &str, body: Value, key: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    api.send_with_headers("POST", path, Some("application/json"), body.to_string().into_bytes(), &headers)
        .await
}

async fn run_count(api: &Api, job: i64) -> u64 {
    api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await.json()["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_repeated_key_answers_the_first_run_and_starts_nothing() {
    let db = TestDb::new();
    let alice = add_user(&db, "alice", None);
    let bob = add_user(&db, "bob", None);
    let server = Server::start_on(&db, &[]);
    let (a, b) = (Api::new(&server, Some(&alice)), Api::new(&server, Some(&bob)));
    let mut jobs = Vec::new();
    for api in [&a, &b] {
        let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "echo \"$@\""})).await;
        let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
        jobs.push(
            api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "j"}))
                .await,
        );
    }
    let path = format!("/api/v1/jobs/byid/{}/run", jobs[0]);

    let first = post_with_key(&a, &path, json!({"args": ["x"]}), Some("k-1")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = post_with_key(&a, &path, json!({"args": ["x"]}), Some("k-1")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["id"], first.json()["id"], "the first call's run");
    assert_eq!(run_count(&a, jobs[0]).await, 1, "nothing started by the repeat");

    // The same key with another body: a conflict, nothing started.
    let other = post_with_key(&a, &path, json!({"args": ["y"]}), Some("k-1")).await;
    assert_eq!(other.status, 409, "{}", other.text);
    assert!(other.text.contains("Idempotency-Key"), "{}", other.text);
    assert_eq!(run_count(&a, jobs[0]).await, 1);

    // Another key, or none: new runs.
    assert_eq!(post_with_key(&a, &path, json!({"args": ["x"]}), Some("k-2")).await.status, 200);
    assert_eq!(post_with_key(&a, &path, json!({"args": ["x"]}), None).await.status, 200);
    assert_eq!(post_with_key(&a, &path, json!({"args": ["x"]}), None).await.status, 200);
    assert_eq!(run_count(&a, jobs[0]).await, 4);

    // Keys are per caller: bob's k-1 is his own.
    let bobs = post_with_key(&b, &format!("/api/v1/jobs/byid/{}/run", jobs[1]), json!({}), Some("k-1")).await;
    assert_eq!(bobs.status, 200, "{}", bobs.text);
    assert_eq!(run_count(&b, jobs[1]).await, 1);
}

#[tokio::test]
async fn a_repeated_key_answers_the_first_v3_action() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "echo \"$@\""})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    let job =
        api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "j"})).await;
    let v1 = api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json();
    let job_uid =
        api.get(&format!("/api/v1/jobs/byid/{job}")).await.json()["uid"].as_str().unwrap().to_string();
    let stack_uid = v1["uid"].as_str().unwrap().to_string();
    let path = format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/run_now.json");

    let first = post_with_key(&api, &path, json!({"job_args": "a b"}), Some("deploy-7")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = post_with_key(&api, &path, json!({"job_args": "a b"}), Some("deploy-7")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["response"]["id"], first.json()["response"]["id"], "the first call's action");
    assert_eq!(run_count(&api, job).await, 1);
    let other = post_with_key(&api, &path, json!({"job_args": "c"}), Some("deploy-7")).await;
    assert_eq!(other.status, 409, "{}", other.text);
    assert!(other.json()["error"].is_string(), "the v3 error shape: {}", other.text);
}
