//! Inbound: stacks called through `/api/v1/blockstacks/hook/<id>` in each access mode, and `exec`.

use super::*;

async fn hook_stack(api: &Api, name: &str, command: &str, webhook: Value, method: &str) -> Value {
    let id = api
        .create(
            "/api/v1/blockstacks",
            json!({"name": name, "command": command, "webhook": webhook, "webhook_method": method}),
        )
        .await;
    api.get(&format!("/api/v1/blockstacks/byid/{id}")).await.json()
}

#[tokio::test]
async fn hooks_in_each_access_mode() {
    let db = TestDb::new();
    let (server, api) = start(&db, &[]).await;
    let nobody = anon(&api);
    let bob = Api::new(&server, Some(&add_user(&db, "bob", None)));

    // public, GET only.
    let public =
        hook_stack(&api, "public-hook", "echo '{\"hello\": \"world\"}'", json!("public"), "GET").await;
    let path = format!("/api/v1/blockstacks/hook/{}", public["id"]);
    let r = nobody.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"status": 0, "result": {"hello": "world"}}));
    let r = nobody.post(&path, json!({})).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.json()["code"], BAD_PAYLOAD);
    assert_eq!(r.header("allow").as_deref(), Some("GET"));
    assert_eq!(nobody.send("PUT", &path, None).await.status, 405);

    // token: ?token= or the header; compared to the stack's webhook_token.
    let token_stack = hook_stack(&api, "token-hook", "echo ok", json!("token"), "POST").await;
    let token = token_stack["webhook_token"].as_str().expect("a token hook has a token").to_string();
    let path = format!("/api/v1/blockstacks/hook/{}", token_stack["id"]);
    for r in [
        nobody.post(&path, json!({})).await,
        nobody.post(&format!("{path}?token=wrong"), json!({})).await,
        nobody.post(&format!("{path}?token={}", &token[..token.len() - 1]), json!({})).await,
        send_with(&nobody, "POST", &path, &[("x-cronstack-hook-token", "wrong")], None).await,
        // The owner's API token is not the hook token.
        api.post(&path, json!({})).await,
    ] {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.json()["code"], UNAUTHENTICATED);
    }
    let r = nobody.post(&format!("{path}?token={token}"), json!({})).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": 0, "result": "ok"})), "{}", r.text);
    let r = send_with(&nobody, "POST", &path, &[("x-cronstack-hook-token", &token)], None).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": 0, "result": "ok"})), "{}", r.text);
    // token_refresh: the old token stops working.
    let r = api.get(&format!("/api/v1/blockstacks/hook/token_refresh/{}", token_stack["id"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.json()["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    assert_eq!(nobody.post(&format!("{path}?token={token}"), json!({})).await.status, 401);
    assert_eq!(nobody.post(&format!("{path}?token={fresh}"), json!({})).await.status, 200);
    assert_eq!(
        api.get(&format!("/api/v1/blockstacks/byid/{}", token_stack["id"])).await.json()["webhook_token"],
        fresh
    );
    assert_eq!(
        bob.get(&format!("/api/v1/blockstacks/hook/token_refresh/{}", token_stack["id"])).await.status,
        404
    );
    assert_eq!(
        nobody.get(&format!("/api/v1/blockstacks/hook/token_refresh/{}", token_stack["id"])).await.status,
        401
    );

    // user: the owner's bearer token or session cookie only.
    let user_stack = hook_stack(&api, "user-hook", "echo mine", json!("user"), "POST").await;
    let path = format!("/api/v1/blockstacks/hook/{}", user_stack["id"]);
    let r = nobody.post(&path, json!({})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (401, json!(UNAUTHENTICATED)), "{}", r.text);
    let r = bob.post(&path, json!({})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(NOT_FOUND)), "{}", r.text);
    let r = api.post(&path, json!({})).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": 0, "result": "mine"})), "{}", r.text);
    let login =
        nobody.post("/api/v1/authenticate", json!({"username": "alice", "password": "alice-password"})).await;
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let r = send_with(&nobody, "POST", &path, &[("cookie", &cookie)], None).await;
    assert_eq!((r.status, r.json()), (200, json!({"status": 0, "result": "mine"})), "{}", r.text);

    // null: no hook at all.
    let plain = hook_stack(&api, "no-hook", "echo never", Value::Null, "POST").await;
    let r = api.post(&format!("/api/v1/blockstacks/hook/{}", plain["id"]), json!({})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(NOT_FOUND)), "{}", r.text);
    assert_eq!(nobody.get("/api/v1/blockstacks/hook/9999").await.status, 404);
    assert_eq!(nobody.get("/api/v1/blockstacks/hook/abc").await.status, 400);

    // exec: the owner runs any of their stacks by hand, hook or not.
    let r = api.get(&format!("/api/v1/blockstacks/exec/{}", plain["id"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run_id: i64 = r.header("x-cronstack-run-id").unwrap().parse().unwrap();
    assert_eq!(r.json(), json!({"success": [run_id], "result": "never"}));
    assert_eq!(bob.get(&format!("/api/v1/blockstacks/exec/{}", plain["id"])).await.status, 404);
    assert_eq!(nobody.get(&format!("/api/v1/blockstacks/exec/{}", plain["id"])).await.status, 401);
    let failing = hook_stack(&api, "exec-fails", "exit 7", Value::Null, "POST").await;
    let r = api.get(&format!("/api/v1/blockstacks/exec/{}", failing["id"])).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["error"].as_str().unwrap().contains("exit code 7"), "{}", r.text);
}

#[tokio::test]
async fn hook_runs_are_recorded_under_the_stacks_hook_job() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let stack = hook_stack(&api, "recorded", "echo recorded", json!("public"), "POST").await;
    let path = format!("/api/v1/blockstacks/hook/{}", stack["id"]);
    let first = anon(&api).post(&path, json!({})).await;
    let second = anon(&api).post(&path, json!({})).await;
    let job: i64 = first.header("x-cronstack-job-id").unwrap().parse().unwrap();
    assert_eq!(second.header("x-cronstack-job-id").unwrap(), job.to_string(), "one hook job per stack");

    let runs = api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await.json();
    assert_eq!(runs["count"], 2);
    for run in runs["runs"].as_array().unwrap() {
        assert_eq!(run["trigger"], "webhook");
        assert_eq!(run["outcome"], "succeeded");
    }
    let run_id = first.header("x-cronstack-run-id").unwrap();
    let log = api.get(&format!("/api/v1/runs/{run_id}/log")).await;
    assert_eq!(log.text, "recorded\n");
    let hook_job = api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert_eq!(hook_job["type"], "hook");
    assert_eq!(hook_job["stack"], stack["id"]);
    assert_eq!(hook_job["do_run"], false);

    // Managed by cronstack: not listed, not changeable.
    assert_eq!(api.get("/api/v1/jobs").await.json()["count"], 0);
    assert_eq!(api.get(&format!("/api/v1/blockstacks/byid/{}", stack["id"])).await.json()["jobs"], json!([]));
    assert_eq!(api.get("/api/v1/schedules").await.json()["count"], 0);
    for r in [
        api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await,
        api.delete(&format!("/api/v1/jobs/{job}")).await,
        api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await,
    ] {
        assert_eq!(r.status, 409, "{}", r.text);
    }
    let uid = hook_job["uid"].as_str().unwrap();
    let r = api.get(&format!("/api/3/stacks/{}/jobs/{uid}", stack["uid"].as_str().unwrap())).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn the_command_gets_kragles_request_document_on_stdin() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let nobody = anon(&api);
    // The command answers its stdin: the document comes back as the result.
    let stack = hook_stack(&api, "echo-doc", "cat", json!("token"), "POST").await;
    let token = stack["webhook_token"].as_str().unwrap();
    let path = format!("/api/v1/blockstacks/hook/{}?x=1&y=2&y=3&token={token}", stack["id"]);

    let r = send_with(
        &nobody,
        "POST",
        &path,
        &[
            ("x-custom", "custom value"),
            ("x-twice", "one"),
            ("x-twice", "two"),
            ("authorization", "Bearer secret"),
        ],
        Some(("application/json", br#"{"a": [1, 2], "b": {"c": null}}"#.to_vec())),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.json();
    assert_eq!(answer["status"], 0, "{answer}");
    let doc = &answer["result"];
    assert_eq!(doc["GET"], json!({"x": "1", "y": ["2", "3"]}), "the token is not passed on: {doc}");
    assert_eq!(doc["POST"], json!({}));
    assert_eq!(doc["JSON"], json!({"a": [1, 2], "b": {"c": null}}));
    let headers = &doc["HEADERS"];
    assert_eq!(headers["x-custom"], "custom value");
    assert_eq!(headers["x-twice"], json!(["one", "two"]));
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("authorization").is_none(), "credentials are not passed on: {headers}");

    // A form body fills POST; JSON stays {}.
    let r = send_with(
        &nobody,
        "POST",
        &format!("/api/v1/blockstacks/hook/{}", stack["id"]),
        &[("x-cronstack-hook-token", token)],
        Some(("application/x-www-form-urlencoded", b"a=1&a=2&b=three+words".to_vec())),
    )
    .await;
    let doc = &r.json()["result"];
    assert_eq!(doc["POST"], json!({"a": ["1", "2"], "b": "three words"}), "{doc}");
    assert_eq!(doc["JSON"], json!({}));
    assert_eq!(doc["GET"], json!({}));
    assert!(doc["HEADERS"].get("x-cronstack-hook-token").is_none(), "{doc}");

    // Not JSON but declared so: refused before running.
    let r = send_with(
        &nobody,
        "POST",
        &format!("/api/v1/blockstacks/hook/{}?token={token}", stack["id"]),
        &[],
        Some(("application/json", b"{not json".to_vec())),
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(BAD_JSON)), "{}", r.text);
    // Bodies are limited like every request's.
    let r = send_with(
        &nobody,
        "POST",
        &format!("/api/v1/blockstacks/hook/{}?token={token}", stack["id"]),
        &[],
        Some(("application/json", vec![b' '; 300 * 1024])),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text);
}

#[tokio::test]
async fn results_errors_and_timeouts() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &["--hook-timeout-s", "1"]).await;
    let nobody = anon(&api);
    let call = |id: Value| {
        let nobody = nobody.clone();
        async move { nobody.post(&format!("/api/v1/blockstacks/hook/{id}"), json!({})).await }
    };
    for (name, command, expected) in [
        (
            "json-out",
            r#"printf '{"n": 1, "list": [true, null]}'"#,
            json!({"status": 0, "result": {"n": 1, "list": [true, null]}}),
        ),
        ("number-out", "echo 42", json!({"status": 0, "result": 42})),
        (
            "text-out",
            "echo plain text; echo second line",
            json!({"status": 0, "result": "plain text\nsecond line"}),
        ),
        (
            "stderr-not-result",
            "echo to-stdout; echo to-stderr >&2",
            json!({"status": 0, "result": "to-stdout"}),
        ),
        ("empty-out", "true", json!({"status": 0, "result": ""})),
    ] {
        let stack = hook_stack(&api, name, command, json!("public"), "POST").await;
        let r = call(stack["id"].clone()).await;
        assert_eq!((r.status, r.json()), (200, expected), "{name}");
    }
    let failing = hook_stack(&api, "fails", "echo partial; exit 3", json!("public"), "POST").await;
    let r = call(failing["id"].clone()).await;
    assert_eq!(r.status, 200, "errors of the command are not HTTP errors");
    assert_eq!(r.json()["status"], 1);
    assert!(r.json()["err"].as_str().unwrap().contains("exit code 3"), "{}", r.text);
    assert!(r.json().get("result").is_none());

    let slow = hook_stack(&api, "slow", "sleep 30", json!("public"), "POST").await;
    let r = call(slow["id"].clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], 1);
    assert!(r.json()["err"].as_str().unwrap().contains("timed out"), "{}", r.text);
    let run = api.get(&format!("/api/v1/runs/{}", r.header("x-cronstack-run-id").unwrap())).await.json();
    assert_eq!(run["outcome"], "timed_out");
    assert_eq!(run["trigger"], "webhook");
}

