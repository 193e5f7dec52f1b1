//! The Cloud 66-style v3 dialect, driven the way a client written from Cloud 66's reference
//! drives it: stack uids, `.json` suffixes, `{"response": …}` envelopes, actions polled until
//! they finish, scopes and rate limits.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

struct Fixture {
    _db: TestDb,
    server: Server,
    api: Api,
    stack_id: i64,
    stack_uid: String,
}

/// A user with one stack whose command prints its arguments one per line.
async fn fixture(extra: &[&str]) -> Fixture {
    let db = TestDb::new();
    let token = add_user(&db, "carol", None);
    let server = Server::start_on(&db, extra);
    let api = Api::new(&server, Some(&token));
    let stack_id = api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "web", "command": "for a in \"$@\"; do echo \"arg:$a\"; done; exit ${EXIT_CODE:-0}"}),
        )
        .await;
    let stack_uid = api.get(&format!("/api/v1/blockstacks/byid/{stack_id}")).await.json()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    Fixture { _db: db, server, api, stack_id, stack_uid }
}

impl Fixture {
    /// Creates a job; returns its uid.
    async fn job(&self, name: &str, config: Value, enabled: bool) -> String {
        let schedule = self.api.create("/api/v1/schedules", json!({ "config": config })).await;
        let id = self
            .api
            .create(
                "/api/v1/jobs",
                json!({"stack_id": self.stack_id, "schedule_id": schedule, "name": name, "enabled": enabled}),
            )
            .await;
        self.api.get(&format!("/api/v1/jobs/byid/{id}")).await.json()["uid"].as_str().unwrap().to_string()
    }

    fn stack_path(&self, rest: &str) -> String {
        format!("/api/3/stacks/{}{rest}", self.stack_uid)
    }

    /// Polls an action until it has finished.
    async fn finished_action(&self, id: i64) -> Value {
        let path = self.stack_path(&format!("/actions/{id}.json"));
        eventually(Duration::from_secs(20), || async {
            let a = self.api.get(&path).await.json()["response"].clone();
            (!a["finished_at"].is_null()).then_some(a)
        })
        .await
        .expect("action finished")
    }
}

