//! Job chains (issue 17): a job runs after other jobs' runs — on success, failure or always;
//! fan-in (once all upstreams ran) or `after_any`; the final attempt only; never for a paused
//! job; cycles refused; exactly once through a restart, and across a three-node PostgreSQL
//! cluster with a node SIGKILLed (that one needs `CRONSTACK_TEST_POSTGRES`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// A schedule that never fires while the tests run (a job needs one; chains trigger these).
const NEVER: i64 = 4_102_444_800;

struct World {
    api: Api,
    stack: i64,
    schedule: i64,
    server: Server,
    db: TestDb,
    token: String,
}

async fn world(flags: &[&str]) -> World {
    let db = TestDb::new();
    let token = add_user(&db, "chain", None);
    let server = Server::start_on(&db, flags);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"timestamp": NEVER}})).await;
    World { api, stack, schedule, server, db, token }
}

impl World {
    /// An enabled job with `command` and the extra fields of `more`.
    async fn job(&self, name: &str, command: &str, more: Value) -> i64 {
        let mut body = json!({"stack_id": self.stack, "schedule_id": self.schedule, "name": name,
            "enabled": true, "command": command});
        for (k, v) in more.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.api.create("/api/v1/jobs", body).await
    }

    /// Runs `job` now with `args` and waits for that run (not a retry) to end.
    async fn run(&self, job: i64, args: &[&str]) -> Value {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({"args": args})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        self.ended(r.json()["id"].as_i64().unwrap()).await
    }

    /// Run `id` once it has ended.
    async fn ended(&self, id: i64) -> Value {
        eventually(Duration::from_secs(60), || async {
            let run = self.api.get(&format!("/api/v1/runs/{id}")).await.json();
            (!matches!(run["outcome"].as_str(), Some("queued" | "running"))).then_some(run)
        })
        .await
        .unwrap_or_else(|| panic!("run {id} ends"))
    }

