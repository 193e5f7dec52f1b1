mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn harness_starts_a_server_and_a_user_can_call_it() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", Some("s3cret"));
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    assert!(stack > 0);
    let r = api.get("/api/v1/jobs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["count"], 0);
}
