//! Bounded run history (issue 15), black-box against the real binary: per-job limits on
//! finished runs (`keep_succeeded` / `keep_failed`, null = the server's default), the day limit
//! on runs, v3 actions and webhook deliveries, and what is never pruned (unfinished runs and
//! actions, pending deliveries). The pruner runs every 100 ms here (`--prune-interval-ms`).
//!
//! Old rows are made by backdating real ones (written through the API and the engine) with
//! `sqlite3` or `psql`, the way a database looks after days of use.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const FAST_PRUNER: &str = "--prune-interval-ms=100";
const DAY_MS: i64 = 24 * 3600 * 1000;

struct Fixture {
    db: TestDb,
    server: Server,
    api: Api,
    stack_id: i64,
}

/// A user and a stack whose command exits with its first argument (0 by default), on a server
/// pruning every 100 ms.
async fn fixture(extra: &[&str]) -> Fixture {
    let mut flags = vec![FAST_PRUNER];
    flags.extend_from_slice(extra);
    fixture_with(&flags).await
}

/// The same on a server started with these pruner flags.
async fn fixture_with(pruner: &[&str]) -> Fixture {
    let db = TestDb::new();
    let token = add_user(&db, "rita", None);
    let mut flags = vec!["--shutdown-grace-s", "1"];
    flags.extend_from_slice(pruner);
    let server = Server::start_on(&db, &flags);
    let api = Api::new(&server, Some(&token));
    let stack_id = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "exit ${1:-0}"})).await;
    Fixture { db, server, api, stack_id }
}

impl Fixture {
    /// A job (disabled unless the fields say otherwise) on `config`; returns its id.
    async fn job(&self, config: Value, fields: Value) -> i64 {
        let schedule = self.api.create("/api/v1/schedules", json!({ "config": config })).await;
        let mut body = json!({"stack_id": self.stack_id, "schedule_id": schedule});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        self.api.create("/api/v1/jobs", body).await
    }

    /// Starts a run of the job exiting with `code`; returns the run id.
    async fn run(&self, job: i64, code: i64) -> i64 {
        let r =
            self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({"args": [code.to_string()]})).await;
        assert_eq!(r.status, 200, "run now: {}", r.text);
        r.json()["id"].as_i64().unwrap()
    }

    /// The run, or `None` once it is gone (404).
    async fn run_or_gone(&self, id: i64) -> Option<Value> {
        let r = self.api.get(&format!("/api/v1/runs/{id}")).await;
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET run {id}: {s} {}", r.text),
        }
    }

    /// Waits until the run has ended (or is already pruned).
    async fn wait_ended(&self, id: i64) {
        eventually(WAIT, || async {
            match self.run_or_gone(id).await {
                Some(run) if matches!(run["outcome"].as_str(), Some("queued" | "running")) => None,
                _ => Some(()),
            }
        })
        .await
        .unwrap_or_else(|| panic!("run {id} did not end"));
    }

    /// The job's runs as `(id, outcome)`, newest first (all of them: 10 per page).
    async fn runs(&self, job: i64) -> Vec<(i64, String)> {
        let mut all = Vec::new();
        for page in 1.. {
            let r = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs?page={page}")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let runs = r.json()["runs"].as_array().unwrap().clone();
            if runs.is_empty() {
                return all;
            }
            all.extend(
                runs.iter().map(|r| (r["id"].as_i64().unwrap(), r["outcome"].as_str().unwrap().to_string())),
            );
        }
        unreachable!()
    }

    /// Waits until the job's run ids are exactly `want`.
    async fn wait_runs_are(&self, job: i64, want: &BTreeSet<i64>) {
        let got = eventually(WAIT, || async {
            let ids: BTreeSet<i64> = self.runs(job).await.into_iter().map(|(id, _)| id).collect();
            (&ids == want).then_some(ids)
        })
        .await;
        assert!(got.is_some(), "job {job} kept {:?}, expected {want:?}", self.runs(job).await);
    }

    /// Runs SQL on the server's database, as an operator's tool would (`sqlite3` or `psql`);
    /// answers what it printed, a line per row.
    fn sql(&self, statement: &str) -> String {
        if let Some(path) = self.db.url.strip_prefix("sqlite://") {
            let out = Command::new("sqlite3")
                .args(["-cmd", ".timeout 10000", path, statement])
                .output()
                .expect("sqlite3 runs");
            assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        } else {
            psql_rows(&self.db.url, statement).iter().map(|row| row.join("|") + "\n").collect()
        }
    }

    /// The number answered by a `SELECT COUNT(*) …` on the server's database.
    fn count(&self, query: &str) -> i64 {
        let text = self.sql(query);
        text.trim().parse().unwrap_or_else(|_| panic!("{query}: {text}"))
    }

    /// The `count` of the job's runs page.
    async fn page_count(&self, job: i64) -> i64 {
        let r = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["count"].as_i64().unwrap()
    }
}

