//! Stacks as pipelines (issue 16), driven over HTTP against the real binary: Kragle's `blocks`,
//! steps run one after another (real child processes, a real HTTP receiver on loopback), state
//! kept between runs, filters, failures, hooks, public stacks, and Cloud 66's stack object.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct World {
    _db: TestDb,
    server: Server,
    api: Api,
    token: String,
    schedule: i64,
}

async fn world() -> World {
    let db = TestDb::new();
    let token = add_user(&db, "pat", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let token = token.to_string();
    // A schedule far away: runs here are started by hand.
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    World { _db: db, server, api, token, schedule }
}

impl World {
    /// A pipeline stack with one (disabled) job; answers (stack id, job id).
    async fn pipeline(&self, name: &str, blocks: Value) -> (i64, i64) {
        let stack = self.api.create("/api/v1/blockstacks", json!({"name": name, "blocks": blocks})).await;
        let job = self
            .api
            .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": self.schedule, "name": name}))
            .await;
        (stack, job)
    }

    /// Runs the job now and answers its run (`GET /runs/<id>`) once it has ended.
    async fn run(&self, job: i64) -> Value {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json()["id"].as_i64().unwrap();
        eventually(WAIT, || async {
            let run = self.api.get(&format!("/api/v1/runs/{id}")).await.json();
            (!matches!(run["outcome"].as_str(), Some("queued" | "running"))).then_some(run)
        })
        .await
        .expect("the run ends")
    }

    async fn stack(&self, id: i64) -> Value {
        let r = self.api.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }
}

fn statuses(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn shell_transform_http_posts_the_templated_body() {
    let w = world().await;
    let rx = Receiver::start_on(0, Behaviour::ByPath).await;
    let blocks = json!([
        ["Shell command", {"command": "printf '{\"msg\": \"hello\", \"n\": 2, \"arg\": \"%s\"}\\n' \"$1\""}, {"name": "produce"}],
        ["Transform", {"text": "\u{1}/input/msg\u{2} world", "count": "\u{1}/input/n\u{2}", "arg": "\u{1}/input/arg\u{2}", "run": "\u{1}/run/id\u{2}"}],
        ["HTTP request", {
            "method": "POST",
            "url": rx.url("/notify?token=q-secret"),
            "headers": {"Authorization": "Bearer h-secret"},
            "body": {"text": "\u{1}/input/text\u{2}", "count": "\u{1}/input/count\u{2}", "arg": "\u{1}/input/arg\u{2}"}
        }, {"name": "notify"}]
    ]);
    let (stack, job) = w.pipeline("three-steps", blocks).await;
    let r = w.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({"args": ["two words"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_i64().unwrap();
    let run = eventually(WAIT, || async {
        let run = w.api.get(&format!("/api/v1/runs/{id}")).await.json();
        (!matches!(run["outcome"].as_str(), Some("queued" | "running"))).then_some(run)
    })
    .await
    .expect("the run ends");
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(statuses(&run), ["succeeded"; 3]);
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps[0]["type"], "Shell command");
    assert_eq!(steps[0]["name"], "produce");
    assert_eq!(steps[0]["output"], json!({"msg": "hello", "n": 2, "arg": "two words"}));
    assert_eq!(steps[1]["output"]["run"], json!(id));
    assert_eq!(steps[2]["output"]["status"], 200);
    assert_eq!(steps[2]["output"]["body"], json!({"ok": true, "n": 1}));
    assert!(steps.iter().all(|s| s["started_at"].is_string() && s["error"].is_null()));

    let got = rx.all();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/notify");
    assert_eq!(got[0].headers.get("authorization").map(String::as_str), Some("Bearer h-secret"));
    let body: Value = serde_json::from_str(&got[0].raw).unwrap();
    assert_eq!(body, json!({"text": "hello world", "count": 2, "arg": "two words"}));

    let log = w.api.run_log(id).await;
    for line in [
        "[cronstack] step 1/3: Shell command (produce)",
        "[cronstack] step 2/3: Transform",
        "[cronstack] step 3/3: HTTP request (notify)",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    assert!(log.contains(&format!("> POST {}?…", rx.url("/notify"))), "{log}");
    assert!(log.contains("< 200 OK"), "{log}");
    assert!(!log.contains("h-secret") && !log.contains("q-secret"), "credentials in the log:\n{log}");

    // The owner sees each block's conversion and the state of its last successful step.
    let s = w.stack(stack).await;
    assert!(s["command"].is_null());
    let blocks = s["blocks"].as_array().unwrap();
    assert_eq!(blocks.iter().map(|b| b["id"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(blocks[2]["type"], "HTTP request");
    assert_eq!(blocks[2]["conversion"]["method"], "POST");
    assert_eq!(blocks[2]["state"]["input"]["body"]["text"], "hello world");
    assert_eq!(blocks[2]["state"]["output"]["status"], 200);
}

#[tokio::test]
async fn state_is_carried_from_one_run_to_the_next() {
    let w = world().await;
    // The block's state starts at 41 (Kragle's optional index 2); each run adds one to the
    // output it kept from the run before.
    let count = "read -r prev; case $prev in *[!0-9]* | '') prev=0 ;; esac; echo $(( prev + 1 ))";
    let blocks = json!([
        ["Shell command", {"command": count, "stdin": "\u{1}/state/output\u{2}"}, {"name": "counter", "state": {"input": {}, "output": 41}}],
        ["Transform", {"seen": "\u{1}/input\u{2}", "before": "\u{1}/state/output/seen\u{2}"}, {"state": {"input": {}, "output": {"seen": 0}}}]
    ]);
    let (stack, job) = w.pipeline("counter", blocks).await;
    let first = w.run(job).await;
    assert_eq!(first["outcome"], "succeeded", "{first:#}");
    assert_eq!(first["steps"][0]["output"], 42);
    assert_eq!(first["steps"][1]["output"], json!({"seen": 42, "before": 0}));
    let second = w.run(job).await;
    assert_eq!(second["steps"][0]["output"], 43, "{second:#}");
    assert_eq!(second["steps"][1]["output"], json!({"seen": 43, "before": 42}));
    let s = w.stack(stack).await;
    assert_eq!(s["blocks"][0]["state"], json!({"input": {"command": count, "stdin": 42}, "output": 43}));
    assert_eq!(s["blocks"][1]["state"]["output"], json!({"seen": 43, "before": 42}));

    // New blocks start from their own state: the old blocks' does not pass on to them.
    let r = w
        .api
        .put(
            &format!("/api/v1/blockstacks/{stack}"),
            json!({"blocks": [["Shell command", {"command": count, "stdin": "\u{1}/state/output\u{2}"}]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["blocks"][0]["id"], 3);
    assert_eq!(w.run(job).await["steps"][0]["output"], 1);
}

#[tokio::test]
async fn a_filter_that_fails_stops_the_run_which_succeeds() {
    let w = world().await;
    let rx = Receiver::start_on(0, Behaviour::ByPath).await;
    let blocks = |ok: bool| {
        json!([
            ["Transform", {"ok": ok, "id": 7}],
            ["Filter", {"value": "\u{1}/input/ok\u{2}", "equals": true}],
            ["HTTP request", {"method": "PUT", "url": rx.url("/items/\u{1}/input/id\u{2}"), "body": "plain text"}]
        ])
    };
    let (stack, job) = w.pipeline("filtered", blocks(false)).await;
    let run = w.run(job).await;
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(statuses(&run), ["succeeded", "stopped", "skipped"]);
    assert!(run["steps"][2]["started_at"].is_null());
    assert!(rx.all().is_empty());
    assert!(w.api.run_log(run["id"].as_i64().unwrap()).await.contains("the pipeline stops here"));

    // The test holds: the filter passes the previous output on.
    let r = w.api.put(&format!("/api/v1/blockstacks/{stack}"), json!({"blocks": blocks(true)})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run = w.run(job).await;
    assert_eq!(statuses(&run), ["succeeded"; 3], "{run:#}");
    assert_eq!(run["steps"][1]["output"], json!({"ok": true, "id": 7}));
    let got = rx.all();
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str(), got[0].raw.as_str()),
        ("PUT", "/items/7", "plain text")
    );
}

#[tokio::test]
async fn a_failing_step_stops_the_pipeline_with_the_step_and_reason() {
    let w = world().await;
    let rx = Receiver::start_on(0, Behaviour::ByPath).await;
    let after = json!(["HTTP request", {"method": "POST", "url": rx.url("/after")}]);

    let (_, job) =
        w.pipeline("exit3", json!([["Shell command", {"command": "echo partial; exit 3"}], after])).await;
    let run = w.run(job).await;
    assert_eq!(run["outcome"], "failed", "{run:#}");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(statuses(&run), ["failed", "skipped"]);
    assert_eq!(run["steps"][0]["error"], "the command exited with code 3");
    let log = w.api.run_log(run["id"].as_i64().unwrap()).await;
    assert!(
        log.contains("partial") && log.contains("[cronstack] step 1 failed: the command exited with code 3"),
        "{log}"
    );

    let (_, job) = w.pipeline("http500", json!([["HTTP request", {"url": rx.url("/fail")}], after])).await;
    let run = w.run(job).await;
    assert_eq!(run["outcome"], "failed", "{run:#}");
    assert_eq!(statuses(&run), ["failed", "skipped"]);
    assert_eq!(run["steps"][0]["error"], "the response's status is 500, expected 2xx");

    // Redirects are answers, not followed: expected here, the step succeeds with the 307.
    let (_, job) = w
        .pipeline("moved", json!([["HTTP request", {"url": rx.url("/moved"), "expect_status": [307]}]]))
        .await;
    let run = w.run(job).await;
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][0]["output"]["status"], 307);

    let (_, job) =
        w.pipeline("nothing-there", json!([["Transform", {"x": "\u{1}/input/missing\u{2}"}], after])).await;
    let run = w.run(job).await;
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["steps"][0]["error"], "the pointer \"/input/missing\" resolves to nothing");

    assert!(rx.all().iter().all(|g| g.path != "/after"), "a step ran after a failure: {:?}", rx.all());
}

#[tokio::test]
async fn a_hook_answers_with_the_last_steps_output() {
    let w = world().await;
    let stack = w
        .api
        .create(
            "/api/v1/blockstacks",
            json!({
                "name": "greeter",
                "webhook": "public",
                "blocks": [
                    ["Shell command", {"command": "cat"}],
                    ["Transform", {"greeting": "hi \u{1}/input/JSON/name\u{2}", "n": "\u{1}/input/JSON/n\u{2}"}]
                ]
            }),
        )
        .await;
    let anon = Api::new(&w.server, None);
    let r =
        anon.post(&format!("/api/v1/blockstacks/hook/{stack}"), json!({"name": "ann", "n": [1, 2]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"status": 0, "result": {"greeting": "hi ann", "n": [1, 2]}}));

    // A step that fails: the answer names it.
    let failing = w
        .api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "broken", "webhook": "public", "blocks": [["Transform", {"x": "\u{1}/input/JSON/nope\u{2}"}]]}),
        )
        .await;
    let r = anon.post(&format!("/api/v1/blockstacks/hook/{failing}"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], 1);
    let err = r.json()["err"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("step 1 (Transform) failed: the pointer \"/input/JSON/nope\" resolves to nothing"),
        "{err}"
    );
}

#[tokio::test]
async fn a_scheduled_pipeline_starts_from_an_empty_input() {
    let w = world().await;
    let every_second = w.api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let stack = w
        .api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "ticker", "blocks": [["Transform", {"in": "\u{1}/input\u{2}", "trigger": "\u{1}/run/trigger\u{2}"}]]}),
        )
        .await;
    let job = w
        .api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": every_second, "name": "tick", "enabled": true}),
        )
        .await;
    let run = w.api.ended_run(job).await.expect("a scheduled run ends");
    let run = w.api.get(&format!("/api/v1/runs/{}", run["id"])).await.json();
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(run["steps"][0]["output"], json!({"in": {}, "trigger": "schedule"}));
    w.api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
}

