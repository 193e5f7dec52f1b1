//! The client commands of the `cronstack` binary, run as a person or a script would run them,
//! against a real server: login and its 0600 config file, stacks / schedules / jobs, run with
//! --follow and its exit code, runs and logs, `--output json`, one-line errors, and the
//! offline `next`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A server with one user, and a config directory of its own for the client.
struct World {
    server: Server,
    token: String,
    config: tempfile::TempDir,
    _db: TestDb,
}

fn world() -> World {
    let db = TestDb::new();
    let token = add_user(&db, "dora", Some("pw-dora"));
    let server = Server::start_on(&db, &[]);
    World { server, token, config: tempfile::tempdir().unwrap(), _db: db }
}

impl World {
    /// The client with the server and token from the environment.
    fn cli(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .env("CRONSTACK_URL", &self.server.base)
            .env("CRONSTACK_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    /// The client with nothing but its config directory.
    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_remove("CRONSTACK_URL")
            .env_remove("CRONSTACK_TOKEN")
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .stdin(std::process::Stdio::null());
        c
    }

    /// Runs and expects success; returns stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "cronstack {args:?} failed ({:?}):\n{}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("cronstack {args:?}: not JSON ({e}):\n{out}"))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A failed command: exit code 1 and exactly one line on stderr, starting with "error: ".
#[track_caller]
fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err.trim_end().to_string()
}

#[test]
fn login_stores_url_and_token_readable_by_the_owner_only() {
    let w = world();
    let out = w.cmd().args(["login", &w.server.base, "--token", &w.token]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("as dora"), "{}", text(&out.stdout));
    let path = w.config.path().join("cronstack/config.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config file mode {mode:o}");
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored["url"], w.server.base.as_str());
    assert_eq!(stored["token"], w.token.as_str());