/// Fires `codes` (exit codes) as runs of the job, one after the other; returns their ids.
async fn fire(f: &Fixture, job: i64, codes: &[i64]) -> Vec<i64> {
    let mut ids = Vec::new();
    for code in codes {
        let id = f.run(job, *code).await;
        f.wait_ended(id).await;
        ids.push(id);
    }
    ids
}

/// The newest `n` of `ids` (ids grow with time).
fn newest(ids: &[i64], n: usize) -> Vec<i64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.into_iter().rev().take(n).collect()
}

#[tokio::test]
async fn a_job_keeps_its_newest_succeeded_and_failed_runs() {
    let f = fixture(&[]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 3, "keep_failed": 2})).await;
    // Interleaved successes (exit 0) and failures (exit 1 and 2), fired as fast as they end.
    let codes = [0, 1, 0, 0, 2, 0, 1, 0, 0, 1, 2, 0, 1];
    let ids = fire(&f, job, &codes).await;
    let succeeded: Vec<i64> = ids.iter().zip(codes).filter(|(_, c)| *c == 0).map(|(id, _)| *id).collect();
    let failed: Vec<i64> = ids.iter().zip(codes).filter(|(_, c)| *c != 0).map(|(id, _)| *id).collect();
    let want: BTreeSet<i64> = newest(&succeeded, 3).into_iter().chain(newest(&failed, 2)).collect();
    f.wait_runs_are(job, &want).await;
    for (id, outcome) in f.runs(job).await {
        assert_eq!(outcome == "succeeded", succeeded.contains(&id), "run {id}: {outcome}");
    }
    // A pruned run is gone for good: its page and its log answer 404.
    let gone = succeeded[0];
    assert_eq!(f.api.get(&format!("/api/v1/runs/{gone}")).await.status, 404);
    assert_eq!(f.api.get(&format!("/api/v1/runs/{gone}/log")).await.status, 404);
    // Counted in the metrics.
    let metrics = Api::new(&f.server, None).get("/metrics").await.text;
    let pruned = |table: &str| {
        let prefix = format!("cronstack_pruned_rows_total{{table=\"{table}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())?.parse::<f64>().ok())
    };
    assert_eq!(pruned("runs"), Some(8.0), "{metrics}");
    assert_eq!(pruned("actions"), Some(0.0), "{metrics}");
    assert!(!f.server.log().contains("pruning history"), "no pass failed: {}", f.server.log());
}

/// The pruner reads the runs of jobs with more runs than the smaller of their limits only:
/// a job far below one limit and over the other is still trimmed.
#[tokio::test]
async fn a_job_over_its_smaller_limit_only_is_trimmed() {
    let f = fixture(&[]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 50, "keep_failed": 1})).await;
    let codes = [1, 0, 2, 1];
    let ids = fire(&f, job, &codes).await;
    // Four runs, under 50 in all, but three failed where one is kept.
    let want: BTreeSet<i64> = [ids[1], ids[3]].into_iter().collect();
    f.wait_runs_are(job, &want).await;
}

#[tokio::test]
async fn a_job_firing_every_second_stays_within_its_limits() {
    let f = fixture(&[]).await;
    let job =
        f.job(json!({"period": 1}), json!({"enabled": true, "keep_succeeded": 2, "keep_failed": 1})).await;
    // Five slots at least, then the history holds at most 2 succeeded runs (plus one going).
    eventually(WAIT, || async {
        let max_id = f.runs(job).await.first().map(|(id, _)| *id)?;
        (max_id >= 5).then_some(())
    })
    .await
    .expect("five slots fired");
    let settled = eventually(WAIT, || async {
        let runs = f.runs(job).await;
        let finished: Vec<&(i64, String)> =
            runs.iter().filter(|(_, o)| !matches!(o.as_str(), "queued" | "running")).collect();
        let succeeded = finished.iter().filter(|(_, o)| o == "succeeded").count();
        (succeeded <= 2 && finished.len() - succeeded <= 1).then_some(runs)
    })
    .await
    .expect("history trimmed to the job's limits");
    // The newest runs are the ones kept.
    let ids: Vec<i64> = settled.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(ids[0] >= 5, "{ids:?}");
}