#[tokio::test]
async fn kragles_blocks_request_is_accepted_and_bad_blocks_are_named() {
    let w = world().await;
    // The reference page's sample request, with a type we have (and without its trailing comma).
    let body = json!({
        "name": "Everything is Awesome",
        "schedule_id": w.schedule,
        "enabled": true,
        "needs_approval": false,
        "webhook": "token",
        "webhook_method": "POST",
        "blocks": [
            ["Transform", {"tweet_body": "\u{0001}/input/screen_name\u{0002} says #gluetogetherallt3hthings!"}]
        ]
    });
    let id = w.api.create("/api/v1/blockstacks", body).await;
    let s = w.stack(id).await;
    assert_eq!(
        s["blocks"],
        json!([{"id": 1, "type": "Transform", "name": null, "conversion": {"tweet_body": "\u{1}/input/screen_name\u{2} says #gluetogetherallt3hthings!"}, "state": {"input": {}, "output": {}}}])
    );
    assert_eq!(s["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(s["jobs"][0]["do_run"], true);
    assert!(s["webhook_token"].is_string());

    // A one-command stack shows its command as one Shell command block.
    let plain = w.api.create("/api/v1/blockstacks", json!({"name": "plain", "command": "echo hi"})).await;
    let s = w.stack(plain).await;
    assert_eq!(s["command"], "echo hi");
    assert_eq!(
        s["blocks"],
        json!([{"id": 1, "type": "Shell command", "name": null, "conversion": {"command": "echo hi"}, "state": {"input": {}, "output": {}}}])
    );

    // The types it may name.
    let types = Api::new(&w.server, None).get("/api/v1/types").await;
    assert_eq!(types.status, 200, "{}", types.text);
    let types = types.json();
    let names: Vec<&str> =
        types["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Shell command", "HTTP request", "Filter", "Transform"]);

    for (blocks, field) in [
        (json!([["Post to Twitter", {}]]), "blocks[0].type"),
        (json!([["Transform", {}], ["Transform", {"x": "\u{1}input\u{2}"}]]), "blocks[1].conversion.x"),
        (json!([["HTTP request", {"method": "GET"}]]), "blocks[0].conversion.url"),
        (json!([["Filter", {"value": 1, "equals": 1, "exists": true}]]), "blocks[0].conversion"),
        (json!([["Shell command", {"command": "true"}, {"state": 5}]]), "blocks[0].state"),
        (json!([]), "blocks"),
        (json!([{"type": "Transform"}]), "blocks[0]"),
    ] {
        let r = w.api.post("/api/v1/blockstacks", json!({"name": "bad", "blocks": blocks})).await;
        assert_eq!((r.status, r.json()["code"].as_i64()), (400, Some(4)), "{blocks}: {}", r.text);
        let msg = r.json()["msg"].as_str().unwrap().to_string();
        assert!(msg.starts_with(field), "{blocks}: {msg:?} does not name {field}");
    }
    let r = w
        .api
        .post(
            "/api/v1/blockstacks",
            json!({"name": "both", "command": "true", "blocks": [["Transform", {}]]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn public_stacks_are_listed_without_credentials_and_without_private_fields() {
    let w = world().await;
    let bob = Api::new(&w.server, Some(&add_user(&w._db, "bob", None)));
    let anon = Api::new(&w.server, None);
    let shared = w
        .api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "shared", "public": true, "webhook": "token", "blocks": [["Transform", {"a": 1}, {"name": "t"}]]}),
        )
        .await;
    w.api.create("/api/v1/jobs", json!({"stack_id": shared, "schedule_id": w.schedule})).await;
    let private = w.api.create("/api/v1/blockstacks", json!({"name": "mine", "command": "true"})).await;

    let public_shape = json!({
        "id": shared, "owner": w.stack(shared).await["owner"], "name": "shared", "webhook": "token",
        "webhook_method": "POST", "public": true, "blocks": [{"id": 1, "type": "Transform", "name": "t"}]
    });
    for (who, api) in [("anonymous", &anon), ("bob", &bob)] {
        let r = api.get("/api/v1/blockstacks").await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        assert!(r.header("x-ratelimit-remaining").is_some(), "{who}: counted against a rate limit");
        assert_eq!(r.json()["count"], 1, "{who}: {}", r.text);
        assert_eq!(r.json()["stacks"][0], public_shape, "{who}");
        let r = api.get(&format!("/api/v1/blockstacks/byid/{shared}")).await;
        assert_eq!(r.json(), public_shape, "{who}");
        assert_eq!(api.get(&format!("/api/v1/blockstacks/byid/{private}")).await.status, 404, "{who}");
    }
    // Read-only to others.
    assert_eq!(bob.put(&format!("/api/v1/blockstacks/{shared}"), json!({"name": "taken"})).await.status, 404);
    assert_eq!(anon.post("/api/v1/blockstacks", json!({"name": "x", "command": "true"})).await.status, 401);
    // Its owner sees it all, and the private one.
    let r = w.api.get("/api/v1/blockstacks").await.json();
    assert_eq!(r["count"], 2);
    assert_eq!(r["stacks"][0]["blocks"][0]["conversion"], json!({"a": 1}));
    assert_eq!(r["stacks"][0]["jobs"].as_array().unwrap().len(), 1);
    assert!(r["stacks"][0]["webhook_token"].is_string());
    // Made private again: gone from the others' view.
    w.api.put(&format!("/api/v1/blockstacks/{shared}"), json!({"public": false})).await;
    assert_eq!(anon.get("/api/v1/blockstacks").await.json()["count"], 0);
    assert_eq!(bob.get(&format!("/api/v1/blockstacks/byid/{shared}")).await.status, 404);
}

#[tokio::test]
async fn the_v3_stack_object_in_full() {
    let w = world().await;
    let stack =
        w.api.create("/api/v1/blockstacks", json!({"name": "web-app", "command": "exit ${CODE:-0}"})).await;
    let other = w
        .api
        .create("/api/v1/blockstacks", json!({"name": "worker", "command": "true", "environment": "staging"}))
        .await;
    let uid = w.stack(stack).await["uid"].as_str().unwrap().to_string();
    let v3 = |path: String| {
        let api = &w.api;
        async move {
            let r = api.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            r.json()["response"].clone()
        }
    };
    let s = v3(format!("/api/3/stacks/{uid}.json")).await;
    assert_eq!(
        (s["status"].clone(), s["health"].clone(), s["environment"].clone()),
        (json!(1), json!(0), json!("production"))
    );
    assert!(s["last_activity"].is_null() && s["last_activity_iso"].is_null(), "{s:#}");
    for field in ["created_at_iso", "updated_at_iso"] {
        let text = s[field].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok() && text.ends_with('Z'), "{field}: {text}");
    }
    assert!(s["created_at"].as_str().unwrap().ends_with(" UTC"));

    // One job succeeds: healthy. Another fails: impaired. Only failures: failed.
    let ok = w
        .api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": w.schedule, "name": "ok"}))
        .await;
    assert_eq!(w.run(ok).await["outcome"], "succeeded");
    let s = v3(format!("/api/3/stacks/{uid}")).await;
    assert_eq!(s["health"], 3);
    let activity = s["last_activity"].as_str().expect("last activity after a run").to_string();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&activity).is_ok() && activity.ends_with("+00:00"),
        "{activity}"
    );
    assert_eq!(s["last_activity_iso"], json!(activity));
    w.api.put(&format!("/api/v1/blockstacks/{stack}"), json!({"env": {"CODE": "1"}})).await;
    let bad = w
        .api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": w.schedule, "name": "bad"}))
        .await;
    assert_eq!(w.run(bad).await["outcome"], "failed");
    assert_eq!(v3(format!("/api/3/stacks/{uid}")).await["health"], 2);
    assert_eq!(w.run(ok).await["outcome"], "failed");
    assert_eq!(v3(format!("/api/3/stacks/{uid}")).await["health"], 4);

    // filter_name: a substring of the name.
    let list = w.api.get("/api/3/stacks.json?filter_name=work").await.json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["response"][0]["name"], "worker");
    assert_eq!(list["response"][0]["environment"], "staging");
    assert_eq!(w.api.get("/api/3/stacks?filter_name=").await.json()["count"], 2);
    assert_eq!(w.api.get("/api/3/stacks?filter_name=nope").await.json()["count"], 0);
    let _ = other;

    // server_uid on a stack's jobs list is accepted and ignored.
    let jobs = w.api.get(&format!("/api/3/stacks/{uid}/jobs.json?server_uid=abc123")).await;
    assert_eq!(jobs.status, 200, "{}", jobs.text);
    assert_eq!(jobs.json()["count"], 2);
    assert_eq!(jobs.json()["response"][0]["params"], json!({"command": "exit ${CODE:-0}"}));

    // A pipeline's jobs show its steps instead of a command.
    let (pipe, _) = w
        .pipeline("pipe", json!([["Transform", {}], ["HTTP request", {"url": "http://127.0.0.1:9/"}]]))
        .await;
    let pipe_uid = w.stack(pipe).await["uid"].as_str().unwrap().to_string();
    let jobs = v3(format!("/api/3/stacks/{pipe_uid}/jobs")).await;
    assert_eq!(jobs[0]["params"], json!({"steps": ["Transform", "HTTP request"]}));
    assert!(v3(format!("/api/3/stacks/{pipe_uid}")).await["command"].is_null());
}

