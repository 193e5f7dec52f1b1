//! Webhooks both ways (issue 5), black-box against the real binary.
//!
//! Outbound: a real HTTP receiver on loopback (an axum server inside the test) records what
//! cronstack POSTs; the test verifies each signature itself with HMAC-SHA256. Inbound: stacks
//! called through `/api/v1/blockstacks/hook/<id>` in each access mode.
//!
//! Timing: every wait is an `eventually` with a generous timeout; no assertion depends on
//! how fast anything is, only on what arrives and in which state things end.
//!
//! One binary, a module per concern; the receiver is `common::Receiver`, the cronstack
//! helpers every module shares live here.

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod deliveries;
mod events;
mod hooks;
mod subscriptions;

use std::time::Duration;

use common::code::*;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A server with quick retries, and a user's API client.
async fn start(db: &TestDb, extra: &[&str]) -> (Server, Api) {
    let mut flags = vec!["--webhook-retry-base-ms", "200", "--shutdown-grace-s", "1", "--kill-grace-s", "1"];
    flags.extend_from_slice(extra);
    let server = Server::start_on(db, &flags);
    let token = add_user(db, "alice", Some("alice-password"));
    let api = Api::new(&server, Some(&token));
    (server, api)
}

/// A stack running `command` with a disabled job on a daily schedule; returns (stack, job).
async fn stack_and_job(api: &Api, name: &str, command: &str) -> (i64, i64) {
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await;
    let schedule = api
        .create(
            "/api/v1/schedules",
            json!({"name": format!("{name}-daily"), "config": {"cron": "0 3 * * *"}}),
        )
        .await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": name, "enabled": false}),
        )
        .await;
    (stack, job)
}

/// Runs the job now and waits for the run's end; returns the run.
async fn run_to_end(api: &Api, job: i64) -> Value {
    let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    assert_eq!(r.status, 200, "run now: {}", r.text);
    let id = r.json()["id"].as_i64().unwrap();
    eventually(WAIT, || async {
        let run = api.get(&format!("/api/v1/runs/{id}")).await.json();
        (!matches!(run["outcome"].as_str(), Some("queued" | "running"))).then_some(run)
    })
    .await
    .expect("run ends")
}

/// Subscribes `url` to `events`; returns (id, secret).
async fn subscribe(api: &Api, body: Value) -> (i64, String) {
    let r = api.post("/api/v1/webhooks", body).await;
    assert_eq!(r.status, 200, "subscribe: {}", r.text);
    let v = r.json();
    (v["id"].as_i64().unwrap(), v["secret"].as_str().unwrap().to_string())
}

async fn deliveries(api: &Api, webhook: i64) -> Value {
    let r = api.get(&format!("/api/v1/webhooks/byid/{webhook}/deliveries")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// Sends a request with extra headers (and the client's token, if any).
async fn send_with(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Resp {
    let mut req = api.http.request(method.parse().unwrap(), format!("{}{}", api.base, path));
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Resp { status, headers, text }
}

fn anon(api: &Api) -> Api {
    Api { base: api.base.clone(), token: None, http: api.http.clone() }
}