    // The stored login is used with nothing in the environment.
    let out = w.cmd().args(["stacks", "ls"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ID"), "{}", text(&out.stdout));

    // The token can come on stdin (a terminal would be prompted); the URL without a scheme.
    std::fs::remove_file(&path).unwrap();
    let mut child = w
        .cmd()
        .args(["login", &w.server.base.replace("http://", "")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{}", w.token).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    // A wrong token is refused in one line, and nothing is stored.
    std::fs::remove_file(&path).unwrap();
    let out = w.cmd().args(["login", &w.server.base, "--token", "cst_nope"]).output().unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("credentials") && err.contains("401"), "{err}");
    assert!(!path.exists());

    // Without a login or environment, the client says what to do.
    let out = w.cmd().args(["jobs", "ls"]).output().unwrap();
    assert!(one_line_error(&out).contains("cronstack login"));

    let out = w.cmd().args(["logout"]).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn stacks_schedules_and_jobs_from_the_command_line() {
    let w = world();
    // Stacks: create, list, show, edit (by name and by id).
    let out = w.ok(&[
        "stacks",
        "create",
        "backup",
        "--command",
        "echo \"to $TARGET\" \"$@\"",
        "--env",
        "TARGET=/srv",
    ]);
    assert!(out.starts_with("created stack 1 (backup)"), "{out}");
    let stacks = w.json(&["stacks", "ls"]);
    assert_eq!(stacks.as_array().unwrap().len(), 1);
    assert_eq!(stacks[0]["env"]["TARGET"], "/srv");
    let table = w.ok(&["stacks", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  NAME    JOBS  COMMAND"), "{table}");
    assert!(!table.contains('\x1b'), "no colour when stdout is not a terminal: {table:?}");
    w.ok(&["stacks", "edit", "backup", "--env", "MODE=full", "--workdir", "/tmp"]);
    let shown = w.json(&["stacks", "show", "1"]);
    assert_eq!(shown["env"]["MODE"], "full");
    assert_eq!(shown["env"]["TARGET"], "/srv");
    assert_eq!(shown["workdir"], "/tmp");

    // Schedules: create with a cron expression and a zone; listed with the rule in words.
    let s = w.json(&["schedules", "create", "weekday-3am", "--cron", "0 3 * * 1-5", "--tz", "Europe/Paris"]);
    assert_eq!(s["description"], "at 03:00 on Monday through Friday Europe/Paris");
    assert_eq!(s["upcoming"].as_array().unwrap().len(), 5);
    let out = w.ok(&["schedules", "ls"]);
    assert!(out.contains("weekday-3am") && out.contains("Monday through Friday"), "{out}");
    let out = w.cli(&["schedules", "create", "--cron", "61 * * * *"]);
    assert!(one_line_error(&out).contains("config.cron"));

    // Jobs: on an existing schedule (by name), or with a schedule made for it.
    let job = w.json(&[
        "jobs",
        "create",
        "nightly",
        "--stack",
        "backup",
        "--schedule",
        "weekday-3am",
        "--retries",
        "2",
    ]);
    assert_eq!(job["do_run"], true);
    assert_eq!(job["retries"], 2);
    let out = w.ok(&[
        "jobs",
        "create",
        "hourly",
        "--stack",
        "1",
        "--cron",
        "@hourly",
        "--paused",
        "--timeout",
        "60",
    ]);
    assert!(out.contains("created job 2 (hourly), paused"), "{out}");
    let jobs = w.json(&["jobs", "ls"]);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    let table = w.ok(&["jobs", "ls", "--stack", "backup"]);
    assert!(table.contains("nightly") && table.contains("enabled") && table.contains("paused"), "{table}");
    let shown = w.ok(&["jobs", "show", "nightly"]);
    assert!(shown.contains("at 03:00 on Monday through Friday Europe/Paris"), "{shown}");
    assert!(shown.contains("next fires"), "{shown}");

    // Edit, pause, unpause, by name or id.
    let edited = w.json(&["jobs", "edit", "hourly", "--overlap", "allow", "--no-timeout", "--every", "90"]);
    assert_eq!(edited["overlap"], "allow");
    assert_eq!(edited["timeout_s"], Value::Null);
    let out = w.ok(&["jobs", "pause", "1"]);
    assert!(out.contains("is paused"), "{out}");
    assert_eq!(w.json(&["jobs", "show", "nightly"])["do_run"], false);
    w.ok(&["jobs", "unpause", "nightly"]);
    assert_eq!(w.json(&["jobs", "show", "1"])["do_run"], true);

    // Remove: a paused job goes at once; an enabled one at its next slot (Kragle's rule).
    w.ok(&["jobs", "pause", "hourly"]);
    let out = w.ok(&["jobs", "rm", "hourly"]);
    assert!(out.starts_with("deleted job 2"), "{out}");
    let out = w.ok(&["jobs", "rm", "nightly"]);
    assert!(out.contains("deleted at its next slot"), "{out}");

    // Errors from the server: one readable line with the status.
    let out = w.cli(&["jobs", "show", "nosuch"]);
    let err = one_line_error(&out);
    assert!(err.contains("no job with the id or name \"nosuch\"") && err.contains("404"), "{err}");
    let out = w.cli(&["jobs", "create", "again", "--stack", "backup", "--cron", "@daily", "--timeout=-5"]);
    let err = one_line_error(&out);
    assert!(err.contains("timeout_s"), "{err}");
    let out = w.cli(&["stacks", "create", "backup", "--command", "true"]);
    assert!(one_line_error(&out).contains("already exists"));
}

#[test]
fn run_follows_the_log_and_exits_with_the_runs_exit_code() {
    let w = world();
    w.ok(&[
        "stacks",
        "create",
        "work",
        "--command",
        "for a in \"$@\"; do echo \"arg:$a\"; done; sleep 0.3; echo done; exit ${CODE:-0}",
    ]);
    w.ok(&["jobs", "create", "job", "--stack", "work", "--at", "2100-01-01T00:00:00Z"]);

    // --follow: the log on stdout, the closing line on stderr, exit code 0.
    let out = w.cli(&["run", "job", "--follow", "--", "one", "two words"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "arg:one\narg:two words\ndone\n");
    let err = text(&out.stderr);
    assert!(err.contains("run 1 of job") && err.contains("succeeded · exit 0"), "{err}");

    // A failing run's code is the client's.
    w.ok(&["stacks", "edit", "work", "--env", "CODE=7"]);
    let out = w.cli(&["run", "1", "-f"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("failed · exit 7"));

    // With --output json, stdout holds only the finished run; the log goes to stderr.
    let out = w.cli(&["run", "job", "--follow", "--output", "json", "--", "x"]);
    assert_eq!(out.status.code(), Some(7));
    let run: Value = serde_json::from_slice(&out.stdout).expect("the run as JSON");
    assert_eq!(run["outcome"], "failed");
    assert_eq!(run["exit_code"], 7);
    assert_eq!(run["args"], serde_json::json!(["x"]));
    assert!(text(&out.stderr).contains("arg:x"));

    // Without --follow it starts the run and returns.
    let started: Value =
        serde_json::from_str(&w.ok(&["run", "--output", "json", "job", "--", "later"])).unwrap();
    let run_id = started["id"].as_i64().unwrap();
    let out = w.ok(&["logs", &run_id.to_string(), "--follow"]);
    assert_eq!(out, "arg:later\ndone\n");
    assert_eq!(w.ok(&["logs", &run_id.to_string()]), "arg:later\ndone\n");

    // The history: newest first, with outcome, duration, lateness and exit code.
    let runs = w.json(&["runs", "ls", "job"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["id"], run_id);
    // Each run sleeps 0.3 s. started_at is read just after the spawn returned, when the child
    // may already be running, and both ends are whole ms: 299 happens on a busy machine.
    assert!(runs.iter().all(|r| r["duration_ms"].as_i64().unwrap() >= 250), "{runs:#?}");
    let table = w.ok(&["runs", "ls", "job"]);
    let header = table.lines().next().unwrap();
    assert_eq!(header, "RUN  TRIGGER  OUTCOME    SCHEDULED FOR        DURATION  LATENESS  EXIT  ARGS");
    assert!(table.contains("'two words'"), "arguments are shown shell-quoted: {table}");

    let out = w.cli(&["logs", "999"]);
    assert!(one_line_error(&out).contains("run not found"));
}

#[test]
fn next_works_offline() {
    // No server, no login: nothing but the expression.
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("XDG_CONFIG_HOME", dir.path())
            .env_remove("CRONSTACK_URL")
            .output()
            .unwrap()
    };
    let out = run(&["next", "0 3 * * 1-5", "--tz", "Europe/Paris", "-n", "7", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["description"], "at 03:00 on Monday through Friday Europe/Paris");
    let times = v["upcoming"].as_array().unwrap();
    assert_eq!(times.len(), 7);
    for t in times {
        let t = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();
        let paris = t.with_timezone(&chrono_tz::Europe::Paris);
        use chrono::{Datelike, Timelike};
        assert_eq!((paris.hour(), paris.minute()), (3, 0), "{paris}");
        assert!(paris.weekday().number_from_monday() <= 5, "{paris}");
    }

    let out = run(&["next", "*/15 * * * *"]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(table.starts_with("every 15 minutes"), "{table}");
    assert_eq!(table.lines().count(), 7, "a description, a header and 5 times: {table}");

    let out = run(&["next", "0 25 * * *"]);
    let err = one_line_error(&out);
    assert!(err.contains("hour"), "{err}");
}

/// `H` picks its values from a job's uid: `--hash-key` shows what that job gets, the same every
/// time; without one the refusal says what to add. Quartz's day forms need nothing.
#[test]
fn next_shows_what_h_picks_for_a_job() {
    use chrono::{Datelike, Timelike};
    let dir = tempfile::tempdir().unwrap();
    let run =
        |args: &[&str]| Command::new(BIN).args(args).env("XDG_CONFIG_HOME", dir.path()).output().unwrap();
    let json = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let local = |t: &Value| chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap();

    // The key of this uid picks minute 8 and, from 9-17, hour 15 (crates/cron/tests/table.rs).
    let uid = "4be1c3c0a0a34b9bb9e0a6b1c2d3e4f5";
    let args = ["next", "H H(9-17) * * 1-5", "--hash-key", uid, "-n", "6", "-o", "json"];
    let v = json(&args);
    assert_eq!(v["description"], "at 15:08 on Monday through Friday UTC");
    assert_eq!(v["hash_key"], uid);
    let times = v["upcoming"].as_array().unwrap();
    assert_eq!(times.len(), 6);
    for t in times {
        let t = local(t);
        assert_eq!((t.hour(), t.minute()), (15, 8), "{t}");
        assert!(t.weekday().number_from_monday() <= 5, "{t}");
    }
    assert_eq!(json(&args)["upcoming"], v["upcoming"], "the same job gets the same times");
    let other = json(&["next", "H H(9-17) * * 1-5", "--hash-key", "nightly-backup", "-o", "json"]);
    assert_eq!(other["description"], "at 14:00 on Monday through Friday UTC");

    let table = text(&run(&["next", "H/15 * * * *", "--hash-key", uid]).stdout);
    assert!(table.starts_with("every hour at minutes 8, 23, 38 and 53 UTC"), "{table}");

    assert_eq!(
        one_line_error(&run(&["next", "H 3 * * *"])),
        "error: minute field: H needs a hash key (the job's uid) to choose its value: pass --hash-key JOB_UID"
    );
    // Refused whatever the uid when some job's pick never fires.
    assert_eq!(
        one_line_error(&run(&["next", "0 0 H(28-31) 2 *", "--hash-key", uid])),
        "error: this expression never fires: February has no day 31 (for the values H picks for some jobs)"
    );

    let v = json(&["next", "0 9 ? * FRI#3", "--tz", "Europe/Berlin", "-n", "4", "-o", "json"]);
    assert_eq!(v["description"], "at 09:00 on the third Friday of the month Europe/Berlin");
    for t in v["upcoming"].as_array().unwrap() {
        let t = local(t).with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!((t.weekday(), (t.day() - 1) / 7, t.hour()), (chrono::Weekday::Fri, 2, 9), "{t}");
    }
    assert_eq!(
        one_line_error(&run(&["next", "0 0 30W 2 *"])),
        "error: this expression never fires: February has no day 30"
    );
}

#[test]
fn an_unreachable_server_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(BIN)
        .args(["jobs", "ls"])
        .env("XDG_CONFIG_HOME", dir.path())
        .env("CRONSTACK_URL", format!("http://127.0.0.1:{port}"))
        .env("CRONSTACK_TOKEN", "cst_x")
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("cannot reach the server") && err.contains(&port.to_string()), "{err}");
}

#[test]
fn next_refuses_what_never_fires_and_states_the_dst_rule() {
    let dir = tempfile::tempdir().unwrap();
    let run =
        |args: &[&str]| Command::new(BIN).args(args).env("XDG_CONFIG_HOME", dir.path()).output().unwrap();
    for (expr, reason) in [
        ("0 0 31 2 *", "February has no day 31"),
        ("0 0 30 2 *", "February has no day 30"),
        ("0 0 31 4,6,9,11 *", "April, June, September and November have no day 31"),
    ] {
        let err = one_line_error(&run(&["next", expr]));
        assert_eq!(err, format!("error: this expression never fires: {reason}"));
    }
    let help = text(&run(&["next", "--help"]).stdout);
    for words in
        ["starts with `*`", "keeps its real-time cadence", "fires four times", "fires twice", "1-23/2"]
    {
        assert!(help.contains(words), "next --help lacks {words:?}:\n{help}");
    }
    let help = text(&run(&["run", "--help"]).stdout);
    assert!(
        help.contains("appended to its last command") && help.contains("anything else refuses"),
        "{help}"
    );
}

/// `cronstack next … | head -1`: the reader goes away after one line; the writer ends
/// quietly with status 0 (Rust's `println!` would panic on the closed pipe).
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // More rows than a pipe buffer holds, so writing hits the closed pipe for sure.
    let mut child = Command::new(BIN)
        .args(["next", "* * * * * *", "-n", "5000"])
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.trim_end(), "every second UTC");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");

    // The same through a shell pipeline, its status that of the whole pipeline.
    let out = Command::new("bash")
        .args(["-c", &format!("set -o pipefail; '{BIN}' next '* * * * * *' -n 5000 | head -1")])
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        (Some(0), "every second UTC\n", "")
    );
}

#[test]
fn run_follows_retries_to_the_last_attempt_and_exits_like_timeout_and_a_shell() {
    let w = world();
    // Fails on its first attempt, succeeds on the second.
    let marker = w.config.path().join("tried");
    let command = format!(
        "if [ -e '{m}' ]; then echo second; exit 0; fi; touch '{m}'; echo first; exit 3",
        m = marker.display()
    );
    w.ok(&["stacks", "create", "flaky", "--command", &command]);
    w.ok(&[
        "jobs",
        "create",
        "flaky",
        "--stack",
        "flaky",
        "--at",
        "2100-01-01T00:00:00Z",
        "--retries",
        "2",
        "--retry-backoff",
        "1",
    ]);
    let out = w.cli(&["run", "flaky", "--follow"]);
    assert_eq!(out.status.code(), Some(0), "the final attempt's status: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first\nsecond\n");
    assert!(text(&out.stderr).contains("attempt 2"), "{}", text(&out.stderr));

    // A timed-out run exits 124 whatever the process returned (like timeout(1)).
    w.ok(&["stacks", "create", "slow", "--command", "trap 'exit 0' TERM; sleep 30 & wait"]);
    w.ok(&["jobs", "create", "slow", "--stack", "slow", "--at", "2100-01-01T00:00:00Z", "--timeout", "1"]);
    let out = w.cli(&["run", "slow", "--follow"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));

    // A run killed through `runs kill` exits 143 (SIGTERM) for the follower.
    w.ok(&["stacks", "create", "long", "--command", "sleep 30"]);
    w.ok(&["jobs", "create", "long", "--stack", "long", "--at", "2100-01-01T00:00:00Z"]);
    let follower = w
        .cmd()
        .args(["run", "long", "--follow"])
        .env("CRONSTACK_URL", &w.server.base)
        .env("CRONSTACK_TOKEN", &w.token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut run_id = None;
    for _ in 0..100 {
        let runs = w.json(&["runs", "ls", "long"]);
        if let Some(r) = runs.as_array().unwrap().iter().find(|r| r["outcome"] == "running") {
            run_id = r["id"].as_i64();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let run_id = run_id.expect("the long run started").to_string();
    let killed = w.ok(&["runs", "kill", &run_id]);
    assert!(killed.contains("killed"), "{killed}");
    let out = follower.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    // Killing it again: it has ended.
    let again = w.cli(&["runs", "kill", &run_id]);
    assert!(
        !again.status.success() && one_line_error(&again).contains("already ended"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn jobs_backfill_runs_the_missing_slots() {
    let w = world();
    w.ok(&["stacks", "create", "b", "--command", "true"]);
    w.ok(&["jobs", "create", "hourly", "--stack", "b", "--cron", "0 * * * *", "--paused"]);
    let out = w.ok(&[
        "jobs",
        "backfill",
        "hourly",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T02:00:00Z",
        "--queue",
    ]);
    assert!(out.starts_with("backfilling 3 slot(s)"), "{out}");
    assert!(out.contains("2026-01-01T02:00:00Z"), "{out}");
    let again = w.json(&[
        "jobs",
        "backfill",
        "hourly",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T02:00:00Z",
    ]);
    assert_eq!(again["count"], 0, "each slot at most once: {again}");
}

#[test]
fn a_taken_username_or_email_is_refused_and_nothing_is_added() {
    // Mapped by constraint name (store::Unique): the username's and the email's, on both backends.
    let db = TestDb::new();
    add_user(&db, "erin", None);
    for args in [["erin", "--email", "other@example.com"], ["frank", "--email", "erin@example.com"]] {
        let out = Command::new(BIN)
            .args(["user", "add"])
            .args(args)
            .args(["--database-url", &db.url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("a user with that username or email already exists"), "{args:?}: {err}");
    }
    // The refused "frank" was not added: the name is free.
    add_user(&db, "frank", None);
}
