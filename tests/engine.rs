//! Black-box engine tests: they start the real server, really fire jobs, and look at the runs,
//! logs, files and processes the jobs leave behind (issue 3, "Must be shown").
//!
//! Timing: every wait is an `eventually` with a generous timeout; the only timing assertions are
//! lower bounds (backoff, concurrency) or the issue's loose `lateness_ms < 1000`.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Applied unless a test gives the flag itself: a stopped server must not wait 10 s + 5 s
/// for the long-running jobs some tests leave behind.
const DEFAULT_FLAGS: [(&str, &str); 2] = [("--shutdown-grace-s", "1"), ("--kill-grace-s", "1")];

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Milliseconds since the epoch of an RFC 3339 string field.
fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"))
        .timestamp_millis()
}

fn opt_ms(v: &Value) -> Option<i64> {
    (!v.is_null()).then(|| ms(v))
}

fn outcome(run: &Value) -> &str {
    run["outcome"].as_str().unwrap()
}

fn is_final(run: &Value) -> bool {
    !matches!(outcome(run), "queued" | "running")
}

/// Scheduled-for instants of the given runs, sorted.
fn slots(runs: &[Value]) -> Vec<i64> {
    let mut v: Vec<i64> = runs.iter().map(|r| ms(&r["scheduled_for"])).collect();
    v.sort();
    v
}

fn assert_no_duplicate_slots(runs: &[Value], what: &str) {
    let mut seen = HashSet::new();
    for r in runs.iter().filter(|r| r["trigger"] == "schedule") {
        assert!(
            seen.insert(ms(&r["scheduled_for"])),
            "{what}: scheduled_for {} fired twice: {runs:#?}",
            r["scheduled_for"]
        );
    }
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.len() < 3 || fields[2].parse::<i32>().ok() != Some(pgid) || fields[0] == "Z" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(format!("{pid} [{}] {cmdline}", fields[0]));
    }
    found
}

/// Reads a process group id a job wrote (`echo $$ > FILE`); None until it is complete.
fn read_pgid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.ends_with('\n') {
        return None;
    }
    text.trim().parse().ok().filter(|&p: &i32| p > 1)
}

/// Kills the process group named in a pgid file when dropped: nothing a test starts (or a
/// crashed server leaves) outlives the test, even when it fails.
struct GroupGuard(PathBuf);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = read_pgid(&self.0) {
            kill_job_group(pgid);
        }
    }
}

/// One test's world: its own server, database, user and temp dir.
struct Env {
    // Field order is drop order: the server stops before its database goes away.
    server: Server,
    api: Api,
    token: String,
    db: TestDb,
    dir: tempfile::TempDir,
    names: AtomicUsize,
}

fn with_defaults(flags: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    for (flag, value) in DEFAULT_FLAGS {
        if !flags.contains(&flag) {
            all.push(flag.to_string());
            all.push(value.to_string());
        }
    }
    all
}

impl Env {
    fn start(flags: &[&str]) -> Env {
        let db = TestDb::new();
        let token = add_user(&db, "tester", None);
        let flags = with_defaults(flags);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = Server::start_on(&db, &flags);
        let api = Api::new(&server, Some(&token));
        Env {
            server,
            api,
            token,
            db,
            dir: tempfile::tempdir().expect("temp dir"),
            names: AtomicUsize::new(0),
        }
    }

