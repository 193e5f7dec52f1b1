//! Webhooks both ways (issue 5), black-box against the real binary.
//!
//! Outbound: a real HTTP receiver on loopback (an axum server inside the test) records what
//! cronstack POSTs; the test verifies each signature itself with HMAC-SHA256. Inbound: stacks
//! called through `/api/v1/blockstacks/hook/<id>` in each access mode.
//!
//! Timing: every wait is an `eventually` with a generous timeout; no assertion depends on
//! how fast anything is, only on what arrives and in which state things end.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// A webhook receiver on loopback
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: String,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
    fn event(&self) -> String {
        self.json()["event"].as_str().unwrap().to_string()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Answer from the plan (default 200).
    Answer,
    /// Never answer (a receiver that hangs).
    Hang,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    /// Statuses to answer next, in order; 200 once empty.
    plan: VecDeque<u16>,
    /// Requests being held open (Behaviour::Hang).
    hanging: usize,
}

struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on(0, Behaviour::Answer).await
    }

    async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = shared.clone();
            async move {
                let path = req.uri().path().to_string();
                let headers: HashMap<String, String> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let body = String::from_utf8_lossy(&body).into_owned();
                if behaviour == Behaviour::Hang {
                    state.lock().unwrap().hanging += 1;
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                let status = {
                    let mut s = state.lock().unwrap();
                    let status = s.plan.pop_front().unwrap_or(200);
                    s.got.push(Received { path, headers, body, status });
                    status
                };
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Receiver { addr, state, stop: Some(tx) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().plan.extend(statuses);
    }

    /// Every request so far.
    fn all(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// The requests answered 2xx (the deliveries that succeeded).
    fn delivered(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| (200..300).contains(&r.status)).collect()
    }

    fn hanging(&self) -> usize {
        self.state.lock().unwrap().hanging
    }

    /// Waits until `n` deliveries succeeded; returns them.
    async fn wait_delivered(&self, n: usize) -> Vec<Received> {
        eventually(WAIT, || async {
            let got = self.delivered();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|| panic!("expected {n} deliveries, got {:#?}", self.all()))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// What a receiver does with `X-Cronstack-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 with the
/// secret over `"<t>.<body>"`, compared in constant time, `t` not too old.
fn verify_signature(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    if (now - t).abs() > 300 {
        return false;
    }
    sigs.iter().any(|sig| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::decode(sig).is_ok_and(|bytes| mac.verify_slice(&bytes).is_ok())
    })
}

// ---------------------------------------------------------------------------------------------
// cronstack helpers
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deliveries_are_signed_and_the_receiver_can_verify_them() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let (_, job) = stack_and_job(&api, "signed", "echo signed").await;

    let (generated_id, generated) = subscribe(
        &api,
        json!({"url": receiver.url("/generated"), "events": ["run.started", "run.succeeded"]}),
    )
    .await;
    assert!(generated.starts_with("whsec_") && generated.len() == 70, "generated secret {generated}");
    let own = "my-own-secret-0123456789";
    let (own_id, echoed) =
        subscribe(&api, json!({"url": receiver.url("/own"), "events": ["run.succeeded"], "secret": own}))
            .await;
    assert_eq!(echoed, own);
    // The secret is shown once, never again.
    let shown = api.get(&format!("/api/v1/webhooks/byid/{generated_id}")).await;
    assert_eq!(shown.status, 200);
    assert!(shown.json().get("secret").is_none() && !shown.text.contains(&generated), "{}", shown.text);

    let run = run_to_end(&api, job).await;
    assert_eq!(run["outcome"], "succeeded");
    let got = receiver.wait_delivered(3).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    for r in &got {
        let (secret, other) = match r.path.as_str() {
            "/generated" => (generated.as_str(), own),
            "/own" => (own, generated.as_str()),
            path => panic!("unexpected path {path}"),
        };
        let header = &r.headers["x-cronstack-signature"];
        assert!(header.starts_with("t=") && header.contains(",v1="), "{header}");
        assert!(
            verify_signature(secret, header, &r.body),
            "signature does not verify: {header} over {}",
            r.body
        );
        // Another secret, or a body changed on the way, does not verify.
        assert!(!verify_signature(other, header, &r.body));
        assert!(!verify_signature(secret, header, &r.body.replacen('}', " }", 1)));
        assert_eq!(r.headers["content-type"], "application/json");
        let body = r.json();
        assert_eq!(r.headers["x-cronstack-event"], body["event"].as_str().unwrap());
        assert!(r.headers["x-cronstack-delivery"].parse::<i64>().is_ok());
        assert_eq!(body["job"]["id"], job);
        assert_eq!(body["run"]["id"], run["id"]);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    }
    let mut events: Vec<String> = got.iter().map(Received::event).collect();
    events.sort();
    assert_eq!(events, ["run.started", "run.succeeded", "run.succeeded"]);
    assert_eq!(got.iter().filter(|r| r.path == "/own").count(), 1);
    let succeeded = got.iter().find(|r| r.event() == "run.succeeded").unwrap().json();
    assert_eq!(succeeded["run"]["outcome"], "succeeded");
    assert_eq!(succeeded["run"]["exit_code"], 0);
    assert_eq!(succeeded["run"]["trigger"], "run_now");
    let started = got.iter().find(|r| r.event() == "run.started").unwrap().json();
    assert_eq!(started["run"]["outcome"], "running");
    assert!(started["run"]["started_at"].is_string());

    // The delivery log: paged like the other v1 lists.
    let page = eventually(WAIT, || async {
        let page = deliveries(&api, generated_id).await;
        page["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "delivered").then_some(page)
    })
    .await
    .expect("deliveries recorded as delivered");
    assert_eq!(page["count"], 2);
    assert_eq!(page["pagesize"], 10);
    assert_eq!(page["page"], 1);
    for d in page["deliveries"].as_array().unwrap() {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status_code"], 200, "{d}");
        assert!(d["last_error"].is_null() && d["next_attempt"].is_null(), "{d}");
        assert!(d["delivered_at"].is_string(), "{d}");
        assert_eq!(d["webhook"], generated_id);
    }
    assert_eq!(deliveries(&api, own_id).await["count"], 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_then_marked_failed_when_attempts_run_out() {
    let db = TestDb::new();
    let (server, api) = start(&db, &["--webhook-max-attempts", "3"]).await;
    let flaky = Receiver::start().await;
    let broken = Receiver::start().await;
    flaky.answer_next(&[500]);
    broken.answer_next(&[500, 503, 500, 500, 500]);
    let (_, job) = stack_and_job(&api, "retried", "true").await;
    let (flaky_id, flaky_secret) =
        subscribe(&api, json!({"url": flaky.url("/"), "events": ["run.succeeded"]})).await;
    let (broken_id, _) = subscribe(&api, json!({"url": broken.url("/"), "events": ["run.succeeded"]})).await;

    run_to_end(&api, job).await;

    // 500, then a retry that succeeds: the same delivery, signed again.
    let got = flaky.wait_delivered(1).await;
    let all = flaky.all();
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].status, 500);
    assert_eq!(all[0].headers["x-cronstack-delivery"], all[1].headers["x-cronstack-delivery"]);
    assert_eq!(all[0].body, all[1].body, "the same body is retried");
    assert!(verify_signature(&flaky_secret, &got[0].headers["x-cronstack-signature"], &got[0].body));
    let d = eventually(WAIT, || async {
        let page = deliveries(&api, flaky_id).await;
        let d = page["deliveries"][0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await
    .expect("delivered after a retry");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["last_status_code"], 200, "{d}");

    // Always failing: three attempts, then failed.
    let d = eventually(WAIT, || async {
        let page = deliveries(&api, broken_id).await;
        let d = page["deliveries"][0].clone();
        (d["status"] == "failed").then_some(d)
    })
    .await
    .unwrap_or_else(|| panic!("marked failed; receiver saw {:#?}", broken.all()));
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(d["last_status_code"], 500, "{d}");
    assert!(d["last_error"].as_str().unwrap().contains("500"), "{d}");
    assert!(d["delivered_at"].is_null() && d["next_attempt"].is_null(), "{d}");
    assert_eq!(broken.all().len(), 3, "no attempt after the last: {:#?}", broken.all());

    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    for result in ["delivered", "retrying", "failed"] {
        assert!(
            metrics.lines().any(|l| l.starts_with("cronstack_webhook_deliveries_total")
                && l.contains(&format!("result=\"{result}\""))),
            "no {result} counter in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_receiver_down_across_a_restart_still_gets_the_event_when_it_comes_back() {
    let db = TestDb::new();
    let flags = ["--webhook-timeout-s", "2"];
    let (mut server, api) = start(&db, &flags).await;
    // Nothing listens on this port yet.
    let port = free_port();
    let (_, job) = stack_and_job(&api, "restarted", "echo persisted").await;
    let (webhook, secret) = subscribe(
        &api,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["run.succeeded"], "job_id": job}),
    )
    .await;
    let run = run_to_end(&api, job).await;

    // The delivery is in the database and failing.
    let d = eventually(WAIT, || async {
        let d = deliveries(&api, webhook).await["deliveries"][0].clone();
        (d["attempts"].as_i64().unwrap_or(0) >= 1 && d["status"] == "pending").then_some(d)
    })
    .await
    .expect("a failing delivery is recorded");
    assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{d}");
    assert!(d["last_status_code"].is_null(), "{d}");
    assert!(d["next_attempt"].is_string(), "{d}");

    // cronstack crashes; the receiver comes up while it is down; cronstack comes back.
    server.kill9();
    let receiver = Receiver::start_on(port, Behaviour::Answer).await;
    let server = Server::start_on(&db, &["--webhook-retry-base-ms", "200", "--webhook-timeout-s", "2"]);
    let api = Api { base: server.base.clone(), ..api };

    let got = receiver.wait_delivered(1).await;
    let body = got[0].json();
    assert_eq!(body["event"], "run.succeeded");
    assert_eq!(body["run"]["id"], run["id"]);
    assert!(verify_signature(&secret, &got[0].headers["x-cronstack-signature"], &got[0].body));
    let d = eventually(WAIT, || async {
        let d = deliveries(&api, webhook).await["deliveries"][0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await
    .expect("recorded as delivered");
    assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
    assert_eq!(receiver.delivered().len(), 1);
}

#[tokio::test]
async fn job_fail_and_backon_follow_the_run_history() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let flag = db.dir().join("healthy");
    let (_, job) = stack_and_job(&api, "flappy", &format!("test -f '{}'", flag.display())).await;
    let (webhook, _) =
        subscribe(&api, json!({"url": receiver.url("/"), "events": ["job.fail", "job.backon"]})).await;

    let mut runs = Vec::new();
    // never ran → fails: job.fail; fails again: nothing; succeeds: job.backon; succeeds: nothing;
    // fails: job.fail.
    for healthy in [false, false, true, true, false] {
        if healthy {
            std::fs::write(&flag, "").unwrap();
        } else {
            let _ = std::fs::remove_file(&flag);
        }
        let run = run_to_end(&api, job).await;
        assert_eq!(run["outcome"], if healthy { "succeeded" } else { "failed" });
        runs.push(run["id"].as_i64().unwrap());
    }
    let got = receiver.wait_delivered(3).await;
    // Every event was queued before the last one: nothing more is coming.
    let page = deliveries(&api, webhook).await;
    assert_eq!(page["count"], 3, "{page}");
    let mut seen: Vec<(i64, String)> =
        got.iter().map(|r| (r.json()["run"]["id"].as_i64().unwrap(), r.event())).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (runs[0], "job.fail".to_string()),
            (runs[2], "job.backon".to_string()),
            (runs[4], "job.fail".to_string())
        ]
    );
    let fail = got.iter().find(|r| r.json()["run"]["id"] == runs[0]).unwrap().json();
    assert_eq!(fail["job"]["id"], job);
    assert_eq!(fail["run"]["outcome"], "failed");
    assert_eq!(fail["run"]["exit_code"], 1);
}

#[tokio::test]
async fn a_subscription_can_be_scoped_to_one_job_or_one_stack() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let (stack, job_a) = stack_and_job(&api, "scoped-a", "true").await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let job_b = api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "scoped-b"}))
        .await;
    let (_, job_other) = stack_and_job(&api, "other-stack", "true").await;

    let only_a = Receiver::start().await;
    let only_stack = Receiver::start().await;
    let all = Receiver::start().await;
    subscribe(&api, json!({"url": only_a.url("/"), "events": ["run.succeeded"], "job_id": job_a})).await;
    subscribe(&api, json!({"url": only_stack.url("/"), "events": ["run.succeeded"], "stack_id": stack}))
        .await;
    subscribe(&api, json!({"url": all.url("/"), "events": ["run.succeeded"]})).await;

    for job in [job_a, job_b, job_other] {
        run_to_end(&api, job).await;
    }
    let jobs_of = |got: Vec<Received>| {
        let mut ids: Vec<i64> = got.iter().map(|r| r.json()["job"]["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids
    };
    let everything = jobs_of(all.wait_delivered(3).await);
    assert_eq!(everything, vec![job_a, job_b, job_other]);
    // All three runs' events were queued by now.
    assert_eq!(jobs_of(only_stack.wait_delivered(2).await), vec![job_a, job_b]);
    assert_eq!(jobs_of(only_a.wait_delivered(1).await), vec![job_a]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(only_a.delivered().len(), 1);
    assert_eq!(only_stack.delivered().len(), 2);
}

#[tokio::test]
async fn pause_unpause_and_delete_are_announced_including_a_deferred_delete() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let (stack, job) = stack_and_job(&api, "lifecycle", "true").await;
    subscribe(
        &api,
        json!({"url": receiver.url("/"), "events": ["job.paused", "job.unpaused", "job.deleted"]}),
    )
    .await;

    // v1: PUT enabled; v3: pause / unpause.
    assert_eq!(api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await.status, 200);
    let got = receiver.wait_delivered(1).await;
    assert_eq!(got[0].event(), "job.unpaused");
    assert_eq!(got[0].json()["job"]["do_run"], true);
    assert!(got[0].json()["run"].is_null());
    let stack_uid = api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let job_uid =
        api.get(&format!("/api/v1/jobs/byid/{job}")).await.json()["uid"].as_str().unwrap().to_string();
    let r = api.post(&format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/pause"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = receiver.wait_delivered(2).await;
    assert_eq!(got[1].event(), "job.paused");
    assert_eq!(got[1].json()["job"]["do_run"], false);
    // Pausing a paused job changes nothing and announces nothing.
    assert_eq!(api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await.status, 200);

    // Immediate delete of a disabled job.
    assert_eq!(api.delete(&format!("/api/v1/jobs/{job}")).await.json(), json!({"deleted": job}));
    let got = receiver.wait_delivered(3).await;
    assert_eq!(got[2].event(), "job.deleted");
    assert_eq!(got[2].json()["job"]["id"], job);

    // Deferred: an enabled job is deleted by the scheduler at its next slot.
    let every_second = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let doomed = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": every_second, "enabled": true, "name": "doomed"}),
        )
        .await;
    let r = api.delete(&format!("/api/v1/jobs/{doomed}")).await;
    assert_eq!(r.json(), json!({"queued_for_deletion": doomed}));
    // Creating a job enabled is no "unpause": the next event is its deletion by the scheduler.
    let got = receiver.wait_delivered(4).await;
    assert_eq!(got[3].event(), "job.deleted", "{got:#?}");
    assert_eq!(got[3].json()["job"]["id"], doomed);
    assert_eq!(got[3].json()["job"]["do_del"], true);
    assert_eq!(api.get(&format!("/api/v1/jobs/byid/{doomed}")).await.status, 404);
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_other_receivers_nor_runs() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &["--webhook-timeout-s", "60", "--webhook-concurrency", "8"]).await;
    let hanging = Receiver::start_on(0, Behaviour::Hang).await;
    let fast = Receiver::start().await;
    let (_, job) = stack_and_job(&api, "busy", "true").await;
    subscribe(&api, json!({"url": hanging.url("/"), "events": ["run.succeeded"]})).await;
    subscribe(&api, json!({"url": fast.url("/"), "events": ["run.succeeded"]})).await;

    for _ in 0..8 {
        assert_eq!(run_to_end(&api, job).await["outcome"], "succeeded");
    }
    // All eight reach the fast receiver while the hanging one still holds its requests open
    // (each would take a minute): it holds at most its share of the node's delivery slots.
    let got = fast.wait_delivered(8).await;
    assert_eq!(got.len(), 8);
    assert!(hanging.delivered().is_empty());
    let held = hanging.hanging();
    assert!((1..=4).contains(&held), "the hanging receiver holds {held} requests");
}

#[tokio::test]
async fn webhook_subscriptions_crud_and_validation() {
    let db = TestDb::new();
    let (server, api) = start(&db, &[]).await;
    let (stack, job) = stack_and_job(&api, "crud", "true").await;
    let bob = Api::new(&server, Some(&add_user(&db, "bob", None)));
    let (_, bobs_job) = stack_and_job(&bob, "bobs", "true").await;

    for (body, status, code, needle) in [
        (json!({"events": ["run.failed"]}), 400, 4, "url"),
        (json!({"url": "http://127.0.0.1:1/"}), 400, 4, "events"),
        (json!({"url": "ftp://example.com/", "events": ["run.failed"]}), 400, 4, "url"),
        (json!({"url": "not a url", "events": ["run.failed"]}), 400, 4, "url"),
        (json!({"url": "http://127.0.0.1:1/", "events": []}), 400, 4, "events"),
        (json!({"url": "http://127.0.0.1:1/", "events": ["run.exploded"]}), 400, 4, "events"),
        (
            json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "secret": "short"}),
            400,
            4,
            "secret",
        ),
        (json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "color": "red"}), 400, 4, "color"),
        (json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "job_id": bobs_job}), 404, 25, "job"),
        (json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "stack_id": 999}), 404, 24, "stack"),
    ] {
        let r = api.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.json()["code"], code, "{body}: {}", r.text);
        assert!(r.json()["msg"].as_str().unwrap().contains(needle), "{body}: {}", r.text);
    }

    let (id, _) = subscribe(
        &api,
        json!({"url": "https://example.com/hook", "events": ["run.failed", "job.fail", "run.failed"], "stack_id": stack}),
    )
    .await;
    let w = api.get(&format!("/api/v1/webhooks/byid/{id}")).await.json();
    assert_eq!(w["url"], "https://example.com/hook");
    assert_eq!(w["events"], json!(["job.fail", "run.failed"]));
    assert_eq!(w["stack_id"], stack);
    assert!(w["job_id"].is_null());

    let r = api
        .put(
            &format!("/api/v1/webhooks/{id}"),
            json!({"events": ["run.started"], "stack_id": null, "job_id": job}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let w = r.json();
    assert_eq!(w["events"], json!(["run.started"]));
    assert!(w["stack_id"].is_null());
    assert_eq!(w["job_id"], job);
    assert_eq!(w["url"], "https://example.com/hook", "PUT is partial");

    let list = api.get("/api/v1/webhooks").await.json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["webhooks"][0]["id"], id);
    // Someone else's subscription does not exist for them.
    assert_eq!(bob.get(&format!("/api/v1/webhooks/byid/{id}")).await.status, 404);
    assert_eq!(bob.delete(&format!("/api/v1/webhooks/{id}")).await.status, 404);
    assert_eq!(bob.get("/api/v1/webhooks").await.json()["count"], 0);
    // A read-only token reads but does not change.
    let r = api.post("/api/v1/tokens", json!({"scopes": ["public"]})).await;
    let public = Api::new(&server, r.json()["token"].as_str());
    assert_eq!(public.get("/api/v1/webhooks").await.status, 200);
    assert_eq!(public.delete(&format!("/api/v1/webhooks/{id}")).await.status, 403);

    assert_eq!(api.delete(&format!("/api/v1/webhooks/{id}")).await.json(), json!({"deleted": id}));
    assert_eq!(api.get(&format!("/api/v1/webhooks/byid/{id}")).await.status, 404);
    assert_eq!(api.get(&format!("/api/v1/webhooks/byid/{id}/deliveries")).await.status, 404);
}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

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
    assert_eq!(r.json()["code"], 4);
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
        assert_eq!(r.json()["code"], 3);
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
    assert_eq!((r.status, r.json()["code"].clone()), (401, json!(3)), "{}", r.text);
    let r = bob.post(&path, json!({})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(6)), "{}", r.text);
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
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(6)), "{}", r.text);
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
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(2)), "{}", r.text);
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
    assert_eq!((r.status, r.json()["code"].clone()), (429, json!(28)), "{}", r.text);
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
    let mut events: Vec<String> = got.iter().map(Received::event).collect();
    events.sort();
    assert_eq!(events, ["job.fail", "run.failed"]);
    for r in &got {
        let body = r.json();
        assert_eq!(body["run"]["trigger"], "webhook");
        assert_eq!(body["job"]["type"], "hook");
        assert_eq!(body["job"]["stack"], stack["id"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn several_nodes_share_the_queue_and_send_each_delivery_once() {
    if !std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        eprintln!("needs PostgreSQL: set CRONSTACK_TEST_POSTGRES (CI does); on SQLite there is no cluster");
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
        got.iter().map(|r| (r.json()["run"]["id"].as_i64().unwrap(), r.event())).collect();
    seen.sort();
    let mut expected: Vec<(i64, String)> = runs
        .iter()
        .flat_map(|id| [(*id, "run.started".to_string()), (*id, "run.succeeded".to_string())])
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}
