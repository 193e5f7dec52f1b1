//! `cronstack import-crontab`, run on real-looking crontabs (tests/fixtures/crontabs: a user
//! crontab with environment, CRON_TZ, MAILTO and `%` stdin; Debian's /etc/crontab and an
//! /etc/cron.d fragment with their user column; macros with @reboot and TZ; a file with bad
//! lines) against a real server: what it creates, as the API shows it, and what an imported
//! job prints when it runs.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crontabs");

struct World {
    server: Server,
    token: String,
    _db: TestDb,
}

impl World {
    fn new() -> World {
        let db = TestDb::new();
        let token = add_user(&db, "cora", None);
        let server = Server::start_on(&db, &[]);
        World { server, token, _db: db }
    }

    fn import(&self, args: &[&str]) -> Output {
        let home = tempfile::tempdir().unwrap();
        Command::new(BIN)
            .arg("import-crontab")
            .args(args)
            .env("CRONSTACK_URL", &self.server.base)
            .env("CRONSTACK_TOKEN", &self.token)
            .env("XDG_CONFIG_HOME", home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn api(&self) -> Api {
        Api::new(&self.server, Some(&self.token))
    }
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The job named `name` with its stack and schedule, as the v1 API shows them.
async fn imported(api: &Api, name: &str) -> (Value, Value, Value) {
    let job = api.get(&format!("/api/v1/jobs/byname/{name}")).await;
    assert_eq!(job.status, 200, "job {name}: {}", job.text);
    let job = job.json();
    let stack = api.get(&format!("/api/v1/blockstacks/byid/{}", job["stack"])).await.json();
    let schedule = api.get(&format!("/api/v1/schedules/byid/{}", job["schedule"])).await.json();
    (job, stack, schedule)
}

async fn job_count(api: &Api) -> i64 {
    api.get("/api/v1/jobs").await.json()["count"].as_i64().unwrap()
}

#[tokio::test]
async fn a_user_crontab_with_environment_zone_and_stdin() {
    let w = World::new();
    let api = w.api();
    let out = w.import(&[&fixture("user.crontab")]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("note: line 4: MAILTO ignored"), "{stderr}");
    assert_eq!(job_count(&api).await, 3);

    let (job, stack, schedule) = imported(&api, "cron-9-backup-sh").await;
    assert_eq!(job["do_run"], true, "{job}");
    assert_eq!(schedule["config"]["cron"], "30 2 * * 1-5", "{schedule}");
    assert_eq!(schedule["config"]["timezone"], "Europe/Paris", "{schedule}");
    assert_eq!(stack["command"], "/usr/local/bin/backup.sh --full \"$BACKUP_DIR\"", "{stack}");
    assert_eq!(stack["env"]["BACKUP_DIR"], "/var/backups/app", "quotes removed: {stack}");
    assert_eq!(stack["env"]["SHELL"], "/bin/sh", "{stack}");
    assert!(stack["env"].get("MAILTO").is_none() && stack["env"].get("CRON_TZ").is_none(), "{stack}");

    // `%`: the rest of the line is the command's stdin, each further `%` a newline.
    let (job, _, schedule) = imported(&api, "cron-11-cat").await;
    assert_eq!(schedule["config"]["cron"], "0 9 1 * *");
    let id = job["id"].as_i64().unwrap();
    let run = api.post(&format!("/api/v1/jobs/byid/{id}/run"), serde_json::json!({})).await.json();
    let run_id = run["id"].as_i64().or_else(|| run["run_id"].as_i64()).expect("run id");
    let ended = eventually(Duration::from_secs(30), || async {
        let r = api.get(&format!("/api/v1/runs/{run_id}")).await.json();
        (r["outcome"] != "running" && r["outcome"] != "queued").then_some(r)
    })
    .await
    .expect("the imported job ran");
    assert_eq!(ended["outcome"], "succeeded", "{ended}");
    assert_eq!(api.run_log(run_id).await, "first line\nsecond % line\n");
}

#[tokio::test]
async fn system_crontabs_macros_and_reboot() {
    let w = World::new();
    let api = w.api();
    let out = w.import(&["--system", &fixture("etc-crontab")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("runs as the service's user (the crontab says root"),
        "{}",
        text(&out.stderr)
    );
    let (_, stack, schedule) = imported(&api, "cron-21-test").await;
    assert_eq!(schedule["config"]["cron"], "47 6 * * 7");
    assert!(schedule["config"].get("timezone").is_none_or(|t| t == "UTC" || t.is_null()), "{schedule}");
    assert_eq!(
        stack["command"],
        "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }"
    );
    assert_eq!(job_count(&api).await, 4);

    let out = w.import(&["--system", "--prefix", "php", &fixture("cron.d-php")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, stack, schedule) = imported(&api, "php-14-job").await;
    assert_eq!(schedule["config"]["cron"], "09,39 * * * *");
    assert!(
        stack["command"].as_str().unwrap().starts_with("[ -x /usr/lib/php/sessionclean ] && if"),
        "{stack}"
    );

    let out = w.import(&["--prefix", "m", &fixture("macros.crontab")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("line 2: @reboot is not supported"), "{}", text(&out.stderr));
    let (_, stack, schedule) = imported(&api, "m-6-poll").await;
    assert_eq!(schedule["config"]["cron"], "@every 90s");
    assert_eq!(schedule["config"]["timezone"], "America/New_York");
    assert_eq!(stack["env"]["TZ"], "America/New_York", "TZ is also the jobs' environment, as in cron");
    let (_, _, schedule) = imported(&api, "m-4-vacuum").await;
    assert_eq!(schedule["config"]["cron"], "@daily");
    assert_eq!(job_count(&api).await, 4 + 1 + 4, "@reboot made no job");
}

#[tokio::test]
async fn bad_lines_taken_names_and_dry_runs_create_nothing() {
    let w = World::new();
    let api = w.api();
    let out = w.import(&[&fixture("bad.crontab")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for needle in ["line 2:", "line 3:", "line 4:", "Mars/Olympus_Mons"] {
        assert!(err.contains(needle), "{needle} in {err}");
    }
    assert!(!err.contains("line 1:"), "{err}");
    assert_eq!(job_count(&api).await, 0, "nothing imported");
    let schedules = api.get("/api/v1/schedules").await.json();
    assert_eq!(schedules["count"], 0, "no orphan schedule: {schedules}");

    let out = w.import(&["--dry-run", &fixture("user.crontab")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("+ job cron-9-backup-sh: 30 2 * * 1-5 Europe/Paris (line 9)"), "{plan}");
    assert_eq!(plan.lines().filter(|l| l.starts_with("+ job ")).count(), 3, "{plan}");
    assert_eq!(job_count(&api).await, 0, "a dry run creates nothing");

    assert!(w.import(&[&fixture("user.crontab")]).status.success());
    let again = w.import(&[&fixture("user.crontab")]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("exists (give another --prefix)"), "{}", text(&again.stderr));
    assert_eq!(job_count(&api).await, 3, "a second import adds nothing");

    // From stdin, as `crontab -l | cronstack import-crontab -` does.
    let mut child = Command::new(BIN)
        .args(["import-crontab", "-", "--prefix", "piped", "-o", "json"])
        .env("CRONSTACK_URL", &w.server.base)
        .env("CRONSTACK_TOKEN", &w.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"5 4 * * sun echo hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jobs"][0]["name"], "piped-1-echo", "{report}");
    assert!(report["jobs"][0]["job_id"].as_i64().is_some(), "{report}");
}