    /// Starts a new server on the same database (the old one must be stopped or killed).
    fn restart(&mut self, flags: &[&str]) {
        let flags = with_defaults(flags);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.server = Server::start_on(&self.db, &flags);
        self.api = Api::new(&self.server, Some(&self.token));
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tmp(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn name(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    /// A stack whose env has `T` = this test's temp dir; `extra` fields override.
    async fn stack(&self, extra: Value) -> i64 {
        let mut body = json!({
            "name": self.name("stack"),
            "command": "true",
            "env": {"T": self.tmp()},
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.api.create("/api/v1/blockstacks", body).await
    }

    async fn schedule(&self, config: Value, once: bool) -> i64 {
        self.api
            .create("/api/v1/schedules", json!({"name": self.name("sched"), "config": config, "once": once}))
            .await
    }

    /// An enabled job; `extra` fields (command, overlap, …) override.
    async fn job(&self, stack: i64, schedule: i64, extra: Value) -> i64 {
        let mut body = json!({
            "name": self.name("job"),
            "stack_id": stack,
            "schedule_id": schedule,
            "enabled": true,
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.api.create("/api/v1/jobs", body).await
    }

    /// A job that only runs when asked (disabled, yearly schedule) with the given command.
    async fn manual_job(&self, command: &str, extra: Value) -> i64 {
        let stack = self.stack(json!({})).await;
        let sched = self.schedule(json!({"cron": "0 0 1 1 *", "timezone": "UTC"}), false).await;
        let mut extra = extra;
        extra["command"] = json!(command);
        extra["enabled"] = json!(false);
        self.job(stack, sched, extra).await
    }

    async fn get_job(&self, job: i64) -> Value {
        let r = self.api.get(&format!("/api/v1/jobs/byid/{job}")).await;
        assert_eq!(r.status, 200, "GET job {job}: {}", r.text);
        r.json()
    }

    /// Every run of a job (all pages).
    async fn runs(&self, job: i64) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let r = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs?page={page}")).await;
            assert_eq!(r.status, 200, "runs of job {job}: {}", r.text);
            let body = r.json();
            let items = body["runs"].as_array().unwrap().clone();
            let count = body["count"].as_u64().unwrap() as usize;
            let empty = items.is_empty();
            all.extend(items);
            if empty || all.len() >= count {
                break;
            }
        }
        all
    }

    async fn run(&self, id: i64) -> Value {
        let r = self.api.get(&format!("/api/v1/runs/{id}")).await;
        assert_eq!(r.status, 200, "GET run {id}: {}", r.text);
        r.json()
    }

    async fn log(&self, id: i64) -> String {
        let r = self.api.get(&format!("/api/v1/runs/{id}/log")).await;
        assert_eq!(r.status, 200, "GET run {id} log: {}", r.text);
        r.text
    }

    async fn run_now(&self, job: i64, body: Value) -> i64 {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), body).await;
        assert_eq!(r.status, 200, "run now of job {job}: {}", r.text);
        r.json()["id"].as_i64().unwrap()
    }

    async fn wait_final(&self, id: i64, timeout: Duration) -> Value {
        match eventually(timeout, || async move {
            let run = self.run(id).await;
            is_final(&run).then_some(run)
        })
        .await
        {
            Some(run) => run,
            None => panic!(
                "run {id} did not end in {timeout:?}: {}\nserver log:\n{}",
                self.run(id).await,
                self.server.log()
            ),
        }
    }

    async fn wait_outcome(&self, id: i64, want: &str, timeout: Duration) -> Value {
        match eventually(timeout, || async move {
            let run = self.run(id).await;
            (run["outcome"] == want).then_some(run)
        })
        .await
        {
            Some(run) => run,
            None => panic!(
                "run {id} never became {want} in {timeout:?}: {}\nserver log:\n{}",
                self.run(id).await,
                self.server.log()
            ),
        }
    }

    /// Polls a job's runs until `done` holds; returns them.
    async fn wait_runs(
        &self,
        job: i64,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let done = &done;
        match eventually(timeout, || async move {
            let runs = self.runs(job).await;
            done(&runs).then_some(runs)
        })
        .await
        {
            Some(runs) => runs,
            None => panic!(
                "job {job}: {what} not seen in {timeout:?}; runs: {:#?}\nserver log:\n{}",
                self.runs(job).await,
                self.server.log()
            ),
        }
    }
}

fn started(runs: &[Value]) -> Vec<Value> {
    runs.iter().filter(|r| !r["started_at"].is_null()).cloned().collect()
}

/// Whether some three of the (sorted) slots are consecutive seconds.
fn has_three_consecutive_seconds(sorted: &[i64]) -> bool {
    sorted.windows(3).any(|w| w[1] - w[0] == 1000 && w[2] - w[1] == 1000)
}

// ---------------------------------------------------------------------------------------------
// Schedules really fire
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_second_cron_fires_on_whole_consecutive_seconds() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "*/1 * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"command": "true"})).await;
    let created = now_ms();

    let runs = env
        .wait_runs(job, secs(15), "3 consecutive started runs", |runs| {
            has_three_consecutive_seconds(&slots(&started(runs)))
        })
        .await;

    assert_no_duplicate_slots(&runs, "every-second job");
    for r in &runs {
        assert_eq!(r["trigger"], "schedule", "{r}");
        assert_eq!(r["attempt"], 1, "{r}");
        let sf = ms(&r["scheduled_for"]);
        assert_eq!(sf % 1000, 0, "scheduled_for on a whole second: {r}");
        assert!(sf > created - 2000, "no slot from before the job existed: {r}");
    }
    let sorted = slots(&runs);
    for w in sorted.windows(2) {
        assert!(w[1] > w[0] && (w[1] - w[0]) % 1000 == 0, "slots are distinct whole seconds: {sorted:?}");
    }
    // The first slot is the next whole second after creation, so three fit in ~4 s.
    assert!(
        sorted[2] <= created + 4000,
        "the first 3 slots lie within ~4 s of creation: created {created}, slots {sorted:?}"
    );
    for r in started(&runs) {
        let late = r["lateness_ms"].as_i64().unwrap();
        assert_eq!(late, ms(&r["started_at"]) - ms(&r["scheduled_for"]), "{r}");
        assert!(late < 1000, "lateness {late} ms: {r}");
    }
}

/// The release clock (the thread that starts each group of runs at its instant) may run at
/// real-time priority; a job never does, nor may it take that priority for itself.
#[tokio::test]
async fn scheduled_jobs_run_at_ordinary_priority_whatever_the_release_clock_has() {
    // The limit systemd's `LimitRTPRIO=1` gives the server (raising it needs root; elsewhere it
    // stays as it is): the clock may use it, the jobs must not get it.
    let one = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
    // SAFETY: sets this test process's own limit, which the server started below inherits.
    unsafe { libc::setrlimit(libc::RLIMIT_RTPRIO, &one) };
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "* * * * * *", "timezone": "UTC"}), false).await;
    // Field 41 of /proc/<pid>/stat is the scheduling policy (0: SCHED_OTHER).
    let command =
        "awk '{print \"policy \" $41}' /proc/self/stat; grep 'Max realtime priority' /proc/self/limits";
    let job = env.job(stack, sched, json!({ "command": command })).await;
    let runs = env
        .wait_runs(job, secs(15), "two ended runs", |runs| {
            runs.iter().filter(|r| r["outcome"] == "succeeded").count() >= 2
        })
        .await;
    for r in runs.iter().filter(|r| r["outcome"] == "succeeded") {
        let log = env.log(r["id"].as_i64().unwrap()).await;
        assert!(log.contains("policy 0\n"), "{log}");
        let limit: Vec<&str> =
            log.lines().find(|l| l.starts_with("Max realtime")).unwrap().split_whitespace().collect();
        assert_eq!(limit[3..5], ["0", "0"], "{log}");
    }
}