    /// Every run of `job`, oldest first.
    async fn runs(&self, job: i64) -> Vec<Value> {
        let mut runs = self.api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await.json()["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        runs.reverse();
        runs
    }

    /// Waits until `job` has `n` runs, all ended; answers them, oldest first.
    async fn ended_runs(&self, job: i64, n: usize) -> Vec<Value> {
        eventually(Duration::from_secs(60), || async {
            let runs = self.runs(job).await;
            let done = runs.iter().all(|r| !matches!(r["outcome"].as_str(), Some("queued" | "running")));
            (runs.len() == n && done).then_some(runs)
        })
        .await
        .unwrap_or_else(|| panic!("job {job} has {n} ended runs"))
    }
}

fn summary(runs: &[Value]) -> Vec<String> {
    runs.iter().map(|r| format!("#{} {} {}", r["id"], r["trigger"], r["outcome"])).collect()
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn success_failure_and_always_chains_run_with_the_upstream_in_their_environment() {
    let w = world(&[]).await;
    let env = r#"echo "up=$CRONSTACK_UPSTREAM_RUN_ID outcome=$CRONSTACK_UPSTREAM_OUTCOME""#;
    let a = w.job("a", r#"exit "${1:-0}""#, json!({})).await;
    let on_success = w.job("on-success", env, json!({"after": [{"job_id": a, "on": "success"}]})).await;
    let on_failure = w.job("on-failure", env, json!({"after": [{"job_id": a, "on": "failure"}]})).await;
    let always = w.job("always", env, json!({"after": [{"job_id": a, "on": "always"}]})).await;
    let shown = w.api.get(&format!("/api/v1/jobs/byid/{on_failure}")).await.json();
    assert_eq!(shown["after"], json!([{"job_id": a, "on": "failure"}]), "{shown}");
    assert_eq!(shown["after_any"], false);

    let ok = w.run(a, &[]).await;
    assert_eq!(ok["outcome"], "succeeded");
    let chained = w.ended_runs(on_success, 1).await;
    let run = &chained[0];
    assert_eq!(run["trigger"], "chain", "{run}");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["upstream_runs"], json!([id(&ok)]), "{run}");
    assert_eq!(w.api.run_log(id(run)).await.trim(), format!("up={} outcome=succeeded", id(&ok)));
    w.ended_runs(always, 1).await;

    let failed = w.run(a, &["3"]).await;
    assert_eq!(failed["outcome"], "failed");
    let chained = w.ended_runs(on_failure, 1).await;
    assert_eq!(chained[0]["upstream_runs"], json!([id(&failed)]));
    assert_eq!(w.api.run_log(id(&chained[0])).await.trim(), format!("up={} outcome=failed", id(&failed)));
    let both = w.ended_runs(always, 2).await;
    assert_eq!(both[1]["upstream_runs"], json!([id(&failed)]));
    // The chained runs of a run's end are recorded with that end: the failure's on-success
    // run would exist by now, and the success's on-failure one.
    assert_eq!(w.runs(on_success).await.len(), 1, "{:?}", summary(&w.runs(on_success).await));
    assert_eq!(w.runs(on_failure).await.len(), 1);
    // Other runs show no upstream.
    assert_eq!(ok["upstream_runs"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_in_waits_for_every_upstream_and_after_any_runs_on_each() {
    let w = world(&[]).await;
    let env = r#"echo "up=$CRONSTACK_UPSTREAM_RUN_ID outcome=$CRONSTACK_UPSTREAM_OUTCOME""#;
    let one = w.job("one", "true", json!({})).await;
    let two = w.job("two", r#"exit "${1:-0}""#, json!({})).await;
    let after = json!([{"job_id": one, "on": "success"}, {"job_id": two, "on": "always"}]);
    let all = w.job("all", env, json!({"after": after})).await;
    let any = w.job("any", "true", json!({"after": after, "after_any": true})).await;

    let first = w.run(one, &[]).await;
    let second = w.run(one, &[]).await;
    // `any` ran for each; `all` still waits for `two`.
    w.ended_runs(any, 2).await;
    assert!(w.runs(all).await.is_empty(), "{:?}", summary(&w.runs(all).await));
    let third = w.run(two, &["4"]).await;
    assert_eq!(third["outcome"], "failed");
    let fired = w.ended_runs(all, 1).await;
    // One run for all the upstream runs since its last chained run; the environment names the
    // run that completed the condition.
    assert_eq!(fired[0]["upstream_runs"], json!([id(&first), id(&second), id(&third)]));
    assert_eq!(w.api.run_log(id(&fired[0])).await.trim(), format!("up={} outcome=failed", id(&third)));
    w.ended_runs(any, 3).await;

    // The marks were consumed: `two` alone does not fire `all` again, `one` then does.
    let fourth = w.run(two, &[]).await;
    w.ended_runs(any, 4).await;
    assert_eq!(w.runs(all).await.len(), 1);
    let fifth = w.run(one, &[]).await;
    let fired = w.ended_runs(all, 2).await;
    assert_eq!(fired[1]["upstream_runs"], json!([id(&fourth), id(&fifth)]));
    w.ended_runs(any, 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_downstream_neither_runs_nor_queues() {
    let w = world(&[]).await;
    let a = w.job("a", "true", json!({})).await;
    let b = w.job("b", "true", json!({"enabled": false, "after": [{"job_id": a, "on": "success"}]})).await;
    let witness = w.job("witness", "true", json!({"after": [{"job_id": a, "on": "success"}]})).await;
    w.run(a, &[]).await;
    // The witness's run is recorded with the same end as b's would be.
    w.ended_runs(witness, 1).await;
    assert!(w.runs(b).await.is_empty());
    // Resumed, it does not run for what came while it was paused …
    let r = w.api.put(&format!("/api/v1/jobs/{b}"), json!({"enabled": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // … only for what comes next.
    let next = w.run(a, &[]).await;
    let runs = w.ended_runs(b, 1).await;
    assert_eq!(runs[0]["upstream_runs"], json!([id(&next)]));
    w.ended_runs(witness, 2).await;
    assert_eq!(w.runs(b).await.len(), 1);

    // A fan-in forgets what it had counted when paused: resumed, it waits for all again.
    let x = w.job("x", "true", json!({})).await;
    let fan = json!([{"job_id": a, "on": "success"}, {"job_id": x, "on": "success"}]);
    let f = w.job("f", "true", json!({ "after": fan })).await;
    w.run(a, &[]).await;
    for enabled in [false, true] {
        let r = w.api.put(&format!("/api/v1/jobs/{f}"), json!({ "enabled": enabled })).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let x_run = w.run(x, &[]).await;
    // Its run would have been recorded with x's end.
    assert!(w.runs(f).await.is_empty(), "{:?}", summary(&w.runs(f).await));
    let a_run = w.run(a, &[]).await;
    let runs = w.ended_runs(f, 1).await;
    assert_eq!(runs[0]["upstream_runs"], json!([id(&x_run), id(&a_run)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_final_attempt_triggers() {
    let w = world(&[]).await;
    let counter = w.db.dir().join("attempts");
    // Fails twice, then succeeds.
    let command = format!(
        "n=$(cat '{0}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{0}'; [ $n -ge 3 ]",
        counter.display()
    );
    let a = w.job("a", &command, json!({"retries": 2, "retry_backoff_s": 1})).await;
    let always = w.job("always", "true", json!({"after": [{"job_id": a, "on": "always"}]})).await;
    let on_failure = w.job("on-failure", "true", json!({"after": [{"job_id": a, "on": "failure"}]})).await;
    let first = w.run(a, &[]).await;
    assert_eq!(first["outcome"], "failed");
    let attempts = w.ended_runs(a, 3).await;
    assert_eq!(attempts[2]["attempt"], 3);
    assert_eq!(attempts[2]["outcome"], "succeeded");
    let chained = w.ended_runs(always, 1).await;
    assert_eq!(chained[0]["upstream_runs"], json!([id(&attempts[2])]));
    // The failed attempts triggered nothing (their chained runs would have been recorded
    // with them, before the final one).
    assert!(w.runs(on_failure).await.is_empty());

    // A chained run's retries keep its upstream.
    let b = w
        .job(
            "b",
            r#"echo "up=$CRONSTACK_UPSTREAM_RUN_ID attempt=$CRONSTACK_ATTEMPT"; exit 1"#,
            json!({"retries": 1, "retry_backoff_s": 1, "after": [{"job_id": always, "on": "success"}]}),
        )
        .await;
    let up = w.run(always, &[]).await;
    let runs = w.ended_runs(b, 2).await;
    assert_eq!(runs[1]["trigger"], "retry");
    assert_eq!(w.api.run_log(id(&runs[1])).await.trim(), format!("up={} attempt=2", id(&up)));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_chains_are_refused() {
    let w = world(&[]).await;
    let a = w.job("a", "true", json!({})).await;
    let b = w.job("b", "true", json!({"after": [{"job_id": a, "on": "success"}]})).await;
    let c = w.job("c", "true", json!({"after": [{"job_id": b, "on": "always"}]})).await;

    let r = w.api.put(&format!("/api/v1/jobs/{a}"), json!({"after": [{"job_id": c, "on": "success"}]})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["code"], 4, "{}", r.text);
    let msg = r.json()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains(&format!("a chain cycle: {a} → {b} → {c} → {a}")), "{msg}");
    let r = w.api.put(&format!("/api/v1/jobs/{a}"), json!({"after": [{"job_id": a, "on": "success"}]})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{}", r.text);
    assert!(r.text.contains(&format!("{a} → {a}")), "{}", r.text);
    // Nothing of a refused change is stored.
    assert_eq!(w.api.get(&format!("/api/v1/jobs/byid/{a}")).await.json()["after"], json!([]));

    // Unknown, someone else's, a hook job: 404 code 25. Twice the same job, a bad `on`: 400.
    let other_token = add_user(&w.db, "other", None);
    let other = Api::new(&w.server, Some(&other_token));
    let ostack = other.create("/api/v1/blockstacks", json!({"name": "o", "command": "true"})).await;
    let osched = other.create("/api/v1/schedules", json!({"config": {"timestamp": NEVER}})).await;
    let theirs = other.create("/api/v1/jobs", json!({"stack_id": ostack, "schedule_id": osched})).await;
    let hook = w.api.get(&format!("/api/v1/blockstacks/exec/{}", w.stack)).await;
    assert_eq!(hook.status, 200, "{}", hook.text);
    let hook_job: i64 = hook.header("x-cronstack-job-id").unwrap().parse().unwrap();
    for upstream in [999_999, theirs, hook_job] {
        let body = json!({"stack_id": w.stack, "schedule_id": w.schedule, "after": [{"job_id": upstream, "on": "success"}]});
        let r = w.api.post("/api/v1/jobs", body).await;
        assert_eq!((r.status, r.json()["code"].clone()), (404, json!(25)), "{upstream}: {}", r.text);
    }
    // Nor may the other user chain after ours.
    let body = json!({"stack_id": ostack, "schedule_id": osched, "after": [{"job_id": a, "on": "success"}]});
    let r = other.post("/api/v1/jobs", body).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!(25)), "{}", r.text);
    for after in [
        json!([{"job_id": a, "on": "success"}, {"job_id": a, "on": "failure"}]),
        json!([{"job_id": a, "on": "sometimes"}]),
        json!([{"job_id": a}]),
        json!([{"job_id": a, "on": "success", "extra": 1}]),
        json!(null),
    ] {
        let r = w.api.put(&format!("/api/v1/jobs/{c}"), json!({ "after": after })).await;
        assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{after}: {}", r.text);
        assert!(r.json()["msg"].as_str().unwrap().contains("after"), "{}", r.text);
    }
    let r = w.api.put(&format!("/api/v1/jobs/{c}"), json!({"after_any": null})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{}", r.text);
    // `[]` removes the chain.
    let r = w.api.put(&format!("/api/v1/jobs/{c}"), json!({"after": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["after"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_with_after_and_no_schedule_runs_only_after_its_upstream() {
    let w = world(&[]).await;
    let a = w.job("a", "true", json!({})).await;
    let chained = |name: &str| {
        json!({"stack_id": w.stack, "name": name, "enabled": true, "command": "echo chained",
            "after": [{"job_id": a, "on": "success"}]})
    };
    let b = w.api.create("/api/v1/jobs", chained("b")).await;
    let c = w.api.create("/api/v1/jobs", chained("c")).await;
    let shown = w.api.get(&format!("/api/v1/jobs/byid/{b}")).await.json();
    assert_eq!(shown["next_run"], Value::Null, "{shown}");
    // Put on the caller's manual schedule (Dkron's `@manually`), one for all such jobs.
    let schedule = shown["schedule"].as_i64().unwrap();
    let sched = w.api.get(&format!("/api/v1/schedules/byid/{schedule}")).await.json();
    assert_eq!(sched["config"], json!({"manual": true}), "{sched}");
    let other = w.api.get(&format!("/api/v1/jobs/byid/{c}")).await.json();
    assert_eq!(other["schedule"], json!(schedule), "{other}");
    // Without `after` a job still needs its schedule; nothing is created.
    let mut lone = chained("lone");
    lone.as_object_mut().unwrap().remove("after");
    let r = w.api.post("/api/v1/jobs", lone).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!(4)), "{}", r.text);
    assert!(r.text.contains("schedule_id"), "{}", r.text);
    // A schedule of one's own may be manual too; its next fire times are none.
    let own = w.api.create("/api/v1/schedules", json!({"config": {"manual": true}})).await;
    let sched = w.api.get(&format!("/api/v1/schedules/byid/{own}")).await.json();
    assert_eq!(sched["config"], json!({"manual": true}), "{sched}");
    for bad in [json!({"manual": false}), json!({"manual": true, "period": 60}), json!({"manual": 1})] {
        let r = w.api.post("/api/v1/schedules", json!({ "config": bad })).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.text.contains("manual"), "{bad}: {}", r.text);
    }

    // Cloud 66's dialect shows the chain in the job's params, and no cron.
    let stack_uid = w.api.get(&format!("/api/v1/blockstacks/byid/{}", w.stack)).await.json()["uid"].clone();
    let job_uid = shown["uid"].as_str().unwrap();
    let v3 = w.api.get(&format!("/api/3/stacks/{}/jobs/{job_uid}", stack_uid.as_str().unwrap())).await;
    assert_eq!(v3.status, 200, "{}", v3.text);
    let v3 = &v3.json()["response"];
    assert_eq!(
        v3["params"],
        json!({"command": "echo chained", "after": [{"job_id": a, "on": "success"}]}),
        "{v3}"
    );
    assert_eq!(v3["cron"], Value::Null, "{v3}");

    let up = w.run(a, &[]).await;
    let runs = w.ended_runs(b, 1).await;
    assert_eq!(
        (runs[0]["trigger"].clone(), runs[0]["upstream_runs"].clone()),
        (json!("chain"), json!([id(&up)]))
    );
    w.ended_runs(c, 1).await;
    // Run now works as for any job.
    let now = w.run(b, &[]).await;
    assert_eq!(
        (now["trigger"].clone(), now["outcome"].clone()),
        (json!("run_now"), json!("succeeded")),
        "{now}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_changes_cannot_close_a_cycle_between_them() {
    // A after B and B after A, sent at once: each alone closes no cycle with the chains as
    // they were read; one of them must be refused.
    let w = world(&[]).await;
    for round in 0..12 {
        let a = w.job(&format!("a{round}"), "true", json!({})).await;
        let b = w.job(&format!("b{round}"), "true", json!({})).await;
        let (path_a, path_b) = (format!("/api/v1/jobs/{a}"), format!("/api/v1/jobs/{b}"));
        let (ra, rb) = tokio::join!(
            w.api.put(&path_a, json!({"after": [{"job_id": b, "on": "success"}]})),
            w.api.put(&path_b, json!({"after": [{"job_id": a, "on": "success"}]})),
        );
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "round {round}: {} / {}", ra.text, rb.text);
        let refused = if ra.status == 400 { &ra } else { &rb };
        assert!(refused.text.contains("a chain cycle"), "{}", refused.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_upstream_leaves_the_chains_it_was_in() {
    let w = world(&[]).await;
    let a = w.job("a", "true", json!({})).await;
    let gone = w.job("gone", "true", json!({"enabled": false})).await;
    let fan = json!([{"job_id": a, "on": "success"}, {"job_id": gone, "on": "failure"}]);
    let f = w.job("f", "true", json!({ "after": fan })).await;
    let only = w.job("only", "true", json!({"after": [{"job_id": gone, "on": "always"}]})).await;
    let r = w.api.delete(&format!("/api/v1/jobs/{gone}")).await;
    assert_eq!(r.json(), json!({ "deleted": gone }), "{}", r.text);
    let job = w.api.get(&format!("/api/v1/jobs/byid/{f}")).await.json();
    assert_eq!(job["after"], json!([{"job_id": a, "on": "success"}]), "{job}");
    assert_eq!(w.api.get(&format!("/api/v1/jobs/byid/{only}")).await.json()["after"], json!([]));
    // The fan-in no longer waits for it, and the job can be changed as it is shown.
    let up = w.run(a, &[]).await;
    assert_eq!(w.ended_runs(f, 1).await[0]["upstream_runs"], json!([id(&up)]));
    let r = w.api.put(&format!("/api/v1/jobs/{f}"), json!({ "after": job["after"] })).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_between_the_upstream_end_and_the_chained_run_neither_loses_nor_doubles_it() {
    // One run at a time: the chained run waits behind a blocker, then the server is killed.
    let flags = ["--max-concurrent-runs", "1", "--lease-s", "3"];
    let mut w = world(&flags).await;
    let pid_file = w.db.dir().join("blocker.pid");
    let started = w.db.dir().join("started");
    let a = w.job("a", "sleep 1", json!({})).await;
    let blocker =
        w.job("blocker", &format!("echo $$ > '{}'; sleep 120", pid_file.display()), json!({})).await;
    let b = w
        .job(
            "b",
            &format!("echo \"$CRONSTACK_RUN_ID\" >> '{}'", started.display()),
            json!({"after": [{"job_id": a, "on": "success"}]}),
        )
        .await;
    let r = w.api.post(&format!("/api/v1/jobs/byid/{a}/run"), json!({})).await;
    let a_run = r.json()["id"].as_i64().unwrap();
    eventually(Duration::from_secs(30), || async {
        let run = w.api.get(&format!("/api/v1/runs/{a_run}")).await.json();
        (run["outcome"] == "running").then_some(())
    })
    .await
    .expect("a starts");
    // The blocker waits for a's permit, and takes it before b's chained run.
    let r = w.api.post(&format!("/api/v1/jobs/byid/{blocker}/run"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let queued = eventually(Duration::from_secs(30), || async {
        let runs = w.runs(b).await;
        runs.first().filter(|r| r["outcome"] == "queued").cloned()
    })
    .await
    .expect("b's chained run is recorded, queued behind the blocker");
    assert_eq!(queued["upstream_runs"], json!([a_run]));
    w.server.kill9();
    if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok()) {
        kill_job_group(pid);
    }

    let server = Server::start_on(&w.db, &flags);
    let api = Api::new(&server, Some(&w.token));
    let ran = eventually(Duration::from_secs(60), || async {
        let run = api.get(&format!("/api/v1/runs/{}", id(&queued))).await.json();
        (run["outcome"] == "succeeded").then_some(run)
    })
    .await
    .expect("the chained run runs after the restart");
    assert_eq!(ran["upstream_runs"], json!([a_run]));
    // Once: one chained run recorded, one process started.
    let runs = api.get(&format!("/api/v1/jobs/byid/{b}/runs")).await.json();
    assert_eq!(runs["count"], 1, "{runs}");
    let lines = std::fs::read_to_string(&started).unwrap();
    assert_eq!(lines.lines().collect::<Vec<_>>(), vec![id(&queued).to_string()], "{lines}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sets_and_shows_chains_windows_and_limits() {
    let w = world(&[]).await;
    let a = w.job("extract", "true", json!({})).await;
    let b = w.job("load", "true", json!({})).await;
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env("CRONSTACK_URL", &w.server.base)
            .env("CRONSTACK_TOKEN", &w.token)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    cli(&[
        "jobs",
        "create",
        "report",
        "--stack",
        "s",
        "--schedule",
        &w.schedule.to_string(),
        "--after",
        "extract",
        "--after",
        &format!("{b}:always"),
        "--after-any",
        "--jitter",
        "7",
        "--not-before",
        "2030-01-01T00:00:00Z",
        "--not-after",
        "2031-01-01T00:00:00Z",
        "--max-runs",
        "5",
    ]);
    let job = w.api.get("/api/v1/jobs/byname/report").await.json();
    assert_eq!(job["after"], json!([{"job_id": a, "on": "success"}, {"job_id": b, "on": "always"}]));
    // With --after and no schedule, the job runs only after its upstream (the manual schedule).
    cli(&["jobs", "create", "after-only", "--stack", "s", "--after", "extract"]);
    let only = w.api.get("/api/v1/jobs/byname/after-only").await.json();
    assert_eq!((&only["after"], &only["next_run"]), (&json!([{"job_id": a, "on": "success"}]), &Value::Null));
    let sched = w.api.get(&format!("/api/v1/schedules/byid/{}", only["schedule"])).await.json();
    assert_eq!(sched["config"], json!({"manual": true}), "{sched}");
    assert_eq!((&job["after_any"], &job["jitter_s"], &job["max_runs"]), (&json!(true), &json!(7), &json!(5)));
    assert_eq!(
        (&job["not_before"], &job["not_after"]),
        (&json!("2030-01-01T00:00:00Z"), &json!("2031-01-01T00:00:00Z"))
    );
    let shown = cli(&["jobs", "show", "report"]);
    for needle in [
        format!("extract (#{a}) on success, load (#{b}) on always — each run of any"),
        "jitter".into(),
        "7s".into(),
        "from 2030-01-01T00:00:00Z to 2031-01-01T00:00:00Z".into(),
        "5 (0 fired)".into(),
    ] {
        assert!(shown.contains(&needle), "{needle:?} in:\n{shown}");
    }
    cli(&[
        "jobs",
        "edit",
        "report",
        "--after",
        "load:failure",
        "--after-all",
        "--no-window",
        "--no-max-runs",
    ]);
    let job = w.api.get("/api/v1/jobs/byname/report").await.json();
    assert_eq!(job["after"], json!([{"job_id": b, "on": "failure"}]));
    assert_eq!(
        (&job["after_any"], &job["not_before"], &job["max_runs"]),
        (&json!(false), &Value::Null, &Value::Null)
    );
    cli(&["jobs", "edit", "report", "--no-after"]);
    let job = w.api.get("/api/v1/jobs/byname/report").await.json();
    assert_eq!(job["after"], json!([]));
    assert!(cli(&["jobs", "show", "report"]).contains("after"));
}

/// PostgreSQL, three nodes, one SIGKILLed mid-way: A and D every second, B after both (fan-in),
/// C after B. Every succeeded run of A and D is consumed by exactly one run of B or still waits
/// in B's fan-in; every succeeded run of B fires exactly one run of C; no chained run's process
/// starts twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_three_node_chain_fires_each_downstream_once_per_upstream_run_through_a_node_crash() {
    if !postgres_or_skip() {
        return;
    }
    let db = TestDb::new();
    let token = add_user(&db, "ops", None);
    let flags = ["--lease-s", "3", "--rate-limit", "1000000"];
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_on(&db, &flags)).collect();
    let api = Api::new(&nodes[0], Some(&token));
    let started_log = db.dir().join("started");
    // Half a second each: the killed node is likely running some when it dies (they end lost).
    let record = format!("echo \"$CRONSTACK_RUN_ID\" >> '{}'; sleep 0.5", started_log.display());
    let stack = api.create("/api/v1/blockstacks", json!({"name": "s", "command": record})).await;
    let never = api.create("/api/v1/schedules", json!({"config": {"timestamp": NEVER}})).await;
    let every = api.create("/api/v1/schedules", json!({"config": {"period": 1}})).await;
    let job = |body: Value| {
        let api = &api;
        async move { api.create("/api/v1/jobs", body).await }
    };
    // A and D are created paused and enabled together once B and C exist.
    let a = job(json!({"stack_id": stack, "schedule_id": every, "name": "a", "overlap": "allow"})).await;
    let d = job(json!({"stack_id": stack, "schedule_id": every, "name": "d", "overlap": "allow"})).await;
    let b = job(json!({"stack_id": stack, "schedule_id": never, "name": "b", "enabled": true,
        "after": [{"job_id": a, "on": "success"}, {"job_id": d, "on": "success"}]}))
    .await;
    let c = job(json!({"stack_id": stack, "schedule_id": never, "name": "c", "enabled": true,
        "after": [{"job_id": b, "on": "success"}]}))
    .await;
    for j in [a, d] {
        let r = Api::new(&nodes[(j % 3) as usize], Some(&token))
            .put(&format!("/api/v1/jobs/{j}"), json!({"enabled": true}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Killed while it runs a job of the chain (if it gets one within 20 s).
    let dead = Api::new(&nodes[2], Some(&token)).get("/api/v1/nodes").await.json();
    let dead_id = dead["nodes"].as_array().unwrap().iter().find(|n| n["this_node"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let running = format!("SELECT COUNT(*) FROM runs WHERE node_id = '{dead_id}' AND status = 'running'");
    let busy = eventually(Duration::from_secs(20), || async {
        (psql_rows(&db.url, &running)[0][0] != "0").then_some(())
    })
    .await;
    nodes[2].kill9();
    eprintln!(
        "chain cluster: node killed {} a run",
        if busy.is_some() { "while running" } else { "without" }
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Stop the schedule, let the dead node's runs be swept (lease 3 s) and the chains settle.
    for j in [a, d] {
        let r = api.put(&format!("/api/v1/jobs/{j}"), json!({"enabled": false})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let settled = eventually(Duration::from_secs(60), || async {
        let open = psql_rows(&db.url, "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')");
        (open[0][0] == "0").then_some(())
    })
    .await;
    for n in nodes.iter_mut().take(2) {
        n.stop();
    }
    assert!(settled.is_some(), "every run ended");

    let mut status: HashMap<i64, (i64, String)> = HashMap::new();
    for r in psql_rows(&db.url, "SELECT id, job_id, status FROM runs") {
        status.insert(r[0].parse().unwrap(), (r[1].parse().unwrap(), r[2].clone()));
    }
    let succeeded = |job: i64| -> BTreeSet<i64> {
        status.iter().filter(|(_, (j, s))| *j == job && s == "succeeded").map(|(id, _)| *id).collect()
    };
    // Each chained run's upstream runs, by downstream job.
    let mut consumed: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut chained_runs: BTreeMap<i64, usize> = BTreeMap::new();
    for r in psql_rows(&db.url, "SELECT job_id, chain FROM runs WHERE trigger_kind = 'chain'") {
        let job: i64 = r[0].parse().unwrap();
        let cause: Value = serde_json::from_str(&r[1]).unwrap();
        *chained_runs.entry(job).or_default() += 1;
        for up in cause["upstream_runs"].as_array().unwrap() {
            consumed.entry(job).or_default().push(up.as_i64().unwrap());
        }
    }
    let waiting: Vec<i64> =
        psql_rows(&db.url, &format!("SELECT upstream_run_id FROM chain_marks WHERE downstream_job_id = {b}"))
            .iter()
            .map(|r| r[0].parse().unwrap())
            .collect();
    let lost = status.values().filter(|(_, s)| s == "lost").count();
    let mut by_job: BTreeMap<(i64, &str), usize> = BTreeMap::new();
    for (job, s) in status.values() {
        *by_job.entry((*job, s.as_str())).or_default() += 1;
    }
    eprintln!("chain cluster: runs by (job, status): {by_job:?} (a {a}, d {d}, b {b}, c {c})");
    eprintln!(
        "chain cluster: a {} d {} succeeded, b {} runs ({} succeeded), c {} runs, {} marks waiting, {lost} lost",
        succeeded(a).len(),
        succeeded(d).len(),
        chained_runs.get(&b).unwrap_or(&0),
        succeeded(b).len(),
        chained_runs.get(&c).unwrap_or(&0),
        waiting.len()
    );
    assert!(succeeded(a).len() >= 5 && succeeded(d).len() >= 5, "the upstreams ran");
    assert!(succeeded(b).len() >= 3, "the chain ran");

    // B: every succeeded A and D run, exactly once, in a run of B or in its fan-in's marks.
    let mut for_b = consumed.get(&b).cloned().unwrap_or_default();
    for_b.extend(&waiting);
    let once: BTreeSet<i64> = for_b.iter().copied().collect();
    assert_eq!(once.len(), for_b.len(), "an upstream run consumed twice by b");
    let upstream: BTreeSet<i64> = succeeded(a).union(&succeeded(d)).copied().collect();
    assert_eq!(once, upstream, "b consumed exactly the succeeded runs of a and d");
    // C: one run per succeeded run of B, none for others.
    let for_c = consumed.get(&c).cloned().unwrap_or_default();
    let once: BTreeSet<i64> = for_c.iter().copied().collect();
    assert_eq!(once.len(), for_c.len(), "a run of b fired c twice");
    assert_eq!(once, succeeded(b), "c ran once for each succeeded run of b");
    // No process of a chained run started twice.
    let lines = std::fs::read_to_string(&started_log).unwrap_or_default();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in lines.lines() {
        *seen.entry(l).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "processes started twice: {twice:?}");
}
