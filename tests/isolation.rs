//! Isolation between users across every endpoint of both dialects: bob, with a token or a
//! session cookie, aims every route at alice's objects (and at mixes of his own and hers).
//! Every answer is 404 in the dialect's shape, naming nothing of alice's; nothing of hers
//! changes, no run starts, and every list count each of them sees is exactly their own. Alice
//! reads each object just before bob tries it, so nothing kept of her answers leaks either.
//!
//! The routes are read from the source (`src/http/**/mod.rs`), so a new endpoint fails this
//! test until it is added to the matrix below.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const FAR_TS: i64 = 4_102_444_800;
/// Routes with nothing owned behind them (`/password` is the caller's own, named by nothing).
const UNOWNED: [&str; 6] = [
    "/api/v1/whoami",
    "/api/v1/nodes",
    "/api/v1/authenticate",
    "/api/v1/logout",
    "/api/v1/types",
    "/api/v1/password",
];

struct Side {
    api: Api,
    stack: i64,
    stack_uid: String,
    schedule: i64,
    job: i64,
    job_uid: String,
    run: i64,
    action: i64,
    token: i64,
    webhook: i64,
    monitor: i64,
}

/// A user with a stack, a schedule, a job named `<user>-job`, a finished run (its log holds
/// `secret-of-<user>`), a pause action and a second token.
async fn side(server: &Server, token: &str, user: &str) -> Side {
    let api = Api::new(server, Some(token));
    let stack = api
        .create(
            "/api/v1/blockstacks",
            json!({"name": format!("{user}-stack"), "command": format!("echo secret-of-{user}"), "webhook": "token"}),
        )
        .await;
    let schedule = api
        .create(
            "/api/v1/schedules",
            json!({"name": format!("{user}-sched"), "config": {"timestamp": FAR_TS}}),
        )
        .await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": format!("{user}-job"), "enabled": true}),
        )
        .await;
    let (stack_uid, job_uid) = api.v3_uids(stack, job).await;
    // An outbound webhook for the job's runs (to a closed local port: deliveries just fail).
    let webhook = api
        .create(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["run.succeeded"], "job_id": job,
                   "secret": format!("whsec-of-{user}-0123456789abcdef")}),
        )
        .await;
    let run =
        api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    eventually(Duration::from_secs(20), || async {
        let r = api.get(&format!("/api/v1/runs/{run}")).await.json();
        (r["outcome"] == "succeeded").then_some(())
    })
    .await
    .expect("the run finished");
    let action = api.post(&format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/pause"), json!({})).await.json()
        ["response"]["id"]
        .as_i64()
        .unwrap();
    let token =
        api.post("/api/v1/tokens", json!({"name": "second", "scopes": ["public"]})).await.json()["id"]
            .as_i64()
            .unwrap();
    let monitor = api
        .create("/api/v1/monitors", json!({"name": format!("{user}-monitor"), "schedule": {"period": 3600}}))
        .await;
    Side { api, stack, stack_uid, schedule, job, job_uid, run, action, token, webhook, monitor }
}

/// Everything a user can see through both dialects, with their run's log.
async fn view(s: &Side) -> Value {
    let mut out = serde_json::Map::new();
    for path in [
        "/api/v1/blockstacks".to_string(),
        "/api/v1/schedules".to_string(),
        "/api/v1/jobs".to_string(),
        "/api/v1/tokens".to_string(),
        "/api/v1/webhooks".to_string(),
        format!("/api/v1/webhooks/byid/{}", s.webhook),
        "/api/v1/monitors".to_string(),
        "/api/v1/overview".to_string(),
        format!("/api/v1/monitors/byid/{}", s.monitor),
        format!("/api/v1/monitors/byid/{}/pings", s.monitor),
        format!("/api/v1/jobs/byid/{}/runs", s.job),
        format!("/api/v1/runs/{}", s.run),
        "/api/3/stacks".to_string(),
        format!("/api/3/stacks/{}/jobs", s.stack_uid),
        format!("/api/3/stacks/{}/actions", s.stack_uid),
    ] {
        let r = s.api.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        out.insert(path, r.json());
    }
    let log = s.api.get(&format!("/api/v1/runs/{}/log", s.run)).await;
    out.insert("log".into(), Value::String(log.text));
    Value::Object(out)
}

