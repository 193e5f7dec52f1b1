//! Notification channels beyond the chat kinds of `tests/health.rs` (issue 18): email
//! channels sending through a real SMTP conversation with a sink on loopback (refused without
//! SMTP settings, recipients validated, a busy server's 451 retried by the delivery queue);
//! monitor events as Slack, Discord, Teams and email messages. Black-box against the real binary, on SQLite or PostgreSQL
//! (`CRONSTACK_TEST_POSTGRES`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const PUBLIC: &str = "http://cron.example.test";

fn serve(db: &TestDb, smtp: Option<&SmtpSink>, extra: &[&str]) -> Server {
    let url = smtp.map(SmtpSink::url);
    let mut flags = vec!["--webhook-retry-base-ms", "200", "--public-url", PUBLIC, "--shutdown-grace-s", "1"];
    if let Some(url) = &url {
        flags.extend([
            "--smtp-url",
            url,
            "--smtp-tls",
            "none",
            "--smtp-from",
            "cronstack <cron@example.test>",
        ]);
    }
    flags.extend_from_slice(extra);
    Server::start_on(db, &flags)
}

/// A stack running `command` and a job on `config`; returns the job's id.
async fn job(api: &Api, name: &str, command: &str, config: Value) -> i64 {
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"name": name, "config": config})).await;
    api.create(
        "/api/v1/jobs",
        json!({"stack_id": stack, "schedule_id": schedule, "name": name, "enabled": true}),
    )
    .await
}

