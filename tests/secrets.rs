//! Secret environment variables (`secret_env`): sealed at rest (a dump of the database — the
//! SQLite files with their WAL, or `pg_dump` — never holds a value), given to the job, masked
//! as `***` in everything a run's output reaches (stored log, live follow, the hook's answer,
//! the v3 action's log tail), shown by name only; the key is checked at start.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A value no test output could hold by chance.
fn unique_secret() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("sk-{:016x}", (nanos as u64) ^ (u64::from(std::process::id()) << 32))
}

struct World {
    db: TestDb,
    server: Server,
    api: Api,
    dir: tempfile::TempDir,
}

impl World {
    /// A server logging at trace level: not even that may show a secret value.
    fn start() -> World {
        let db = TestDb::new();
        let token = add_user(&db, "sam", Some("pw-sam"));
        let server = Server::start_with_env(&db, &[], &[("RUST_LOG", "trace")]);
        let api = Api::new(&server, Some(&token));
        World { db, server, api, dir: tempfile::tempdir().unwrap() }
    }

    /// A job of `stack` running the stack's command, never scheduled.
    async fn job(&self, stack: i64) -> i64 {
        let schedule = self.api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
        self.api
            .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "enabled": false}))
            .await
    }

    async fn run_now(&self, job: i64) -> i64 {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
        assert_eq!(r.status, 200, "run now: {}", r.text);
        r.json()["id"].as_i64().unwrap()
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

/// Every byte the database keeps: the SQLite file with its `-wal` and `-shm`, or `pg_dump`.
fn database_dump(db: &TestDb) -> Vec<u8> {
    if db.url.starts_with("sqlite:") {
        let file = db.dir().join("cronstack.db");
        let mut bytes = std::fs::read(&file).unwrap();
        for suffix in ["db-wal", "db-shm"] {
            bytes.extend(std::fs::read(file.with_extension(suffix)).unwrap_or_default());
        }
        return bytes;
    }
    let out = Command::new("pg_dump").arg(&db.url).output().expect("pg_dump runs");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The issue's test: the database does not hold the value, the job sees it, its log shows
/// `***` (stored and followed live, split across writes too), a GET shows the name only;
/// likewise the hook's answer and the v3 action's log tail; the server's own log never has it.
#[tokio::test]
async fn a_secret_is_sealed_at_rest_seen_by_the_job_and_masked_wherever_output_goes() {
    let w = World::start();
    let secret = unique_secret();
    let (seen, go) = (w.dir.path().join("seen"), w.dir.path().join("go"));
    // The value whole, then in two writes with a pause (two reads), then after a wait.
    let command = r#"printf %s "$API_KEY" > "$OUT"; echo "key=$API_KEY"
k=$API_KEY; printf 'half=%s' "${k%????????}"; sleep 0.3; printf '%s|\n' "${k#"${k%????????}"}"
while [ ! -e "$GO" ]; do sleep 0.05; done; echo "done $API_KEY""#;
    let stack = w
        .api
        .create(
            "/api/v1/blockstacks",
            json!({"name": "s", "command": command, "secret_env": {"API_KEY": secret},
                   "env": {"OUT": seen.display().to_string(), "GO": go.display().to_string()}}),
        )
        .await;
    let expected_log = "key=***\nhalf=***|\ndone ***\n";

    // Names only, wherever the stack is shown.
    let shown = w.api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await;
    assert_eq!(shown.json()["secret_env"], json!(["API_KEY"]), "{}", shown.text);
    assert!(shown.json()["env"].get("API_KEY").is_none());
    for path in ["/api/v1/blockstacks", "/api/v1/blockstacks/byname/s", "/api/3/stacks"] {
        let r = w.api.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(!r.text.contains(&secret), "{path}: {}", r.text);
    }

    // Run, followed live: the part written before the job waits already shows `***`.
    let job = w.job(stack).await;
    let run = w.run_now(job).await;
    let mut req = w.api.http.get(format!("{}/api/v1/runs/{run}/log?follow=1", w.api.base));
    req = req.bearer_auth(w.api.token.as_deref().unwrap());
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut followed = Vec::new();
    while !followed.ends_with(b"|\n") {
        let chunk = tokio::time::timeout(WAIT, resp.chunk()).await.expect("live output").unwrap();
        followed.extend(chunk.expect("the run is still going"));
    }
    assert_eq!(String::from_utf8_lossy(&followed), "key=***\nhalf=***|\n");
    std::fs::write(&go, b"").unwrap();
    while let Some(chunk) = tokio::time::timeout(WAIT, resp.chunk()).await.expect("the log ends").unwrap() {
        followed.extend(chunk);
    }
    assert_eq!(String::from_utf8(followed).unwrap(), expected_log);
    let ended = w.ended_run(job).await;
    assert_eq!(ended["outcome"], "succeeded", "{ended}");
    assert_eq!(w.log(run).await, expected_log);
    // The job saw the value itself.
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), secret);

    // The hook's answer (the command's stdout) and the v3 action's log tail.
    let r = w.api.get(&format!("/api/v1/blockstacks/exec/{stack}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["result"], json!(expected_log.trim_end()), "{}", r.text);
    let done = w.api.v3_run_now_finished(stack, job).await;
    assert_eq!(done["finished_result"]["log_tail"], expected_log, "{done}");
    let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
    let stack_uid = uid(w.api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json());
    let job_uid = uid(w.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json());
    for path in [format!("/api/3/stacks/{stack_uid}"), format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}")] {
        let r = w.api.get(&path).await;
        assert!(r.status == 200 && !r.text.contains(&secret), "{path}: {}", r.text);
    }

    // At rest: the name is there, the value is not — nor in the server's own log.
    let dump = database_dump(&w.db);
    assert!(contains(&dump, "API_KEY"), "the dump holds the stack");
    assert!(!contains(&dump, &secret), "the database holds the secret value in clear");
    let log = w.server.log();
    assert!(log.len() > 1000 && !log.contains(&secret), "the server logged the secret:\n{log}");
    if w.db.url.starts_with("sqlite:") {
        use std::os::unix::fs::PermissionsExt;
        let key = w.db.dir().join("cronstack.key");
        let mode = std::fs::metadata(&key).expect("a key file beside the database").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// v1 input: names as for `env`, values of 4 characters or more, a name not in `env` too;
/// a PUT sets the values given, removes those given as `null`, keeps the others; `null`
/// removes them all. Refusals change nothing and never echo a value.
#[tokio::test]
async fn secret_env_input_rules_and_put_semantics() {
    let w = World::start();
    let base = json!({"name": "s", "command": "true"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, needle) in [
        (json!({"secret_env": {"1BAD": "long-enough"}}), "not a valid variable name"),
        (json!({"secret_env": {"PIN": "123"}}), "too short"),
        (json!({"secret_env": {"A": "has\u{0}nul"}}), "NUL"),
        (json!({"env": {"A": "x"}, "secret_env": {"A": "long-enough"}}), "either plain or secret"),
        (json!({"secret_env": {"PIN": 987654321}}), "must be a string"),
        (json!({"secret_env": ["A"]}), "secret_env"),
    ] {
        let r = w.api.post("/api/v1/blockstacks", with(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        let msg = r.json()["msg"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(needle), "{body}: {msg}");
        assert!(!r.text.contains("987654321") && !r.text.contains("long-enough"), "echoed: {}", r.text);
    }
    let listed = w.api.get("/api/v1/blockstacks").await.json();
    assert_eq!(listed["stacks"], json!([]), "refusals created nothing");

    let id = w
        .api
        .create("/api/v1/blockstacks", with(json!({"secret_env": {"B": "bbbb-1", "A": "aaaa-1"}})))
        .await;
    let put = |body: Value| {
        let api = w.api.clone();
        async move { api.put(&format!("/api/v1/blockstacks/{id}"), body).await }
    };
    let names = |r: &Resp| r.json()["secret_env"].clone();
    let r = put(json!({"command": "echo"})).await;
    assert_eq!(names(&r), json!(["A", "B"]), "untouched: {}", r.text);
    let r = put(json!({"secret_env": {"C": "cccc-1", "A": null}})).await;
    assert_eq!(names(&r), json!(["B", "C"]), "{}", r.text);
    assert!(!r.text.contains("cccc-1"));
    let r = put(json!({"env": {"B": "plain"}})).await;
    assert_eq!(r.status, 400, "B is secret: {}", r.text);
    let r = put(json!({"secret_env": {"B": null}, "env": {"B": "plain"}})).await;
    assert_eq!(names(&r), json!(["C"]), "{}", r.text);
    assert_eq!(r.json()["env"], json!({"B": "plain"}));
    let r = put(json!({"secret_env": null})).await;
    assert_eq!(names(&r), json!([]), "{}", r.text);

    // The OpenAPI document describes the field.
    let doc = Api::new(&w.server, None).get("/openapi.json").await.json();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["StackInput"]["properties"]["secret_env"].is_object());
    assert!(schemas["StackView_StackJob"]["properties"]["secret_env"].is_object());
}

/// The key at start: another key, or none where one was (SQLite), is refused with the reason;
/// PostgreSQL needs the flag. A value that does not open (copied to another stack in the
/// database) fails its run with the reason; the server goes on.
#[tokio::test]
async fn the_key_is_checked_at_start_and_a_value_that_does_not_open_fails_its_run() {
    let mut w = World::start();
    let mut ids = Vec::new();
    for (name, command, value) in [("a", "true", "value-a"), ("b", "echo ran", "value-b")] {
        let body = json!({"name": name, "command": command, "secret_env": {"K": value}});
        ids.push(w.api.create("/api/v1/blockstacks", body).await);
    }
    let (a, b) = (ids[0], ids[1]);
    let job = w.job(b).await;
    w.server.stop();

    let serve = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &w.db.url])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success(), "started with {extra:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let other = w.dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
    let err = serve(&["--secret-key-file", other.to_str().unwrap()]);
    assert!(err.contains("is not the key they were sealed with"), "{err}");
    let bad = w.dir.path().join("bad.key");
    std::fs::write(&bad, "not hex\n").unwrap();
    let err = serve(&["--secret-key-file", bad.to_str().unwrap()]);
    assert!(err.contains("64 hex digits"), "{err}");
    if w.db.url.starts_with("sqlite:") {
        let key = w.db.dir().join("cronstack.key");
        let saved = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        let err = serve(&[]);
        assert!(err.contains("restore that key file"), "{err}");
        assert!(!key.exists(), "no new key made over stored values");
        std::fs::write(&key, saved).unwrap();
    } else {
        let err = serve(&[]);
        assert!(err.contains("PostgreSQL needs --secret-key-file"), "{err}");
    }

    // Stack b's value replaced by stack a's: sealed for another stack, it does not open.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&w.db.url).await.unwrap();
    sqlx::query("UPDATE stacks SET secret_env = (SELECT secret_env FROM stacks WHERE id = $1) WHERE id = $2")
        .bind(a)
        .bind(b)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let server = Server::start_on(&w.db, &[]);
    let w = World { api: Api { base: server.base.clone(), ..w.api.clone() }, server, ..w };
    w.run_now(job).await;
    let run = w.ended_run(job).await;
    assert_eq!(run["outcome"], "failed", "{run}");
    let log = w.log(run["id"].as_i64().unwrap()).await;
    assert!(log.contains("secret env value K does not open"), "{log}");
    assert!(!log.contains("ran"), "the command did not run: {log}");
    assert_eq!(w.api.get("/healthz").await.status, 200);
}

/// The CLI: `--secret-env KEY=VALUE`, or `KEY` from the client's environment; `show` lists
/// names; `edit` sets one and keeps the others, `--unset-secret-env` removes one.
#[tokio::test]
async fn the_cli_sets_secret_env_and_shows_names_only() {
    let w = World::start();
    let out = w.dir.path().join("out");
    let cli = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(args)
            .env("CRONSTACK_URL", &w.server.base)
            .env("CRONSTACK_TOKEN", w.api.token.as_deref().unwrap())
            .env("FROM_ENV", "env-secret-1")
            .env("HOME", w.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "cronstack {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let command = format!(r#"echo "$API_KEY $FROM_ENV" > {}; echo "$API_KEY""#, out.display());
    cli(&[
        "stacks",
        "create",
        "s",
        "--command",
        &command,
        "--secret-env",
        "API_KEY=cli-secret-1",
        "--secret-env",
        "FROM_ENV",
    ]);
    let shown = cli(&["stacks", "show", "s"]);
    assert!(shown.contains("API_KEY FROM_ENV"), "{shown}");
    assert!(!shown.contains("cli-secret-1") && !shown.contains("env-secret-1"), "{shown}");
    let json: Value = serde_json::from_str(&cli(&["stacks", "show", "s", "--output", "json"])).unwrap();
    assert_eq!(json["secret_env"], json!(["API_KEY", "FROM_ENV"]));

    let stack = json["id"].as_i64().unwrap();
    let job = w.job(stack).await;
    w.run_now(job).await;
    let run = w.ended_run(job).await;
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "cli-secret-1 env-secret-1\n");
    assert_eq!(w.log(run["id"].as_i64().unwrap()).await, "***\n");

    cli(&["stacks", "edit", "s", "--secret-env", "OTHER=other-secret", "--unset-secret-env", "FROM_ENV"]);
    let json: Value = serde_json::from_str(&cli(&["stacks", "show", "s", "--output", "json"])).unwrap();
    assert_eq!(json["secret_env"], json!(["API_KEY", "OTHER"]));
}