/// The route templates of both API dialects, read from their source (the other routes —
/// health, metrics, OpenAPI, the dashboard's files — serve nothing that has an owner).
fn routes_in_source() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.join("kragle"), root.join("cloud66")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().to_string();
            let prefix = if rel.starts_with("kragle") { "/api/v1" } else { "/api/3" };
            for piece in text.split(".route(\"").skip(1) {
                let template = piece.split('"').next().unwrap();
                found.insert(format!("{prefix}{template}"));
            }
        }
    }
    found
}

/// `(method, route template, concrete path, body)` for every owned endpoint, aimed at `a`'s
/// objects by `b` (whose own objects are used where a path mixes both).
fn matrix(a: &Side, b: &Side) -> Vec<(&'static str, &'static str, String, Option<Value>)> {
    let (aj, ar, asc, ast, at, aw) = (a.job, a.run, a.schedule, a.stack, a.token, a.webhook);
    let (au, aju, aa, am) = (&a.stack_uid, &a.job_uid, a.action, a.monitor);
    let bu = &b.stack_uid;
    vec![
        ("GET", "/api/v1/jobs/byid/{id}", format!("/api/v1/jobs/byid/{aj}"), None),
        ("GET", "/api/v1/jobs/byname/{name}", "/api/v1/jobs/byname/alice-job".into(), None),
        ("PUT", "/api/v1/jobs/{id}", format!("/api/v1/jobs/{aj}"), Some(json!({"enabled": false}))),
        ("PUT", "/api/v1/jobs/{id}", format!("/api/v1/jobs/{aj}"), Some(json!({"stack_id": b.stack}))),
        ("DELETE", "/api/v1/jobs/{id}", format!("/api/v1/jobs/{aj}"), None),
        ("GET", "/api/v1/jobs/byid/{id}/runs", format!("/api/v1/jobs/byid/{aj}/runs"), None),
        (
            "POST",
            "/api/v1/jobs/byid/{id}/run",
            format!("/api/v1/jobs/byid/{aj}/run"),
            Some(json!({"args": ["x"]})),
        ),
        ("GET", "/api/v1/runs/{id}", format!("/api/v1/runs/{ar}"), None),
        ("GET", "/api/v1/runs/{id}/log", format!("/api/v1/runs/{ar}/log"), None),
        ("GET", "/api/v1/runs/{id}/log", format!("/api/v1/runs/{ar}/log?follow=1"), None),
        ("POST", "/api/v1/runs/{id}/kill", format!("/api/v1/runs/{ar}/kill"), Some(json!({}))),
        (
            "POST",
            "/api/v1/jobs/byid/{id}/backfill",
            format!("/api/v1/jobs/byid/{aj}/backfill"),
            Some(json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})),
        ),
        ("GET", "/api/v1/schedules/byid/{id}", format!("/api/v1/schedules/byid/{asc}"), None),
        ("PUT", "/api/v1/schedules/{id}", format!("/api/v1/schedules/{asc}"), Some(json!({"name": "mine"}))),
        ("DELETE", "/api/v1/schedules/{id}", format!("/api/v1/schedules/{asc}"), None),
        ("GET", "/api/v1/blockstacks/byid/{id}", format!("/api/v1/blockstacks/byid/{ast}"), None),
        ("GET", "/api/v1/blockstacks/byname/{name}", "/api/v1/blockstacks/byname/alice-stack".into(), None),
        (
            "PUT",
            "/api/v1/blockstacks/{id}",
            format!("/api/v1/blockstacks/{ast}"),
            Some(json!({"command": "id"})),
        ),
        ("DELETE", "/api/v1/blockstacks/{id}", format!("/api/v1/blockstacks/{ast}"), None),
        ("DELETE", "/api/v1/tokens/{id}", format!("/api/v1/tokens/{at}"), None),
        ("GET", "/api/v1/webhooks/byid/{id}", format!("/api/v1/webhooks/byid/{aw}"), None),
        (
            "GET",
            "/api/v1/webhooks/byid/{id}/deliveries",
            format!("/api/v1/webhooks/byid/{aw}/deliveries"),
            None,
        ),
        (
            "PUT",
            "/api/v1/webhooks/{id}",
            format!("/api/v1/webhooks/{aw}"),
            Some(json!({"url": "http://127.0.0.1:9/mine"})),
        ),
        ("DELETE", "/api/v1/webhooks/{id}", format!("/api/v1/webhooks/{aw}"), None),
        ("GET", "/api/v1/channels/byid/{id}", format!("/api/v1/channels/byid/{aw}"), None),
        (
            "GET",
            "/api/v1/channels/byid/{id}/deliveries",
            format!("/api/v1/channels/byid/{aw}/deliveries"),
            None,
        ),
        ("PUT", "/api/v1/channels/{id}", format!("/api/v1/channels/{aw}"), Some(json!({"kind": "slack"}))),
        ("DELETE", "/api/v1/channels/{id}", format!("/api/v1/channels/{aw}"), None),
        (
            "POST",
            "/api/v1/channels",
            "/api/v1/channels".into(),
            Some(
                json!({"kind": "slack", "url": "http://127.0.0.1:9/x", "events": ["run.succeeded"], "job_id": aj}),
            ),
        ),
        (
            "POST",
            "/api/v1/webhooks",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/x", "events": ["run.succeeded"], "job_id": aj})),
        ),
        (
            "POST",
            "/api/v1/webhooks",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/x", "events": ["run.succeeded"], "stack_id": ast})),
        ),
        ("GET", "/api/v1/monitors/byid/{id}", format!("/api/v1/monitors/byid/{am}"), None),
        ("GET", "/api/v1/monitors/byid/{id}/pings", format!("/api/v1/monitors/byid/{am}/pings"), None),
        (
            "PUT",
            "/api/v1/monitors/byid/{id}",
            format!("/api/v1/monitors/byid/{am}"),
            Some(json!({"paused": true})),
        ),
        (
            "PUT",
            "/api/v1/monitors/byid/{id}",
            format!("/api/v1/monitors/byid/{am}"),
            Some(json!({"name": "mine"})),
        ),
        ("DELETE", "/api/v1/monitors/byid/{id}", format!("/api/v1/monitors/byid/{am}"), None),
        (
            "POST",
            "/api/v1/webhooks",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/x", "events": ["monitor.down"], "monitor_id": am})),
        ),
        ("GET", "/api/v1/blockstacks/exec/{id}", format!("/api/v1/blockstacks/exec/{ast}"), None),
        ("POST", "/api/v1/blockstacks/exec/{id}", format!("/api/v1/blockstacks/exec/{ast}"), Some(json!({}))),
        (
            "GET",
            "/api/v1/blockstacks/hook/token_refresh/{id}",
            format!("/api/v1/blockstacks/hook/token_refresh/{ast}"),
            None,
        ),
        // Creating with references to alice's objects: 404 too (Kragle codes 24 / 25).
        (
            "POST",
            "/api/v1/jobs",
            "/api/v1/jobs".into(),
            Some(json!({"stack_id": ast, "schedule_id": b.schedule})),
        ),
        (
            "POST",
            "/api/v1/jobs",
            "/api/v1/jobs".into(),
            Some(json!({"stack_id": b.stack, "schedule_id": asc})),
        ),
        (
            "POST",
            "/api/v1/blockstacks",
            "/api/v1/blockstacks".into(),
            Some(json!({"name": "x", "command": "true", "schedule_id": asc})),
        ),
        ("GET", "/api/3/stacks/{stack}", format!("/api/3/stacks/{au}"), None),
        ("GET", "/api/3/stacks/{stack}/jobs", format!("/api/3/stacks/{au}/jobs.json"), None),
        ("GET", "/api/3/stacks/{stack}/jobs/{job}", format!("/api/3/stacks/{au}/jobs/{aju}"), None),
        ("GET", "/api/3/stacks/{stack}/jobs/{job}", format!("/api/3/stacks/{bu}/jobs/{aju}"), None),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/run_now",
            format!("/api/3/stacks/{au}/jobs/{aju}/run_now"),
            Some(json!({"job_args": "x"})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/run_now",
            format!("/api/3/stacks/{bu}/jobs/{aju}/run_now"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/pause",
            format!("/api/3/stacks/{au}/jobs/{aju}/pause"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/pause",
            format!("/api/3/stacks/{bu}/jobs/{aju}/pause.json"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/unpause",
            format!("/api/3/stacks/{au}/jobs/{aju}/unpause"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/{job}/unpause",
            format!("/api/3/stacks/{bu}/jobs/{aju}/unpause"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/pause_all",
            format!("/api/3/stacks/{au}/jobs/pause_all"),
            Some(json!({})),
        ),
        (
            "POST",
            "/api/3/stacks/{stack}/jobs/unpause_all",
            format!("/api/3/stacks/{au}/jobs/unpause_all"),
            Some(json!({})),
        ),
        ("GET", "/api/3/stacks/{stack}/actions", format!("/api/3/stacks/{au}/actions"), None),
        ("GET", "/api/3/stacks/{stack}/actions/{id}", format!("/api/3/stacks/{au}/actions/{aa}"), None),
        ("GET", "/api/3/stacks/{stack}/actions/{id}", format!("/api/3/stacks/{bu}/actions/{aa}.json"), None),
    ]
}

#[tokio::test]
async fn every_endpoint_of_both_dialects_hides_other_users_objects() {
    let db = TestDb::new();
    let ta = add_user(&db, "alice", None);
    let tb = add_user(&db, "bob", Some("bob-password"));
    let server = Server::start_on(&db, &[]);
    let alice = side(&server, &ta, "alice").await;
    let bob = side(&server, &tb, "bob").await;
    // Bob also holds a session cookie: the other way in.
    let anon = Api::new(&server, None);
    let login = anon
        .http
        .post(server.url("/api/v1/authenticate"))
        .json(&json!({"username": "bob", "password": "bob-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();

    let cases = matrix(&alice, &bob);
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.1).collect();
    let uncovered: Vec<String> = routes_in_source()
        .into_iter()
        .filter(|r| !covered.contains(r.as_str()) && !UNOWNED.contains(&r.as_str()))
        // Lists (their counts are checked below) and the stack hook (checked below: Kragle
        // lets anyone knock, the stack's access mode decides).
        .filter(|r| {
            ![
                "/api/v1/jobs",
                "/api/v1/schedules",
                "/api/v1/blockstacks",
                "/api/v1/tokens",
                "/api/v1/webhooks",
                "/api/v1/channels",
                "/api/v1/monitors",
                "/api/v1/overview",
                "/api/3/stacks",
                "/api/v1/blockstacks/hook/{id}",
            ]
            .contains(&r.as_str())
        })
        .collect();
    assert!(uncovered.is_empty(), "endpoints without an isolation case: {uncovered:?}");

    let alice_before = view(&alice).await;
    let bob_before = view(&bob).await;
    for (method, template, path, body) in &cases {
        // Alice reads it first (not the Kragle GETs that act: exec, token_refresh): whatever
        // the server keeps of her answer (rendered bodies are kept per object, not per
        // caller) must not reach bob.
        if *method == "GET" && !template.contains("/exec/") && !template.contains("token_refresh") {
            let _ = alice.api.get(path).await;
        }
        for via_cookie in [false, true] {
            let mut req = bob.api.http.request(method.parse().unwrap(), server.url(path));
            req = if via_cookie {
                req.header("cookie", &cookie)
            } else {
                req.bearer_auth(bob.api.token.as_ref().unwrap())
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let how = if via_cookie { "cookie" } else { "token" };
            assert_eq!(status, 404, "{method} {path} ({template}) by bob's {how}: {text}");
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
            if path.starts_with("/api/v1") {
                assert!(v["code"].as_i64().is_some(), "{path}: {v}");
            } else {
                assert_eq!(v["error"], "not_found", "{path}: {v}");
            }
            for secret in ["alice", &alice.stack_uid, &alice.job_uid, "secret-of"] {
                assert!(!text.contains(secret), "{method} {path} leaks {secret:?}: {text}");
            }
        }
    }
    // Alice's token-access hook: bob's credentials, or his own stack's hook token, are no way in.
    let bob_hook =
        bob.api.get(&format!("/api/v1/blockstacks/byid/{}", bob.stack)).await.json()["webhook_token"]
            .as_str()
            .unwrap()
            .to_string();
    for (how, req) in [
        (
            "bob's token",
            bob.api
                .http
                .post(server.url(&format!("/api/v1/blockstacks/hook/{}", alice.stack)))
                .bearer_auth(&tb),
        ),
        (
            "bob's cookie",
            bob.api
                .http
                .post(server.url(&format!("/api/v1/blockstacks/hook/{}", alice.stack)))
                .header("cookie", &cookie),
        ),
        (
            "bob's hook token",
            bob.api
                .http
                .post(server.url(&format!("/api/v1/blockstacks/hook/{}?token={bob_hook}", alice.stack))),
        ),
        (
            "bob's hook token header",
            bob.api
                .http
                .post(server.url(&format!("/api/v1/blockstacks/hook/{}", alice.stack)))
                .header("x-cronstack-hook-token", &bob_hook),
        ),
    ] {
        let r = req.json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 401, "alice's hook called with {how}");
        assert!(!r.text().await.unwrap().contains("secret-of"));
    }
    // Give a wrongly started run the time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(view(&alice).await, alice_before, "alice's objects changed");
    assert_eq!(view(&bob).await, bob_before, "bob's objects changed");

    // Every list count is exactly one's own, in both dialects.
    for s in [&alice, &bob] {
        for (path, n) in [
            ("/api/v1/blockstacks", 1),
            ("/api/v1/schedules", 1),
            ("/api/v1/jobs", 1),
            ("/api/v1/tokens", 2),
            ("/api/v1/webhooks", 1),
            ("/api/v1/channels", 1),
            ("/api/v1/monitors", 1),
            ("/api/v1/overview", 1),
            ("/api/3/stacks", 1),
        ] {
            assert_eq!(s.api.get(path).await.json()["count"], n, "{path}");
        }
        for (rest, n) in [("jobs", 1), ("actions", 1)] {
            let path = format!("/api/3/stacks/{}/{rest}", s.stack_uid);
            assert_eq!(s.api.get(&path).await.json()["count"], n, "{path}");
        }
        assert_eq!(s.api.get(&format!("/api/v1/jobs/byid/{}/runs", s.job)).await.json()["count"], 1);
    }
    // The overview lists one's own stacks only, and refuses to filter by another's.
    assert_eq!(bob.api.get("/api/v1/overview").await.json()["stacks"].as_array().map(Vec::len), Some(1));
    let r = bob.api.get(&format!("/api/v1/overview?stack={}", alice.stack)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(!r.text.contains("alice") && !r.text.contains("secret-of"), "{}", r.text);
    // Alice's answers never carry bob's webhook token, nor bob's hers.
    let hook =
        |v: &Value| v["/api/v1/blockstacks"]["stacks"][0]["webhook_token"].as_str().unwrap().to_string();
    assert!(!alice_before.to_string().contains(&hook(&bob_before)));
    assert!(!bob_before.to_string().contains(&hook(&alice_before)));
}

/// Every caller sees the cluster's nodes, but `running_runs` counts only the caller's own
/// runs: another user's work on a node is not theirs to see (not even its amount).
#[tokio::test]
async fn the_node_list_counts_only_the_callers_running_runs() {
    let db = TestDb::new();
    let ta = add_user(&db, "alice", None);
    let tb = add_user(&db, "bob", None);
    let server = Server::start_on(&db, &["--shutdown-grace-s", "0"]);
    let alice = Api::new(&server, Some(&ta));
    let bob = Api::new(&server, Some(&tb));
    let stack = alice.create("/api/v1/blockstacks", json!({"name": "slow", "command": "sleep 30"})).await;
    let schedule = alice.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    let job = alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "timeout_s": 60}))
        .await;
    let run =
        alice.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    eventually(Duration::from_secs(20), || async {
        let r = alice.get(&format!("/api/v1/runs/{run}")).await.json();
        (r["outcome"] == "running").then_some(())
    })
    .await
    .expect("alice's run is running");

    // A public-scope token of each user may list the nodes too.
    let public = |api: &Api| {
        let api = api.clone();
        async move {
            let t = api.post("/api/v1/tokens", json!({"scopes": ["public"]})).await.json()["token"]
                .as_str()
                .unwrap()
                .to_string();
            Api { token: Some(t), ..api }
        }
    };
    let (alice_public, bob_public) = (public(&alice).await, public(&bob).await);
    for (who, api, running) in [
        ("alice", &alice, 1),
        ("alice public", &alice_public, 1),
        ("bob", &bob, 0),
        ("bob public", &bob_public, 0),
    ] {
        let r = api.get("/api/v1/nodes").await;
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        let v = r.json();
        assert_eq!(v["count"], 1, "{who}: {v}");
        let node = &v["nodes"][0];
        assert_eq!(node["this_node"], true, "{who}: {v}");
        assert!(node["address"].is_string() && node["last_seen"].is_string(), "{who}: {v}");
        assert_eq!(node["running_runs"], running, "{who}: {v}");
    }
}
