//! Configuration as code against real servers: `cronstack apply -f` creates, changes and (with
//! --prune) deletes to match a file; a second apply changes nothing; `--dry-run` prints the
//! plan and exits 2 when something would change; `export | apply` on a fresh server
//! reproduces the configuration; a bad file names its line and changes nothing.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

struct Node {
    server: Server,
    token: String,
    _db: TestDb,
}

fn node() -> Node {
    let db = TestDb::new();
    let token = add_user(&db, "ana", None);
    let server = Server::start_on(&db, &[]);
    Node { server, token, _db: db }
}

impl Node {
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .env("CRONSTACK_URL", &self.server.base)
            .env("CRONSTACK_TOKEN", &self.token)
            .env("XDG_CONFIG_HOME", home.path())
            .env("DEPLOY_KEY", "k3y-from-the-environment")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn apply(&self, yaml: &str, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", "-"];
        args.extend(extra);
        self.cli(&args, Some(yaml))
    }

    fn export(&self) -> String {
        let out = self.cli(&["export"], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    fn api(&self) -> Api {
        Api::new(&self.server, Some(&self.token))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const FILE: &str = r#"
stacks:
  - name: backup
    command: echo backing up "$TARGET" "$@"
    env: {TARGET: /srv}
    secret_env: {S3_KEY: {from_env: DEPLOY_KEY}}
  - name: report
    command: date
schedules:
  - name: nightly
    cron: "0 3 * * *"
    timezone: Europe/Paris
jobs:
  - name: nightly-backup
    stack: backup
    schedule: nightly
    timeout_s: 60
    retries: 2
  - name: hourly-report
    stack: report
    every: 1h
    overlap: allow
  - name: new-year
    stack: report
    at: "2099-01-01T00:00:00Z"
    enabled: false
"#;

async fn job(api: &Api, name: &str) -> Value {
    let r = api.get(&format!("/api/v1/jobs/byname/{name}")).await;
    assert_eq!(r.status, 200, "{name}: {}", r.text);
    r.json()
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_changes_what_the_file_changes() {
    let n = node();
    let api = n.api();
    let out = n.apply(FILE, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in [
        "+ stack backup",
        "+ schedule nightly",
        "+ schedule hourly-report",
        "+ job nightly-backup",
        "applied 8 change(s)",
    ] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    let nightly = job(&api, "nightly-backup").await;
    assert_eq!(
        (nightly["timeout_s"].clone(), nightly["retries"].clone(), nightly["do_run"].clone()),
        (60.into(), 2.into(), true.into())
    );
    let stack = api.get(&format!("/api/v1/blockstacks/byid/{}", nightly["stack"])).await.json();
    assert_eq!(stack["env"]["TARGET"], "/srv");
    assert_eq!(stack["secret_env"], serde_json::json!(["S3_KEY"]));
    let hourly = job(&api, "hourly-report").await;
    let schedule = api.get(&format!("/api/v1/schedules/byid/{}", hourly["schedule"])).await.json();
    assert_eq!(schedule["config"], serde_json::json!({"period": 3600}), "{schedule}");
    assert_eq!(schedule["name"], "hourly-report");
    assert_eq!(job(&api, "new-year").await["do_run"], false);

    // The same file again: nothing to change; a dry run says so with exit 0.
    let again = n.apply(FILE, &[]);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout).trim(), "nothing to change");
    assert_eq!(n.apply(FILE, &["--dry-run"]).status.code(), Some(0));

    // A changed file: the dry run shows the plan, exits 2 and changes nothing.
    let changed = FILE
        .replace("timeout_s: 60", "timeout_s: 120")
        .replace("cron: \"0 3 * * *\"", "cron: \"30 3 * * *\"")
        + "  - name: weekly\n    stack: report\n    cron: \"0 6 * * 1\"\n";
    let dry = n.apply(&changed, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(plan.contains("~ job nightly-backup: timeout_s 60 → 120"), "{plan}");
    assert!(plan.contains("~ schedule nightly: config {\"cron\":\"0 3 * * *\""), "{plan}");
    assert!(plan.contains("+ job weekly"), "{plan}");
    assert_eq!(job(&api, "nightly-backup").await["timeout_s"], 60, "a dry run changes nothing");
    let applied = n.apply(&changed, &[]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(job(&api, "nightly-backup").await["timeout_s"], 120);
    assert_eq!(job(&api, "weekly").await["do_run"], true);

    // --prune: the jobs the file no longer names go, and their schedules with them.
    let pruned = FILE.replace(
        "  - name: new-year\n    stack: report\n    at: \"2099-01-01T00:00:00Z\"\n    enabled: false\n",
        "",
    );
    let without = n.apply(&pruned, &["--dry-run"]);
    assert!(
        text(&without.stderr).contains("not in the file (--prune deletes them)"),
        "{}",
        text(&without.stderr)
    );
    let out = n.apply(&pruned, &["--prune"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in ["- job new-year", "- job weekly", "- schedule new-year", "- schedule weekly"] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    assert_eq!(api.get("/api/v1/jobs/byname/new-year").await.status, 404);
    assert_eq!(api.get("/api/v1/jobs").await.json()["count"], 2);
    assert_eq!(text(&n.apply(&pruned, &["--prune"]).stdout).trim(), "nothing to change");

    // A stack the file no longer names goes too, once no remaining job runs it; another
    // user's public stack, listed too, is not the caller's: neither pruned nor exported.
    let bob = Api::new(&n.server, Some(&add_user(&n._db, "bob", None)));
    let r = bob
        .post(
            "/api/v1/blockstacks",
            serde_json::json!({"name": "shared-tool", "command": "true", "public": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let only_backup = pruned
        .replace("  - name: report\n    command: date\n", "")
        .replace("  - name: hourly-report\n    stack: report\n    every: 1h\n    overlap: allow\n", "");
    let out = n.apply(&only_backup, &["--prune"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in ["- job hourly-report", "- schedule hourly-report", "- stack report"] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    assert_eq!(api.get("/api/v1/blockstacks/byname/report").await.status, 404);
    assert_eq!(bob.get("/api/v1/blockstacks/byname/shared-tool").await.status, 200);
    assert!(!n.export().contains("shared-tool"));
    assert_eq!(text(&n.apply(&only_backup, &["--prune"]).stdout).trim(), "nothing to change");
}

#[tokio::test]
async fn export_then_apply_reproduces_the_configuration_on_a_fresh_server() {
    let first = node();
    assert!(first.apply(FILE, &[]).status.success());
    // Made by hand too: an unnamed schedule shared by nobody, a job with a window.
    let api = first.api();
    let stack = api
        .create(
            "/api/v1/blockstacks",
            serde_json::json!({"name": "adhoc", "command": "true", "workdir": "/tmp"}),
        )
        .await;
    let schedule =
        api.create("/api/v1/schedules", serde_json::json!({"config": {"cron": "*/5 * * * *"}})).await;
    api.create(
        "/api/v1/jobs",
        serde_json::json!({"name": "five", "stack_id": stack, "schedule_id": schedule, "enabled": true,
                           "not_after": "2098-06-01T00:00:00Z", "keep_failed": 7}),
    )
    .await;
    let exported = first.export();
    assert!(
        exported.contains("from_env: S3_KEY"),
        "secret values are never exported, only where they come from:\n{exported}"
    );

    let second = node();
    // The secret comes from the environment of whoever applies: S3_KEY here.
    let out = {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["apply", "-f", "-"])
            .env("CRONSTACK_URL", &second.server.base)
            .env("CRONSTACK_TOKEN", &second.token)
            .env("XDG_CONFIG_HOME", home.path())
            .env("S3_KEY", "another-k3y")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(exported.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(second.export(), exported, "the fresh server's export is the first one's");
    let five = job(&second.api(), "five").await;
    assert_eq!(
        (five["keep_failed"].clone(), five["not_after"].clone()),
        (7.into(), "2098-06-01T00:00:00Z".into())
    );
    // And applying the export back where it came from changes nothing.
    assert_eq!(text(&first.apply(&exported, &["--prune"]).stdout).trim(), "nothing to change");
}

#[tokio::test]
async fn a_bad_file_names_its_line_and_changes_nothing() {
    let n = node();
    let bad = "stacks:\n  - name: a\n    command: \"true\"\njobs:\n  - name: j\n    stack: a\n    cron: \"61 * * * *\"\n  - name: k\n    stak: a\n";
    let out = n.apply(bad, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 9") && err.contains("stak"), "{err}");
    let bad = "stacks:\n  - name: a\n    command: \"true\"\njobs:\n  - name: j\n    stack: a\n  - name: k\n    stack: nowhere\n    every: 5m\n";
    let err = text(&n.apply(bad, &[]).stderr);
    assert!(err.contains("line 5: job \"j\": needs a schedule"), "{err}");
    // A cron expression is checked before anything is sent.
    let never = "stacks:\n  - name: a\n    command: \"true\"\njobs:\n  - name: j\n    stack: a\n    cron: \"0 0 31 2 *\"\n";
    let err = text(&n.apply(never, &[]).stderr);
    assert!(err.contains("line 5: job \"j\"") && err.contains("February"), "{err}");
    let api = n.api();
    assert_eq!(api.get("/api/v1/blockstacks").await.json()["count"], 0, "nothing sent");
    // A value only the server refuses stops the apply there; fixed, the next apply converges.
    let refused = "stacks:\n  - name: a\n    command: \"true\"\njobs:\n  - name: j\n    stack: a\n    every: 5m\n    overlap: sometimes\n";
    let out = n.apply(refused, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("job \"j\"") && text(&out.stderr).contains("overlap"),
        "{}",
        text(&out.stderr)
    );
    let fixed = refused.replace("sometimes", "allow");
    let out = n.apply(&fixed, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("+ job j") && !text(&out.stdout).contains("+ stack a"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(job(&api, "j").await["overlap"], "allow");
}

/// `deploy/cronstack.yaml.example` stays a valid file: its dry run plans every object and exits
/// 2, its apply creates them, a second dry run finds nothing to change.
#[tokio::test]
async fn the_deploy_example_applies() {
    let n = node();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/cronstack.yaml.example");
    let run = |extra: &[&str]| {
        let home = tempfile::tempdir().unwrap();
        let mut args = vec!["apply", "-f", path];
        args.extend(extra);
        Command::new(BIN)
            .args(&args)
            .env("CRONSTACK_URL", &n.server.base)
            .env("CRONSTACK_TOKEN", &n.token)
            .env("XDG_CONFIG_HOME", home.path())
            .env("S3_SECRET_KEY", "example-secret-value")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(2), "{}{}", text(&dry.stdout), text(&dry.stderr));
    let plan = text(&dry.stdout);
    for line in [
        "+ stack db-backup",
        "+ schedule nightly",
        "+ job nightly-db-backup",
        "+ job weekday-report",
        "+ job verify-backup",
    ] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    assert!(n.api().get("/api/v1/jobs").await.json()["count"] == 0, "a dry run changes nothing");

    let applied = run(&[]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let api = n.api();
    let jobs = api.get("/api/v1/jobs").await.json();
    assert_eq!(jobs["count"], 5, "{jobs}");
    assert_eq!(after_of(&api, "verify-backup").await, pairs(&[("nightly-db-backup", "success")]));
    let backup = job(&api, "nightly-db-backup").await;
    assert_eq!((backup["timeout_s"].clone(), backup["missed"].clone()), (3600.into(), "run_once".into()));
    assert_eq!(job(&api, "weekday-report").await["do_run"], false);
    let stack = api.get("/api/v1/blockstacks/byname/upload-backups").await.json();
    assert_eq!(stack["secret_env"], serde_json::json!(["AWS_SECRET_ACCESS_KEY"]));
    assert_eq!(run(&["--dry-run"]).status.code(), Some(0), "applied: nothing left to change");
}

const CHAINS: &str = r#"
stacks:
  - name: etl
    command: "true"
jobs:
  - name: report
    stack: etl
    after: [{job: load}, {job: extract, on: failure}]
    after_any: true
  - name: load
    stack: etl
    after:
      - job: extract
  - name: extract
    stack: etl
    cron: "0 2 * * *"
"#;

async fn after_of(api: &Api, name: &str) -> Vec<(String, String)> {
    let job = job(api, name).await;
    let mut names = Vec::new();
    for e in job["after"].as_array().unwrap() {
        let upstream = api.get(&format!("/api/v1/jobs/byid/{}", e["job_id"])).await.json();
        names.push((upstream["name"].as_str().unwrap().to_string(), e["on"].as_str().unwrap().to_string()));
    }
    names
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Chains by name: upstream jobs the same apply creates come first whatever the file's order; a
/// job with `after` and no schedule runs only after them (the manual schedule); a second apply
/// changes nothing; a changed chain shows in the plan; a cycle or an unknown name is refused
/// before anything changes; --prune never leaves an `after` pointing at a job it deletes.
#[tokio::test]
async fn apply_makes_chains_by_name() {
    let n = node();
    let api = n.api();
    let out = n.apply(CHAINS, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied 5 change(s)"), "{}", text(&out.stdout));
    assert_eq!(after_of(&api, "load").await, pairs(&[("extract", "success")]));
    assert_eq!(after_of(&api, "report").await, pairs(&[("load", "success"), ("extract", "failure")]));
    let report = job(&api, "report").await;
    assert_eq!(report["after_any"], true);
    let schedule = api.get(&format!("/api/v1/schedules/byid/{}", report["schedule"])).await.json();
    assert_eq!(schedule["config"], serde_json::json!({"manual": true}), "chain-only: {schedule}");
    assert_eq!(job(&api, "load").await["schedule"], report["schedule"]);
    assert_eq!(text(&n.apply(CHAINS, &[]).stdout).trim(), "nothing to change");
    // The same upstream jobs in another order are the same chain.
    let reordered = CHAINS.replace(
        "after: [{job: load}, {job: extract, on: failure}]",
        "after: [{job: extract, on: failure}, {job: load}]",
    );
    assert_eq!(n.apply(&reordered, &["--dry-run"]).status.code(), Some(0));

    // A changed chain, in the plan; an inline schedule given up for a chain.
    let changed = CHAINS
        .replace("after: [{job: load}, {job: extract, on: failure}]", "after: [{job: load}]")
        .replace("after:\n      - job: extract", "after: [{job: extract}, {job: cleanup, on: always}]")
        + "  - name: cleanup\n    stack: etl\n    every: 1h\n";
    let dry = n.apply(&changed, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(2), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(plan.contains("~ job report: after load, extract:failure → load"), "{plan}");
    assert!(plan.contains("~ job load: after extract → extract, cleanup:always"), "{plan}");
    assert!(plan.contains("+ job cleanup"), "{plan}");
    let out = n.apply(&changed, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(after_of(&api, "load").await, pairs(&[("extract", "success"), ("cleanup", "always")]));
    assert_eq!(text(&n.apply(&changed, &[]).stdout).trim(), "nothing to change");

    // A cycle (through a job the file leaves as the server has it, too) and an unknown upstream
    // name are refused with the job's line, before anything changes.
    let cycle =
        changed.replace("    cron: \"0 2 * * *\"\n", "    cron: \"0 2 * * *\"\n    after: [{job: report}]\n");
    let out = n.apply(&cycle, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("a chain cycle: extract → load → report → extract"), "{err}");
    assert!(err.contains("line "), "{err}");
    let unknown = changed.replace("after: [{job: load}]", "after: [{job: lod}]");
    let err = text(&n.apply(&unknown, &[]).stderr);
    assert!(err.contains("line 6: job \"report\": after \"lod\": no job of that name"), "{err}");
    assert_eq!(after_of(&api, "load").await, pairs(&[("extract", "success"), ("cleanup", "always")]));
    assert!(job(&api, "extract").await["after"].as_array().unwrap().is_empty());

    // An upstream job --prune would delete is refused; without it in the file nor in any
    // `after`, it goes, and so does the inline schedule of a job that became chain-only.
    let without_cleanup = changed.replace("  - name: cleanup\n    stack: etl\n    every: 1h\n", "");
    let err = text(&n.apply(&without_cleanup, &["--prune"]).stderr);
    assert!(
        err.contains("after \"cleanup\", a job the file does not name, which --prune would delete"),
        "{err}"
    );
    let chain_only_extract = without_cleanup
        .replace(", {job: cleanup, on: always}", "")
        .replace("    cron: \"0 2 * * *\"\n", "    after: [{job: seed}]\n")
        + "  - name: seed\n    stack: etl\n    every: 1d\n";
    let out = n.apply(&chain_only_extract, &["--prune"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for line in [
        "+ job seed",
        "~ job extract: schedule → none (runs only after others), after none → seed",
        "- job cleanup",
        "- schedule cleanup",
        "- schedule extract",
    ] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    assert_eq!(after_of(&api, "load").await, pairs(&[("extract", "success")]));
    assert_eq!(job(&api, "extract").await["schedule"], job(&api, "load").await["schedule"]);
    assert_eq!(text(&n.apply(&chain_only_extract, &["--prune"]).stdout).trim(), "nothing to change");

    // A chain turned around: the job that loses its upstream is changed first, so the server
    // never sees both directions at once (which it would refuse as a cycle).
    let reversed = chain_only_extract
        .replace("    after: [{job: seed}]\n", "    cron: \"0 2 * * *\"\n")
        .replace("    every: 1d\n", "    after: [{job: extract}]\n");
    // Left out, extract's after stays the server's (seed): a cycle, and the refusal says whence.
    let err = text(&n.apply(&reversed, &["--prune"]).stderr);
    assert!(
        err.contains(
            "job \"seed\": a chain cycle: seed → extract → seed (the server's after for \"extract\""
        ),
        "{err}"
    );
    let reversed = reversed.replace("    cron: \"0 2 * * *\"\n", "    cron: \"0 2 * * *\"\n    after: []\n");
    let out = n.apply(&reversed, &["--prune"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(after_of(&api, "seed").await, pairs(&[("extract", "success")]));
    assert!(job(&api, "extract").await["after"].as_array().unwrap().is_empty());
    assert_eq!(text(&n.apply(&reversed, &["--prune"]).stdout).trim(), "nothing to change");
}

/// `export | apply` on a fresh server reproduces chains: upstream jobs by name, chain-only jobs
/// without a schedule.
#[tokio::test]
async fn export_then_apply_reproduces_chains() {
    let first = node();
    let out = first.apply(CHAINS, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported = first.export();
    assert!(exported.contains("- job: extract\n    on: failure"), "{exported}");
    let parsed: serde_json::Value = serde_norway::from_str(&exported).unwrap();
    let load = parsed["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "load").unwrap();
    assert_eq!(load["after"], serde_json::json!([{"job": "extract", "on": "success"}]));
    for key in ["schedule", "cron", "every", "at"] {
        assert!(load.get(key).is_none(), "chain-only, no {key}: {load}");
    }
    let second = node();
    let out = second.apply(&exported, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(second.export(), exported, "the fresh server's export is the first one's");
    let api = second.api();
    assert_eq!(after_of(&api, "report").await, pairs(&[("load", "success"), ("extract", "failure")]));
    assert_eq!(job(&api, "report").await["after_any"], true);
    assert_eq!(text(&first.apply(&exported, &["--prune"]).stdout).trim(), "nothing to change");
}