#[tokio::test]
async fn running_runs_are_never_pruned() {
    let f = fixture(&[]).await;
    let job = f
        .job(json!({"period": 3600}), json!({"command": "sleep 2", "keep_succeeded": 0, "keep_failed": 0}))
        .await;
    let run = f.run(job, 0).await;
    // Ten passes go by while it runs: it stays.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(f.run_or_gone(run).await.expect("kept while running")["outcome"], "running");
    // Once it has ended, a limit of 0 lets it go.
    f.wait_runs_are(job, &BTreeSet::new()).await;
}

/// The succeeded runs beyond a job's limit are its kept count of runs less its other runs: a
/// run still going is one of those, never taken for a succeeded one (which would prune one
/// succeeded run too many while it runs).
#[tokio::test]
async fn a_run_still_going_is_not_counted_as_succeeded() {
    let f = fixture(&[]).await;
    let fields = json!({"command": "sleep ${1:-0}", "keep_succeeded": 2, "keep_failed": 0});
    let job = f.job(json!({"period": 3600}), fields).await;
    let done = fire(&f, job, &[0, 0, 0, 0]).await;
    let going = f.run(job, 3).await;
    let want: BTreeSet<i64> = newest(&done, 2).into_iter().chain([going]).collect();
    f.wait_runs_are(job, &want).await;
    // Passes every 100 ms while it runs keep the same runs.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(f.run_or_gone(going).await.expect("kept while running")["outcome"], "running");
    let kept: BTreeSet<i64> = f.runs(job).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept, want);
}

