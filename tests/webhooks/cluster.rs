//! Several nodes on one PostgreSQL database share the delivery queue.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn several_nodes_share_the_queue_and_send_each_delivery_once() {
    if !postgres_or_skip() {
        return;
    }
    const RUNS: usize = 30;
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let nodes: Vec<Server> = (0..3)
        .map(|_| Server::start_on(&db, &["--webhook-retry-base-ms", "200", "--rate-limit", "100000"]))
        .collect();
    let apis: Vec<Api> = nodes.iter().map(|n| Api::new(n, Some(&token))).collect();
    let receiver = Receiver::start().await;
    let (_, job) = stack_and_job(&apis[0], "clustered", "true").await;
    subscribe(&apis[0], json!({"url": receiver.url("/"), "events": ["run.started", "run.succeeded"]})).await;

    // Runs started through every node: each node queues its events, all three send.
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let r = apis[i % 3].post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        runs.push(r.json()["id"].as_i64().unwrap());
    }
    let got = receiver.wait_delivered(2 * RUNS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_now = receiver.all();
    assert_eq!(got_now.len(), 2 * RUNS, "no delivery is sent twice: {}", got_now.len());
    let mut ids: Vec<&str> = got.iter().map(|r| r.headers["x-cronstack-delivery"].as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2 * RUNS);
    let mut seen: Vec<(i64, String)> =
        got.iter().map(|r| (r.json()["run"]["id"].as_i64().unwrap(), r.body_event())).collect();
    seen.sort();
    let mut expected: Vec<(i64, String)> = runs
        .iter()
        .flat_map(|id| [(*id, "run.started".to_string()), (*id, "run.succeeded".to_string())])
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}