async fn run_now(api: &Api, id: i64) -> i64 {
    let r = api.post(&format!("/api/v1/jobs/byid/{id}/run"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["id"].as_i64().unwrap()
}

fn assert_invalid(r: &Resp, field: &str, says: &str) {
    assert_eq!((r.status, r.json()["code"].as_i64()), (400, Some(4)), "{}", r.text);
    assert!(r.text.contains(field) && r.text.contains(says), "{field} / {says}: {}", r.text);
}

#[tokio::test]
async fn email_channels_are_refused_without_smtp_settings() {
    let db = TestDb::new();
    let server = serve(&db, None, &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let r = api
        .post(
            "/api/v1/channels",
            json!({"kind": "email", "to": "ops@example.test", "events": ["run.failed"]}),
        )
        .await;
    assert_invalid(&r, "kind", "--smtp-url");
    assert_eq!(api.get("/api/v1/channels").await.json()["count"], 0);
}

#[tokio::test]
async fn a_failed_run_is_mailed_with_what_happened_and_a_busy_server_is_retried() {
    // The sink refuses the first mail with 451: the queue tries again, as for a webhook.
    let sink = SmtpSink::refusing(1).await;
    let db = TestDb::new();
    let server = serve(&db, Some(&sink), &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let command = "for i in $(seq 1 30); do echo \"line $i\"; done; exit 3";
    let id = job(&api, "nightly", command, json!({"cron": "0 3 * * *"})).await;

    // Bad input: each refused with a 400 naming the field.
    for (body, field, says) in [
        (json!({"kind": "email", "events": ["run.failed"]}), "to", "required"),
        (json!({"kind": "email", "to": [], "events": ["run.failed"]}), "to", "1 to 20"),
        (json!({"kind": "email", "to": "nobody", "events": ["run.failed"]}), "to", "nobody"),
        (json!({"kind": "email", "to": ["a@x.test", 7], "events": ["run.failed"]}), "to", "email address"),
        (
            json!({"kind": "email", "to": "a@x.test", "url": "https://x.test", "events": ["run.failed"]}),
            "url",
            "to",
        ),
        (
            json!({"kind": "slack", "to": "a@x.test", "url": "https://x.test", "events": ["run.failed"]}),
            "to",
            "email",
        ),
    ] {
        let r = api.post("/api/v1/channels", body.clone()).await;
        assert_invalid(&r, field, says);
    }
    assert_eq!(api.get("/api/v1/channels").await.json()["count"], 0);

    let channel = api
        .create(
            "/api/v1/channels",
            json!({"kind": "email", "name": "ops", "to": ["ops@example.test", "Dev@Example.test", "ops@example.test"],
                   "events": ["run.failed"], "job_id": id}),
        )
        .await;
    let shown = api.get(&format!("/api/v1/channels/byid/{channel}")).await.json();
    assert_eq!(shown["kind"], "email");
    assert_eq!(shown["to"], json!(["ops@example.test", "Dev@Example.test"]), "{shown}");
    assert_eq!(shown["url"], "mailto:ops@example.test,Dev@Example.test", "{shown}");

    let run = run_now(&api, id).await;
    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.from, "cron@example.test");
    assert_eq!(mail.to, ["ops@example.test", "Dev@Example.test"]);
    let subject = mail.header("subject").unwrap();
    assert!(subject.starts_with("[cronstack] ✗ nightly failed (exit code 3) after"), "{subject}");
    assert!(subject.ends_with("every day at 03:00 UTC"), "the schedule in words: {subject}");
    let body = mail.body();
    for want in [
        "Job:".to_string(),
        "nightly (id ".to_string(),
        "Schedule:  every day at 03:00 UTC".to_string(),
        "Outcome:   failed".to_string(),
        "Exit code: 3".to_string(),
        "Duration:".to_string(),
        format!("Link:      {PUBLIC}/ui/#/runs/{run}"),
        "line 11\n".to_string(),
        "line 30\n".to_string(),
    ] {
        assert!(body.contains(&want), "{want:?} missing from:\n{body}");
    }
    assert!(!body.contains("line 10\n"), "the last 20 lines only:\n{body}");

    // The first attempt met the 451, the second was delivered: one mail, two attempts.
    let deliveries = eventually(WAIT, || async {
        let d = api.get(&format!("/api/v1/channels/byid/{channel}/deliveries")).await.json();
        (d["deliveries"][0]["status"] == "delivered").then_some(d)
    })
    .await
    .expect("the delivery is recorded as delivered");
    let d = &deliveries["deliveries"][0];
    assert_eq!((d["attempts"].as_i64(), sink.refused()), (Some(2), 1), "{d}");
    assert_eq!(d["payload"]["subject"].as_str(), Some(subject.as_str()), "{d}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.mails().len(), 1, "never sent twice");

    // Changing the recipients; an email channel cannot lose them to a url.
    let r = api.put(&format!("/api/v1/channels/{channel}"), json!({"to": "oncall@example.test"})).await;
    assert_eq!((r.status, r.json()["to"].clone()), (200, json!(["oncall@example.test"])), "{}", r.text);
    let r = api.put(&format!("/api/v1/channels/{channel}"), json!({"url": "https://x.test/hook"})).await;
    assert_invalid(&r, "url", "to");
}

#[tokio::test]
async fn monitor_events_reach_chat_and_email_channels_as_messages() {
    let sink = SmtpSink::start().await;
    let receiver = Receiver::start().await;
    let db = TestDb::new();
    let server = serve(&db, Some(&sink), &[]);
    let api = Api::new(&server, Some(&add_user(&db, "alice", None)));
    let anon = Api::new(&server, None);
    // Late a second after a ping, down two seconds later.
    let m = api
        .post("/api/v1/monitors", json!({"name": "backups", "schedule": {"period": 1}, "grace_s": 2}))
        .await
        .json();
    let id = m["id"].as_i64().unwrap();
    let events = json!(["monitor.down", "monitor.up"]);
    for kind in ["slack", "discord", "teams"] {
        api.create(
            "/api/v1/channels",
            json!({"kind": kind, "url": receiver.url(&format!("/{kind}")), "events": events, "monitor_id": id}),
        )
        .await;
    }
    api.create("/api/v1/channels", json!({"kind": "email", "to": "ops@example.test", "events": events}))
        .await;
    let ping_url = m["ping_url"].as_str().unwrap().to_string();
    let link = format!("{PUBLIC}/ui/#/monitors/{id}");

    // Up, then down with time: each channel gets its own shape of the same message.
    assert_eq!(anon.get(&ping_url).await.status, 200);
    let got = eventually(WAIT, || async {
        let all: Vec<Vec<Received>> =
            ["/slack", "/discord", "/teams"].iter().map(|p| receiver.at(p)).collect();
        all.iter().all(|v| !v.is_empty()).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("not every chat channel got monitor.down: {:#?}", receiver.all()));
    let (slack, discord, teams) = (&got[0][0], &got[1][0], &got[2][0]);
    assert_eq!(slack.event, "monitor.down");
    let line = slack.body["text"].as_str().unwrap_or_else(|| panic!("Slack-shaped: {:?}", slack.body));
    assert!(line.contains("monitor backups is down: no ping since"), "{line}");
    assert!(line.contains("(grace 2 s)") && line.contains("every second"), "{line}");
    assert_eq!(slack.body["blocks"][0]["text"]["text"].as_str(), Some(line), "{:?}", slack.body);
    let context = slack.body["blocks"].as_array().unwrap().last().unwrap()["elements"][0]["text"].clone();
    assert!(context.as_str().unwrap().contains(&link), "{:?}", slack.body);
    assert_eq!(discord.body["content"].as_str(), Some(line), "{:?}", discord.body);
    assert_eq!(discord.body["embeds"][0]["title"].as_str(), Some(line), "{:?}", discord.body);
    assert_eq!(discord.body["embeds"][0]["url"].as_str(), Some(link.as_str()), "{:?}", discord.body);
    assert_eq!(teams.body["@type"], "MessageCard", "{:?}", teams.body);
    assert_eq!(teams.body["title"].as_str(), Some(line), "{:?}", teams.body);

    let mails = sink.wait_for(1, WAIT).await;
    let subject = mails[0].header("subject").unwrap();
    assert_eq!(subject, format!("[cronstack] {line}"));
    let body = mails[0].body();
    for want in [
        format!("Monitor:   backups (id {id})"),
        "State:     down".into(),
        "Grace:     2 s".into(),
        format!("Link:      {link}"),
    ] {
        assert!(body.contains(&want), "{want:?} missing from:\n{body}");
    }
    assert!(body.contains("Last ping: ") && body.contains("(success)"), "{body}");

    // Back up with a ping whose body is its job's output: quoted as the log.
    let r =
        anon.send_raw("POST", &ping_url, Some("text/plain"), b"dumped 3 tables\nall good\n".to_vec()).await;
    assert_eq!(r.status, 200);
    let up = eventually(WAIT, || async {
        let s = receiver.at("/slack");
        (s.len() >= 2).then(|| s[1].clone())
    })
    .await
    .expect("monitor.up to Slack");
    assert_eq!(up.event, "monitor.up");
    assert!(up.body["text"].as_str().unwrap().contains("monitor backups is up again"), "{:?}", up.body);
    assert!(up.body["blocks"][1]["text"]["text"].as_str().unwrap().contains("all good"), "{:?}", up.body);
    let mails = sink.wait_for(2, WAIT).await;
    assert!(mails[1].header("subject").unwrap().contains("monitor backups is up again"));
    assert!(mails[1].body().contains("dumped 3 tables\nall good"), "{}", mails[1].body());
}

#[tokio::test]
async fn in_a_cluster_only_nodes_with_smtp_send_mail_and_each_mail_goes_once() {
    if !postgres_or_skip() {
        return;
    }
    let sink = SmtpSink::start().await;
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let mailing = serve(&db, Some(&sink), &[]);
    let plain = serve(&db, None, &[]);
    let (a, b) = (Api::new(&mailing, Some(&token)), Api::new(&plain, Some(&token)));
    let id = job(&a, "flaky", "exit 1", json!({"period": 3600})).await;
    // The node without SMTP refuses the channel; the other takes it.
    let body = json!({"kind": "email", "to": "ops@example.test", "events": ["run.failed"], "job_id": id});
    assert_invalid(&b.post("/api/v1/channels", body.clone()).await, "kind", "--smtp-url");
    let channel = a.create("/api/v1/channels", body).await;

    // Runs started through either node: every failure mailed once, at the first attempt (the
    // node without SMTP never claimed one to fail it).
    let mut runs = Vec::new();
    for i in 0..6 {
        runs.push(run_now(if i % 2 == 0 { &a } else { &b }, id).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mails = sink.wait_for(runs.len(), WAIT).await;
    let deliveries = eventually(WAIT, || async {
        let d = b.get(&format!("/api/v1/channels/byid/{channel}/deliveries")).await.json();
        let all = d["deliveries"].as_array().unwrap().clone();
        (all.len() == runs.len() && all.iter().all(|d| d["status"] == "delivered")).then_some(all)
    })
    .await
    .expect("every delivery delivered");
    assert!(deliveries.iter().all(|d| d["attempts"] == 1), "{deliveries:#?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.mails().len(), runs.len(), "never twice: {:#?}", mails);
    for run in &runs {
        let link = format!("/ui/#/runs/{run}\n");
        assert_eq!(sink.mails().iter().filter(|m| m.body().contains(&link)).count(), 1, "run {run}");
    }
}
