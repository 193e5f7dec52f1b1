//! A cron expression that can never fire is refused (v1 code 26, saying why) when a schedule is
//! created or changed, and nothing changes.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_schedule_that_can_never_fire_is_refused_saying_why() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let existing = api.create("/api/v1/schedules", json!({"config": {"cron": "0 3 * * *"}})).await;
    let before = api.get("/api/v1/schedules").await.text;
    let cases = [
        ("0 0 31 2 *", "February has no day 31"),
        ("0 0 30 2 *", "February has no day 30"),
        ("0 0 31 4,6,9,11 *", "April, June, September and November have no day 31"),
    ];
    for (cron, reason) in cases {
        for timezone in ["UTC", "Europe/Berlin"] {
            let config = json!({"cron": cron, "timezone": timezone});
            let created = api.post("/api/v1/schedules", json!({ "config": config })).await;
            let changed =
                api.put(&format!("/api/v1/schedules/{existing}"), json!({ "config": config })).await;
            for r in [created, changed] {
                assert_eq!((r.status, &r.json()["code"]), (400, &json!(26)), "{cron}: {}", r.text);
                let msg = r.json()["msg"].as_str().unwrap().to_string();
                assert!(msg.contains(&format!("this expression never fires: {reason}")), "{msg}");
            }
        }
    }
    assert_eq!(api.get("/api/v1/schedules").await.text, before);
    // One that fires only on leap days, or on any Monday of February, is fine.
    for cron in ["0 0 29 2 *", "0 0 30 2 1"] {
        let r = api.post("/api/v1/schedules", json!({"config": {"cron": cron}})).await;
        assert_eq!(r.status, 200, "{cron}: {}", r.text);
    }
}