#[tokio::test]
async fn period_job_fires_on_epoch_aligned_multiples() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"period": 2}), false).await;
    let job = env.job(stack, sched, json!({"command": "true"})).await;

    let next = ms(&env.get_job(job).await["next_run"]);
    assert_eq!(next % 2000, 0, "next_run on a multiple of 2 s since the epoch");

    let runs = env.wait_runs(job, secs(15), "2 started runs", |runs| started(runs).len() >= 2).await;
    assert_no_duplicate_slots(&runs, "period job");
    let sorted = slots(&runs);
    for sf in &sorted {
        assert_eq!(sf % 2000, 0, "slot {sf} is a multiple of the period: {sorted:?}");
    }
    for w in sorted.windows(2) {
        assert!(w[1] > w[0] && (w[1] - w[0]) % 2000 == 0, "slots {sorted:?}");
    }
    assert!(sorted.contains(&next), "the announced next_run fired: {next} in {sorted:?}");
    for r in started(&runs) {
        assert!(r["lateness_ms"].as_i64().unwrap() < 1000, "{r}");
    }
}

/// On SQLite the API reads through the store's read cache: what the engine writes (each fire
/// moves next_run) must show in the next read of the job and of the job list, even when both
/// were read, and so cached, before.
#[tokio::test]
async fn api_reads_follow_what_the_engine_writes() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "*/1 * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"command": "true"})).await;
    let listed_next = |list: Value| {
        let jobs = list["jobs"].as_array().unwrap().clone();
        let mine = jobs.iter().find(|j| j["id"] == job).unwrap_or_else(|| panic!("job {job} listed: {list}"));
        ms(&mine["next_run"])
    };
    let first = ms(&env.get_job(job).await["next_run"]);
    // Read just after: equal, or later when a slot fired in between.
    let listed = listed_next(env.api.get("/api/v1/jobs").await.json());
    assert!(listed >= first, "the list's next_run {listed} is not older than the job's {first}");

    let runs = env.wait_runs(job, secs(15), "3 started runs", |runs| started(runs).len() >= 3).await;
    let latest = *slots(&runs).last().unwrap();
    let next = ms(&env.get_job(job).await["next_run"]);
    assert!(
        next > latest && next > first,
        "next_run {next} is after the latest slot {latest} (first {first})"
    );
    let listed = listed_next(env.api.get("/api/v1/jobs").await.json());
    assert!(listed >= next, "the list's next_run {listed} is not older than the job's {next}");

    // A change through the API shows at once, in both reads.
    let r = env.api.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(env.get_job(job).await["next_run"], Value::Null);
    let list = env.api.get("/api/v1/jobs").await.json();
    let mine = list["jobs"].as_array().unwrap().iter().find(|j| j["id"] == job).cloned().unwrap();
    assert_eq!((mine["next_run"].clone(), mine["do_run"].clone()), (Value::Null, json!(false)), "{mine}");
}

#[tokio::test]
async fn once_job_fires_once_then_disables_itself() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let at_s = now_ms() / 1000 + 2;
    let sched = env.schedule(json!({"timestamp": at_s}), true).await;
    let job = env.job(stack, sched, json!({"command": "echo once"})).await;
    let before = env.get_job(job).await;
    assert_eq!(before["do_run"], true, "{before}");
    assert_eq!(ms(&before["next_run"]), at_s * 1000, "{before}");

    let runs = env.wait_runs(job, secs(15), "one finished run", |runs| runs.iter().any(is_final)).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(ms(&runs[0]["scheduled_for"]), at_s * 1000, "{runs:#?}");
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:#?}");

    let after = env.get_job(job).await;
    assert_eq!(after["do_run"], false, "a once job disables itself: {after}");
    assert!(after["next_run"].is_null(), "{after}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.runs(job).await.len(), 1, "it fired only once");
}

#[tokio::test]
async fn deferred_delete_removes_the_job_at_its_slot_without_running_it() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    // A slot ~3 s ahead, at a chosen second of the minute.
    let slot = (now_ms() / 1000 + 3) * 1000;
    let sched = env
        .schedule(json!({"cron": format!("{} * * * * *", (slot / 1000) % 60), "timezone": "UTC"}), false)
        .await;
    let job = env.job(stack, sched, json!({"command": "echo ran >> \"$T/ran\""})).await;
    assert_eq!(ms(&env.get_job(job).await["next_run"]), slot);

    let r = env.api.delete(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"queued_for_deletion": job}));
    let pending = env.get_job(job).await;
    assert_eq!(pending["do_del"], true, "{pending}");
    assert!(now_ms() < slot - 500, "the test itself was too slow to show the deferral");

    let gone_at = eventually(secs(15), || async {
        let r = env.api.get(&format!("/api/v1/jobs/byid/{job}")).await;
        (r.status == 404).then(now_ms)
    })
    .await
    .unwrap_or_else(|| panic!("job never deleted; log:\n{}", env.server.log()));
    assert!(gone_at >= slot - 1000, "deleted at its slot ({slot}), not right away ({gone_at})");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!env.path("ran").exists(), "the slot at which it was deleted must not run");
    assert_eq!(env.api.get("/api/v1/jobs").await.json()["count"], 0);
}