#[tokio::test]
async fn a_pass_comes_once_enough_runs_were_created_long_before_the_interval() {
    // An hour between passes, but one as soon as 4 runs were created since the last.
    let f = fixture_with(&["--prune-interval-ms=3600000", "--prune-after-runs=4"]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 2, "keep_failed": 0})).await;
    let mut codes = [0; 16];
    codes[1] = 1;
    let ids = fire(&f, job, &codes).await;
    // A pass came every 4 runs or so (a few more when runs go faster than the pace is read):
    // one came after the 11th run was created, when the two newest succeeded runs were
    // beyond the first 8.
    let gone = eventually(WAIT, || async {
        for id in &ids[..8] {
            if f.run_or_gone(*id).await.is_some() {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(gone.is_some(), "pruned long before the interval: {:?} kept", f.runs(job).await);
    assert!(f.run_or_gone(ids[15]).await.is_some(), "the newest run is kept");
}

#[tokio::test]
async fn without_pacing_passes_wait_for_the_interval() {
    // The switch tests/full_disk.rs and bench/retention.py use to keep the pruner off.
    let f = fixture_with(&["--prune-interval-ms=3600000", "--prune-after-runs=0"]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 0, "keep_failed": 0})).await;
    let ids = fire(&f, job, &[0, 1, 0, 1, 0, 1, 0, 1]).await;
    // Four times the pace's poll go by: nothing is pruned.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let kept: BTreeSet<i64> = f.runs(job).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept, ids.iter().copied().collect(), "nothing pruned without a pass");
}

#[tokio::test]
async fn null_limits_follow_the_server_defaults_and_changes_apply_to_idle_jobs() {
    let f = fixture(&["--keep-succeeded", "2", "--keep-failed", "1"]).await;
    let job = f.job(json!({"period": 3600}), json!({})).await;
    let shown = f.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert_eq!(shown["keep_succeeded"], Value::Null);
    assert_eq!(shown["keep_failed"], Value::Null);
    let ids = fire(&f, job, &[0, 1, 0, 1, 0, 1, 0]).await;
    f.wait_runs_are(job, &[ids[6], ids[4], ids[5]].into()).await;

    // Lowered on a job that no longer runs: applied at the next pass all the same.
    let r = f.api.put(&format!("/api/v1/jobs/{job}"), json!({"keep_succeeded": 1, "keep_failed": 0})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["keep_succeeded"], 1);
    f.wait_runs_are(job, &[ids[6]].into()).await;

    // Back to null: the server's defaults again.
    let r =
        f.api.put(&format!("/api/v1/jobs/{job}"), json!({"keep_succeeded": null, "keep_failed": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["keep_failed"], Value::Null);
    let more = fire(&f, job, &[1, 0, 1, 0]).await;
    f.wait_runs_are(job, &[more[3], more[1], more[2]].into()).await;
}

#[tokio::test]
async fn limits_round_trip_and_bad_values_are_refused_without_effect() {
    let f = fixture(&[]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 0, "keep_failed": 100000})).await;
    let shown = f.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert_eq!((shown["keep_succeeded"].clone(), shown["keep_failed"].clone()), (json!(0), json!(100000)));

    // A partial PUT leaves them; null resets one.
    let r = f.api.put(&format!("/api/v1/jobs/{job}"), json!({"name": "renamed"})).await;
    assert_eq!(r.json()["keep_failed"], 100000);
    let r = f.api.put(&format!("/api/v1/jobs/{job}"), json!({"keep_failed": null})).await;
    assert_eq!(
        (r.json()["keep_succeeded"].clone(), r.json()["keep_failed"].clone()),
        (json!(0), Value::Null)
    );

    for (field, bad) in [
        ("keep_succeeded", json!(-1)),
        ("keep_failed", json!(100001)),
        ("keep_succeeded", json!("5")),
        ("keep_failed", json!(2.5)),
        ("keep_succeeded", json!(true)),
    ] {
        for r in [
            f.api.put(&format!("/api/v1/jobs/{job}"), json!({ field: bad })).await,
            f.api
                .post(
                    "/api/v1/jobs",
                    json!({"stack_id": f.stack_id, "schedule_id": shown["schedule"], field: bad}),
                )
                .await,
        ] {
            assert_eq!(r.status, 400, "{field} = {bad}: {}", r.text);
            let body = r.json();
            assert_eq!(body["code"], 4, "{}", r.text);
            assert!(body["msg"].as_str().unwrap().contains(field), "{}", r.text);
        }
    }
    let after = f.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
    assert_eq!((after["keep_succeeded"].clone(), after["keep_failed"].clone()), (json!(0), Value::Null));
    assert_eq!(f.api.get("/api/v1/jobs").await.json()["count"], 1, "no job was created");

    // The API description names both fields, on the job and on its input.
    let doc = Api::new(&f.server, None).get("/openapi.json").await.json();
    for schema in ["Job", "JobInput"] {
        for field in ["keep_succeeded", "keep_failed"] {
            let prop = &doc["components"]["schemas"][schema]["properties"][field];
            assert_eq!(prop["type"], json!(["integer", "null"]), "{schema}.{field}");
            assert_eq!(prop["maximum"], 100000, "{schema}.{field}");
        }
    }
}

#[tokio::test]
async fn deleting_a_job_deletes_its_runs() {
    let f = fixture(&[]).await;
    let job = f.job(json!({"period": 3600}), json!({})).await;
    let ids = fire(&f, job, &[0, 1]).await;
    let r = f.api.delete(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(r.json(), json!({ "deleted": job }));
    for id in ids {
        assert!(f.run_or_gone(id).await.is_none(), "run {id} outlived its job");
    }
}

/// The `count` of a job's runs page is the database's kept count (migration 0018): it follows
/// runs added (run now, scheduled slots), pruned, and deleted by an operator's SQL, and goes
/// with its job.
#[tokio::test]
async fn the_runs_page_count_follows_every_run_added_or_removed() {
    let f = fixture(&[]).await;
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 3, "keep_failed": 2})).await;
    let every_second = f.job(json!({"period": 1}), json!({"enabled": true})).await;
    let ids = fire(&f, job, &[0, 1, 0, 0, 2, 0, 1]).await;
    let counted = |job: i64| format!("SELECT COUNT(*) FROM runs WHERE job_id = {job}");
    // Seven added, two pruned (the oldest succeeded one and the oldest failed one).
    let kept = eventually(WAIT, || async { (f.runs(job).await.len() == 5).then_some(()) }).await;
    assert!(kept.is_some(), "pruned to 3 + 2: {:?}", f.runs(job).await);
    assert_eq!(f.page_count(job).await, 5);
    assert_eq!(f.count(&counted(job)), 5);
    // Scheduled slots: stopped, then counted the same both ways.
    let fired = eventually(WAIT, || async { (f.count(&counted(every_second)) >= 3).then_some(()) }).await;
    assert!(fired.is_some(), "three slots fired");
    let r = f.api.put(&format!("/api/v1/jobs/{every_second}"), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let settled = eventually(WAIT, || async {
        let active = f.count(&format!(
            "SELECT COUNT(*) FROM runs WHERE job_id = {every_second} AND status IN ('queued', 'running')"
        ));
        (active == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the every-second job's runs ended");
    assert_eq!(f.page_count(every_second).await, f.count(&counted(every_second)));
    // An operator's delete.
    f.sql(&format!("DELETE FROM runs WHERE id = {}", ids[ids.len() - 1]));
    assert_eq!(f.page_count(job).await, 4);
    // A job's count goes with it; a job without runs counts 0.
    let r = f.api.delete(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(f.count(&format!("SELECT COUNT(*) FROM job_run_counts WHERE job_id = {job}")), 0);
    let idle = f.job(json!({"period": 3600}), json!({})).await;
    assert_eq!(f.page_count(idle).await, 0);
}

/// A receiver that answers 200 to anything.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn the_day_limit_removes_old_finished_runs_actions_and_deliveries_only() {
    let f = fixture(&["--keep-runs-days", "1", "--webhook-retry-base-ms", "3600000"]).await;
    let job = f.job(json!({"period": 3600}), json!({"name": "quick"})).await;
    let slow = f.job(json!({"period": 3600}), json!({"name": "slow", "command": "sleep 30"})).await;
    // Deliveries: one subscription delivered to, one whose receiver is down (stays pending).
    let ok =
        f.api.create("/api/v1/webhooks", json!({"url": receiver().await, "events": ["run.succeeded"]})).await;
    let down = format!("http://127.0.0.1:{}/hook", free_port());
    let failing = f.api.create("/api/v1/webhooks", json!({"url": down, "events": ["run.succeeded"]})).await;

    // Old history: finished runs, a finished v3 action; and a run and an action still going.
    let old_runs = fire(&f, job, &[0, 1, 0]).await;
    let stack_uid = f.api.get(&format!("/api/v1/blockstacks/byid/{}", f.stack_id)).await.json()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let job_uid = |id: i64| {
        let api = f.api.clone();
        async move {
            api.get(&format!("/api/v1/jobs/byid/{id}")).await.json()["uid"].as_str().unwrap().to_string()
        }
    };
    let action = |uid: String| {
        let (api, stack_uid) = (f.api.clone(), stack_uid.clone());
        async move {
            let r = api.post(&format!("/api/3/stacks/{stack_uid}/jobs/{uid}/run_now.json"), json!({})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()["response"]["id"].as_i64().unwrap()
        }
    };
    let action_path = |id: i64| format!("/api/3/stacks/{stack_uid}/actions/{id}.json");
    let old_action = action(job_uid(job).await).await;
    let running_action = action(job_uid(slow).await).await;
    eventually(WAIT, || async {
        let a = f.api.get(&action_path(old_action)).await.json();
        (!a["response"]["finished_at"].is_null()).then_some(())
    })
    .await
    .expect("the quick action finished");
    let deliveries = |hook: i64| {
        let api = f.api.clone();
        async move {
            let r = api.get(&format!("/api/v1/webhooks/byid/{hook}/deliveries")).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()["deliveries"].as_array().unwrap().clone()
        }
    };
    eventually(WAIT, || async {
        let delivered = deliveries(ok).await.iter().filter(|d| d["status"] == "delivered").count();
        let tried = deliveries(failing).await.iter().filter(|d| d["attempts"].as_i64() >= Some(1)).count();
        (delivered >= 3 && tried >= 3).then_some(())
    })
    .await
    .expect("deliveries attempted");
    let running_run = eventually(WAIT, || async {
        let runs = f.runs(slow).await;
        runs.iter().find(|(_, o)| o == "running").map(|(id, _)| *id)
    })
    .await
    .expect("the slow run is going");

    // Two days pass, as far as the rows can tell.
    let two_days = 2 * DAY_MS;
    f.sql(&format!(
        "UPDATE runs SET created_at = created_at - {two_days}, scheduled_for = scheduled_for - {two_days}, \
         started_at = started_at - {two_days}, finished_at = finished_at - {two_days}; \
         UPDATE actions SET started_at = started_at - {two_days}, finished_at = finished_at - {two_days}; \
         UPDATE webhook_deliveries SET created_at = created_at - {two_days}, updated_at = updated_at - {two_days}"
    ));
    // Fresh history after them.
    let fresh = fire(&f, job, &[0]).await[0];

    eventually(WAIT, || async {
        let mut gone = true;
        for id in &old_runs {
            gone &= f.run_or_gone(*id).await.is_none();
        }
        gone &= f.api.get(&action_path(old_action)).await.status == 404;
        gone &= deliveries(ok).await.iter().all(|d| d["status"] != "delivered" || !is_old(d));
        gone.then_some(())
    })
    .await
    .expect("old finished runs, actions and deliveries pruned");

    // What is unfinished, pending or recent stays.
    assert_eq!(f.run_or_gone(running_run).await.expect("running run kept")["outcome"], "running");
    let a = f.api.get(&action_path(running_action)).await;
    assert_eq!(a.status, 200, "unfinished action kept: {}", a.text);
    assert!(a.json()["response"]["finished_at"].is_null());
    assert!(f.run_or_gone(fresh).await.is_some(), "a fresh run is kept");
    let pending = deliveries(failing).await;
    let old_pending = pending.iter().filter(|d| d["status"] == "pending" && is_old(d)).count();
    assert_eq!(old_pending, 3, "{pending:?}");
}

#[tokio::test]
async fn the_day_limit_removes_old_monitor_pings_besides_the_count_limit() {
    let f = fixture(&["--keep-runs-days", "1"]).await;
    let m = f
        .api
        .post("/api/v1/monitors", json!({"name": "elsewhere", "schedule": {"period": 3600}}))
        .await
        .json();
    let (id, ping_url) = (m["id"].as_i64().unwrap(), m["ping_url"].as_str().unwrap().to_string());
    let anon = Api::new(&f.server, None);
    for body in ["old 1", "old 2", "old 3"] {
        let r = anon.send_raw("POST", &ping_url, Some("text/plain"), body.as_bytes().to_vec()).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Two days pass for those pings; then a fresh one comes.
    f.sql(&format!("UPDATE monitor_pings SET created_at = created_at - {}", 2 * DAY_MS));
    let r = anon.send_raw("POST", &ping_url, Some("text/plain"), b"fresh".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let bodies = || async {
        let r = f.api.get(&format!("/api/v1/monitors/byid/{id}/pings")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["pings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["body"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let kept = eventually(WAIT, || async {
        let b = bodies().await;
        (b.len() == 1).then_some(b)
    })
    .await
    .expect("the pings older than a day are pruned");
    assert_eq!(kept, ["fresh"]);
    // The monitor itself still knows when it was last pinged.
    let m = f.api.get(&format!("/api/v1/monitors/byid/{id}")).await.json();
    assert!(m["last_ping_at"].is_string(), "{m}");
}

/// Whether a delivery was created more than a day ago (backdated by the test).
fn is_old(delivery: &Value) -> bool {
    let created = delivery["created_at"].as_str().unwrap_or_default();
    let created = chrono::DateTime::parse_from_rfc3339(created).map(|t| t.timestamp_millis()).unwrap_or(0);
    created < chrono::Utc::now().timestamp_millis() - DAY_MS
}

/// A `psql` session holding the pruning lock until dropped, as a node in the middle of
/// pruning would.
struct LockHolder(std::process::Child, Option<std::process::ChildStdin>);

impl LockHolder {
    fn take(db_url: &str) -> LockHolder {
        use std::io::{BufRead, Write};
        let mut psql = Command::new("psql")
            .args([db_url, "-q", "-At"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("psql runs");
        let mut stdin = psql.stdin.take().unwrap();
        writeln!(stdin, "SELECT pg_advisory_lock(7165912477223515502); SELECT 'held';").unwrap();
        let mut out = std::io::BufReader::new(psql.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "held" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "psql ended");
        }
        LockHolder(psql, Some(stdin))
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.1.take());
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn on_postgresql_one_node_prunes_at_a_time_and_another_takes_over_when_it_dies() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "rita", None);
    // The lock is held elsewhere when the first node starts: it prunes nothing.
    let holder = LockHolder::take(&db.url);
    let first = Server::start_on(&db, &[FAST_PRUNER]);
    let api = Api::new(&first, Some(&token));
    let stack_id = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "exit ${1:-0}"})).await;
    let f = Fixture { db, server: first, api, stack_id };
    let job = f.job(json!({"period": 3600}), json!({"keep_succeeded": 1, "keep_failed": 1})).await;
    let ids = fire(&f, job, &[0, 0, 1, 1]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(f.runs(job).await.len(), 4, "nothing pruned while another holds the lock");

    // Released: the first node takes it and prunes.
    drop(holder);
    f.wait_runs_are(job, &[ids[1], ids[3]].into()).await;

    // A second node: the first keeps the lock and prunes the second's runs too.
    let second = Server::start_on(&f.db, &[FAST_PRUNER]);
    let api = Api::new(&second, Some(&token));
    let on_second = Fixture { db: TestDb::alias(&f.db, &f.db.url), server: second, api, stack_id };
    let more = fire(&on_second, job, &[0, 1]).await;
    on_second.wait_runs_are(job, &[more[0], more[1]].into()).await;
    assert!(!on_second.server.log().contains("pruning history"), "{}", on_second.server.log());

    // The first node dies holding it: the second takes over.
    let mut first = f.server;
    assert!(!first.log().contains("pruning history"), "{}", first.log());
    first.kill9();
    let last = fire(&on_second, job, &[0, 1]).await;
    on_second.wait_runs_are(job, &[last[0], last[1]].into()).await;
}

/// `PRAGMA <name>` of a SQLite database, through `sqlite3`.
fn pragma(path: &str, name: &str) -> i64 {
    let out =
        Command::new("sqlite3").args(["-cmd", ".timeout 10000", path, &format!("PRAGMA {name}")]).output();
    let out = out.expect("sqlite3 runs");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number")
}

#[tokio::test]
async fn on_sqlite_pruned_space_is_given_back_and_older_databases_are_converted() {
    let mut f = fixture(&[]).await;
    let Some(path) = f.db.url.strip_prefix("sqlite://").map(str::to_string) else {
        eprintln!("SQLite only: PostgreSQL's autovacuum reclaims space");
        return;
    };
    assert_eq!(pragma(&path, "auto_vacuum"), 2, "a new database is created with incremental vacuum");
    // A database from before retention: no auto-vacuum. The next start converts it.
    f.server.stop();
    f.sql("PRAGMA auto_vacuum = NONE; VACUUM;");
    assert_eq!(pragma(&path, "auto_vacuum"), 0);
    f.server = Server::start_on(&f.db, &[FAST_PRUNER]);
    f.api = Api::new(&f.server, f.api.token.clone().as_deref());
    assert_eq!(pragma(&path, "auto_vacuum"), 2, "converted at start");
    assert!(f.server.log().contains("incremental vacuum"), "the conversion is logged");

    // 20 runs with 200 kB logs each: 4 MB of history, kept at first.
    let job = f
        .job(
            json!({"period": 3600}),
            json!({"command": "head -c 200000 /dev/zero | tr '\\0' x; exit ${1:-0}"}),
        )
        .await;
    let before = pragma(&path, "page_count");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(f.run(job, 0).await);
    }
    for id in &ids {
        f.wait_ended(*id).await;
    }
    assert!(f.runs(job).await.iter().all(|(_, outcome)| outcome == "succeeded"));
    let grown = pragma(&path, "page_count");
    assert!(grown > before + 800, "4 MB of logs stored: {before} → {grown} pages");
    // In the file itself once the WAL is checkpointed (every second).
    let page_size = pragma(&path, "page_size") as u64;
    let file_len = || std::fs::metadata(&path).unwrap().len();
    let big = eventually(WAIT, || async { (file_len() >= grown as u64 * page_size).then_some(()) }).await;
    assert!(big.is_some(), "file {} bytes for {grown} pages", file_len());

    // None kept any more: their pages are freed, and given back but for a quarter.
    let r = f.api.put(&format!("/api/v1/jobs/{job}"), json!({"keep_succeeded": 0})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    f.wait_runs_are(job, &BTreeSet::new()).await;
    let shrunk = eventually(WAIT, || async {
        let (pages, free) = (pragma(&path, "page_count"), pragma(&path, "freelist_count"));
        (free <= pages / 4 + 1 && pages < before + 100).then_some(pages)
    })
    .await;
    let (pages, free) = (pragma(&path, "page_count"), pragma(&path, "freelist_count"));
    assert!(shrunk.is_some(), "given back: {grown} → {pages} pages ({free} free; {before} at first)");
    // And the file, at the next checkpoint.
    let small =
        eventually(WAIT, || async { (file_len() <= (before as u64 + 100) * page_size).then_some(()) });
    assert!(small.await.is_some(), "file {} bytes", file_len());
}
