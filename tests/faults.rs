//! Fault injection on a PostgreSQL cluster of real nodes with real signals: SIGTERM inside the
//! claim lookahead (a rolling restart), SIGKILL, SIGSTOP/SIGCONT of a node holding claimed
//! slots, running a run, or inside a transaction. Every slot is checked from what the jobs
//! themselves wrote to a ledger file, not only from the database: no slot runs twice, none is
//! lost except where the README says why (a `skip` job's slot that came too late), and every
//! final outcome stays final. Needs `CRONSTACK_TEST_POSTGRES` (CI's PostgreSQL pass sets it).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Sleeps until the wall clock's millisecond within the second is `ms`.
async fn at_millisecond(ms: i64) {
    let now = now_ms();
    let wait = (ms - now.rem_euclid(1000)).rem_euclid(1000);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// What the jobs wrote: one line per process start, `job slot attempt run pgid`.
struct Ledger {
    path: PathBuf,
}

#[derive(Debug, Clone)]
struct Entry {
    job: i64,
    slot: i64,
    attempt: i64,
}

impl Ledger {
    fn new(db: &TestDb) -> Ledger {
        Ledger { path: db.dir().join("ledger") }
    }

    /// A command that writes its line first, then does `rest`.
    fn command(&self, rest: &str) -> String {
        format!(
            "echo \"$CRONSTACK_JOB_ID $CRONSTACK_SCHEDULED_FOR $CRONSTACK_ATTEMPT $CRONSTACK_RUN_ID $$\" >> '{}'; {rest}",
            self.path.display()
        )
    }

    fn entries(&self) -> Vec<Entry> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let slot = chrono::DateTime::parse_from_rfc3339(f[1]).unwrap().timestamp_millis();
                Entry { job: f[0].parse().unwrap(), slot, attempt: f[2].parse().unwrap() }
            })
            .collect()
    }

    /// First attempts per (job, slot).
    fn firsts(&self) -> HashMap<(i64, i64), usize> {
        let mut n = HashMap::new();
        for e in self.entries().into_iter().filter(|e| e.attempt == 1) {
            *n.entry((e.job, e.slot)).or_default() += 1;
        }
        n
    }
}

impl Drop for Ledger {
    /// A SIGKILLed node leaves its jobs' processes running (systemd would kill its cgroup).
    fn drop(&mut self) {
        for line in std::fs::read_to_string(&self.path).unwrap_or_default().lines() {
            if let Some(pgid) = line.split_whitespace().nth(4).and_then(|p| p.parse().ok()) {
                kill_job_group(pgid);
            }
        }
    }
}

/// A user, a stack running `command`, and `n` jobs on a 1-second period with the given fields.
async fn jobs(api: &Api, name: &str, command: &str, n: usize, fields: Value) -> Vec<i64> {
    let stack = api.create("/api/v1/blockstacks", json!({"name": name, "command": command})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let mut body = json!({"stack_id": stack, "schedule_id": schedule, "name": format!("{name}-{i}"),
                              "enabled": true, "overlap": "allow"});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        ids.push(api.create("/api/v1/jobs", body).await);
    }
    ids
}

/// Runs per (job id) from the database: `(scheduled_for, status, trigger, attempt)`.
fn runs_by_job(db: &TestDb) -> BTreeMap<i64, Vec<(i64, String, String, i64)>> {
    let mut by_job: BTreeMap<i64, Vec<(i64, String, String, i64)>> = BTreeMap::new();
    for r in psql_rows(
        &db.url,
        "SELECT job_id, scheduled_for, status, trigger_kind, attempt FROM runs ORDER BY id",
    ) {
        by_job.entry(r[0].parse().unwrap()).or_default().push((
            r[1].parse().unwrap(),
            r[2].clone(),
            r[3].clone(),
            r[4].parse().unwrap(),
        ));
    }
    by_job
}

/// Every whole second in `[from, to]`.
fn seconds(from: i64, to: i64) -> impl Iterator<Item = i64> {
    let first = from + (1000 - from.rem_euclid(1000)) % 1000;
    (first..=to).step_by(1000)
}