// ---------------------------------------------------------------------------------------------
// Overlap policies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn overlap_forbid_records_skipped_slots_while_a_run_is_going() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "* * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"command": "sleep 3", "overlap": "forbid"})).await;

    let runs = env
        .wait_runs(job, secs(20), "a finished run with 2 skipped slots inside it", |runs| {
            runs.iter().any(|a| {
                a["outcome"] == "succeeded" && {
                    let (s, f) = (ms(&a["started_at"]), ms(&a["finished_at"]));
                    runs.iter()
                        .filter(|r| r["outcome"] == "skipped")
                        .filter(|r| (s..=f).contains(&ms(&r["scheduled_for"])))
                        .count()
                        >= 2
                }
            })
        })
        .await;

    assert_no_duplicate_slots(&runs, "forbid job");
    for r in runs.iter().filter(|r| r["outcome"] == "skipped") {
        assert!(r["started_at"].is_null(), "a skipped slot starts nothing: {r}");
        assert_eq!(r["trigger"], "schedule", "{r}");
    }
    // Runs that did start never overlap.
    let mut spans: Vec<(i64, i64)> = started(&runs)
        .iter()
        .map(|r| (ms(&r["started_at"]), opt_ms(&r["finished_at"]).unwrap_or(i64::MAX)))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "overlapping runs under forbid: {runs:#?}");
    }
}

