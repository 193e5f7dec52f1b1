//! Run logs are stored and served as text within `--log-cap`: NUL and invalid UTF-8 in a job's
//! output become U+FFFD (on PostgreSQL too, whose text holds neither), a follower receives
//! exactly the stored log, and a v3 form body holding NUL or invalid UTF-8 is refused.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct World {
    _db: TestDb,
    server: Server,
    api: Api,
    stack: i64,
    dir: tempfile::TempDir,
}

impl World {
    fn start(flags: &[&str]) -> World {
        let db = TestDb::new();
        let token = add_user(&db, "logger", None);
        let server = Server::start_on(&db, flags);
        let api = Api::new(&server, Some(&token));
        World { _db: db, server, api, stack: 0, dir: tempfile::tempdir().unwrap() }
    }

    async fn with_stack(mut self) -> World {
        self.stack = self.api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
        self
    }

    /// A job running `command` on `schedule` (a schedule config); disabled unless `enabled`.
    async fn job(&self, name: &str, command: &str, schedule: Value, enabled: bool) -> i64 {
        let once = schedule.get("timestamp").is_some();
        let schedule = self
            .api
            .create("/api/v1/schedules", json!({"name": name, "config": schedule, "once": once}))
            .await;
        self.api
            .create(
                "/api/v1/jobs",
                json!({"name": name, "stack_id": self.stack, "schedule_id": schedule, "command": command, "enabled": enabled}),
            )
            .await
    }

    async fn manual_job(&self, name: &str, command: &str) -> i64 {
        self.job(name, command, json!({"cron": "0 0 1 1 *", "timezone": "UTC"}), false).await
    }

    async fn run_now(&self, job: i64) -> i64 {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
        assert_eq!(r.status, 200, "run now: {}", r.text);
        r.json()["id"].as_i64().unwrap()
    }

    async fn runs(&self, job: i64) -> Vec<Value> {
        let r = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await;
        r.json()["runs"].as_array().cloned().unwrap_or_default()
    }

    /// The job's latest run once it has ended.
    async fn ended_run(&self, job: i64) -> Value {
        let ended = self.api.ended_run(job).await;
        ended.unwrap_or_else(|| panic!("job {job}'s run never ended; server log:\n{}", self.server.log()))
    }

    async fn log(&self, run: i64) -> String {
        self.api.run_log(run).await
    }
}

#[tokio::test]
async fn nul_and_invalid_utf8_output_is_stored_as_replacement_chars() {
    let w = World::start(&[]).with_stack().await;
    let nul = w.manual_job("nul", r"printf 'a\000b'").await;
    let bad = w.manual_job("bad", r"printf 'c\377d'; printf ' \342\202'").await;
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 2;
    let scheduled = w.job("scheduled", r"printf 'a\000b'", json!({"timestamp": at}), true).await;
    for job in [nul, bad] {
        w.run_now(job).await;
    }
    for (job, want) in [(nul, "a\u{fffd}b"), (bad, "c\u{fffd}d \u{fffd}"), (scheduled, "a\u{fffd}b")] {
        let run = w.ended_run(job).await;
        assert_eq!(run["outcome"], "succeeded", "job {job}: {run}\n{}", w.server.log());
        let id = run["id"].as_i64().unwrap();
        assert_eq!(w.log(id).await, want, "job {job}");
    }
    assert!(!w.server.log().contains("recording run end"), "no failed end write:\n{}", w.server.log());

    // The v3 action of such a run finishes.
    let done = w.api.v3_run_now_finished(w.stack, nul).await;
    assert_eq!(done["finished_success"], true, "{done}");
}

#[tokio::test]
async fn v3_run_now_refuses_nul_and_invalid_utf8_in_every_body() {
    let w = World::start(&[]).with_stack().await;
    let job = w.manual_job("j", "echo").await;
    let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
    let stack_uid = uid(w.api.get(&format!("/api/v1/blockstacks/byid/{}", w.stack)).await.json());
    let job_uid = uid(w.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json());
    let path = format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/run_now.json");
    let form = Some("application/x-www-form-urlencoded");

    let refused = [
        w.api.send_raw("POST", &path, form, b"job_args=a%00b".to_vec()).await,
        w.api.send_raw("POST", &path, form, b"job_args=a%ffb".to_vec()).await,
        w.api.send_raw("POST", &path, form, b"job_args=ok&x%00=1".to_vec()).await,
        w.api.send_raw("POST", &path, form, b"job_args=\xff".to_vec()).await,
        w.api
            .send_raw("POST", &path, Some("application/json"), br#"{"job_args": "a\u0000b"}"#.to_vec())
            .await,
        w.api.post(&format!("{path}?job_args=a%00b"), json!({})).await,
    ];
    for r in &refused {
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.json()["error"], "bad_request", "{}", r.text);
    }
    assert!(refused[0].json()["error_description"].as_str().unwrap().contains("job_args"));
    assert!(w.runs(job).await.is_empty(), "a refused run_now runs nothing");

    // A valid form body still works, `+` and `%XX` decoded.
    let r = w.api.send_raw("POST", &path, form, b"job_args=caf%C3%A9+ok".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let run = w.ended_run(job).await;
    assert_eq!(w.log(run["id"].as_i64().unwrap()).await, "café ok\n");
}

#[tokio::test]
async fn a_follower_of_a_chatty_run_gets_the_stored_log() {
    let w = World::start(&["--log-cap", "4096"]).with_stack().await;
    let go = w.dir.path().join("go");
    // A first part, then (once the test says go) about 2 MB.
    let command = format!("seq 1 200; while [ ! -e '{}' ]; do sleep 0.05; done; seq 1 300000", go.display());
    let job = w.manual_job("chatty", &command).await;
    let run = w.run_now(job).await;

    let mut req = w.api.http.get(format!("{}/api/v1/runs/{run}/log?follow=1", w.api.base));
    req = req.bearer_auth(w.api.token.as_deref().unwrap());
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The start of the output arrives while the run waits.
    let mut seen = Vec::new();
    while !seen.ends_with(b"\n200\n") {
        let chunk = tokio::time::timeout(WAIT, resp.chunk()).await.expect("live output").unwrap();
        seen.extend(chunk.expect("the run is still going"));
    }
    std::fs::write(&go, b"").unwrap();
    while let Some(chunk) = tokio::time::timeout(WAIT, resp.chunk()).await.expect("the log ends").unwrap() {
        seen.extend(chunk);
    }

    let ended = w.ended_run(job).await;
    assert_eq!((ended["outcome"].clone(), ended["log_truncated"].clone()), (json!("succeeded"), json!(true)));
    let stored = w.log(run).await;
    assert!(stored.len() <= 4096, "stored {} bytes", stored.len());
    assert!(stored.contains(" bytes omitted] …\n") && stored.ends_with("\n299999\n300000\n"), "{stored:?}");
    assert_eq!(String::from_utf8(seen).unwrap(), stored, "the follower got the stored log");
}