const FAST: [&str; 4] = ["--lease-s", "3", "--rate-limit", "1000000"];

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_inside_the_lookahead_loses_no_slot_and_runs_none_twice() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let ledger = Ledger::new(&db);
    let mut nodes = [Server::start_on(&db, &FAST), Server::start_on(&db, &FAST)];
    let api = Api::new(&nodes[0], Some(&token));
    let ids = jobs(&api, "roll", &ledger.command("true"), 100, json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from = now_ms() + 1000;
    // Four restarts, alternating nodes, each SIGTERM inside the 200 ms claim lookahead.
    for i in 0..4 {
        at_millisecond(900).await;
        nodes[i % 2].stop();
        nodes[i % 2] = Server::start_on(&db, &FAST);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to = now_ms() - 1500;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in &mut nodes {
        n.stop();
    }

    let firsts = ledger.firsts();
    let twice: Vec<_> = firsts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "slots run twice: {twice:?}");
    let mut missing = Vec::new();
    for job in &ids {
        for slot in seconds(from, to) {
            if !firsts.contains_key(&(*job, slot)) {
                missing.push((*job, slot));
            }
        }
    }
    let checked = ids.len() * seconds(from, to).count();
    assert!(
        missing.is_empty(),
        "{} of {checked} slots never ran, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let lost = psql_rows(
        &db.url,
        "SELECT count(*) FROM runs WHERE status IN ('lost', 'killed', 'queued', 'running')",
    );
    assert_eq!(lost[0][0], "0", "runs lost or killed by the restarts");
    eprintln!("rolling restart: {checked} slots checked, every one ran exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_claimed_slots_and_lost_runs_are_taken_over() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let ledger = Ledger::new(&db);
    let mut a = Server::start_on(&db, &FAST);
    let api = Api::new(&a, Some(&token));
    // Quick jobs under each missed-run policy, and slow ones (a run in flight when the node
    // dies) with a retry.
    let catch_up = jobs(&api, "catchup", &ledger.command("true"), 20, json!({"missed": "catch_up"})).await;
    let run_once = jobs(&api, "runonce", &ledger.command("true"), 20, json!({"missed": "run_once"})).await;
    let skip = jobs(&api, "skip", &ledger.command("true"), 20, json!({"missed": "skip"})).await;
    let slow =
        jobs(&api, "slow", &ledger.command("sleep 30"), 5, json!({"retries": 1, "retry_backoff_s": 1})).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Only then a second node: the slow jobs' first runs are on A.
    let b = Server::start_on(&db, &FAST);
    let from = now_ms() + 1000;
    tokio::time::sleep(Duration::from_secs(2)).await;
    at_millisecond(900).await;
    a.kill9();
    let killed_at = now_ms();
    // The lease (3 s) runs out, B's sweep (every 0.75 s) takes over.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let to = now_ms() - 1500;
    let api_b = Api::new(&b, Some(&token));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let firsts = ledger.firsts();
    let twice: Vec<_> = firsts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "slots run twice: {twice:?}");
    let db_runs = runs_by_job(&db);
    for job in catch_up.iter().chain(&run_once) {
        for slot in seconds(from, to) {
            assert!(
                firsts.contains_key(&(*job, slot)),
                "job {job}: slot {} ms after the kill never ran",
                slot - killed_at
            );
        }
    }
    let mut skipped = 0;
    for job in &skip {
        for slot in seconds(from, to) {
            if firsts.contains_key(&(*job, slot)) {
                continue;
            }
            // The README's one exception: a `skip` job's slot claimed by the dead node came
            // too late on the node that adopted it, and is recorded skipped.
            let status = db_runs[job].iter().find(|r| r.0 == slot && r.2 == "schedule").map(|r| r.1.as_str());
            assert_eq!(status, Some("skipped"), "job {job}: slot {} ms after the kill", slot - killed_at);
            skipped += 1;
        }
    }
    // A's runs in flight are lost, and retried by B.
    for job in &slow {
        let runs = &db_runs[job];
        let lost = runs.iter().filter(|r| r.1 == "lost").count();
        let retried = runs.iter().any(|r| r.2 == "retry" && r.3 == 2);
        assert!(lost >= 1 && retried, "job {job}: {runs:?}");
    }
    let lost_id = &psql_rows(&db.url, "SELECT id FROM runs WHERE status = 'lost' LIMIT 1")[0][0];
    let lost = api_b.get(&format!("/api/v1/runs/{lost_id}")).await.json();
    assert_eq!(lost["outcome"], "lost", "{lost}");
    let unfinished = psql_rows(
        &db.url,
        "SELECT count(*) FROM runs WHERE status IN ('queued', 'running') AND trigger_kind = 'schedule' AND node_id <> (SELECT node_id FROM runs ORDER BY id DESC LIMIT 1) AND scheduled_for < (extract(epoch from now()) * 1000 - 3000)",
    );
    assert_eq!(unfinished[0][0], "0", "runs of the dead node left unfinished");
    eprintln!("SIGKILL: {skipped} slots of skip jobs recorded skipped, every other slot ran once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_node_releases_no_claimed_slot_that_another_node_took() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let ledger = Ledger::new(&db);
    let flags = ["--lease-s", "3", "--rate-limit", "1000000", "--lookahead-ms", "950"];
    let a = Server::start_on(&db, &flags);
    let api = Api::new(&a, Some(&token));
    let ids =
        jobs(&api, "frozen", &ledger.command("true"), 20, json!({"retries": 1, "missed": "run_once"})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Frozen while it holds next second's processes at their gate, for longer than the lease.
    at_millisecond(300).await;
    signal(a.pid(), "STOP");
    let b = Server::start_on(&db, &flags);
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal(a.pid(), "CONT");
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(b);
    drop(a);

    let firsts = ledger.firsts();
    let twice: Vec<_> = firsts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "slots run twice after the freeze: {twice:?}");
    let retries = ledger.entries().into_iter().filter(|e| e.attempt > 1).count();
    assert_eq!(retries, 0, "a slot that ran was retried as lost");
    for job in &ids {
        assert!(firsts.keys().filter(|(j, _)| j == job).count() >= 8, "job {job} fired before and after");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_lost_while_its_node_was_frozen_stays_lost_and_its_process_is_stopped() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let ledger = Ledger::new(&db);
    let done = db.dir().join("done");
    let a = Server::start_on(&db, &FAST);
    let api = Api::new(&a, Some(&token));
    // Two runs: one ends while its node is frozen, one would end long after.
    let short = &ledger.command(&format!("sleep 3; echo short >> '{}'", done.display()));
    let long = &ledger.command(&format!("sleep 12; echo long >> '{}'", done.display()));
    let short_job = jobs(&api, "short", short, 1, json!({"enabled": false, "retry_lost": false})).await[0];
    let long_job = jobs(&api, "long", long, 1, json!({"enabled": false, "retry_lost": false})).await[0];
    let mut run_ids = Vec::new();
    for job in [short_job, long_job] {
        let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        run_ids.push(r.json()["run_id"].as_i64().or_else(|| r.json()["id"].as_i64()).unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(a.pid(), "STOP");
    let b = Server::start_on(&db, &FAST);
    let api_b = Api::new(&b, Some(&token));
    // B sweeps them lost once the lease (3 s) has run out.
    let lost = eventually(Duration::from_secs(10), || async {
        let mut all = true;
        for id in &run_ids {
            all &= api_b.get(&format!("/api/v1/runs/{id}")).await.json()["outcome"] == "lost";
        }
        all.then_some(())
    })
    .await;
    assert!(lost.is_some(), "runs not swept lost");
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(a.pid(), "CONT");
    // A notices at once that its lease is gone; give it time to try to record anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in &run_ids {
        let run = api_b.get(&format!("/api/v1/runs/{id}")).await.json();
        assert_eq!(run["outcome"], "lost", "the final outcome was rewritten: {run}");
    }
    // The short run ended while its node was frozen (nothing could stop it); the long one was
    // killed by its node the moment it resumed, well before its end.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let ended = std::fs::read_to_string(&done).unwrap_or_default();
    assert!(!ended.contains("long"), "the frozen node's run went on after it resumed: {ended}");
    let retried = ledger.entries().into_iter().filter(|e| e.attempt > 1).count();
    assert_eq!(retried, 0, "retry_lost: false runs were retried");
    assert!(
        a.log().contains("killing this node's runs") || a.log().contains("taken by another node"),
        "{}",
        a.log()
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_frozen_inside_a_transaction_holds_nobody_for_long() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let ledger = Ledger::new(&db);
    let a = Server::start_on(&db, &FAST);
    let b = Server::start_on(&db, &FAST);
    let api = Api::new(&a, Some(&token));
    let ids = jobs(&api, "locks", &ledger.command("true"), 300, json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dbname = db.url.rsplit('/').next().unwrap().to_string();
    let mut longest_idle_ms = 0f64;
    let mut windows = Vec::new();
    // Frozen at several points of the claim cycle, each time for longer than the lease.
    for offset in [780, 820, 850, 880, 910] {
        at_millisecond(offset).await;
        signal(a.pid(), "STOP");
        let frozen_at = now_ms();
        for _ in 0..16 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let idle = psql_rows(
                &db.url,
                &format!(
                    "SELECT COALESCE(max(extract(epoch from now() - state_change) * 1000), 0) FROM pg_stat_activity \
                     WHERE datname = '{dbname}' AND state LIKE 'idle in transaction%'"
                ),
            );
            longest_idle_ms = longest_idle_ms.max(idle[0][0].parse().unwrap());
        }
        signal(a.pid(), "CONT");
        windows.push((frozen_at, now_ms()));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(a);
    drop(b);

    assert!(longest_idle_ms < 2500.0, "a frozen transaction held its locks for {longest_idle_ms} ms");
    let firsts = ledger.firsts();
    let twice: Vec<_> = firsts.iter().filter(|(_, n)| **n > 1).map(|(k, _)| *k).collect();
    let detail: Vec<Vec<Vec<String>>> = twice
        .iter()
        .take(3)
        .map(|(job, slot)| {
            psql_rows(
                &db.url,
                &format!("SELECT id, trigger_kind, status, node_id, started_at, attempt FROM runs WHERE job_id = {job} AND scheduled_for = {slot}"),
            )
        })
        .collect();
    let lines: Vec<String> = std::fs::read_to_string(&ledger.path)
        .unwrap_or_default()
        .lines()
        .filter(|l| twice.iter().take(3).any(|(j, _)| l.starts_with(&format!("{j} "))))
        .map(str::to_string)
        .collect();
    assert!(
        twice.is_empty(),
        "slots ran twice: {twice:?}, windows {windows:?}, runs {detail:?}, ledger {lines:?}"
    );
    // While A was frozen (4 s or more each time), B fired every job within a bound under it:
    // the session bound (1.5 s) plus the missed grace a `skip` job's late slot falls past
    // (1 s), to the next whole slot — 4 s at most. Held for the whole freeze, it would be ≥ 6 s.
    let mut worst_gap = 0;
    for job in &ids {
        let mut slots: Vec<i64> = firsts.keys().filter(|(j, _)| j == job).map(|(_, s)| *s).collect();
        slots.sort();
        for (from, to) in &windows {
            let before = slots.iter().rev().find(|s| *s <= from).copied().unwrap_or(*from);
            let after = slots.iter().find(|s| **s > before).copied().unwrap_or(*to);
            worst_gap = worst_gap.max(after - before);
        }
    }
    assert!(worst_gap <= 4000, "a job went {worst_gap} ms without firing while one node was frozen");
    eprintln!(
        "frozen in a transaction: idle-in-transaction at most {longest_idle_ms:.0} ms, worst gap {worst_gap} ms"
    );
}