#[tokio::test]
async fn overlap_replace_kills_the_running_one_and_starts_the_new_one() {
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "* * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"command": "sleep 30", "overlap": "replace"})).await;

    let killed_then_next = |runs: &[Value]| -> Option<(Value, Value)> {
        let killed = runs.iter().find(|r| r["outcome"] == "killed")?;
        let k = ms(&killed["scheduled_for"]);
        let next = runs
            .iter()
            .filter(|r| ms(&r["scheduled_for"]) > k && !r["started_at"].is_null())
            .min_by_key(|r| ms(&r["scheduled_for"]))?;
        Some((killed.clone(), next.clone()))
    };
    let runs = env
        .wait_runs(job, secs(20), "a killed run followed by a started one", |runs| {
            killed_then_next(runs).is_some()
        })
        .await;
    let (killed, next) = killed_then_next(&runs).unwrap();
    assert!(!killed["started_at"].is_null(), "{killed}");
    assert!(!killed["finished_at"].is_null(), "{killed}");
    assert!(ms(&next["started_at"]) >= ms(&killed["started_at"]), "{killed} / {next}");
    assert_no_duplicate_slots(&runs, "replace job");
    assert!(runs.iter().all(|r| r["outcome"] != "skipped"), "replace never skips: {runs:#?}");
    // Under replace no more than one run should still be going at a time (give the
    // replaced one a moment to be recorded).
    let runs = env
        .wait_runs(job, secs(10), "at most one running run", |runs| {
            runs.iter().filter(|r| r["outcome"] == "running").count() <= 1
        })
        .await;
    assert!(!runs.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let env = Env::start(&[]);
    let _guard = GroupGuard(env.path("pgid"));
    let job = env.manual_job("echo $$ > \"$T/pgid\"; sleep 300 & sleep 300", json!({"timeout_s": 1})).await;
    let id = env.run_now(job, json!({})).await;
    let run = env.wait_final(id, secs(20)).await;
    assert_eq!(run["outcome"], "timed_out", "{run}");
    assert!(!run["finished_at"].is_null(), "{run}");

    let pgid = read_pgid(&env.path("pgid")).expect("the job wrote its process group id");
    let left = eventually(secs(5), || async { group_members(pgid).is_empty().then_some(()) }).await;
    assert!(left.is_some(), "processes of the timed-out run survive: {:?}", group_members(pgid));
}

#[tokio::test]
async fn args_arrive_as_separate_words_and_are_never_executed() {
    let env = Env::start(&[]);
    let m = |n: &str| env.path(n).display().to_string();
    // A shell function, given the job's arguments as separate words.
    let job = env
        .manual_job("w() { printf '%s\\n' \"$@\" > \"$T/args-$CRONSTACK_RUN_ID\"; }; w \"$@\"", json!({}))
        .await;

    // As one string, split like a shell splits words.
    let line = format!(
        r#"plain 'with space' "dq \"quoted\"" 'semi;colon' ';' '$(touch {m1})' '`touch {m2}`' "it's" '&& touch {m3}' '$HOME' 'a|b>c'"#,
        m1 = m("m1"),
        m2 = m("m2"),
        m3 = m("m3"),
    );
    let expected_line: Vec<String> = vec![
        "plain".into(),
        "with space".into(),
        "dq \"quoted\"".into(),
        "semi;colon".into(),
        ";".into(),
        format!("$(touch {})", m("m1")),
        format!("`touch {}`", m("m2")),
        "it's".into(),
        format!("&& touch {}", m("m3")),
        "$HOME".into(),
        "a|b>c".into(),
    ];
    // As a list, taken as is.
    let expected_list: Vec<String> = vec![
        "two words".into(),
        format!("; touch {}", m("m4")),
        format!("$(touch {})", m("m5")),
        format!("`touch {}`", m("m6")),
        "'".into(),
        "\"".into(),
        "".into(),
        "*".into(),
    ];

    for (body, expected) in
        [(json!({"args": line}), &expected_line), (json!({"args": expected_list}), &expected_list)]
    {
        let id = env.run_now(job, body).await;
        let run = env.wait_final(id, secs(15)).await;
        assert_eq!(run["outcome"], "succeeded", "{run}\n{}", env.log(id).await);
        assert_eq!(run["args"], json!(expected), "{run}");
        let written = std::fs::read_to_string(env.path(&format!("args-{id}"))).unwrap();
        let want: String = expected.iter().map(|a| format!("{a}\n")).collect();
        assert_eq!(written, want, "each argument arrives as one word, unexpanded");
    }
    for marker in ["m1", "m2", "m3", "m4", "m5", "m6"] {
        assert!(!env.path(marker).exists(), "argument text was executed ({marker})");
    }
}

#[tokio::test]
async fn env_vars_and_workdir_reach_the_command() {
    let env = Env::start(&[]);
    let work = env.path("work dir");
    std::fs::create_dir(&work).unwrap();
    let script = "{ echo \"job=$CRONSTACK_JOB_ID\"; echo \"run=$CRONSTACK_RUN_ID\"; \
                  echo \"sf=$CRONSTACK_SCHEDULED_FOR\"; echo \"greeting=$GREETING\"; \
                  echo \"quoted=$QUOTED\"; echo \"pwd=$(pwd -P)\"; } > env.txt";
    // The stack's command (the job has none), env and workdir.
    let stack = env
        .stack(json!({
            "command": script,
            "env": {"GREETING": "hello world", "QUOTED": "it's \"x\" $HOME"},
            "workdir": work.display().to_string(),
        }))
        .await;
    let sched = env.schedule(json!({"cron": "0 0 1 1 *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"enabled": false})).await;
    assert!(env.get_job(job).await["command"].is_null());

    let id = env.run_now(job, json!({})).await;
    let run = env.wait_final(id, secs(15)).await;
    assert_eq!(run["outcome"], "succeeded", "{run}\n{}", env.log(id).await);
    assert_eq!(run["trigger"], "run_now", "{run}");

    let written =
        std::fs::read_to_string(work.join("env.txt")).expect("env.txt written in the stack's workdir");
    let want = format!(
        "job={job}\nrun={id}\nsf={}\ngreeting=hello world\nquoted=it's \"x\" $HOME\npwd={}\n",
        run["scheduled_for"].as_str().unwrap(),
        std::fs::canonicalize(&work).unwrap().display()
    );
    assert_eq!(written, want);
}

#[tokio::test]
async fn log_captures_stdout_and_stderr_and_caps_head_and_tail() {
    let env = Env::start(&["--log-cap", "1000"]);

    let both = env.manual_job("echo to-stdout; echo to-stderr >&2; echo again-stdout", json!({})).await;
    let id = env.run_now(both, json!({})).await;
    let run = env.wait_final(id, secs(15)).await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["log_truncated"], false, "{run}");
    assert_eq!(env.log(id).await, "to-stdout\nto-stderr\nagain-stdout\n");

    let chatty = env.manual_job("echo HEAD-MARK; seq 1 5000; echo TAIL-MARK >&2", json!({})).await;
    let id = env.run_now(chatty, json!({})).await;
    let run = env.wait_final(id, secs(15)).await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["log_truncated"], true, "{run}");
    let log = env.log(id).await;
    assert!(log.starts_with("HEAD-MARK\n1\n2\n"), "head kept: {log:?}");
    assert!(log.ends_with("4999\n5000\nTAIL-MARK\n"), "tail kept: {log:?}");
    assert!(log.contains("bytes omitted"), "omission marker: {log:?}");
    assert!(!log.contains("\n2500\n"), "the middle is dropped: {log:?}");
    assert!(log.len() <= 1000 + 100, "log capped ({} bytes)", log.len());
}

#[tokio::test]
async fn live_log_is_readable_and_followable_while_the_run_goes() {
    let env = Env::start(&[]);
    let job = env.manual_job("echo started; sleep 3; echo finished", json!({})).await;
    let id = env.run_now(job, json!({})).await;

    // A plain GET while it runs shows what was printed so far.
    let partial = eventually(secs(15), || async {
        let log = env.log(id).await;
        log.contains("started").then_some(log)
    })
    .await
    .expect("live log shows the first line");
    assert!(!partial.contains("finished"), "{partial:?}");
    // The process prints as soon as it starts; its start is recorded right after (a write
    // that may land a moment after the first line, on a busy machine).
    let running =
        eventually(secs(2), || async { (env.run(id).await["outcome"] == "running").then_some(()) }).await;
    assert!(running.is_some(), "the run shows as running while it goes: {}", env.run(id).await);

    // follow=1 streams: the first bytes arrive while the run still goes, the body ends
    // with the run.
    let mut resp = env
        .api
        .http
        .get(env.server.url(&format!("/api/v1/runs/{id}/log?follow=1")))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = Vec::new();
    let mut running_seen_mid_stream = false;
    while let Some(chunk) =
        tokio::time::timeout(secs(20), resp.chunk()).await.expect("follow stream stalled").unwrap()
    {
        body.extend_from_slice(&chunk);
        if !chunk.is_empty() && !String::from_utf8_lossy(&body).contains("finished") {
            running_seen_mid_stream |= env.run(id).await["outcome"] == "running";
        }
    }
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body, "started\nfinished\n");
    assert!(running_seen_mid_stream, "the follow stream delivered output before the run ended");
    let run = env.wait_final(id, secs(10)).await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
}

// ---------------------------------------------------------------------------------------------
// Retries, crash, downtime, shutdown, concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff() {
    let env = Env::start(&[]);
    let job = env
        .manual_job(
            "echo \"attempt $CRONSTACK_ATTEMPT\"; exit 3",
            json!({"retries": 2, "retry_backoff_s": 1}),
        )
        .await;
    env.run_now(job, json!({})).await;

    env.wait_runs(job, secs(30), "3 finished attempts", |runs| runs.len() >= 3 && runs.iter().all(is_final))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut runs = env.runs(job).await;
    assert_eq!(runs.len(), 3, "1 run + 2 retries, no more: {runs:#?}");
    runs.sort_by_key(|r| r["attempt"].as_i64().unwrap());
    let attempts: Vec<i64> = runs.iter().map(|r| r["attempt"].as_i64().unwrap()).collect();
    let triggers: Vec<&str> = runs.iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3], "{runs:#?}");
    assert_eq!(triggers, ["run_now", "retry", "retry"], "{runs:#?}");
    for r in &runs {
        assert_eq!(r["outcome"], "failed", "{r}");
        assert_eq!(r["exit_code"], 3, "{r}");
    }
    // Backoff 1 s then 2 s, ±20% jitter: lower bounds only.
    let gap1 = ms(&runs[1]["scheduled_for"]) - ms(&runs[0]["finished_at"]);
    let gap2 = ms(&runs[2]["scheduled_for"]) - ms(&runs[1]["finished_at"]);
    assert!(gap1 >= 700, "first backoff {gap1} ms: {runs:#?}");
    assert!(gap2 >= 1500, "second backoff {gap2} ms (exponential): {runs:#?}");
    let log = env.log(runs[2]["id"].as_i64().unwrap()).await;
    assert_eq!(log, "attempt 3\n");
}