#[tokio::test]
async fn hooks_are_rate_limited_per_stack() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &["--hook-rate-limit", "2"]).await;
    let nobody = anon(&api);
    let a = hook_stack(&api, "limited-a", "true", json!("public"), "GET").await;
    let b = hook_stack(&api, "limited-b", "true", json!("public"), "GET").await;
    let path_a = format!("/api/v1/blockstacks/hook/{}", a["id"]);
    for remaining in ["1", "0"] {
        let r = nobody.get(&path_a).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some(remaining));
    }
    let r = nobody.get(&path_a).await;
    assert_eq!((r.status, r.json()["code"].clone()), (429, json!(RATE_LIMITED)), "{}", r.text);
    assert!(r.header("retry-after").is_some());
    // Another stack has its own budget.
    assert_eq!(nobody.get(&format!("/api/v1/blockstacks/hook/{}", b["id"])).await.status, 200);
    // Refused callers do not spend it.
    let c = hook_stack(&api, "limited-c", "true", json!("token"), "GET").await;
    for _ in 0..3 {
        assert_eq!(nobody.get(&format!("/api/v1/blockstacks/hook/{}?token=nope", c["id"])).await.status, 401);
    }
    let token = c["webhook_token"].as_str().unwrap();
    assert_eq!(nobody.get(&format!("/api/v1/blockstacks/hook/{}?token={token}", c["id"])).await.status, 200);
}

#[tokio::test]
async fn hook_runs_are_announced_like_any_run() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let stack = hook_stack(&api, "announced", "exit 1", json!("public"), "POST").await;
    subscribe(
        &api,
        json!({"url": receiver.url("/"), "events": ["run.failed", "job.fail"], "stack_id": stack["id"]}),
    )
    .await;
    let r = anon(&api).post(&format!("/api/v1/blockstacks/hook/{}", stack["id"]), json!({})).await;
    assert_eq!(r.json()["status"], 1);
    let got = receiver.wait_delivered(2).await;
    let mut events: Vec<String> = got.iter().map(Received::body_event).collect();
    events.sort();
    assert_eq!(events, ["job.fail", "run.failed"]);
    for r in &got {
        let body = r.json();
        assert_eq!(body["run"]["trigger"], "webhook");
        assert_eq!(body["job"]["type"], "hook");
        assert_eq!(body["job"]["stack"], stack["id"]);
    }
}
