//! Heartbeat monitors (issue 18, part B), black-box against the real binary: CRUD, isolation
//! and bad input; pings with their history, bodies and rate limit; a monitor going
//! new → up → late → down → up with pings and time, announcing exactly one event per change to
//! a real webhook receiver (two nodes on one PostgreSQL database; one node on SQLite); and
//! `cronstack ping` wrapping a failing command; each monitor's series on `/metrics`.
//!
//! Timing: every wait is an `eventually` with a generous timeout; the short periods only make
//! the states come quickly, nothing asserts how quickly.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The `(event, body)` of what `receiver` got, in order.
fn events(receiver: &Receiver) -> Vec<(String, Value)> {
    receiver.all().into_iter().map(|r| (r.event, r.body)).collect()
}

fn code(r: &Resp) -> i64 {
    r.json()["code"].as_i64().unwrap_or_else(|| panic!("no code in {}", r.text))
}

async fn ping(api: &Api, path: &str, body: &str) -> Resp {
    api.send_raw("POST", path, Some("text/plain"), body.as_bytes().to_vec()).await
}

/// The monitor `id` once `check` holds (within `WAIT`).
async fn monitor_when(api: &Api, id: i64, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/monitors/byid/{id}");
    let found = eventually(WAIT, || async {
        let m = api.get(&path).await.json();
        check(&m).then_some(m)
    })
    .await;
    match found {
        Some(m) => m,
        None => panic!("monitor {id} never became {what}: {}", api.get(&path).await.text),
    }
}