#[tokio::test]
async fn crash_restart_marks_the_running_run_lost_and_keeps_the_jobs() {
    // A short lease so PostgreSQL runs (marked lost by lease expiry) finish quickly too.
    let mut env = Env::start(&["--lease-s", "2"]);
    let _guard = GroupGuard(env.path("pgid"));
    let stack = env.stack(json!({"env": {"T": env.tmp(), "X": "1"}, "workdir": env.tmp()})).await;
    let sched = env.schedule(json!({"cron": "0 0 1 1 *", "timezone": "UTC"}), false).await;
    let job = env
        .job(
            stack,
            sched,
            json!({"command": "echo $$ > \"$T/pgid\"; exec sleep 300", "timeout_s": 600,
                   "overlap": "allow", "missed": "run_once", "retries": 0}),
        )
        .await;
    let id = env.run_now(job, json!({})).await;
    env.wait_outcome(id, "running", secs(15)).await;
    eventually(secs(10), || async { read_pgid(&env.path("pgid")) }).await.expect("the run wrote its pgid");

    let job_before = env.get_job(job).await;
    let stack_before = env.api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json();
    let sched_before = env.api.get(&format!("/api/v1/schedules/byid/{sched}")).await.json();

    env.server.kill9();
    env.restart(&["--lease-s", "2"]);

    let run = env.wait_outcome(id, "lost", secs(30)).await;
    assert!(!run["finished_at"].is_null(), "{run}");
    let job_after = env.get_job(job).await;
    for field in [
        "id",
        "name",
        "stack",
        "schedule",
        "next_run",
        "do_run",
        "do_del",
        "uid",
        "command",
        "timeout_s",
        "overlap",
        "missed",
        "retries",
        "retry_backoff_s",
    ] {
        assert_eq!(job_before[field], job_after[field], "job field {field}");
    }
    let stack_after = env.api.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json();
    for field in ["id", "name", "command", "env", "workdir"] {
        assert_eq!(stack_before[field], stack_after[field], "stack field {field}");
    }
    let sched_after = env.api.get(&format!("/api/v1/schedules/byid/{sched}")).await.json();
    assert_eq!(sched_before, sched_after);
    // No retry of a lost run with retries 0.
    assert_eq!(env.runs(job).await.len(), 1);
}