#[tokio::test]
async fn the_client_creates_pipelines_lists_types_and_shows_steps() {
    let w = world().await;
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env("CRONSTACK_URL", &w.server.base)
            .env("CRONSTACK_TOKEN", &w.token)
            .env("XDG_CONFIG_HOME", home.path())
            .env("HOME", home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["types"]);
    assert!(ok, "{err}");
    for name in ["Shell command", "HTTP request", "Filter", "Transform"] {
        assert!(out.contains(name), "{out}");
    }
    let (ok, out, err) = cli(&[
        "stacks",
        "create",
        "hello",
        "--block",
        "Shell command",
        "--conversion",
        r#"{"command": "echo '{\"who\": \"world\"}'"}"#,
        "--block",
        "Transform",
        "--conversion",
        r#"{"greeting": "hello \u0001/input/who\u0002"}"#,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("created stack"), "{out}");
    let (_, out, _) = cli(&["stacks", "show", "hello"]);
    assert!(out.contains("Shell command") && out.contains("Transform"), "{out}");
    let (ok, _, err) = cli(&["jobs", "create", "hi", "--stack", "hello", "--cron", "0 0 1 1 *", "--paused"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["run", "hi", "--follow"]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&["runs", "show", "1", "--output", "json"]);
    assert!(ok, "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["steps"][1]["output"], json!({"greeting": "hello world"}), "{run:#}");
    let (ok, out, _) = cli(&["runs", "show", "1"]);
    assert!(ok && out.contains("succeeded") && out.contains("hello world"), "{out}");

    let (ok, _, err) = cli(&["stacks", "create", "bad", "--block", "Nope", "--conversion", "{}"]);
    assert!(!ok && err.contains("blocks[0].type: unknown block type \"Nope\""), "{err}");
    let (ok, _, err) = cli(&["stacks", "create", "bad", "--block", "Transform"]);
    assert!(!ok && err.contains("--conversion"), "{err}");
}

#[tokio::test]
async fn a_followed_pipeline_log_is_the_stored_one_and_a_kill_stops_the_pipeline() {
    let w = world().await;
    let (_, job) = w
        .pipeline(
            "slow",
            json!([
                ["Shell command", {"command": "echo one; sleep 1; echo two"}],
                ["Transform", {"x": 1}],
                ["Shell command", {"command": "echo three; sleep 60"}],
                ["Transform", {"y": 2}]
            ]),
        )
        .await;
    let r = w.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    let id = r.json()["id"].as_i64().unwrap();
    let follower = {
        let api = Api::new(&w.server, Some(&w.token));
        tokio::spawn(async move { api.get(&format!("/api/v1/runs/{id}/log?follow=1")).await.text })
    };
    // Killed while its second Shell command step runs.
    let seen = eventually(WAIT, || async {
        let log = w.api.run_log(id).await;
        log.contains("three").then_some(log)
    })
    .await
    .expect("the third step starts");
    assert!(seen.contains("[cronstack] step 3/4: Shell command"), "{seen}");
    let r = w.api.post(&format!("/api/v1/runs/{id}/kill"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run = eventually(WAIT, || async {
        let run = w.api.get(&format!("/api/v1/runs/{id}")).await.json();
        (run["outcome"] != "running").then_some(run)
    })
    .await
    .expect("the run ends");
    assert_eq!(run["outcome"], "killed", "{run:#}");
    assert_eq!(statuses(&run), ["succeeded", "succeeded", "failed", "skipped"]);
    assert_eq!(run["steps"][2]["error"], "killed on request");
    let stored = w.api.run_log(id).await;
    let followed = tokio::time::timeout(WAIT, follower).await.expect("the follower ends").unwrap();
    assert_eq!(followed, stored);
    for line in [
        "one\ntwo\n",
        "[cronstack] step 2/4: Transform\n",
        "three\n",
        "[cronstack] step 3 failed: killed on request",
    ] {
        assert!(stored.contains(line), "{line:?} not in:\n{stored}");
    }
}