#[tokio::test]
async fn monitors_crud_isolation_and_bad_input() {
    let db = TestDb::new();
    let ta = add_user(&db, "alice", None);
    let tb = add_user(&db, "bob", None);
    let server = Server::start_on(&db, &[]);
    let alice = Api::new(&server, Some(&ta));
    let bob = Api::new(&server, Some(&tb));

    let r = alice
        .post("/api/v1/monitors", json!({"name": "backup", "schedule": {"period": 60}, "grace_s": 30}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json();
    let id = m["id"].as_i64().unwrap();
    assert_eq!(m["state"], "new");
    assert_eq!(m["schedule"], json!({"period": 60}));
    assert_eq!(m["grace_s"], 30);
    assert_eq!(m["keep_pings"], 100);
    assert!(m["last_ping_at"].is_null() && m["next_expected"].is_null(), "{m}");
    let ping_url = m["ping_url"].as_str().unwrap().to_string();
    assert!(ping_url.starts_with("/ping/") && ping_url.len() == "/ping/".len() + 36, "{ping_url}");

    let r = alice
        .post(
            "/api/v1/monitors",
            json!({"name": "nightly", "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let nightly = r.json();
    assert_eq!(nightly["grace_s"], 3600, "the default grace");
    assert_eq!(nightly["schedule"]["timezone"], "Europe/Paris");
    assert!(nightly["description"].as_str().unwrap().contains("03:00"), "{nightly}");

    let list = alice.get("/api/v1/monitors").await.json();
    assert_eq!(list["count"], 2);
    assert_eq!(list["monitors"][0]["name"], "backup");

    // Partial update, pause and resume.
    let r = alice.put(&format!("/api/v1/monitors/byid/{id}"), json!({"grace_s": 45})).await;
    assert_eq!(
        (r.status, r.json()["grace_s"].clone(), r.json()["name"].clone()),
        (200, json!(45), json!("backup"))
    );
    let r = alice.put(&format!("/api/v1/monitors/byid/{id}"), json!({"paused": true})).await;
    assert_eq!(r.json()["state"], "paused");
    let r = alice.put(&format!("/api/v1/monitors/byid/{id}"), json!({"paused": false})).await;
    assert_eq!(r.json()["state"], "new");

    // Bad input: the v1 error shape, naming what is wrong.
    for (body, status, want) in [
        (json!({"name": "backup", "schedule": {"period": 60}}), 409, 12),
        (json!({"name": "x"}), 400, 4),
        (json!({"schedule": {"period": 60}}), 400, 4),
        (json!({"name": "x", "schedule": {"timestamp": 4_102_444_800i64}}), 400, 26),
        (json!({"name": "x", "schedule": {"cron": "0 0 31 2 *"}}), 400, 26),
        (json!({"name": "x", "schedule": {"period": 0}}), 400, 26),
        (json!({"name": "x", "schedule": {"cron": "* * * * *", "timezone": "Mars/Olympus"}}), 400, 26),
        (json!({"name": "x", "schedule": "hourly"}), 400, 26),
        (json!({"name": "x", "schedule": {"period": 60}, "grace_s": 0}), 400, 4),
        (json!({"name": "x", "schedule": {"period": 60}, "keep_pings": 0}), 400, 4),
        (json!({"name": "x", "schedule": {"period": 60}, "grace_s": "60"}), 400, 4),
        (json!({"name": null, "schedule": {"period": 60}}), 400, 4),
        (json!({"name": "", "schedule": {"period": 60}}), 400, 4),
        (json!({"name": "x", "schedule": {"period": 60}, "colour": "red"}), 400, 4),
    ] {
        let r = alice.post("/api/v1/monitors", body.clone()).await;
        assert_eq!((r.status, code(&r)), (status, want), "{body}: {}", r.text);
        assert!(r.json()["msg"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    }
    let r = alice.get("/api/v1/monitors/byid/abc").await;
    assert_eq!((r.status, code(&r)), (400, 1));
    let r = alice.put(&format!("/api/v1/monitors/byid/{id}"), json!({"paused": null})).await;
    assert_eq!((r.status, code(&r)), (400, 4), "{}", r.text);
    assert_eq!(alice.get("/api/v1/monitors").await.json()["count"], 2, "nothing refused was stored");

    // Bob sees nothing of alice's, and cannot point a subscription at her monitor.
    for (method, path, body) in [
        ("GET", format!("/api/v1/monitors/byid/{id}"), None),
        ("PUT", format!("/api/v1/monitors/byid/{id}"), Some(json!({"paused": true}))),
        ("DELETE", format!("/api/v1/monitors/byid/{id}"), None),
        ("GET", format!("/api/v1/monitors/byid/{id}/pings"), None),
    ] {
        let r = bob.send(method, &path, body).await;
        assert_eq!((r.status, code(&r)), (404, 6), "{method} {path}: {}", r.text);
        assert!(!r.text.contains("backup") && !r.text.contains(&ping_url[6..]), "{}", r.text);
    }
    let r = bob
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/x", "events": ["monitor.down"], "monitor_id": id}),
        )
        .await;
    assert_eq!((r.status, code(&r)), (404, 25), "{}", r.text);
    assert_eq!(bob.get("/api/v1/monitors").await.json()["count"], 0);
    assert_eq!(alice.get(&format!("/api/v1/monitors/byid/{id}")).await.json()["state"], "new");

    // Pings need no credentials; the body's tail is the ping's log.
    let anon = Api::new(&server, None);
    let r = anon.get(&ping_url).await;
    assert_eq!((r.status, r.text.as_str()), (200, "OK\n"));
    let big = format!("HEAD{}TAIL", "x".repeat(12 * 1024));
    let r = ping(&anon, &format!("{ping_url}/3"), &big).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = anon.get(&format!("{ping_url}/start")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = ping(&anon, &ping_url, "all good\n").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pings = alice.get(&format!("/api/v1/monitors/byid/{id}/pings")).await.json();
    assert_eq!(pings["count"], 4, "{pings}");
    let p = &pings["pings"];
    assert_eq!(
        (p[0]["kind"].clone(), p[0]["body"].clone(), p[0]["method"].clone()),
        (json!("success"), json!("all good\n"), json!("POST"))
    );
    assert!(p[0]["duration_ms"].as_i64().is_some(), "a result after a start has a duration: {}", p[0]);
    assert_eq!(p[1]["kind"], "start");
    assert_eq!(
        (p[2]["kind"].clone(), p[2]["exit_code"].clone(), p[2]["body_truncated"].clone()),
        (json!("fail"), json!(3), json!(true))
    );
    let body = p[2]["body"].as_str().unwrap();
    assert!(body.len() <= 10 * 1024 && body.ends_with("TAIL") && !body.contains("HEAD"), "{}", body.len());
    assert_eq!((p[3]["kind"].clone(), p[3]["method"].clone()), (json!("success"), json!("GET")));
    let m = alice.get(&format!("/api/v1/monitors/byid/{id}")).await.json();
    assert_eq!((m["state"].clone(), m["last_ping_kind"].clone()), (json!("up"), json!("success")));
    assert!(m["next_expected"].is_string() && m["down_after"].is_string(), "{m}");

    // Pings that are not: an unknown uuid, a bad kind, a body beyond the request limit.
    let r = anon.get("/ping/00000000-0000-4000-8000-000000000000").await;
    assert_eq!((r.status, code(&r)), (404, 6), "{}", r.text);
    let r = anon.get(&format!("{ping_url}/256")).await;
    assert_eq!((r.status, code(&r)), (400, 1), "{}", r.text);
    let r = anon.get(&format!("{ping_url}/finish")).await;
    assert_eq!((r.status, code(&r)), (400, 1), "{}", r.text);
    let r = ping(&anon, &ping_url, &"y".repeat(300 * 1024)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(alice.get(&format!("/api/v1/monitors/byid/{id}/pings")).await.json()["count"], 4);

    // Deleted with its pings; its URL pings nothing.
    let r = alice.delete(&format!("/api/v1/monitors/byid/{id}")).await;
    assert_eq!((r.status, r.json()), (200, json!({"deleted": id})));
    assert_eq!(alice.get(&format!("/api/v1/monitors/byid/{id}")).await.status, 404);
    assert_eq!(anon.get(&ping_url).await.status, 404);
    assert_eq!(alice.get("/api/v1/monitors").await.json()["count"], 1);
}

#[tokio::test]
async fn pings_are_rate_limited_per_monitor_and_history_is_kept_to_its_limit() {
    let db = TestDb::new();
    let token = add_user(&db, "carol", None);
    let server = Server::start_on(&db, &["--ping-rate-limit", "8"]);
    let api = Api::new(&server, Some(&token));
    let anon = Api::new(&server, None);
    let create = |name: &str| {
        let api = api.clone();
        let body = json!({"name": name, "schedule": {"period": 3600}, "keep_pings": 3});
        async move { api.post("/api/v1/monitors", body).await.json() }
    };
    let (a, b) = (create("a").await, create("b").await);
    let (url_a, url_b) = (a["ping_url"].as_str().unwrap(), b["ping_url"].as_str().unwrap());
    for i in 0..8 {
        let r = ping(&anon, url_a, &format!("ping {i}")).await;
        assert_eq!(r.status, 200, "ping {i}: {}", r.text);
        assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some((7 - i).to_string().as_str()));
    }
    let r = anon.get(url_a).await;
    assert_eq!((r.status, code(&r)), (429, 28), "{}", r.text);
    assert!(r.header("retry-after").is_some());
    // Another monitor has its own budget.
    assert_eq!(anon.get(url_b).await.status, 200);
    // The history is trimmed to the newest keep_pings by the watcher (every 10 s; a node that
    // could not take the watch lock asks again 10 s later).
    let path = format!("/api/v1/monitors/byid/{}/pings", a["id"]);
    let pings = eventually(2 * WAIT, || async {
        let v = api.get(&path).await.json();
        (v["count"] == 3).then_some(v)
    })
    .await
    .expect("the ping history is trimmed to 3");
    let bodies: Vec<&str> =
        pings["pings"].as_array().unwrap().iter().map(|p| p["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["ping 7", "ping 6", "ping 5"]);
}

#[tokio::test]
async fn a_monitor_goes_new_up_late_down_up_announcing_each_change_once() {
    let db = TestDb::new();
    let token = add_user(&db, "dave", None);
    // Two nodes on PostgreSQL (either may watch, either takes pings); one on SQLite.
    let flags = ["--webhook-retry-base-ms", "200"];
    let first = Server::start_on(&db, &flags);
    let second = if std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        Some(Server::start_on(&db, &flags))
    } else {
        None
    };
    let a = Api::new(&first, Some(&token));
    let b = second.as_ref().map_or_else(|| a.clone(), |s| Api::new(s, Some(&token)));
    let receiver = Receiver::start().await;
    // Late 2 s after a ping, down 5 s later: wide enough to see `late` on a loaded machine.
    let m = a
        .post("/api/v1/monitors", json!({"name": "heartbeat", "schedule": {"period": 2}, "grace_s": 5}))
        .await
        .json();
    let id = m["id"].as_i64().unwrap();
    let hook = a
        .create(
            "/api/v1/webhooks",
            json!({"url": receiver.url("/hook"), "events": ["monitor.down", "monitor.up"], "monitor_id": id}),
        )
        .await;
    // A subscription narrowed to a job gets no monitor events.
    let other = Receiver::start().await;
    let stack = a.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = a.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let job = a.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule})).await;
    a.create(
        "/api/v1/webhooks",
        json!({"url": other.url("/hook"), "events": ["monitor.down", "monitor.up"], "job_id": job}),
    )
    .await;
    let ping_url = m["ping_url"].as_str().unwrap().to_string();
    assert_eq!(m["state"], "new");

    // up (a ping through one node), then late and down with time (seen through the other).
    assert_eq!(Api::new(&first, None).get(&ping_url).await.status, 200);
    let up = a.get(&format!("/api/v1/monitors/byid/{id}")).await.json();
    // (Late already if this machine stalled for 2 s.)
    assert!(up["state"] == "up" || up["state"] == "late", "{up}");
    assert_eq!(up["last_ping_kind"], "success");
    monitor_when(&b, id, "late", |m| m["state"] == "late").await;
    let down = monitor_when(&b, id, "down", |m| m["state"] == "down").await;
    assert!(down["next_expected"].is_null(), "{down}");
    let got = eventually(WAIT, || async {
        let e = events(&receiver);
        (!e.is_empty()).then_some(e)
    })
    .await
    .expect("monitor.down delivered");
    assert_eq!(got[0].0, "monitor.down");
    assert_eq!(got[0].1["event"], "monitor.down");
    assert_eq!(got[0].1["monitor"]["id"], id);
    assert_eq!(got[0].1["monitor"]["state"], "down");
    assert!(got[0].1["ping"].is_null(), "time took it down, not a ping: {}", got[0].1);

    // Back up with a ping through the other node; from then on a ping is due in an hour.
    let r = b.put(&format!("/api/v1/monitors/byid/{id}"), json!({"schedule": {"period": 3600}})).await;
    assert_eq!(
        (r.status, r.json()["state"].clone()),
        (200, json!("down")),
        "a schedule change applies from the next ping"
    );
    let second_anon = second.as_ref().map_or_else(|| Api::new(&first, None), |s| Api::new(s, None));
    assert_eq!(ping(&second_anon, &ping_url, "recovered").await.status, 200);
    assert_eq!(a.get(&format!("/api/v1/monitors/byid/{id}")).await.json()["state"], "up");
    let got = eventually(WAIT, || async {
        let e = events(&receiver);
        (e.len() >= 2).then_some(e)
    })
    .await
    .expect("monitor.up delivered");
    assert_eq!(got[1].0, "monitor.up");
    assert_eq!(got[1].1["monitor"]["state"], "up");
    assert_eq!(got[1].1["ping"]["body"], "recovered");

    // Exactly one event per change: give a second announcement the time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kinds: Vec<String> = events(&receiver).into_iter().map(|(e, _)| e).collect();
    assert_eq!(kinds, ["monitor.down", "monitor.up"]);
    let deliveries = a.get(&format!("/api/v1/webhooks/byid/{hook}/deliveries")).await.json();
    assert_eq!(deliveries["count"], 2, "{deliveries}");
    assert!(events(&other).is_empty(), "a job's subscription got {:?}", events(&other));

    // A failure ping takes it down at once, announced once.
    assert_eq!(Api::new(&first, None).get(&format!("{ping_url}/fail")).await.status, 200);
    assert_eq!(Api::new(&first, None).get(&format!("{ping_url}/fail")).await.status, 200);
    let got = eventually(WAIT, || async {
        let e = events(&receiver);
        (e.len() >= 3).then_some(e)
    })
    .await
    .expect("monitor.down delivered after a failure");
    assert_eq!(got[2].0, "monitor.down");
    assert_eq!(got[2].1["ping"]["kind"], "fail");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(events(&receiver).len(), 3, "the second failure changed nothing");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The client, with the server and token from the environment and a config dir of its own.
fn cli(server: &Server, token: &str, config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("CRONSTACK_URL", &server.base)
        .env("CRONSTACK_TOKEN", token)
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn cronstack_ping_wraps_a_failing_command_and_monitors_commands_work() {
    let db = TestDb::new();
    let token = add_user(&db, "erin", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cli(&server, &token, config.path(), args);

    let out = run(&["monitors", "create", "backup", "--every", "86400", "--grace", "600"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let url = printed.lines().last().unwrap().trim().to_string();
    assert!(url.starts_with(&format!("{}/ping/", server.base)), "{printed}");
    let uuid = url.rsplit('/').next().unwrap().to_string();

    // A failing command: its output passes through, its exit code is ours, the monitor is down.
    let out = run(&["ping", &uuid, "--", "sh", "-c", "echo copying; echo disk full >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("copying"));
    assert!(text(&out.stderr).contains("disk full"));
    let m = api.get("/api/v1/monitors").await.json()["monitors"][0].clone();
    assert_eq!((m["state"].clone(), m["last_ping_kind"].clone()), (json!("down"), json!("fail")));
    let pings = api.get(&format!("/api/v1/monitors/byid/{}/pings", m["id"])).await.json();
    let p = &pings["pings"];
    assert_eq!(pings["count"], 2, "{pings}");
    assert_eq!((p[0]["kind"].clone(), p[0]["exit_code"].clone()), (json!("fail"), json!(3)));
    let body = p[0]["body"].as_str().unwrap();
    assert!(body.contains("copying") && body.contains("disk full"), "{body}");
    assert!(p[0]["duration_ms"].as_i64().is_some(), "{}", p[0]);
    assert_eq!(p[1]["kind"], "start");

    // A succeeding one (through the whole URL), then plain pings.
    let out =
        Command::new(BIN).args(["ping", &url, "--", "true"]).env("HOME", config.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(api.get(&format!("/api/v1/monitors/byid/{}", m["id"])).await.json()["state"], "up");
    let out = run(&["ping", &uuid, "--fail"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(api.get(&format!("/api/v1/monitors/byid/{}", m["id"])).await.json()["state"], "down");
    let out = run(&["ping", "00000000-0000-4000-8000-000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("HTTP 404"), "{}", text(&out.stderr));
    // A command that cannot start: 127, and the monitor hears of it.
    let out = run(&["ping", &uuid, "--", "/nonexistent/command"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));

    let out = run(&["monitors", "ls"]);
    let ls = text(&out.stdout);
    assert!(ls.contains("backup") && ls.contains("down") && ls.contains("every 86400 s"), "{ls}");
    let out = run(&["monitors", "show", "backup"]);
    let show = text(&out.stdout);
    assert!(show.contains(&url) && show.contains("fail"), "{show}");
    let out = run(&["monitors", "pause", "backup"]);
    assert!(text(&out.stdout).contains("paused"), "{}", text(&out.stdout));
    let out = run(&["monitors", "ls", "-o", "json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["state"], "paused");
    let out = run(&["monitors", "rm", "backup"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(api.get("/api/v1/monitors").await.json()["count"], 0);
    let out = run(&["monitors", "show", "backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no monitor"), "{}", text(&out.stderr));
}

async fn metrics(server: &Server) -> String {
    reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn monitors_have_their_series_on_metrics_unless_turned_off() {
    let db = TestDb::new();
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let pinged = api
        .post(
            "/api/v1/monitors",
            json!({"name": "pinged \"one\"", "schedule": {"period": 3600}, "grace_s": 60}),
        )
        .await
        .json();
    let fresh = api.create("/api/v1/monitors", json!({"name": "fresh", "schedule": {"period": 60}})).await;
    let id = pinged["id"].as_i64().unwrap();
    assert_eq!(Api::new(&server, None).get(pinged["ping_url"].as_str().unwrap()).await.status, 200);
    let text = metrics(&server).await;
    let name = "monitor=\"pinged \\\"one\\\"\"";
    for line in [
        format!("cronstack_monitor_state{{monitor_id=\"{id}\",{name},state=\"up\"}} 1"),
        format!("cronstack_monitor_state{{monitor_id=\"{id}\",{name},state=\"down\"}} 0"),
        format!("cronstack_monitor_state{{monitor_id=\"{fresh}\",monitor=\"fresh\",state=\"new\"}} 1"),
        format!("cronstack_monitor_last_ping_timestamp_seconds{{monitor_id=\"{id}\",{name}}} "),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    let series = text.lines().filter(|l| l.starts_with("cronstack_monitor_")).count();
    assert_eq!(series, 2 * 5 + 1, "5 states each, one last ping:\n{text}");
    assert!(
        !text.contains(&format!("cronstack_monitor_last_ping_timestamp_seconds{{monitor_id=\"{fresh}\"")),
        "never pinged: no timestamp"
    );

    let db = TestDb::new();
    let server = Server::start_on(&db, &["--metrics-per-job=false"]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    api.create("/api/v1/monitors", json!({"name": "quiet", "schedule": {"period": 60}})).await;
    let text = metrics(&server).await;
    assert!(text.contains("cronstack_runs_total"), "{text}");
    assert!(!text.contains("cronstack_monitor_"), "{text}");
}