#[tokio::test]
async fn missed_slots_after_downtime_follow_each_policy() {
    let mut env = Env::start(&[]);
    let stack = env.stack(json!({})).await;

    // An every-second catch_up job that runs before, during (not) and after the downtime.
    let every = env.schedule(json!({"cron": "* * * * * *", "timezone": "UTC"}), false).await;
    let steady = env.job(stack, every, json!({"command": "true", "missed": "catch_up"})).await;
    env.wait_runs(steady, secs(15), "a first run", |runs| runs.iter().any(is_final)).await;

    // Three slots S1..S3 that will all fall in the downtime.
    let s1 = (now_ms() / 1000 + 3) * 1000;
    let (s2, s3) = (s1 + 1000, s1 + 2000);
    let sec = |t: i64| (t / 1000) % 60;
    let cron = |list: &[i64]| {
        let list: Vec<String> = list.iter().map(|&t| sec(t).to_string()).collect();
        json!({"cron": format!("{} * * * * *", list.join(",")), "timezone": "UTC"})
    };
    let three = env.schedule(cron(&[s1, s2, s3]), false).await;
    let two = env.schedule(cron(&[s1, s3]), false).await;
    let cmd = |missed: &str| json!({"command": "true", "missed": missed});
    let skip = env.job(stack, three, cmd("skip")).await;
    let run_once = env.job(stack, three, cmd("run_once")).await;
    let catch_up_bounded = env.job(stack, three, cmd("catch_up")).await;
    let catch_up_all = env.job(stack, two, cmd("catch_up")).await;
    let policy_jobs = [skip, run_once, catch_up_bounded, catch_up_all];
    for j in policy_jobs {
        assert_eq!(ms(&env.get_job(j).await["next_run"]), s1);
    }

    env.server.stop();
    let stopped_at = now_ms();
    assert!(stopped_at < s1 - 300, "the server stopped too late for the test to mean anything");

    // Down until S3 is well past the missed-run grace (1 s).
    tokio::time::sleep(Duration::from_millis((s3 + 2500 - now_ms()).max(0) as u64)).await;
    let restart_at = now_ms();
    env.restart(&["--catch-up-max", "2"]);

    let e = &env;
    eventually(secs(20), || async move {
        let mut ok = true;
        for (j, n) in [(run_once, 1), (catch_up_bounded, 2), (catch_up_all, 2)] {
            let runs = e.runs(j).await;
            ok &= runs.len() >= n && runs.iter().all(is_final);
        }
        ok.then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("catch-up runs did not happen; log:\n{}", env.server.log()));
    // Anything extra would show up by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let skip_runs = env.runs(skip).await;
    assert!(skip_runs.is_empty(), "skip runs nothing for missed slots: {skip_runs:#?}");

    let once_runs = env.runs(run_once).await;
    assert_eq!(slots(&once_runs), [s3], "run_once runs the newest missed slot once: {once_runs:#?}");

    let bounded = env.runs(catch_up_bounded).await;
    assert_eq!(
        slots(&bounded),
        [s2, s3],
        "catch_up runs the newest --catch-up-max=2 missed slots: {bounded:#?}"
    );
    let all = env.runs(catch_up_all).await;
    assert_eq!(slots(&all), [s1, s3], "catch_up runs each missed slot: {all:#?}");

    for j in policy_jobs {
        let job = env.get_job(j).await;
        assert_eq!(ms(&job["next_run"]), s1 + 60_000, "next slot after now: {job}");
        for r in env.runs(j).await {
            assert_eq!(r["outcome"], "succeeded", "{r}");
            assert_eq!(r["trigger"], "schedule", "{r}");
        }
    }

    // The steady job: never a slot twice, at most catch-up-max slots from the downtime.
    let steady_runs = env.runs(steady).await;
    assert_no_duplicate_slots(&steady_runs, "every-second catch_up job");
    let last_before = slots(&steady_runs).into_iter().filter(|&t| t <= stopped_at).max().unwrap();
    let from_downtime =
        slots(&steady_runs).into_iter().filter(|&t| t > last_before && t <= restart_at - 1000).count();
    assert!(
        from_downtime <= 2,
        "catch_up bounded by --catch-up-max 2: {from_downtime} downtime slots ran: {steady_runs:#?}"
    );
    assert!(slots(&steady_runs).iter().any(|&t| t > restart_at), "the job keeps firing after the restart");
    for r in &steady_runs {
        // `true` fails nothing; a graceful stop kills nothing and loses nothing (a catch-up
        // slot due while another runs may be skipped by the overlap policy).
        assert!(
            matches!(outcome(r), "succeeded" | "skipped" | "running" | "queued"),
            "a graceful stop kills and loses nothing: {r}"
        );
    }
}

#[tokio::test]
async fn graceful_shutdown_kills_and_records_running_runs() {
    let flags = ["--shutdown-grace-s", "1", "--kill-grace-s", "1"];
    let mut env = Env::start(&flags);
    let _guard = GroupGuard(env.path("pgid"));
    let job = env.manual_job("echo $$ > \"$T/pgid\"; sleep 60", json!({})).await;
    let id = env.run_now(job, json!({})).await;
    env.wait_outcome(id, "running", secs(15)).await;
    let pgid = eventually(secs(10), || async { read_pgid(&env.path("pgid")) })
        .await
        .expect("the run wrote its pgid");

    env.server.stop();
    let left = eventually(secs(5), || async { group_members(pgid).is_empty().then_some(()) }).await;
    assert!(left.is_some(), "the run's processes survive shutdown: {:?}", group_members(pgid));

    env.restart(&flags);
    let run = env.run(id).await;
    assert_eq!(run["outcome"], "killed", "recorded as killed, not lost: {run}");
    assert!(!run["finished_at"].is_null(), "{run}");
}

/// Many runs due at one instant: their processes are spawned ahead several at a time and
/// held at one gate. Each run of each slot runs its script exactly once and succeeds (a
/// process spawned at a gate already opened would read EOF there and exit 125).
#[tokio::test]
async fn a_burst_of_runs_due_together_each_runs_exactly_once() {
    const JOBS: usize = 60;
    let env = Env::start(&[]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "*/2 * * * * *", "timezone": "UTC"}), false).await;
    let mut jobs = Vec::new();
    for _ in 0..JOBS {
        jobs.push(
            env.job(stack, sched, json!({"command": "echo \"$CRONSTACK_RUN_ID\" >> \"$T/ran\""})).await,
        );
    }
    // Every job exists from here on: the slots after this are each due for all of them.
    let all_there = now_ms();
    let mut finished = Vec::new();
    for &job in &jobs {
        let runs = env
            .wait_runs(job, secs(30), "2 finished runs of slots after the last job was made", |runs| {
                runs.iter().filter(|r| is_final(r) && ms(&r["scheduled_for"]) > all_there).count() >= 2
            })
            .await;
        assert_no_duplicate_slots(&runs, "a job of the burst");
        finished.extend(runs.into_iter().filter(is_final));
    }
    for r in &finished {
        assert_eq!(outcome(r), "succeeded", "{r}");
    }
    // Each finished run's script ran once, and no script ran for a run twice.
    let ran = std::fs::read_to_string(env.path("ran")).unwrap();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for line in ran.lines() {
        *counts.entry(line.parse().unwrap()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a script ran twice: {counts:?}");
    for r in &finished {
        assert!(counts.contains_key(&r["id"].as_i64().unwrap()), "run without its script: {r}");
    }
    // A real burst: some slot was run by every job.
    let mut per_slot: HashMap<i64, usize> = HashMap::new();
    for r in finished.iter().filter(|r| ms(&r["scheduled_for"]) > all_there) {
        *per_slot.entry(ms(&r["scheduled_for"])).or_default() += 1;
    }
    assert!(per_slot.values().any(|&n| n == JOBS), "no slot run by all {JOBS} jobs: {per_slot:?}");
}

#[tokio::test]
async fn per_node_concurrency_limit_queues_runs_in_order() {
    let env = Env::start(&["--max-concurrent-runs", "1"]);
    let job = env.manual_job("sleep 1", json!({"overlap": "allow"})).await;
    let a = env.run_now(job, json!({})).await;
    let b = env.run_now(job, json!({})).await;

    // The limit is on processes: a slot frees when the first process has ended, which can
    // be a moment before its end is written — so the check is on the recorded times below,
    // not on both runs' statuses at one instant.
    let e = &env;
    eventually(secs(20), || async move {
        let (ra, rb) = (e.run(a).await, e.run(b).await);
        (is_final(&ra) && is_final(&rb)).then_some(())
    })
    .await
    .expect("both runs end");

    let mut runs = vec![env.run(a).await, env.run(b).await];
    for r in &runs {
        assert_eq!(r["outcome"], "succeeded", "{r}");
    }
    runs.sort_by_key(|r| ms(&r["started_at"]));
    assert_eq!(runs[0]["id"], a, "runs beyond the limit wait in order: {runs:#?}");
    assert!(
        ms(&runs[1]["started_at"]) >= ms(&runs[0]["finished_at"]),
        "the second started before the first finished: {runs:#?}"
    );
}

/// A node claims no more than it starts. With one process slot (`--max-concurrent-runs 1`)
/// and an every-second job whose runs last 3 s, claimed runs wait for the slot; once one has
/// waited past the missed-run grace (1 s) the node is behind and claims nothing more, so
/// slots are left unclaimed (and then dropped by the job's missed-run policy) instead of
/// queuing here to start later and later: before, every second added a run to the queue.
/// When the queue has drained, the node claims again.
#[tokio::test]
async fn a_node_behind_its_slots_claims_no_more() {
    let env = Env::start(&["--max-concurrent-runs", "1"]);
    let stack = env.stack(json!({})).await;
    let sched = env.schedule(json!({"cron": "*/1 * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"command": "sleep 3", "overlap": "allow"})).await;
    claims_wait_while_behind(&env, job, "every-second job, behind").await;
}

/// The same with a pipeline's runs waiting for the one process slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_its_pipeline_slots_claims_no_more() {
    let env = Env::start(&["--max-concurrent-runs", "1"]);
    let blocks = json!([["Shell command", {"command": "sleep 3"}]]);
    let stack =
        env.api.create("/api/v1/blockstacks", json!({"name": env.name("pipe"), "blocks": blocks})).await;
    let sched = env.schedule(json!({"cron": "*/1 * * * * *", "timezone": "UTC"}), false).await;
    let job = env.job(stack, sched, json!({"overlap": "allow"})).await;
    claims_wait_while_behind(&env, job, "every-second pipeline, behind").await;
}

/// Runs of `job` (every second, each 3 s long, one process slot) piled up: the node claimed
/// none of at least 3 of the seconds while behind, claimed again once the line drained, ran
/// no slot twice, and counted the rounds it put off.
async fn claims_wait_while_behind(env: &Env, job: i64, what: &str) {
    // Claims resumed: a run of a slot well after the queue built up.
    let runs = env
        .wait_runs(job, secs(30), "a run 8 s after the first", |runs| {
            let s = slots(runs);
            s.len() >= 2 && s[s.len() - 1] - s[0] >= 8000
        })
        .await;
    assert_no_duplicate_slots(&runs, what);
    let s = slots(&runs);
    let seconds = (s[s.len() - 1] - s[0]) / 1000 + 1;
    assert!(
        (runs.len() as i64) <= seconds - 3,
        "{what}: slots were claimed while the node was behind: {} runs over {seconds} s: {s:?}",
        runs.len()
    );
    let metrics = Api::new(&env.server, None).get("/metrics").await.text;
    let deferred: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cronstack_claims_deferred_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("cronstack_claims_deferred_total in /metrics");
    assert!(deferred > 0.0, "{what}: no claim was put off");
}
