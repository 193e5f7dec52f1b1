//! What a job's process gets from the server: a clean environment (never the server's own),
//! and its arguments placed by one rule, decided by a shell parser.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const TAKES_NO_ARGS: &str = r#"this command takes no arguments: use "$@" where they belong"#;

/// One user, one stack (with an env variable) on a running server.
struct World {
    api: Api,
    stack_id: i64,
    stack_uid: String,
    schedule: i64,
}

impl World {
    async fn new(server: &Server, token: &str) -> World {
        let api = Api::new(server, Some(token));
        let stack_id = api
            .create(
                "/api/v1/blockstacks",
                json!({"name": "s", "command": "true", "env": {"FROM_STACK": "1"}}),
            )
            .await;
        let stack_uid = api.get(&format!("/api/v1/blockstacks/byid/{stack_id}")).await.json()["uid"]
            .as_str()
            .unwrap()
            .to_string();
        let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
        World { api, stack_id, stack_uid, schedule }
    }

    /// A paused job running `command`; its id and uid.
    async fn job(&self, name: &str, command: &str) -> (i64, String) {
        let body = json!({"stack_id": self.stack_id, "schedule_id": self.schedule, "name": name,
                          "enabled": false, "command": command});
        let id = self.api.create("/api/v1/jobs", body).await;
        let uid =
            self.api.get(&format!("/api/v1/jobs/byid/{id}")).await.json()["uid"].as_str().unwrap().into();
        (id, uid)
    }

    /// Runs the job now (v1) and waits for the run's end: the run and its log.
    async fn run(&self, job: i64, args: &[&str]) -> (Value, String) {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({ "args": args })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json()["id"].as_i64().unwrap();
        let run = eventually(Duration::from_secs(20), || async {
            let run = self.api.get(&format!("/api/v1/runs/{id}")).await.json();
            (run["outcome"] != "queued" && run["outcome"] != "running").then_some(run)
        })
        .await
        .expect("the run ended");
        let log = self.api.get(&format!("/api/v1/runs/{id}/log")).await.text;
        (run, log)
    }

    async fn run_count(&self, job: i64) -> usize {
        let runs = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await.json();
        runs["runs"].as_array().expect("a runs list").len()
    }

    async fn action_count(&self) -> usize {
        let actions = self.api.get(&format!("/api/3/stacks/{}/actions.json", self.stack_uid)).await.json();
        actions["response"].as_array().expect("an actions list").len()
    }
}

/// The names a job's `env` printed, without the shell's own (`PWD`, `SHLVL`, `_`) and the
/// locale and time zone (passed on when the server has them).
fn names(env_output: &str) -> Vec<&str> {
    let mut names: Vec<&str> = env_output.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
    names.retain(|n| !["PWD", "SHLVL", "_", "LANG", "LC_ALL", "TZ"].contains(n));
    names.sort_unstable();
    names
}

#[tokio::test]
async fn jobs_do_not_see_the_servers_environment() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    // PostgreSQL here trusts local connections: a password in the URL is accepted, and is
    // exactly what must not leak. (A SQLite URL has none; its variable must not leak either.)
    let url = db.url.replacen("postgres://postgres@", "postgres://postgres:pw-hunter2@", 1);
    let db_with_password = TestDb::alias(&db, &url);
    let host_env = [("CRONSTACK_DATABASE_URL", url.as_str()), ("SECRET_OF_THE_HOST", "x")];
    let mut server = Server::start_with_env(&db_with_password, &[], &host_env);
    let w = World::new(&server, &token).await;
    let (job, _) = w.job("env", "env").await;

    let (run, log) = w.run(job, &[]).await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert!(!log.contains("CRONSTACK_DATABASE_URL") && !log.contains("hunter2"), "{log}");
    assert!(!log.contains("SECRET_OF_THE_HOST"), "{log}");
    let want = [
        "CRONSTACK_ATTEMPT",
        "CRONSTACK_JOB_ID",
        "CRONSTACK_RUN_ID",
        "CRONSTACK_SCHEDULED_FOR",
        "FROM_STACK",
        "HOME",
        "LOGNAME",
        "PATH",
        "SHELL",
        "USER",
    ];
    assert_eq!(names(&log), want, "{log}");
    assert!(log.contains("\nSHELL=/bin/sh\n") || log.starts_with("SHELL=/bin/sh\n"), "{log}");
    let path = log.lines().find_map(|l| l.strip_prefix("PATH=")).unwrap();
    assert_eq!(path, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    server.stop();

    // Passed on by name, on purpose: `--pass-env` or CRONSTACK_PASS_ENV=A,B (an empty name is none).
    let server_path = std::env::var("PATH").unwrap();
    let pass = [("CRONSTACK_PASS_ENV", "SECRET_OF_THE_HOST,,PATH"), host_env[0], host_env[1]];
    let server = Server::start_with_env(&db_with_password, &[], &pass);
    let w = World { api: Api::new(&server, Some(&token)), ..w };
    let (_, log) = w.run(job, &[]).await;
    assert!(log.lines().any(|l| l == "SECRET_OF_THE_HOST=x"), "{log}");
    assert!(log.lines().any(|l| l == format!("PATH={server_path}")), "{log}");
    assert!(!log.contains("CRONSTACK_DATABASE_URL"), "{log}");
}

