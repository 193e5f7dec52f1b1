//! `GET /api/v1/overview`: the dashboard's landing table in one request per page — jobs
//! needing attention first, each with its stack's name, its schedule in words and zone and
//! its newest 20 outcomes; filtered by name and stack; paged; bad parameters refused.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn stack(api: &Api, name: &str, command: &str) -> i64 {
    api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await
}

async fn job(api: &Api, stack: i64, name: &str, enabled: bool) -> i64 {
    let config = json!({"cron": "30 7 * * *", "timezone": "Europe/Paris"});
    let schedule = api.create("/api/v1/schedules", json!({"config": config})).await;
    let body = json!({"stack_id": stack, "schedule_id": schedule, "name": name, "enabled": enabled});
    api.create("/api/v1/jobs", body).await
}

/// Runs the job now and waits for that run to end.
async fn run_to_end(api: &Api, job: i64) {
    let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run = r.json()["id"].as_i64().unwrap();
    eventually(Duration::from_secs(20), || async {
        let v = api.get(&format!("/api/v1/runs/{run}")).await.json();
        (!matches!(v["outcome"].as_str(), Some("queued" | "running"))).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("run {run} never ended"));
}

fn names(v: &Value) -> Vec<&str> {
    v["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn the_overview_puts_failing_jobs_first_with_their_last_outcomes_one_page_at_a_time() {
    let db = TestDb::new();
    let token = add_user(&db, "olga", None);
    let other = add_user(&db, "oscar", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));

    let good = stack(&api, "good", "true").await;
    let bad = stack(&api, "bad", "exit 3").await;
    let steady = job(&api, good, "a-steady", true).await;
    let broken = job(&api, bad, "z-broken", true).await;
    let idle = job(&api, good, "m-idle", false).await;
    for _ in 0..22 {
        run_to_end(&api, steady).await;
    }
    run_to_end(&api, broken).await;
    run_to_end(&api, steady).await;
    // Someone else's jobs never show.
    let theirs = Api::new(&server, Some(&other));
    let their_stack = stack(&theirs, "theirs", "true").await;
    job(&theirs, their_stack, "a-theirs", true).await;

    let all = api.get("/api/v1/overview").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let v = all.json();
    assert_eq!(v["count"], 3, "{v}");
    assert_eq!((v["page"].clone(), v["pagesize"].clone()), (json!(1), json!(50)));
    // Failing first, then healthy, then paused.
    assert_eq!(names(&v), ["z-broken", "a-steady", "m-idle"], "{v}");
    let rows = v["jobs"].as_array().unwrap();
    assert_eq!(rows[0]["id"], broken);
    assert_eq!(rows[0]["health"], "failing");
    assert_eq!(rows[0]["stack_name"], "bad");
    assert_eq!(rows[0]["recent_outcomes"], json!(["failed"]));
    assert_eq!(rows[0]["schedule_description"], "every day at 07:30 Europe/Paris");
    assert_eq!(rows[0]["timezone"], "Europe/Paris");
    assert!(rows[0]["next_run"].is_string(), "the job's fields are all there: {}", rows[0]);
    // The newest 20 of 23 runs, newest first.
    assert_eq!(rows[1]["id"], steady);
    let recent = rows[1]["recent_outcomes"].as_array().unwrap();
    assert_eq!(recent.len(), 20, "{}", rows[1]);
    assert!(recent.iter().all(|o| o == "succeeded"), "{}", rows[1]);
    assert_eq!((rows[2]["id"].clone(), rows[2]["health"].clone()), (json!(idle), json!("paused")));
    assert_eq!(rows[2]["recent_outcomes"], json!([]));
    assert_eq!(v["stacks"], json!([{"id": bad, "name": "bad"}, {"id": good, "name": "good"}]));

    // Filters: a part of the name in any case, a stack; both together.
    assert_eq!(names(&api.get("/api/v1/overview?name=STEAD").await.json()), ["a-steady"]);
    let by_stack = api.get(&format!("/api/v1/overview?stack={good}")).await.json();
    assert_eq!((names(&by_stack), by_stack["count"].clone()), (vec!["a-steady", "m-idle"], json!(2)));
    let both = api.get(&format!("/api/v1/overview?stack={good}&name=idle")).await.json();
    assert_eq!(names(&both), ["m-idle"]);
    assert_eq!(api.get("/api/v1/overview?name=nothing-like-it").await.json()["count"], 0);

    // Pages: the count of all matching jobs, the rows of one page.
    let p2 = api.get("/api/v1/overview?per_page=2&page=2").await.json();
    assert_eq!(
        (names(&p2), p2["count"].clone(), p2["pagesize"].clone()),
        (vec!["m-idle"], json!(3), json!(2))
    );
    assert_eq!(names(&api.get("/api/v1/overview?per_page=2&page=9").await.json()), Vec::<&str>::new());

    // Refusals in the v1 shape.
    for (query, says) in [
        ("per_page=0", "per_page"),
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("stack=abc", "stack"),
        (&*format!("stack={their_stack}"), "stack"),
    ] {
        let r = api.get(&format!("/api/v1/overview?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        let msg = r.json()["msg"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(says), "{query}: {}", r.text);
        assert!(r.json()["code"].is_number(), "{query}: {}", r.text);
    }
    assert_eq!(Api::new(&server, None).get("/api/v1/overview").await.status, 401);

    // The API description has it, with its parameters and its rows' fields.
    let doc = Api::new(&server, None).get("/openapi.json").await.json();
    let op = &doc["paths"]["/api/v1/overview"]["get"];
    let params: Vec<&str> =
        op["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["page", "per_page", "name", "stack"], "{op}");
    let schemas = &doc["components"]["schemas"];
    let rows = &schemas["Overview"]["properties"]["jobs"]["items"]["$ref"];
    assert_eq!(rows, "#/components/schemas/OverviewJob");
    // A job (the Job schema) and the row's own fields.
    assert_eq!(schemas["OverviewJob"]["allOf"][0]["$ref"], "#/components/schemas/Job");
    let row = &schemas["OverviewJob"]["allOf"][1]["properties"];
    for field in ["stack_name", "schedule_description", "timezone", "recent_outcomes"] {
        assert!(row[field].is_object(), "{field}: {row}");
    }
}
