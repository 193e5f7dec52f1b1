//! Job health (issue 18): `health`, `last_run`, `last_success_at`, `last_failure_at` on every
//! job; the watcher's `job.missed`, `job.stuck` and `job.recovered`, once per incident, to a
//! real HTTP receiver; per-job series on `/metrics`. Black-box against the real binary, on
//! SQLite and on PostgreSQL.
//!
//! Timing: every wait is an `eventually` with a generous timeout. The "exactly once" checks
//! count what arrived after further watcher passes and slots went by.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);

/// A server whose watcher looks every 200 ms, with quick webhook retries.
fn serve(db: &TestDb, extra: &[&str]) -> Server {
    let mut flags = vec![
        "--watch-interval-ms",
        "200",
        "--webhook-retry-base-ms",
        "200",
        "--shutdown-grace-s",
        "1",
        "--kill-grace-s",
        "1",
    ];
    flags.extend_from_slice(extra);
    Server::start_on(db, &flags)
}

/// A stack running `command` and an enabled job on `config` with `fields`; returns its id.
async fn job(api: &Api, name: &str, command: &str, config: Value, fields: Value) -> i64 {
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"name": name, "config": config})).await;
    let mut body = json!({"stack_id": stack, "schedule_id": schedule, "name": name, "enabled": true});
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    api.create("/api/v1/jobs", body).await
}

async fn show(api: &Api, id: i64) -> Value {
    api.get(&format!("/api/v1/jobs/byid/{id}")).await.json()
}