#[tokio::test]
async fn a_bad_pass_env_name_stops_the_server_at_start() {
    let db = TestDb::new();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db.url, "--pass-env", "A=B"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--pass-env") && err.contains("A=B"), "{err}");
}

/// The argument rule, row by row, through the API (v1 `args`, v3 `job_args`), with `A "B C"`.
#[tokio::test]
async fn run_now_arguments_follow_one_rule() {
    let db = TestDb::new();
    let token = add_user(&db, "alice", None);
    let server = Server::start_on(&db, &[]);
    let w = World::new(&server, &token).await;
    let args = ["A", "B C"];

    // Uses positional parameters anywhere: `$1…` only. One simple command or pipeline:
    // appended as words to its last command.
    let runs = [
        (r#"echo backing up "$@""#, "backing up A B C\n"),
        (r#"if [ $# -eq 2 ]; then printf '[%s]' "$@"; fi"#, "[A][B C]"),
        (r#"for a in "$@"; do printf '<%s>' "$a"; done"#, "<A><B C>"),
        (r#"{ printf '%s,' "$1" "${2}"; }"#, "A,B C,"),
        ("case $1 in A) echo one;; esac", "one\n"),
        (r#"printf '%s' "$2" # the second"#, "B C"),
        ("echo first\nprintf '[%s]' \"$*\"\n", "first\n[A B C]"),
        ("cat <<EOF\n$1 and $2\nEOF\n", "A and B C\n"),
        ("printf '[%s]'", "[A][B C]"),
        ("echo x | xargs printf '[%s]'", "[A][B C][x]"),
        ("xargs printf '[%s]' <<EOF\nx\nEOF\n", "[A][B C][x]"),
    ];
    for (i, (command, want)) in runs.into_iter().enumerate() {
        let (job, _) = w.job(&format!("takes-{i}"), command).await;
        let (run, log) = w.run(job, &args).await;
        assert_eq!((run["outcome"].as_str(), log.as_str()), (Some("succeeded"), want), "{command:?}: {run}");
        assert_eq!(run["args"], json!(args));
    }

    // Anything else without positional parameters: refused in both dialects, nothing recorded.
    // Without arguments it runs as written, and its exit status is the script's.
    let refused = [
        ("if false; then :; else exit 3; fi", 3),
        ("for i in 1; do exit 4; done", 4),
        ("{ exit 5; }", 5),
        ("case x in x) exit 6;; esac", 6),
        ("echo hi # and a comment", 0),
        ("echo one\nexit 7\n", 7),
        ("cat <<EOF\nx\nEOF\nexit 8", 8),
    ];
    for (i, (command, status)) in refused.into_iter().enumerate() {
        let (job, uid) = w.job(&format!("refuses-{i}"), command).await;
        let r = w.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({ "args": args })).await;
        assert_eq!((r.status, &r.json()["code"]), (400, &json!(4)), "{command:?}: {}", r.text);
        assert!(r.json()["msg"].as_str().unwrap().contains(TAKES_NO_ARGS), "{}", r.text);
        let path = format!("/api/3/stacks/{}/jobs/{uid}/run_now.json", w.stack_uid);
        let r = w.api.post(&path, json!({"job_args": "A 'B C'"})).await;
        assert_eq!((r.status, &r.json()["error"]), (400, &json!("bad_request")), "{command:?}: {}", r.text);
        assert!(r.json()["error_description"].as_str().unwrap().contains(TAKES_NO_ARGS), "{}", r.text);
        assert_eq!(w.run_count(job).await, 0, "{command:?}: a refused run was recorded");

        let (run, _) = w.run(job, &[]).await;
        assert_eq!(run["exit_code"], status, "{command:?}: {run}");
        // An empty argument list is no arguments.
        let r = w.api.post(&path, json!({"job_args": ""})).await;
        assert_eq!(r.status, 200, "{command:?}: {}", r.text);
    }
    assert_eq!(w.action_count().await, refused.len(), "only the runs without arguments are actions");
}