fn assert_action_shape(a: &Value, action: &str, resource_id: i64) {
    for field in [
        "id",
        "user",
        "resource_type",
        "action",
        "resource_id",
        "started_via",
        "started_at",
        "finished_at",
        "finished_success",
        "finished_message",
        "finished_result",
        "metadata",
    ] {
        assert!(a.get(field).is_some(), "action lacks {field}: {a}");
    }
    assert_eq!(a["resource_type"], "stack");
    assert_eq!(a["action"], action);
    assert_eq!(a["resource_id"], resource_id.to_string());
    assert_eq!(a["started_via"], "api");
    assert_eq!(a["user"], "carol@example.com");
    assert!(a["started_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn stacks_and_jobs_are_listed_in_cloud66_envelopes() {
    let f = fixture(&[]).await;
    let uid = f.job("pies", json!({"cron": "01 00 1 * *"}), true).await;
    f.job("every-90", json!({"period": 90}), false).await;
    f.job("once", json!({"timestamp": 4_102_444_800i64}), false).await;

    let stacks = f.api.get("/api/3/stacks.json").await;
    assert_eq!(stacks.status, 200);
    let body = stacks.json();
    assert_eq!(body["response"][0]["uid"], f.stack_uid.as_str());
    assert_eq!(body["response"][0]["name"], "web");
    assert_eq!(body["count"], 1);
    let one = f.api.get(&f.stack_path(".json")).await.json();
    assert_eq!(one["response"]["uid"], f.stack_uid.as_str());
    let created = one["response"]["created_at"].as_str().unwrap();
    assert!(created.ends_with(" UTC") && created.len() == 23, "{created}");

    let jobs = f.api.get(&f.stack_path("/jobs.json")).await.json();
    assert_eq!(jobs["count"], 3);
    assert_eq!(
        jobs["pagination"],
        json!({"previous": null, "next": null, "current": 1, "per_page": 30, "count": 3, "pages": 1})
    );
    let pies = &jobs["response"][0];
    let mut keys: Vec<&str> = pies.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["created_at", "cron", "id", "name", "params", "paused", "status", "type", "uid", "updated_at"]
    );
    assert_eq!(pies["uid"], uid.as_str());
    assert_eq!(pies["name"], "pies");
    assert_eq!(pies["type"], "DockerHostTaskJob");
    assert_eq!(pies["cron"], "01 00 1 * *");
    assert_eq!(pies["status"], 0);
    assert_eq!(pies["paused"], false);
    assert!(pies["params"]["command"].as_str().unwrap().starts_with("for a in"));
    assert_eq!(jobs["response"][1]["cron"], "@every 90s");
    assert_eq!(jobs["response"][1]["paused"], true);
    assert_eq!(jobs["response"][2]["cron"], Value::Null);

    let single = f.api.get(&f.stack_path(&format!("/jobs/{uid}.json"))).await.json();
    assert_eq!(single["response"]["uid"], uid.as_str());
    // Without the suffix too.
    assert_eq!(f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.status, 200);
}

#[tokio::test]
async fn run_now_passes_job_args_as_separate_words_and_the_action_finishes_with_the_run() {
    let f = fixture(&[]).await;
    let uid = f.job("echo", json!({"cron": "0 0 1 1 *"}), false).await;
    let r = f
        .api
        .post(
            &f.stack_path(&format!("/jobs/{uid}/run_now.json")),
            json!({"job_args": "first 'two words' \"with \\\"quotes\\\"\" ;rm -rf /tmp/nothing $(id)"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3600"));
    let action = r.json()["response"].clone();
    assert_action_shape(&action, "job_run_now", f.stack_id);
    let done = f.finished_action(action["id"].as_i64().unwrap()).await;
    assert_action_shape(&done, "job_run_now", f.stack_id);
    assert_eq!(done["finished_success"], true);
    let result = &done["finished_result"];
    assert_eq!(result["exit_code"], 0);
    assert_eq!(
        result["args"],
        json!(["first", "two words", "with \"quotes\"", ";rm", "-rf", "/tmp/nothing", "$(id)"])
    );
    let tail = result["log_tail"].as_str().unwrap();
    assert_eq!(
        tail.lines().collect::<Vec<_>>(),
        [
            "arg:first",
            "arg:two words",
            "arg:with \"quotes\"",
            "arg:;rm",
            "arg:-rf",
            "arg:/tmp/nothing",
            "arg:$(id)"
        ]
    );
    // The run is in the v1 history with the same arguments.
    let run = f.api.get(&format!("/api/v1/runs/{}", result["run_id"])).await.json();
    assert_eq!(run["trigger"], "run_now");
    assert_eq!(run["args"], result["args"]);
    // The job's status is now "success".
    let job = f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json();
    assert_eq!(job["response"]["status"], 2);
}

#[tokio::test]
async fn run_now_takes_job_args_from_a_form_body_or_the_query_string() {
    let f = fixture(&[]).await;
    let uid = f.job("echo", json!({"cron": "0 0 1 1 *"}), false).await;
    let path = f.stack_path(&format!("/jobs/{uid}/run_now.json"));
    let form = f
        .api
        .send_raw("POST", &path, Some("application/x-www-form-urlencoded"), b"job_args=a+%22b+c%22".to_vec())
        .await;
    assert_eq!(form.status, 200, "{}", form.text);
    let done = f.finished_action(form.json()["response"]["id"].as_i64().unwrap()).await;
    assert_eq!(done["finished_result"]["args"], json!(["a", "b c"]));

    let query = f.api.send_raw("POST", &format!("{path}?job_args=x%20y"), None, Vec::new()).await;
    assert_eq!(query.status, 200, "{}", query.text);
    let done = f.finished_action(query.json()["response"]["id"].as_i64().unwrap()).await;
    assert_eq!(done["finished_result"]["args"], json!(["x", "y"]));

    let unbalanced = f.api.post(&path, json!({"job_args": "'open"})).await;
    assert_eq!(unbalanced.status, 400);
    assert_eq!(unbalanced.json()["error"], "bad_request");
}

#[tokio::test]
async fn a_failing_run_finishes_its_action_unsuccessfully() {
    let f = fixture(&[]).await;
    let uid = f.job("fails", json!({"cron": "0 0 1 1 *"}), false).await;
    // Make this job's own command fail.
    let job_id =
        f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json()["response"]["id"].as_i64().unwrap();
    let put = f.api.put(&format!("/api/v1/jobs/{job_id}"), json!({"command": "echo boom >&2; exit 3"})).await;
    assert_eq!(put.status, 200, "{}", put.text);
    let r = f.api.post(&f.stack_path(&format!("/jobs/{uid}/run_now")), json!({})).await;
    let done = f.finished_action(r.json()["response"]["id"].as_i64().unwrap()).await;
    assert_eq!(done["finished_success"], false);
    assert_eq!(done["finished_result"]["exit_code"], 3);
    assert!(done["finished_message"].as_str().unwrap().contains('3'));
    assert!(done["finished_result"]["log_tail"].as_str().unwrap().contains("boom"));
    let job = f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json();
    assert_eq!(job["response"]["status"], 3);
}

#[tokio::test]
async fn pause_and_unpause_are_idempotent_actions_that_finish_at_once() {
    let f = fixture(&[]).await;
    let uid = f.job("p", json!({"cron": "* * * * *"}), true).await;
    for _ in 0..2 {
        let r = f.api.post(&f.stack_path(&format!("/jobs/{uid}/pause.json")), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let a = r.json()["response"].clone();
        assert_action_shape(&a, "job_pause_handler", f.stack_id);
        assert_eq!(a["finished_success"], true);
        assert!(!a["finished_at"].is_null());
        let job = f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json();
        assert_eq!(job["response"]["paused"], true);
    }
    let v1 = f.api.get("/api/v1/jobs").await.json();
    assert_eq!(v1["jobs"][0]["do_run"], false);
    assert_eq!(v1["jobs"][0]["next_run"], Value::Null);
    for _ in 0..2 {
        let r = f.api.post(&f.stack_path(&format!("/jobs/{uid}/unpause")), json!({})).await;
        assert_action_shape(&r.json()["response"], "job_unpause_handler", f.stack_id);
        let job = f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json();
        assert_eq!(job["response"]["paused"], false);
    }
    let v1 = f.api.get("/api/v1/jobs").await.json();
    assert!(v1["jobs"][0]["next_run"].is_string());
}

#[tokio::test]
async fn unpause_all_restores_only_what_pause_all_paused() {
    let f = fixture(&[]).await;
    let a = f.job("a", json!({"cron": "* * * * *"}), true).await;
    let b = f.job("b", json!({"cron": "* * * * *"}), true).await;
    let by_hand = f.job("by-hand", json!({"cron": "* * * * *"}), true).await;
    f.api.post(&f.stack_path(&format!("/jobs/{by_hand}/pause")), json!({})).await;

    let r = f.api.post(&f.stack_path("/jobs/pause_all.json"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_action_shape(&r.json()["response"], "job_pause_all_handler", f.stack_id);
    let paused = |jobs: &Value| -> Vec<(String, bool)> {
        jobs["response"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| (j["name"].as_str().unwrap().to_string(), j["paused"].as_bool().unwrap()))
            .collect()
    };
    let jobs = f.api.get(&f.stack_path("/jobs")).await.json();
    assert!(paused(&jobs).iter().all(|(_, p)| *p));

    let r = f.api.post(&f.stack_path("/jobs/unpause_all.json"), json!({})).await;
    assert_action_shape(&r.json()["response"], "job_unpause_all_handler", f.stack_id);
    let jobs = f.api.get(&f.stack_path("/jobs")).await.json();
    assert_eq!(
        paused(&jobs),
        [("a".to_string(), false), ("b".to_string(), false), ("by-hand".to_string(), true)]
    );
    let _ = (a, b);
}

#[tokio::test]
async fn actions_are_listed_newest_first_with_pagination() {
    let f = fixture(&[]).await;
    let uid = f.job("p", json!({"cron": "* * * * *"}), true).await;
    for i in 0..31 {
        let verb = if i % 2 == 0 { "pause" } else { "unpause" };
        assert_eq!(f.api.post(&f.stack_path(&format!("/jobs/{uid}/{verb}")), json!({})).await.status, 200);
    }
    let first = f.api.get(&f.stack_path("/actions.json")).await.json();
    assert_eq!(first["response"].as_array().unwrap().len(), 30);
    assert_eq!(first["count"], 31);
    assert_eq!(
        first["pagination"],
        json!({"previous": null, "next": 2, "current": 1, "per_page": 30, "count": 31, "pages": 2})
    );
    let ids: Vec<i64> =
        first["response"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let second = f.api.get(&f.stack_path("/actions.json?page=2")).await.json();
    assert_eq!(second["response"].as_array().unwrap().len(), 1);
    assert_eq!(second["pagination"]["previous"], 1);
    assert_eq!(second["pagination"]["next"], Value::Null);
    let past = f.api.get(&f.stack_path("/actions?page=9")).await.json();
    assert_eq!(past["response"], json!([]));
    assert_eq!(past["count"], 31);
    let bad = f.api.get(&f.stack_path("/actions?page=x")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad_request");
}

#[tokio::test]
async fn errors_use_cloud66_shape_and_statuses() {
    let f = fixture(&[]).await;
    let uid = f.job("p", json!({"cron": "* * * * *"}), true).await;
    let anon = Api::new(&f.server, None);
    let r = anon.get("/api/3/stacks.json").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthenticated");
    assert!(r.json()["error_description"].is_string());
    let bad_token =
        Api::new(&f.server, Some("cst_0000000000000000000000000000000000000000000000000000000000000000"));
    assert_eq!(bad_token.get("/api/3/stacks").await.status, 401);

    for path in [
        "/api/3/stacks/ffffffffffffffffffffffffffffffff".to_string(),
        f.stack_path("/jobs/ffffffffffffffffffffffffffffffff"),
        f.stack_path("/actions/999999"),
        "/api/3/nothing-here".to_string(),
    ] {
        let r = f.api.get(&path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "not_found", "{path}");
    }
    let r = f.api.get(&f.stack_path("/actions/abc")).await;
    assert_eq!(r.status, 400);
    let r = f
        .api
        .send_raw(
            "POST",
            &f.stack_path(&format!("/jobs/{uid}/run_now")),
            Some("application/json"),
            b"{nope".to_vec(),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "bad_request");
    let r = f.api.post(&f.stack_path(&format!("/jobs/{uid}/run_now")), json!({"job_args": 5})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error_description"].as_str().unwrap().contains("job_args"), "{}", r.text);
    let r = f.api.get(&f.stack_path(&format!("/jobs/{uid}/pause"))).await;
    assert_eq!(r.status, 405);
    // Nothing was run by the refused requests.
    let actions = f.api.get(&f.stack_path("/actions")).await.json();
    assert_eq!(actions["count"], 0);
}

#[tokio::test]
async fn another_users_stack_is_not_found_and_leaks_nothing() {
    let f = fixture(&[]).await;
    let uid = f.job("mine", json!({"cron": "* * * * *"}), true).await;
    let r = f.api.post(&f.stack_path(&format!("/jobs/{uid}/pause")), json!({})).await;
    let action_id = r.json()["response"]["id"].as_i64().unwrap();
    let other_token = add_user(&f._db, "mallory", None);
    let mallory = Api::new(&f.server, Some(&other_token));
    assert_eq!(mallory.get("/api/3/stacks.json").await.json()["count"], 0);
    for path in [
        f.stack_path(""),
        f.stack_path("/jobs"),
        f.stack_path(&format!("/jobs/{uid}")),
        f.stack_path("/actions"),
        f.stack_path(&format!("/actions/{action_id}")),
    ] {
        let r = mallory.get(&path).await;
        assert_eq!(r.status, 404, "GET {path}: {}", r.text);
    }
    for verb in ["run_now", "pause", "unpause"] {
        let r = mallory.post(&f.stack_path(&format!("/jobs/{uid}/{verb}")), json!({})).await;
        assert_eq!(r.status, 404, "{verb}");
    }
    for verb in ["pause_all", "unpause_all"] {
        assert_eq!(mallory.post(&f.stack_path(&format!("/jobs/{verb}")), json!({})).await.status, 404);
    }
    // Mallory's own stack cannot reach Carol's job by uid either.
    let mid = mallory.create("/api/v1/blockstacks", json!({"name": "m", "command": "true"})).await;
    let muid = mallory.get(&format!("/api/v1/blockstacks/byid/{mid}")).await.json()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(mallory.get(&format!("/api/3/stacks/{muid}/jobs/{uid}")).await.status, 404);
    // Carol's job is untouched.
    let job = f.api.get(&f.stack_path(&format!("/jobs/{uid}"))).await.json();
    assert_eq!(job["response"]["paused"], true);
    assert_eq!(f.api.get(&f.stack_path("/actions")).await.json()["count"], 1);
}

#[tokio::test]
async fn scopes_are_enforced_in_both_dialects() {
    let f = fixture(&[]).await;
    let uid = f.job("j", json!({"cron": "* * * * *"}), true).await;
    let minted = f.api.post("/api/v1/tokens", json!({"name": "ro", "scopes": ["public"]})).await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let public = Api::new(&f.server, Some(minted.json()["token"].as_str().unwrap()));
    // public: read, run and pause.
    assert_eq!(public.get(&f.stack_path("/jobs")).await.status, 200);
    assert_eq!(public.post(&f.stack_path(&format!("/jobs/{uid}/pause")), json!({})).await.status, 200);
    assert_eq!(public.post(&f.stack_path(&format!("/jobs/{uid}/run_now")), json!({})).await.status, 200);
    // …but not change jobs or mint tokens.
    let r = public.post("/api/v1/blockstacks", json!({"name": "x", "command": "true"})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], 29);
    let r = public.post("/api/v1/tokens", json!({"scopes": ["admin"]})).await;
    assert_eq!(r.status, 403);
    let jobs_scope = f.api.post("/api/v1/tokens", json!({"scopes": ["jobs"]})).await.json();
    let jobs_api = Api::new(&f.server, Some(jobs_scope["token"].as_str().unwrap()));
    assert_eq!(
        jobs_api.post("/api/v1/blockstacks", json!({"name": "y", "command": "true"})).await.status,
        200
    );
    assert_eq!(jobs_api.get("/api/v1/tokens").await.status, 403);
    // Revoked: 401 from then on.
    let id = minted.json()["id"].as_i64().unwrap();
    assert_eq!(f.api.delete(&format!("/api/v1/tokens/{id}")).await.status, 200);
    let r = public.get("/api/3/stacks.json").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthenticated");
}

#[tokio::test]
async fn the_rate_limit_is_counted_per_token_and_refuses_with_429_without_effect() {
    let f = fixture(&["--rate-limit", "6"]).await;
    // The fixture and the job spend 5 requests (stack, its lookup, schedule, job, its lookup).
    let uid = f.job("j", json!({"cron": "* * * * *"}), true).await;
    let r = f.api.get("/api/3/stacks.json").await;
    assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("6"));
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"), "{:?}", r.headers);
    assert!(r.header("x-ratelimit-reset").unwrap().parse::<i64>().unwrap() > 0);
    let refused = f.api.post(&f.stack_path(&format!("/jobs/{uid}/pause.json")), json!({})).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"], "throttled");
    assert_eq!(refused.header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(refused.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Kragle's shape for the same refusal.
    let kragle = f.api.get("/api/v1/jobs").await;
    assert_eq!(kragle.status, 429);
    assert_eq!(kragle.json()["code"], 28);
    // The refused pause changed nothing: another token (own budget) sees the job unpaused.
    let token2 = {
        let out = std::process::Command::new(BIN)
            .args(["token", "create", "carol", "--scope", "public", "--database-url", &f.server.db_url])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_string()
    };
    let second = Api::new(&f.server, Some(&token2));
    let job = second.get(&f.stack_path(&format!("/jobs/{uid}"))).await;
    assert_eq!(job.status, 200, "{}", job.text);
    assert_eq!(job.json()["response"]["paused"], false);
    assert_eq!(job.header("x-ratelimit-remaining").as_deref(), Some("5"));
}