/// Runs the job now and waits for that run to end; answers its id.
async fn run_now(api: &Api, id: i64) -> i64 {
    let r = api.post(&format!("/api/v1/jobs/byid/{id}/run"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run = r.json()["id"].as_i64().unwrap();
    eventually(WAIT, || async {
        let r = api.get(&format!("/api/v1/runs/{run}")).await.json();
        (!matches!(r["outcome"].as_str(), Some("queued" | "running"))).then_some(())
    })
    .await
    .expect("the run ends");
    run
}

/// Waits until the job's health is `want`; answers the job.
async fn health_becomes(api: &Api, id: i64, want: &str) -> Value {
    eventually(WAIT, || async {
        let j = show(api, id).await;
        (j["health"] == want).then_some(j)
    })
    .await
    .unwrap_or_else(|| panic!("job {id} never became {want}"))
}

/// A yearly slot: the job is enabled, and nothing runs but what the test starts.
fn far() -> Value {
    json!({"cron": "0 0 1 1 *"})
}

#[tokio::test]
async fn health_follows_the_runs_and_shows_everywhere() {
    let db = TestDb::new();
    let server = serve(&db, &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let flag = db.dir().join("fail");
    let command = format!("test -e {} && exit 3; exit 0", flag.display());
    let id = job(&api, "flaky", &command, far(), json!({"grace_s": 30, "max_duration_s": 600})).await;

    let j = show(&api, id).await;
    assert_eq!(j["health"], "ok", "{j}");
    assert_eq!(j["last_run"], Value::Null);
    assert_eq!((j["grace_s"].as_i64(), j["max_duration_s"].as_i64()), (Some(30), Some(600)));
    assert!(j["last_success_at"].is_null() && j["last_failure_at"].is_null(), "{j}");

    let first = run_now(&api, id).await;
    let j = health_becomes(&api, id, "ok").await;
    assert_eq!(j["last_run"]["id"].as_i64(), Some(first), "{j}");
    assert_eq!(j["last_run"]["outcome"], "succeeded");
    assert!(j["last_success_at"].is_string() && j["last_failure_at"].is_null(), "{j}");

    std::fs::write(&flag, "").unwrap();
    let second = run_now(&api, id).await;
    let j = health_becomes(&api, id, "failing").await;
    assert_eq!(
        (j["last_run"]["id"].as_i64(), j["last_run"]["outcome"].as_str()),
        (Some(second), Some("failed"))
    );
    assert!(j["last_failure_at"].is_string(), "{j}");
    let success_at = j["last_success_at"].clone();
    // The list shows it as the job does, and the CLI puts it first.
    let listed = api.get("/api/v1/jobs").await.json();
    assert_eq!(listed["jobs"][0]["health"], "failing", "{listed}");
    let healthy = job(&api, "healthy", "true", far(), json!({})).await;
    let out = std::process::Command::new(BIN)
        .args(["jobs", "ls"])
        .env("CRONSTACK_URL", &server.base)
        .env("CRONSTACK_TOKEN", api.token.as_deref().unwrap())
        .env("XDG_CONFIG_HOME", db.dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("HEALTH"), "{text}");
    assert!(lines[1].contains("flaky") && lines[1].contains("failing"), "failing first: {text}");
    assert!(lines[2].contains("healthy") && lines[2].contains(" ok "), "{text}");

    std::fs::remove_file(&flag).unwrap();
    let third = run_now(&api, id).await;
    let j = health_becomes(&api, id, "ok").await;
    assert_eq!(j["last_run"]["id"].as_i64(), Some(third));
    assert_ne!(j["last_success_at"], success_at, "a newer success");
    assert!(j["last_failure_at"].is_string(), "the last failure stays known: {j}");

    // Per-job series on /metrics.
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        format!("cronstack_job_health{{job_id=\"{id}\",job=\"flaky\",state=\"ok\"}} 1"),
        format!("cronstack_job_health{{job_id=\"{id}\",job=\"flaky\",state=\"failing\"}} 0"),
        format!("cronstack_job_health{{job_id=\"{healthy}\",job=\"healthy\",state=\"ok\"}} 1"),
    ] {
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains(&format!(
        "cronstack_job_last_success_timestamp_seconds{{job_id=\"{id}\",job=\"flaky\"}} "
    )));
    assert!(metrics.contains(&format!(
        "cronstack_job_last_failure_timestamp_seconds{{job_id=\"{id}\",job=\"flaky\"}} "
    )));

    // Paused.
    let r = api.put(&format!("/api/v1/jobs/{id}"), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["health"], "paused");
    assert_eq!(show(&api, id).await["health"], "paused");

    // The fields are validated like the others; null means the default.
    for (body, field) in [
        (json!({"grace_s": 0}), "grace_s"),
        (json!({"max_duration_s": -5}), "max_duration_s"),
        (json!({"grace_s": "60"}), "grace_s"),
        (json!({"max_duration_s": 2_678_401}), "max_duration_s"),
    ] {
        let r = api.put(&format!("/api/v1/jobs/{id}"), body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.json()["code"], 4, "{}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
    }
    let r = api.put(&format!("/api/v1/jobs/{id}"), json!({"grace_s": null, "max_duration_s": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["grace_s"].clone(), r.json()["max_duration_s"].clone()), (Value::Null, Value::Null));
}

#[tokio::test]
async fn per_job_metrics_can_be_turned_off() {
    let db = TestDb::new();
    let server = serve(&db, &["--metrics-per-job=false"]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    job(&api, "quiet", "true", far(), json!({})).await;
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cronstack_runs_total"), "{metrics}");
    assert!(!metrics.contains("cronstack_job_health"), "{metrics}");
    assert!(!metrics.contains("cronstack_job_last_success_timestamp_seconds"), "{metrics}");
}

#[tokio::test]
async fn a_stuck_run_is_announced_once_and_its_end_recovers() {
    let db = TestDb::new();
    let server = serve(&db, &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let sink = Receiver::start().await;
    let id = job(&api, "slow", "sleep 3", far(), json!({"max_duration_s": 1})).await;
    api.create(
        "/api/v1/webhooks",
        json!({"url": sink.url("/hook"), "events": ["job.stuck", "job.recovered", "job.missed"], "job_id": id}),
    )
    .await;

    let r = api.post(&format!("/api/v1/jobs/byid/{id}/run"), json!({})).await;
    let run = r.json()["id"].as_i64().unwrap();
    let stuck = sink.wait_event("job.stuck", WAIT).await;
    assert_eq!(stuck["run"]["id"].as_i64(), Some(run), "{stuck}");
    assert_eq!(stuck["job"]["id"].as_i64(), Some(id));
    assert_eq!(stuck["job"]["health"], "stuck", "{stuck}");
    assert_eq!(stuck["job"]["stuck_run"].as_i64(), Some(run));
    let recovered = sink.wait_event("job.recovered", WAIT).await;
    assert_eq!(recovered["run"]["id"].as_i64(), Some(run), "{recovered}");
    assert_eq!(recovered["run"]["outcome"], "succeeded", "the run ended: {recovered}");
    let j = health_becomes(&api, id, "ok").await;
    assert!(j["stuck_run"].is_null(), "{j}");

    // Several watcher passes later: still one of each, and no missed slot.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.events("job.stuck").len(), 1);
    assert_eq!(sink.events("job.recovered").len(), 1);
    assert!(sink.events("job.missed").is_empty());
}

#[tokio::test]
async fn a_slot_missed_while_the_server_was_down_is_announced_once_and_recovers_once() {
    let db = TestDb::new();
    let mut server = serve(&db, &[]);
    let token = add_user(&db, "alice", None);
    let api = Api::new(&server, Some(&token));
    let sink = Receiver::start().await;
    // Every 4 s, a grace of 2 s.
    let id = job(&api, "ticker", "true", json!({"period": 4}), json!({"grace_s": 2})).await;
    api.create(
        "/api/v1/webhooks",
        json!({"url": sink.url("/hook"), "events": ["job.missed", "job.recovered", "job.stuck"], "stack_id": null}),
    )
    .await;
    health_becomes_with_run(&api, id).await;

    // Down across a slot and past its grace: the slot after the one shown before the stop
    // (that one may fire as the server stops) plus the grace, and a margin.
    let next = show(&api, id).await["next_run"].as_str().map(str::to_string).unwrap();
    server.stop();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap().timestamp_millis();
    let wait = next + 4_000 + 2_000 + 1_500 - chrono::Utc::now().timestamp_millis();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let server = serve(&db, &[]);
    let api = Api::new(&server, Some(&token));

    let missed = sink.wait_event("job.missed", WAIT).await;
    assert_eq!(missed["job"]["id"].as_i64(), Some(id), "{missed}");
    assert_eq!(missed["job"]["health"], "late", "{missed}");
    let slot = chrono::DateTime::parse_from_rfc3339(missed["job"]["missed_slot"].as_str().unwrap()).unwrap();
    assert!([next, next + 4_000].contains(&slot.timestamp_millis()), "{missed}");
    let recovered = sink.wait_event("job.recovered", WAIT).await;
    assert_eq!(recovered["job"]["id"].as_i64(), Some(id));
    assert_eq!(recovered["job"]["health"], "ok", "{recovered}");
    assert!(recovered["job"]["missed_slot"].is_null(), "{recovered}");

    // Two more slots go by on time: nothing more is announced.
    let runs_then = runs_of(&api, id).await;
    eventually(WAIT, || async { (runs_of(&api, id).await >= runs_then + 2).then_some(()) })
        .await
        .expect("the job keeps running");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.events("job.missed").len(), 1, "{:#?}", sink.events("job.missed"));
    assert_eq!(sink.events("job.recovered").len(), 1, "{:#?}", sink.events("job.recovered"));
    assert!(sink.events("job.stuck").is_empty());
    assert_eq!(show(&api, id).await["health"], "ok");
}

/// Waits until the job has a succeeded scheduled run and is ok.
async fn health_becomes_with_run(api: &Api, id: i64) {
    eventually(WAIT, || async {
        let j = show(api, id).await;
        (j["health"] == "ok" && j["last_run"]["outcome"] == "succeeded").then_some(())
    })
    .await
    .expect("a first scheduled run succeeds");
}

async fn runs_of(api: &Api, id: i64) -> i64 {
    api.get(&format!("/api/v1/jobs/byid/{id}/runs")).await.json()["count"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn a_slot_skipped_by_the_overlap_policy_is_missed_until_a_slot_runs() {
    let db = TestDb::new();
    let server = serve(&db, &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let sink = Receiver::start().await;
    // The first run outlasts the next slots (forbid: they are skipped); the later ones are quick.
    let once = db.dir().join("once");
    let command = format!("test -e {0} || {{ touch {0}; sleep 5; }}", once.display());
    let id =
        job(&api, "long-first", &command, json!({"period": 2}), json!({"grace_s": 2, "overlap": "forbid"}))
            .await;
    api.create(
        "/api/v1/webhooks",
        json!({"url": sink.url("/hook"), "events": ["job.missed", "job.recovered"]}),
    )
    .await;

    let missed = sink.wait_event("job.missed", WAIT).await;
    assert_eq!(missed["job"]["health"], "late", "{missed}");
    assert!(missed["job"]["missed_slot"].is_string(), "{missed}");
    let runs = api.get(&format!("/api/v1/jobs/byid/{id}/runs")).await.json();
    assert!(runs["runs"].as_array().unwrap().iter().any(|r| r["outcome"] == "skipped"), "{runs}");
    let recovered = sink.wait_event("job.recovered", WAIT).await;
    assert_eq!(recovered["job"]["health"], "ok", "{recovered}");
    // Further slots run: nothing more.
    let runs_then = runs_of(&api, id).await;
    eventually(WAIT, || async { (runs_of(&api, id).await >= runs_then + 2).then_some(()) })
        .await
        .expect("the job keeps running");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.events("job.missed").len(), 1, "{:#?}", sink.events("job.missed"));
    assert_eq!(sink.events("job.recovered").len(), 1);
}

#[tokio::test]
async fn chat_channels_get_their_message_shapes_with_the_log_tail_and_a_link() {
    let db = TestDb::new();
    let server = serve(&db, &["--public-url", "http://cron.example.test/"]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let sink = Receiver::start().await;
    let base = sink.url("");
    let command = "for i in $(seq 1 30); do echo \"line $i\"; done; exit 3";
    let id = job(&api, "noisy", command, json!({"cron": "0 3 * * *"}), json!({})).await;
    for kind in ["slack", "discord", "teams"] {
        let r = api
            .post(
                "/api/v1/channels",
                json!({"kind": kind, "name": format!("ops-{kind}"), "url": format!("{base}/{kind}"), "events": ["run.failed"], "job_id": id}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let listed = api.get("/api/v1/channels").await.json();
    assert_eq!(listed["count"], 3, "{listed}");
    let kinds: Vec<&str> =
        listed["channels"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["slack", "discord", "teams"]);
    assert_eq!(listed["channels"][0]["name"], "ops-slack");
    // An unknown kind is refused, saying which are known.
    let r = api
        .post(
            "/api/v1/channels",
            json!({"kind": "pager", "url": format!("{base}/x"), "events": ["run.failed"]}),
        )
        .await;
    assert_eq!((r.status, r.json()["code"].as_i64()), (400, Some(4)), "{}", r.text);
    assert!(r.text.contains("slack"), "{}", r.text);

    let run = run_now(&api, id).await;
    let delivered = eventually(WAIT, || async {
        let all: Vec<Vec<Value>> = ["/slack", "/discord", "/teams"]
            .iter()
            .map(|p| sink.at(p).into_iter().map(|r| r.body).collect())
            .collect();
        all.iter().all(|v| !v.is_empty()).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("not every channel got its message: {:#?}", sink.all()));
    let link = format!("http://cron.example.test/ui/#/runs/{run}");
    let (slack, discord, teams) = (&delivered[0][0], &delivered[1][0], &delivered[2][0]);

    let line = slack["text"].as_str().unwrap();
    assert!(line.contains("noisy failed (exit code 3) after"), "{slack}");
    assert!(line.contains("at 03:00"), "the schedule in words: {slack}");
    let quoted = slack["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(quoted.contains("line 11\n") && quoted.contains("line 30"), "{slack}");
    assert!(!quoted.contains("line 10\n"), "the last 20 lines only: {slack}");
    assert!(slack["blocks"][2]["elements"][0]["text"].as_str().unwrap().contains(&link), "{slack}");

    assert_eq!(discord["content"].as_str(), Some(line), "{discord}");
    assert!(discord["embeds"][0]["description"].as_str().unwrap().contains("line 30"), "{discord}");
    assert_eq!(discord["embeds"][0]["url"].as_str(), Some(link.as_str()), "{discord}");

    assert_eq!(teams["@type"], "MessageCard", "{teams}");
    assert_eq!(teams["title"].as_str(), Some(line));
    assert!(teams["text"].as_str().unwrap().contains("line 30"), "{teams}");
    assert_eq!(teams["potentialAction"][0]["targets"][0]["uri"].as_str(), Some(link.as_str()), "{teams}");
}
