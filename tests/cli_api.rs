//! The CLI covers the API: every command group driven through the real `cronstack` binary
//! against a real server (SQLite, or PostgreSQL with `CRONSTACK_TEST_POSTGRES`) — stacks rm,
//! schedules edit / rm, tokens, webhooks, users passwd, jobs edit / rm semantics, runs ls
//! filters, human durations, global flags, zone-labelled times and the refusals that help.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::cli::*;
use common::*;
use serde_json::{Value, json};

/// The ids of the caller's schedules.
fn schedule_ids(w: &World) -> Vec<i64> {
    let all = w.json(&["schedules", "ls"]);
    all.as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect()
}

#[test]
fn url_token_and_output_are_global() {
    let w = world();
    w.ok(&["stacks", "create", "g1", "--command", "true"]);
    let (url, token) = (w.server.base.as_str(), w.token.as_str());
    // Before the group, between the group and its command, after the command.
    for args in [
        vec!["--url", url, "--token", token, "-o", "json", "stacks", "ls"],
        vec!["stacks", "--url", url, "--token", token, "-o", "json", "ls"],
        vec!["stacks", "ls", "--url", url, "--token", token, "-o", "json"],
        vec!["-o", "json", "stacks", "ls", "--url", url, "--token", token],
    ] {
        let out = w.cmd().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(v[0]["name"], "g1", "{args:?}");
    }
    // `next` takes the global -o too (it needs no server).
    let out = w.cmd().args(["-o", "json", "next", "@daily", "-n", "1"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["upcoming"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn stacks_rm_is_refused_while_jobs_use_the_stack() {
    let w = world();
    w.ok(&["stacks", "create", "backup", "--command", "true"]);
    w.ok(&["jobs", "create", "nightly", "--stack", "backup", "--every", "5m"]);
    let stack = w.json(&["stacks", "show", "backup"]);
    let id = stack["id"].as_i64().unwrap();

    let err = one_line_error(&w.cli(&["stacks", "rm", "backup"]));
    assert!(err.contains("nightly") && err.contains("409"), "{err}");
    // The route itself: 409 in the v1 shape; 404 for unknown and for another user's stack.
    let api = Api::new(&w.server, Some(&w.token));
    let r = api.delete(&format!("/api/v1/blockstacks/{id}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["code"], 4);
    assert!(r.json()["msg"].as_str().unwrap().contains("nightly"), "{}", r.text);
    assert_eq!(api.delete("/api/v1/blockstacks/999999").await.status, 404);
    let eve = Api::new(&w.server, Some(&add_user(&w.db, "eve", None)));
    let r = eve.delete(&format!("/api/v1/blockstacks/{id}")).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(6)), "{}", r.text);

    // Once the job is gone (at once, enabled as it is), the stack goes; so did the job's own
    // schedule.
    let out = w.ok(&["jobs", "rm", "nightly", "--now"]);
    assert!(out.contains("deleted job") && out.contains("its schedule"), "{out}");
    assert!(schedule_ids(&w).is_empty());
    let out = w.ok(&["stacks", "rm", "backup"]);
    assert!(out.contains("deleted stack"), "{out}");
    assert_eq!(api.get(&format!("/api/v1/blockstacks/byid/{id}")).await.status, 404);
    assert!(w.json(&["stacks", "ls"]).as_array().unwrap().is_empty());
}

#[test]
fn schedules_edit_and_rm() {
    let w = world();
    let s = w.json(&["schedules", "create", "mornings", "--cron", "0 7 * * *", "--tz", "Europe/Paris"]);
    let id = s["id"].as_i64().unwrap().to_string();
    // --cron alone keeps the zone; --tz alone changes only the zone.
    let s = w.json(&["schedules", "edit", "mornings", "--cron", "30 6 * * *"]);
    assert_eq!(s["config"], json!({"cron": "30 6 * * *", "timezone": "Europe/Paris"}));
    let s = w.json(&["schedules", "edit", &id, "--tz", "Asia/Tokyo", "--name", "tokyo"]);
    assert_eq!(s["config"], json!({"cron": "30 6 * * *", "timezone": "Asia/Tokyo"}));
    assert_eq!(s["name"], "tokyo");
    let s = w.json(&["schedules", "edit", "tokyo", "--every", "1h30m"]);
    assert_eq!(s["config"], json!({"period": 5400}));
    let err = one_line_error(&w.cli(&["schedules", "edit", "tokyo", "--tz", "UTC"]));
    assert!(err.contains("not cron"), "{err}");

    // In use: frozen, and not deletable.
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    w.ok(&["jobs", "create", "j", "--stack", "s", "--schedule", "tokyo", "--paused"]);
    let err = one_line_error(&w.cli(&["schedules", "edit", "tokyo", "--every", "10m"]));
    assert!(err.contains("409"), "{err}");
    let err = one_line_error(&w.cli(&["schedules", "rm", "tokyo"]));
    assert!(err.contains("409"), "{err}");
    // A named schedule is no job's own: it stays when the job goes.
    let out = w.ok(&["jobs", "rm", "j"]);
    assert!(!out.contains("schedule"), "{out}");
    assert!(w.ok(&["schedules", "rm", "tokyo"]).contains(&format!("deleted schedule {id}")));
    assert!(schedule_ids(&w).is_empty());
}

#[test]
fn durations_are_human_and_plain_seconds_still_work() {
    let w = world();
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    w.ok(&[
        "jobs",
        "create",
        "d",
        "--stack",
        "s",
        "--every",
        "5m",
        "--timeout",
        "1h30m",
        "--retry-backoff",
        "30s",
        "--jitter",
        "10",
        "--grace",
        "2m",
        "--max-duration",
        "1d",
    ]);
    let j = w.json(&["jobs", "show", "d"]);
    assert_eq!(
        (&j["timeout_s"], &j["retry_backoff_s"], &j["jitter_s"], &j["grace_s"], &j["max_duration_s"]),
        (&json!(5400), &json!(30), &json!(10), &json!(120), &json!(86_400))
    );
    assert_eq!(j["schedule_object"]["config"], json!({"period": 300}));
    let shown = w.ok(&["jobs", "show", "d"]);
    assert!(shown.contains("1h 30m") && shown.contains("backoff 30s"), "{shown}");
    w.ok(&["jobs", "edit", "d", "--timeout", "90"]);
    assert_eq!(w.json(&["jobs", "show", "d"])["timeout_s"], 90);
    // Monitors take them too.
    let m = w.json(&["monitors", "create", "m", "--every", "5m", "--grace", "1h"]);
    assert_eq!((m["schedule"]["period"].clone(), m["grace_s"].clone()), (json!(300), json!(3600)), "{m}");
    let out = w.cli(&["jobs", "edit", "d", "--timeout", "soon"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("1h30m"), "{}", text(&out.stderr));
}

#[test]
fn jobs_edit_keeps_the_zone_and_leaves_no_orphan_schedule() {
    let w = world();
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    w.ok(&["jobs", "create", "report", "--stack", "s", "--cron", "0 3 * * *", "--tz", "Europe/Paris"]);
    let config = |w: &World| w.json(&["jobs", "show", "report"])["schedule_object"].clone();
    // --cron alone: the zone stays; the job's own schedule is replaced under its name.
    w.ok(&["jobs", "edit", "report", "--cron", "0 4 * * *"]);
    let s = config(&w);
    assert_eq!(s["config"], json!({"cron": "0 4 * * *", "timezone": "Europe/Paris"}));
    assert_eq!(s["name"], "report");
    assert_eq!(schedule_ids(&w), vec![s["id"].as_i64().unwrap()], "no orphan schedule");
    // --tz alone: only the zone changes.
    w.ok(&["jobs", "edit", "report", "--tz", "America/New_York"]);
    let s = config(&w);
    assert_eq!(s["config"], json!({"cron": "0 4 * * *", "timezone": "America/New_York"}));
    assert_eq!(schedule_ids(&w).len(), 1);
    // Renamed with a new rule: its own schedule follows the name.
    w.ok(&["jobs", "edit", "report", "--name", "daily-report", "--cron", "0 5 * * *"]);
    let s = w.json(&["jobs", "show", "daily-report"])["schedule_object"].clone();
    assert_eq!(
        (s["name"].clone(), s["config"]["timezone"].clone()),
        (json!("daily-report"), json!("America/New_York"))
    );
    w.ok(&["jobs", "edit", "daily-report", "--name", "report", "--cron", "0 4 * * *"]);
    assert_eq!(schedule_ids(&w).len(), 1);
    // Times are shown in the schedule's zone, with its abbreviation and offset.
    let shown = w.ok(&["jobs", "show", "report"]);
    assert!(shown.contains(" 04:00 EST (-05:00)") || shown.contains(" 04:00 EDT (-04:00)"), "{shown}");
    let listed = w.ok(&["jobs", "ls"]);
    assert!(listed.contains(" 04:00 E") && listed.contains(":00)"), "{listed}");

    // A shared schedule stays as it is: the edited job gets its own.
    w.ok(&["schedules", "create", "shared", "--every", "1h"]);
    w.ok(&["jobs", "create", "a", "--stack", "s", "--schedule", "shared", "--paused"]);
    w.ok(&["jobs", "create", "b", "--stack", "s", "--schedule", "shared", "--paused"]);
    w.ok(&["jobs", "edit", "a", "--every", "2h"]);
    let a = w.json(&["jobs", "show", "a"]);
    assert_eq!(a["schedule_object"]["config"], json!({"period": 7200}));
    assert_eq!(a["schedule_object"]["name"], "a");
    assert_eq!(w.json(&["jobs", "show", "b"])["schedule_object"]["config"], json!({"period": 3600}));
    assert_eq!(schedule_ids(&w).len(), 3);

    // A refused edit or create leaves no schedule behind.
    let before = schedule_ids(&w);
    let err = one_line_error(&w.cli(&["jobs", "edit", "b", "--cron", "0 5 * * *", "--retries", "1000"]));
    assert!(err.contains("retries"), "{err}");
    let err = one_line_error(&w.cli(&[
        "jobs",
        "create",
        "c",
        "--stack",
        "s",
        "--every",
        "1m",
        "--retries",
        "1000",
    ]));
    assert!(err.contains("retries"), "{err}");
    let err = one_line_error(&w.cli(&["jobs", "create", "a", "--stack", "s", "--cron", "0 1 * * *"]));
    assert!(err.contains("409"), "{err}");
    assert_eq!(schedule_ids(&w), before);
}

#[tokio::test]
async fn a_queued_deletion_is_cancelled_and_rm_now_deletes_at_once() {
    let w = world();
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    w.ok(&["jobs", "create", "hourly", "--stack", "s", "--cron", "0 * * * *"]);
    let out = w.ok(&["jobs", "rm", "hourly"]);
    assert!(out.contains("next slot") && out.contains("--cancel"), "{out}");
    let j = w.json(&["jobs", "show", "hourly"]);
    assert_eq!((j["do_del"].clone(), j["do_run"].clone()), (json!(true), json!(true)));
    // Changes are refused with the way out in the message.
    let err = one_line_error(&w.cli(&["jobs", "edit", "hourly", "--timeout", "5m"]));
    assert!(err.contains("do_del") && err.contains("409"), "{err}");
    // Cancelled: the job stays, enabled, as it was.
    let out = w.ok(&["jobs", "rm", "hourly", "--cancel"]);
    assert!(out.contains("stays") && out.contains("enabled"), "{out}");
    let j = w.json(&["jobs", "show", "hourly"]);
    assert_eq!((j["do_del"].clone(), j["do_run"].clone()), (json!(false), json!(true)));
    w.ok(&["jobs", "edit", "hourly", "--timeout", "5m"]);

    // v1: do_del true is DELETE's; false on a job not queued changes nothing.
    let api = Api::new(&w.server, Some(&w.token));
    let id = j["id"].as_i64().unwrap();
    let r = api.put(&format!("/api/v1/jobs/{id}"), json!({"do_del": true})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{}", r.text);
    let r = api.put(&format!("/api/v1/jobs/{id}"), json!({"do_del": false})).await;
    assert_eq!((r.status, r.json()["do_del"].clone()), (200, json!(false)), "{}", r.text);

    // --now: gone at once, with its own schedule.
    w.ok(&["jobs", "rm", "hourly"]);
    let out = w.ok(&["jobs", "rm", "hourly", "--now"]);
    assert!(out.contains("deleted job") && out.contains("its schedule"), "{out}");
    assert!(w.json(&["jobs", "ls"]).as_array().unwrap().is_empty());
    assert!(schedule_ids(&w).is_empty());
}

#[tokio::test]
async fn tokens_ls_create_revoke() {
    let w = world();
    let out = w.ok(&["tokens", "create", "ci", "--scope", "public"]);
    let secret = out.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("cst_"), "{out}");
    let ci = Api::new(&w.server, Some(&secret));
    let me = ci.get("/api/v1/whoami").await.json();
    assert_eq!(me["scopes"], json!(["public"]));
    let listed = w.json(&["tokens", "ls"]);
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "ci"]);
    assert!(!listed.to_string().contains(&secret));
    assert!(w.ok(&["tokens", "ls"]).contains("public"));
    // A token cannot mint wider scopes than its own, nor manage tokens without admin.
    let out = w.cmd().args(["--url", &w.server.base, "--token", &secret, "tokens", "ls"]).output().unwrap();
    assert!(one_line_error(&out).contains("admin"));
    let created = w.json(&["tokens", "create", "--scope", "jobs", "--scope", "public"]);
    assert_eq!(created["scopes"], json!(["jobs", "public"]));
    // Revoked by name: refused from then on.
    assert!(w.ok(&["tokens", "revoke", "ci"]).contains("revoked token"));
    assert_eq!(ci.get("/api/v1/whoami").await.status, 401);
    let err = one_line_error(&w.cli(&["tokens", "revoke", "ci"]));
    assert!(err.contains("no token"), "{err}");
}

#[test]
fn webhooks_ls_create_rm_deliveries() {
    let w = world();
    // Nothing listens there: deliveries are recorded with their error.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    w.ok(&["stacks", "create", "s", "--command", "true"]);
    w.ok(&["jobs", "create", "j", "--stack", "s", "--every", "1h", "--paused"]);
    let created = w.json(&[
        "webhooks",
        "create",
        &url,
        "--event",
        "run.succeeded",
        "--event",
        "run.failed",
        "--name",
        "ops",
        "--job",
        "j",
    ]);
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"), "{created}");
    let listed = w.json(&["webhooks", "ls"]);
    assert_eq!(listed[0]["events"], json!(["run.failed", "run.succeeded"]));
    assert_eq!(listed[0]["job_id"], w.json(&["jobs", "show", "j"])["id"]);
    let table = w.ok(&["webhooks", "ls"]);
    assert!(table.contains("ops") && table.contains("job #"), "{table}");
    let err = one_line_error(&w.cli(&["webhooks", "create", &url, "--event", "run.exploded"]));
    assert!(err.contains("run.succeeded"), "{err}");

    assert!(w.ok(&["webhooks", "deliveries", "ops"]).contains("no deliveries"));
    w.ok(&["run", "j", "--follow"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let deliveries = loop {
        let d = w.json(&["webhooks", "deliveries", "ops"]);
        if d.as_array().is_some_and(|d| !d.is_empty()) || std::time::Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(deliveries[0]["event"], "run.succeeded", "{deliveries}");
    assert!(w.ok(&["webhooks", "deliveries", "ops"]).contains("run.succeeded"));

    assert!(w.ok(&["webhooks", "rm", "ops"]).contains("deleted webhook subscription"));
    assert!(w.json(&["webhooks", "ls"]).as_array().unwrap().is_empty());
}

#[tokio::test]
async fn users_passwd_changes_the_callers_password() {
    let w = world();
    let passwd = |input: &str| {
        let mut child = w
            .cmd()
            .args(["users", "passwd", "--url", &w.server.base, "--token", &w.token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let login = |password: &'static str| {
        let api = Api::new(&w.server, None);
        async move {
            api.post("/api/v1/authenticate", json!({"username": "dora", "password": password})).await.status
        }
    };
    let err = one_line_error(&passwd("wrong\nnew-secret\n"));
    assert!(err.contains("current_password"), "{err}");
    let out = passwd("pw-dora\nnew-secret\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("password changed for dora"));
    assert_eq!(login("pw-dora").await, 401);
    assert_eq!(login("new-secret").await, 200);

    // A user without a password sets a first one without a current one (an empty line).
    let token = add_user(&w.db, "tok", None);
    let api = Api::new(&w.server, Some(&token));
    let r = api.put("/api/v1/password", json!({"password": "first-one"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api.put("/api/v1/password", json!({"password": ""})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{}", r.text);
    // Without the admin scope: refused.
    let public = w.json(&["tokens", "create", "--scope", "public"])["token"].as_str().unwrap().to_string();
    let r = Api::new(&w.server, Some(&public))
        .put("/api/v1/password", json!({"password": "x", "current_password": "new-secret"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
}

#[tokio::test]
async fn next_and_refusals_that_help() {
    let w = world();
    // --from, and the zone's abbreviation and offset on each side of a DST change.
    let out =
        w.ok(&["next", "30 2 * * *", "--tz", "Europe/Berlin", "--from", "2027-10-30T12:00:00Z", "-n", "2"]);
    assert!(out.contains("2027-10-31 02:30 CEST (+02:00)"), "{out}");
    assert!(out.contains("2027-11-01 02:30 CET (+01:00)"), "{out}");
    let v = w.json(&["next", "0 0 1 1 *", "--from", "1900000000", "-n", "1"]);
    assert_eq!(v["upcoming"], json!(["2031-01-01T00:00:00Z"]));
    let v = w.json(&["next", "0 3 * * *", "--tz", "Europe/Paris", "--from", "2027-03-28 01:00", "-n", "1"]);
    assert_eq!(v["upcoming"], json!(["2027-03-28T01:00:00Z"]));
    // -n 0: nothing printed, the expression still checked.
    let out = w.cli(&["next", "0 3 * * *", "-n", "0"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(one_line_error(&w.cli(&["next", "0 25 * * *", "-n", "0"])).contains("hour"));

    // A 6-field expression says its first field is seconds; an unknown zone, the close names.
    let err = one_line_error(&w.cli(&["next", "0 3 * * * 2026"]));
    assert!(err.contains("first field is seconds"), "{err}");
    let err = one_line_error(&w.cli(&["next", "0 3 * * *", "--tz", "Berlin"]));
    assert!(err.contains("did you mean Europe/Berlin?"), "{err}");
    let err = one_line_error(&w.cli(&["schedules", "create", "--cron", "0 3 * * *", "--tz", "Berlin"]));
    assert!(err.contains("did you mean Europe/Berlin?") && err.contains("400"), "{err}");
    // The server's own refusal, over HTTP.
    let api = Api::new(&w.server, Some(&w.token));
    let r =
        api.post("/api/v1/schedules", json!({"config": {"cron": "0 3 * * *", "timezone": "new york"}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.json()["msg"].as_str().unwrap().contains("America/New_York"), "{}", r.text);
}

#[test]
fn runs_ls_shows_the_attempt_and_filters_by_outcome() {
    let w = world();
    w.ok(&["stacks", "create", "s", "--command", "test \"$1\" = ok"]);
    w.ok(&[
        "jobs",
        "create",
        "check",
        "--stack",
        "s",
        "--cron",
        "0 3 * * *",
        "--tz",
        "Asia/Tokyo",
        "--paused",
    ]);
    w.ok(&["run", "check", "--follow", "--", "ok"]);
    assert!(!w.cli(&["run", "check", "--follow", "--", "no"]).status.success());
    w.ok(&["run", "check", "--follow", "--", "ok"]);
    let all = w.json(&["runs", "ls", "check"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let failed = w.json(&["runs", "ls", "check", "--failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["outcome"], "failed");
    let ok = w.json(&["runs", "ls", "check", "--outcome", "succeeded"]);
    assert_eq!(ok.as_array().unwrap().len(), 2);
    let table = w.ok(&["runs", "ls", "check", "--failed"]);
    assert!(table.lines().next().unwrap().contains("ATTEMPT"), "{table}");
    assert!(table.contains("JST (+09:00)"), "{table}");
    assert!(w.ok(&["runs", "ls", "check", "--outcome", "killed"]).contains("no such runs"));
}
