//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` over WebDriver, every page of it. A person signs in with a password (the
//! navigation hidden until then, a refusal's banner gone once signed in) and lands on the
//! overview (failing jobs first, the last runs' strip, filters, pages); creates a stack and a
//! job (the stack with a secret variable), reads the schedule in words and the next fire times
//! in the schedule's zone, pauses and resumes it, runs it with arguments, watches its log,
//! kills runs from the run page and from the job's history, sees failed runs marked on the
//! chart, edits every field of the job (its schedule too) and of its stack, deletes a job, a
//! schedule and a stack; creates and revokes a token (its secret shown once), subscribes a
//! webhook and reads its deliveries; creates a heartbeat monitor and sees a ping arrive; meets
//! the not-found pages; then signs in again with a token. Every page is checked for JavaScript
//! errors in the browser's log. Screenshots land in `target/tmp/browser-*.png`.
//!
//! Without Chromium the test fails in CI (`CI=true`) and is skipped, saying why, elsewhere.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "correct horse";

fn find_binary(candidates: &[&str]) -> Option<String> {
    candidates.iter().find_map(|name| {
        let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!path.is_empty()).then_some(path)
    })
}

/// A chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(binary: &str) -> Driver {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &str, profile: &std::path::Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1500",
        "--lang=en-US",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
        // The browser's console, read by `js_errors`.
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let serde_json::Value::Object(caps) = caps else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a WebDriver session")
}

/// Polls until the element's text satisfies `check`, returning the text.
async fn wait_text(c: &Client, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(el) = c.find(Locator::Css(css)).await
            && let Ok(t) = el.text().await
        {
            if check(&t) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = c.source().await.unwrap_or_default();
    panic!("{css}: waited for {what}; last text {last:?}; page:\n{}", &page[..page.len().min(4000)]);
}

/// Finds the element and acts on it; when the page draws it again meanwhile (a stale
/// element) or it does not take the action yet (hidden until the sign-in is checked), finds it
/// again and retries for up to 20 s, as a person would.
async fn act<F, Fut>(c: &Client, css: &str, action: F)
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let el = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match action(el).await {
            Ok(()) => return,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

async fn fill(c: &Client, css: &str, value: &str) {
    act(c, css, |el| async move {
        el.clear().await?;
        el.send_keys(value).await
    })
    .await
}

async fn click(c: &Client, css: &str) {
    act(c, css, |el| async move { el.click().await }).await
}

async fn screenshot(c: &Client, name: &str) -> std::path::PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
}

/// The browser session with what the checks need besides it.
struct Ui<'a> {
    c: &'a Client,
    /// chromedriver's session URL, for its log endpoint.
    session: String,
    server: &'a Server,
    api: Api,
    http: reqwest::Client,
}

impl Ui<'_> {
    async fn goto(&self, path: &str) {
        self.c.goto(&self.server.url(path)).await.unwrap();
    }

    /// The JavaScript errors the browser logged since the last call. Failed requests the app
    /// expects and handles (a 401 before sign-in, the 404 of a job that does not exist, the
    /// 409 of a schedule in use) are logged as "Failed to load resource": not errors.
    async fn js_errors(&self) -> Vec<String> {
        let r = self
            .http
            .post(format!("{}/se/log", self.session))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("chromedriver's log");
        let log: serde_json::Value = r.json().await.unwrap();
        let entries = log["value"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .filter_map(|e| e["message"].as_str())
            .filter(|m| !m.contains("Failed to load resource"))
            .map(str::to_string)
            .collect()
    }

    /// Fails on any JavaScript error since the last check (`page` names where).
    async fn no_js_errors(&self, page: &str) {
        let errors = self.js_errors().await;
        assert!(errors.is_empty(), "JavaScript errors on {page}: {errors:#?}");
        // The dashboard's own report of an error (the API reference page has no banner).
        let banner = match self.c.find(Locator::Css("#flash")).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        assert!(!banner.contains("hit an error"), "{page}: {banner}");
    }

    /// The next `confirm()` answers yes (a person clicking OK).
    async fn confirm_next(&self) {
        self.c.execute("window.confirm = () => true;", vec![]).await.unwrap();
    }

    async fn displayed(&self, css: &str) -> bool {
        match self.c.find(Locator::Css(css)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.c.find_all(Locator::Css(css)).await.unwrap().len()
    }

    async fn job_id(&self, name: &str) -> i64 {
        self.api.get(&format!("/api/v1/jobs/byname/{name}")).await.json()["id"].as_i64().unwrap()
    }

    async fn job(&self, id: i64) -> serde_json::Value {
        self.api.get(&format!("/api/v1/jobs/byid/{id}")).await.json()
    }

    async fn run_now(&self, job: i64, args: serde_json::Value) -> i64 {
        let r = self.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({ "args": args })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_i64().unwrap()
    }

    async fn wait_run(&self, run: i64, outcome: &str) {
        eventually(Duration::from_secs(20), || async {
            (self.api.get(&format!("/api/v1/runs/{run}")).await.json()["outcome"] == outcome).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("run {run} never became {outcome}"));
    }
}

#[tokio::test]
async fn dashboard_in_headless_chromium() {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let chromium = find_binary(&["chromium", "chromium-browser"]);
    let chromedriver = find_binary(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let reason = "Chromium or chromedriver is missing: apt-get install chromium chromium-driver";
        assert!(!in_ci, "{reason} (.ci/run installs them)");
        println!("skipped: {reason}");
        return;
    };

    let db = TestDb::new();
    let token = add_user(&db, "paula", Some(PASSWORD));
    // The browser's own requests count against the user's rate too.
    let server = Server::start_on(&db, &["--rate-limit", "100000", "--kill-grace-s", "1"]);
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = browser(&driver, &chromium, profile.path()).await;
    let session = format!("{}/session/{}", driver.url, c.session_id().await.unwrap().expect("a session id"));
    let ui = Ui {
        c: &c,
        session,
        server: &server,
        api: Api::new(&server, Some(&token)),
        http: reqwest::Client::new(),
    };
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(240), journey(&ui, &token)).await;
    println!("journey: {:?}", started.elapsed());
    let _ = c.close().await;
    result.expect("the browser journey finished in time");
}

async fn journey(ui: &Ui<'_>, token: &str) {
    sign_in(ui).await;
    let job_id = stack_and_job(ui).await;
    runs_and_chart(ui, job_id).await;
    edit_job(ui, job_id).await;
    overview(ui, job_id).await;
    edit_and_delete(ui).await;
    tokens_and_webhooks(ui).await;
    pipeline_and_monitors(ui).await;
    not_found(ui, job_id).await;
    token_sign_in(ui, token).await;
}

async fn sign_in(ui: &Ui<'_>) {
    let c = ui.c;
    // Signed out: the sign-in page, without the navigation; the token field hides what is typed.
    ui.goto("/").await;
    wait_text(c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    assert!(!ui.displayed("#nav").await, "the navigation shows on the sign-in page");
    let kind = c.find(Locator::Css("#token-input")).await.unwrap().attr("type").await.unwrap();
    assert_eq!(kind.as_deref(), Some("password"));
    screenshot(c, "signin").await;
    // The check of every page below sees an error when there is one.
    c.execute("setTimeout(() => { throw new Error('the check works'); }, 0);", vec![]).await.unwrap();
    let seen = eventually(Duration::from_secs(5), || async {
        let errors = ui.js_errors().await;
        errors.iter().any(|e| e.contains("the check works")).then_some(())
    })
    .await;
    assert!(seen.is_some(), "a thrown error is not in the browser's log");
    wait_text(c, "#flash", "the dashboard's own report", |t| t.contains("hit an error")).await;

    // A wrong password is refused with the server's message.
    fill(c, "#login-username", "paula").await;
    fill(c, "#login-password", "wrong").await;
    click(c, "#login-submit").await;
    wait_text(c, "#flash", "the refusal", |t| t.contains("wrong password")).await;

    // Signed in with the password (the auth_tkt cookie): the overview, and the refusal's
    // banner went with the sign-in page.
    fill(c, "#login-password", PASSWORD).await;
    click(c, "#login-submit").await;
    wait_text(c, "#whoami", "the user's name", |t| t == "paula").await;
    wait_text(c, "h1", "the overview", |t| t.starts_with("Overview")).await;
    assert!(ui.displayed("#nav").await, "the navigation once signed in");
    assert!(!ui.displayed("#flash").await, "the sign-in page's banner stayed");
    wait_text(c, "#overview-rows", "no jobs yet", |t| t.contains("No jobs yet")).await;
    ui.no_js_errors("the sign-in page and the empty overview").await;
}

/// A stack with a secret variable, then a job on it with a cron expression in Paris.
async fn stack_and_job(ui: &Ui<'_>) -> i64 {
    let c = ui.c;
    click(c, "#nav-stacks").await;
    wait_text(c, "h1", "the stacks page", |t| t == "Stacks").await;
    fill(c, "#stack-name", "greeter").await;
    fill(
        c,
        "#stack-command",
        "for a in \"$@\"; do echo \"hello, $a\"; sleep 0.6; done; echo \"bye $SIGN_OFF\"; true",
    )
    .await;
    fill(c, "#stack-secret-env", "SIGN_OFF=browser-secret-1").await;
    click(c, "#stack-create").await;
    wait_text(c, ".stack-card h2", "the new stack", |t| t == "greeter").await;
    wait_text(c, ".secret-names", "the secret's name, not its value", |t| t == "Secret env: SIGN_OFF").await;
    assert!(!c.source().await.unwrap().contains("browser-secret-1"), "the page shows the secret value");
    fill(c, "#job-name", "morning").await;
    fill(c, "#job-cron", "30 7 * * 1-5").await;
    fill(c, "#job-tz", "Europe/Paris").await;
    click(c, "#job-create").await;

    // The job page: schedule in words, the next five fire times in the schedule's zone.
    let words = wait_text(c, "#schedule-words", "the schedule in words", |t| !t.is_empty()).await;
    assert_eq!(words, "at 07:30 on Monday through Friday Europe/Paris");
    wait_text(c, "#upcoming-zone", "the zone of the fire times", |t| t == "(Europe/Paris)").await;
    let upcoming = c.find_all(Locator::Css("#upcoming li")).await.unwrap();
    assert_eq!(upcoming.len(), 5);
    for li in upcoming {
        let t = li.text().await.unwrap();
        // 07:30 in Paris, labelled with Paris' zone (CET in winter, CEST in summer).
        assert!(t.contains("07:30:00") && (t.contains("CET") || t.contains("CEST")), "{t}");
    }
    let next = wait_text(c, "#next-run", "the next run", |t| t.contains("in ")).await;
    assert!(next.contains("07:30:00 CE"), "{next}");
    wait_text(c, "#job-state", "enabled", |t| t == "enabled").await;

    // Pause and resume.
    click(c, "#pause-toggle").await;
    wait_text(c, "#job-state", "paused", |t| t == "paused").await;
    click(c, "#pause-toggle").await;
    wait_text(c, "#job-state", "enabled again", |t| t == "enabled").await;
    ui.no_js_errors("the stacks page and the job page").await;
    ui.job_id("morning").await
}

async fn runs_and_chart(ui: &Ui<'_>, job_id: i64) {
    let c = ui.c;
    // Run now with arguments; the run page shows the log live, then the outcome.
    fill(c, "#run-args", "alice \"big bob\" carol").await;
    click(c, "#run-now").await;
    wait_text(c, "#live", "the live marker while it runs", |t| t.contains("live")).await;
    let log = wait_text(c, "#log", "the whole log", |t| t.contains("bye")).await;
    // The job got the secret; its log shows `***`.
    assert_eq!(log, "hello, alice\nhello, big bob\nhello, carol\nbye ***");
    wait_text(c, "#run-outcome", "the outcome", |t| t == "succeeded").await;
    wait_text(c, "#run-exit", "the exit code", |t| t == "0").await;
    screenshot(c, "run").await;

    // A long run, killed from its page.
    ui.goto(&format!("/ui/#/jobs/{job_id}")).await;
    fill(c, "#run-args", &"x ".repeat(60)).await;
    click(c, "#run-now").await;
    wait_text(c, "#live", "the live marker of the long run", |t| t.contains("live")).await;
    click(c, "#kill-run").await;
    wait_text(c, "#run-outcome", "the killed outcome", |t| t == "killed").await;

    // Another, killed from the job's history.
    let long = ui.run_now(job_id, json!(vec!["y"; 60])).await;
    ui.wait_run(long, "running").await;
    ui.goto(&format!("/ui/#/jobs/{job_id}")).await;
    click(c, &format!("button.kill[data-run=\"{long}\"]")).await;
    ui.wait_run(long, "killed").await;

    // The history and the chart (after one more run): the killed runs marked as failed.
    ui.run_now(job_id, json!(["dave"])).await;
    ui.api.ended_run(job_id).await.expect("dave's run ends");
    ui.goto(&format!("/ui/#/jobs/{job_id}")).await;
    c.refresh().await.unwrap();
    let runs =
        wait_text(c, "#runs", "four runs in the history", |t| t.matches("succeeded").count() == 2).await;
    assert!(
        runs.contains("alice big bob carol") && runs.contains("dave") && runs.matches("killed").count() == 2,
        "each run's own arguments and outcome: {runs}"
    );
    assert_eq!(ui.count("#chart svg circle").await, 8, "a duration and a lateness point per run");
    assert_eq!(ui.count("#chart svg circle.failed").await, 4, "the killed runs' points, marked");
    assert_eq!(ui.count("#chart svg .failed-band").await, 2, "a band at each failed run");
    screenshot(c, "job").await;
    ui.no_js_errors("the run pages and the job's history").await;
}

/// Every field of the job from its form: its schedule (now in New York), its limits, a chain.
async fn edit_job(ui: &Ui<'_>, job_id: i64) {
    let c = ui.c;
    let before = ui.job(job_id).await;
    let old_schedule = before["schedule"].as_i64().unwrap();
    fill(c, "#edit-cron", "0 9 * * *").await;
    fill(c, "#edit-tz", "America/New_York").await;
    fill(c, "#edit-timeout", "120").await;
    fill(c, "#edit-retries", "2").await;
    fill(c, "#edit-grace", "300").await;
    fill(c, "#edit-command", "echo edited").await;
    click(c, "#settings-save").await;
    wait_text(c, "#schedule-words", "the new schedule", |t| t == "every day at 09:00 America/New_York").await;
    wait_text(c, "#upcoming-zone", "New York's zone", |t| t == "(America/New_York)").await;
    wait_text(c, "#upcoming li", "New York's time", |t| {
        t.contains("09:00:00 EST") || t.contains("09:00:00 EDT")
    })
    .await;
    let after = ui.job(job_id).await;
    assert_eq!(after["timeout_s"], 120, "{after}");
    assert_eq!(after["retries"], 2);
    assert_eq!(after["grace_s"], 300);
    assert_eq!(after["command"], "echo edited");
    assert_ne!(after["schedule"], old_schedule);
    // The job's own schedule went with the change: no orphan left.
    assert_eq!(ui.api.get(&format!("/api/v1/schedules/byid/{old_schedule}")).await.status, 404);
    // Back to the stack's command, and a chain after another job.
    let evening = ui
        .api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": after["stack"], "schedule_id": after["schedule"], "name": "evening", "enabled": true}),
        )
        .await;
    ui.goto(&format!("/ui/#/jobs/{evening}")).await;
    wait_text(c, "#job-after-words", "no chain yet", |t| t == "none").await;
    fill(c, "#job-after", "morning").await;
    fill(c, "#job-jitter", "5").await;
    click(c, "#settings-save").await;
    let chain = format!("morning (#{job_id}) on success");
    wait_text(c, "#job-after-words", "the chain", |t| t == chain).await;
    screenshot(c, "chain").await;
    let stored = ui.job(evening).await;
    assert_eq!(stored["after"], json!([{"job_id": job_id, "on": "success"}]), "{stored}");
    assert_eq!(stored["jitter_s"], 5);
    assert_eq!(stored["schedule"], after["schedule"], "an unchanged rule keeps its schedule");
    let upstream = ui.run_now(job_id, json!([])).await;
    let chained = eventually(Duration::from_secs(30), || async {
        let runs = ui.api.get(&format!("/api/v1/jobs/byid/{evening}/runs")).await.json();
        runs["runs"].as_array().and_then(|r| r.first()).map(|r| r["id"].clone())
    })
    .await
    .expect("the chained run");
    ui.goto(&format!("/ui/#/runs/{chained}")).await;
    wait_text(c, "#upstream-runs", "the upstream run", |t| t == format!("#{upstream}")).await;

    // A job with no schedule of its own (only after its upstream) keeps it through an edit.
    let after_only = ui
        .api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": after["stack"], "name": "after-only", "after": [{"job_id": job_id, "on": "always"}]}),
        )
        .await;
    let manual = ui.job(after_only).await["schedule"].clone();
    ui.goto(&format!("/ui/#/jobs/{after_only}")).await;
    wait_text(c, "#schedule-rule", "the manual rule", |t| t.starts_with("manual")).await;
    fill(c, "#job-jitter", "7").await;
    click(c, "#settings-save").await;
    wait_text(c, "#job-jitter-words", "the new jitter", |t| t == "7 s").await;
    let stored = ui.job(after_only).await;
    assert_eq!((stored["schedule"].clone(), stored["jitter_s"].clone()), (manual, json!(7)), "{stored}");
    ui.no_js_errors("the job's form").await;
}

/// The landing page: failing jobs first, the strip of last runs, filters, pages.
async fn overview(ui: &Ui<'_>, job_id: i64) {
    let c = ui.c;
    let broken = ui.api.create("/api/v1/blockstacks", json!({"name": "broken", "command": "exit 3"})).await;
    let schedule = ui
        .api
        .create("/api/v1/schedules", json!({"config": {"cron": "0 2 * * *", "timezone": "Asia/Tokyo"}}))
        .await;
    let failing = ui
        .api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": broken, "schedule_id": schedule, "name": "nightly-fail", "enabled": true}),
        )
        .await;
    let run = ui.run_now(failing, json!([])).await;
    ui.wait_run(run, "failed").await;
    // Enough jobs for a second page (50 a page).
    for i in 0..50 {
        let body = json!({"stack_id": broken, "schedule_id": schedule, "name": format!("bulk-{i:02}"), "enabled": false});
        ui.api.create("/api/v1/jobs", body).await;
    }
    click(c, "#nav-overview").await;
    wait_text(c, "#overview-count", "the count", |t| t.contains("of 54 jobs")).await;
    let first = c.find(Locator::Css("#overview-rows tr")).await.unwrap().text().await.unwrap();
    assert!(first.starts_with("nightly-fail") && first.contains("failing"), "failing first: {first}");
    assert!(first.contains("in ") && first.contains("GMT+9"), "the next run in Tokyo's zone: {first}");
    assert_eq!(ui.count("#overview-rows tr:first-child .strip .cell.failed").await, 1);
    // morning: 2 succeeded, 2 killed, 1 chained upstream: 5 cells, oldest left.
    ui.goto("/ui/#/?name=MORN").await;
    c.refresh().await.unwrap();
    wait_text(c, "#overview-count", "one job named like it", |t| t.contains("of 1 job")).await;
    wait_text(c, "#overview-rows", "morning's row", |t| t.starts_with("morning")).await;
    assert_eq!(ui.count(".strip .cell").await, 5);
    assert_eq!(ui.count(".strip .cell.killed").await, 2);
    screenshot(c, "overview-filtered").await;
    // Typed filter, then the stack filter.
    fill(c, "#overview-name", "").await;
    wait_text(c, "#overview-count", "all again", |t| t.contains("of 54 jobs")).await;
    let greeter = ui.api.get("/api/v1/blockstacks/byname/greeter").await.json()["id"].to_string();
    let select = c.find(Locator::Css("#overview-stack")).await.unwrap();
    select.select_by_value(&greeter).await.unwrap();
    wait_text(c, "#overview-count", "greeter's jobs", |t| t.contains("of 3 jobs")).await;
    let rows = wait_text(c, "#overview-rows", "greeter's jobs", |t| !t.contains("bulk")).await;
    assert!(rows.contains("morning") && rows.contains("evening"), "{rows}");
    select.select_by_value("").await.unwrap();
    wait_text(c, "#overview-count", "every stack", |t| t.contains("1–50 of 54")).await;
    screenshot(c, "overview").await;
    click(c, "#overview-next").await;
    wait_text(c, "#overview-count", "page 2", |t| t.contains("51–54 of 54")).await;
    assert!(c.current_url().await.unwrap().as_str().ends_with("#/?page=2"));
    assert_eq!(ui.count("#overview-rows tr").await, 4);
    click(c, "#overview-prev").await;
    wait_text(c, "#overview-count", "page 1 again", |t| t.contains("1–50")).await;
    click(c, &format!("a.overview-job[href=\"#/jobs/{job_id}\"]")).await;
    wait_text(c, "h1", "the job from the overview", |t| t.starts_with("morning")).await;
    ui.no_js_errors("the overview").await;
}

/// A stack's every setting; deleting a job, a schedule and a stack.
async fn edit_and_delete(ui: &Ui<'_>) {
    let c = ui.c;
    let greeter = ui.api.get("/api/v1/blockstacks/byname/greeter").await.json()["id"].as_i64().unwrap();
    ui.goto(&format!("/ui/#/stacks/{greeter}")).await;
    wait_text(c, "#stack-jobs", "its jobs", |t| t.contains("morning")).await;
    fill(c, "#stack-edit-env", "GREETING=hi\nLANG=C").await;
    fill(c, "#stack-edit-secret-env", "EXTRA=browser-secret-2").await;
    fill(c, "#stack-edit-workdir", "/tmp").await;
    c.find(Locator::Css("#stack-edit-webhook")).await.unwrap().select_by_value("token").await.unwrap();
    click(c, "#stack-save").await;
    wait_text(c, "#stack-hook-token", "the hook token", |t| t.len() > 10).await;
    let st = ui.api.get(&format!("/api/v1/blockstacks/byid/{greeter}")).await.json();
    assert_eq!(st["env"], json!({"GREETING": "hi", "LANG": "C"}), "{st}");
    assert_eq!(st["secret_env"], json!(["EXTRA", "SIGN_OFF"]));
    assert_eq!((st["workdir"].clone(), st["webhook"].clone()), (json!("/tmp"), json!("token")));
    assert!(!c.source().await.unwrap().contains("browser-secret-2"), "the page shows a secret value");
    // A secret removed by name; the command changed.
    click(c, "#secret-remove-EXTRA").await;
    fill(c, "#stack-edit-command", "echo changed").await;
    click(c, "#stack-save").await;
    wait_text(c, "#stack-secret-names", "one secret left", |t| !t.contains("EXTRA")).await;
    let st = ui.api.get(&format!("/api/v1/blockstacks/byid/{greeter}")).await.json();
    assert_eq!(
        (st["secret_env"].clone(), st["command"].clone()),
        (json!(["SIGN_OFF"]), json!("echo changed"))
    );
    screenshot(c, "stack").await;

    // A paused job is deleted at once, from its page.
    let schedule = ui.api.create("/api/v1/schedules", json!({"config": {"period": 3600}})).await;
    let doomed = ui
        .api
        .create("/api/v1/jobs", json!({"stack_id": greeter, "schedule_id": schedule, "name": "doomed"}))
        .await;
    ui.goto(&format!("/ui/#/jobs/{doomed}")).await;
    wait_text(c, "h1", "the doomed job", |t| t.starts_with("doomed")).await;
    ui.confirm_next().await;
    click(c, "#delete-job").await;
    wait_text(c, "#flash", "deleted", |t| t == "Deleted").await;
    wait_text(c, "h1", "back on the overview", |t| t.starts_with("Overview")).await;
    assert_eq!(ui.api.get(&format!("/api/v1/jobs/byid/{doomed}")).await.status, 404);

    // A schedule nothing uses, deleted from the schedules page; one in use is refused.
    let spare = ui.api.create("/api/v1/schedules", json!({"name": "spare", "config": {"period": 600}})).await;
    click(c, "#nav-schedules").await;
    wait_text(c, "#schedules", "the spare schedule", |t| t.contains("spare")).await;
    screenshot(c, "schedules").await;
    ui.confirm_next().await;
    click(c, &format!("button[data-schedule=\"{spare}\"]")).await;
    wait_text(c, "#flash", "the schedule deleted", |t| t.contains("Deleted the schedule")).await;
    assert_eq!(ui.api.get(&format!("/api/v1/schedules/byid/{spare}")).await.status, 404);
    let used = ui.job(ui.job_id("morning").await).await["schedule"].as_i64().unwrap();
    ui.confirm_next().await;
    click(c, &format!("button[data-schedule=\"{used}\"]")).await;
    wait_text(c, "#flash", "the refusal", |t| t.contains("use")).await;

    // A stack without jobs is deleted; one that jobs run is refused, saying so.
    let empty = ui.api.create("/api/v1/blockstacks", json!({"name": "empty", "command": "true"})).await;
    ui.goto(&format!("/ui/#/stacks/{empty}")).await;
    wait_text(c, "h1", "the empty stack", |t| t.starts_with("empty")).await;
    ui.confirm_next().await;
    click(c, "#delete-stack").await;
    wait_text(c, "#flash", "the stack's deletion", |t| t.contains("Deleted stack empty")).await;
    assert_eq!(ui.api.get(&format!("/api/v1/blockstacks/byid/{empty}")).await.status, 404);
    let busy = ui.job(ui.job_id("morning").await).await["stack"].as_i64().unwrap();
    let busy_name = ui.api.get(&format!("/api/v1/blockstacks/byid/{busy}")).await.json()["name"].clone();
    let busy_name = busy_name.as_str().unwrap().to_string();
    ui.goto(&format!("/ui/#/stacks/{busy}")).await;
    wait_text(c, "h1", "the stack a job runs", |t| t.starts_with(&busy_name)).await;
    ui.confirm_next().await;
    click(c, "#delete-stack").await;
    wait_text(c, "#flash", "the refusal to delete a stack in use", |t| t.contains("job")).await;
    assert_eq!(ui.api.get(&format!("/api/v1/blockstacks/byid/{busy}")).await.status, 200);
    ui.no_js_errors("the stack, job and schedule deletions").await;
}

/// Tokens: one created with scopes (its secret shown once, and working), then revoked.
/// Webhooks: a subscription (its secret shown once), its deliveries, a change, its deletion.
async fn tokens_and_webhooks(ui: &Ui<'_>) {
    let c = ui.c;
    click(c, "#nav-tokens").await;
    wait_text(c, "h1", "the tokens page", |t| t == "API tokens").await;
    fill(c, "#new-token-name", "ci").await;
    click(c, "#new-token-scope-jobs").await;
    click(c, "#new-token-create").await;
    let secret = wait_text(c, "#new-token-secret", "the new token, once", |t| !t.is_empty()).await;
    let ci = Api::new(ui.server, Some(&secret));
    let whoami = ci.get("/api/v1/whoami").await;
    assert_eq!(whoami.status, 200, "{}", whoami.text);
    let mut scopes: Vec<String> = serde_json::from_value(whoami.json()["scopes"].clone()).unwrap();
    scopes.sort();
    assert_eq!(scopes, ["jobs", "public"]);
    let rows = wait_text(c, "#tokens", "the token in the list", |t| t.contains("ci")).await;
    assert!(!rows.contains(&secret), "the list shows the secret");
    screenshot(c, "tokens").await;
    let id = ui.api.get("/api/v1/tokens").await.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()["id"]
        .clone();
    ui.confirm_next().await;
    click(c, &format!("button[data-token=\"{id}\"]")).await;
    wait_text(c, "#flash", "revoked", |t| t.contains("Revoked token ci")).await;
    assert!(!ui.displayed("#new-token-secret").await, "the secret is shown once only");
    assert_eq!(ci.get("/api/v1/whoami").await.status, 401, "a revoked token still works");
    ui.no_js_errors("the tokens page").await;

    // A subscription to this very server's whoami (GET only): every delivery is refused (405).
    click(c, "#nav-webhooks").await;
    wait_text(c, "h1", "the webhooks page", |t| t == "Webhooks").await;
    fill(c, "#new-webhook-name", "alerts").await;
    fill(c, "#new-webhook-url", &ui.server.url("/api/v1/whoami")).await;
    click(c, "#new-webhook-create").await;
    let secret = wait_text(c, "#new-webhook-secret", "the signing secret, once", |t| t.len() >= 16).await;
    wait_text(c, "#webhooks", "the subscription", |t| t.contains("alerts") && t.contains("run.failed")).await;
    let failing = ui.job_id("nightly-fail").await;
    let run = ui.run_now(failing, json!([])).await;
    ui.wait_run(run, "failed").await;
    click(c, ".webhook-link").await;
    wait_text(c, "#deliveries", "the failed run's delivery, refused", |t| {
        t.contains("run.failed") && t.contains("405")
    })
    .await;
    assert!(!c.source().await.unwrap().contains(&secret), "the secret shown again");
    screenshot(c, "webhook").await;
    fill(c, "#webhook-edit-name", "alerts-2").await;
    fill(c, "#webhook-edit-job", "nightly-fail").await;
    click(c, "#webhook-save").await;
    wait_text(c, "h1", "the new name", |t| t.starts_with("alerts-2")).await;
    let hooks = ui.api.get("/api/v1/webhooks").await.json();
    assert_eq!(hooks["webhooks"][0]["job_id"], failing, "narrowed to the job by its name: {hooks}");
    ui.confirm_next().await;
    click(c, "#webhook-delete").await;
    wait_text(c, "#flash", "deleted", |t| t.contains("Deleted the subscription")).await;
    wait_text(c, "h1", "the webhooks page again", |t| t == "Webhooks").await;
    assert_eq!(ui.api.get("/api/v1/webhooks").await.json()["count"], 0);
    ui.no_js_errors("the webhooks pages").await;
}

async fn pipeline_and_monitors(ui: &Ui<'_>) {
    let c = ui.c;
    // A pipeline: its blocks on the stacks page, its run's steps on the run page.
    let blocks =
        json!([["Shell command", {"command": "echo 41"}], ["Transform", {"answer": "\u{1}/input\u{2}"}]]);
    let stack = ui.api.create("/api/v1/blockstacks", json!({"name": "pipe", "blocks": blocks})).await;
    let schedule = ui.api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    let pipe = ui
        .api
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "pipe"}))
        .await;
    let run = ui.run_now(pipe, json!([])).await;
    click(c, "#nav-stacks").await;
    wait_text(c, ".blocks", "the pipeline's blocks", |t| {
        t.contains("Shell command") && t.contains("Transform")
    })
    .await;
    screenshot(c, "stacks").await;
    ui.goto(&format!("/ui/#/runs/{run}")).await;
    let steps = wait_text(c, "#run-steps", "the run's steps", |t| t.matches("succeeded").count() == 2).await;
    assert!(steps.contains(r#"{"answer":41}"#), "{steps}");
    // The pipeline's edit form holds its blocks.
    ui.goto(&format!("/ui/#/stacks/{stack}")).await;
    let text = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#stack-edit-blocks"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("Shell command") && text.contains("echo 41"), "{text}");

    // Heartbeat monitors: the page from the nav, a monitor from its form, its page with its
    // ping URL; a ping (as the job would send it) shows there and in the list.
    click(c, "#nav-monitors").await;
    wait_text(c, "h1", "the monitors page", |t| t == "Monitors").await;
    fill(c, "#monitor-name", "nightly-backup").await;
    fill(c, "#monitor-cron", "0 3 * * *").await;
    fill(c, "#monitor-tz", "Europe/Paris").await;
    fill(c, "#monitor-grace", "600").await;
    click(c, "#monitor-create").await;
    let url = wait_text(c, "#monitor-ping-url", "the ping URL", |t| t.contains("/ping/")).await;
    wait_text(c, "#monitor-state", "a new monitor", |t| t == "new").await;
    let path = url.trim().strip_prefix(ui.server.base.as_str()).expect("the ping URL is on the server");
    let r =
        Api::new(ui.server, None).send_raw("POST", path, Some("text/plain"), b"backup done".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.refresh().await.unwrap();
    wait_text(c, "#monitor-state", "up after the ping", |t| t == "up").await;
    wait_text(c, ".ping-body", "the ping's body", |t| t == "backup done").await;
    screenshot(c, "monitor").await;
    ui.goto("/ui/#/monitors").await;
    wait_text(c, ".monitor-link", "the monitor in the list", |t| t == "nightly-backup").await;
    wait_text(c, "#monitor-rows", "its state in the list", |t| t.contains("up")).await;
    screenshot(c, "monitors").await;
    ui.no_js_errors("the pipeline and the monitors").await;
}

/// What does not exist says so, and nothing of the previous page stays.
async fn not_found(ui: &Ui<'_>, job_id: i64) {
    let c = ui.c;
    ui.goto(&format!("/ui/#/jobs/{job_id}")).await;
    wait_text(c, "h1", "the job", |t| t.starts_with("morning")).await;
    ui.goto("/ui/#/jobs/999999").await;
    wait_text(c, "#not-found", "the job's absence", |t| t == "Not found").await;
    assert_eq!(
        ui.count("#pause-toggle, #delete-job, #run-now").await,
        0,
        "the previous job's buttons stayed"
    );
    wait_text(c, "#view", "the reason", |t| t.contains("job")).await;
    ui.goto("/ui/#/no-such-page").await;
    wait_text(c, "#not-found", "an unknown page", |t| t == "Not found").await;
    // A banner belongs to its page: an error on one is gone on the next.
    ui.goto("/ui/#/stacks").await;
    fill(c, "#stack-name", "greeter").await;
    fill(c, "#stack-command", "true").await;
    click(c, "#stack-create").await;
    wait_text(c, "#flash", "the duplicate's refusal", |t| t.contains("already exists")).await;
    click(c, "#nav-overview").await;
    wait_text(c, "h1", "the overview", |t| t.starts_with("Overview")).await;
    assert!(!ui.displayed("#flash").await, "the stacks page's error stayed on the overview");
    ui.no_js_errors("the not-found views").await;
    // An unknown file under /ui/: a page saying so, with the way back.
    ui.goto("/ui/no/such/file").await;
    wait_text(c, "#not-found", "the 404 page", |t| t == "Not found").await;
    screenshot(c, "404").await;
}

/// Signed out, then in with a token; the API reference.
async fn token_sign_in(ui: &Ui<'_>, token: &str) {
    let c = ui.c;
    ui.goto("/ui/").await;
    click(c, "#sign-out").await;
    wait_text(c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    assert!(!ui.displayed("#nav").await);
    // A token without the admin scope: the tokens page says why it cannot be shown.
    let public = ui.api.post("/api/v1/tokens", json!({"name": "reader", "scopes": ["public"]})).await.json();
    fill(c, "#token-input", public["token"].as_str().unwrap()).await;
    click(c, "#token-submit").await;
    wait_text(c, "#whoami", "signed in by the reader token", |t| t == "paula").await;
    click(c, "#nav-tokens").await;
    wait_text(c, "#page-error", "the missing scope", |t| t.contains("admin")).await;
    click(c, "#sign-out").await;
    wait_text(c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    fill(c, "#token-input", token).await;
    click(c, "#token-submit").await;
    wait_text(c, "#whoami", "signed in by token", |t| t == "paula").await;
    // Signed in again on the page in the address: the tokens page, now shown.
    wait_text(c, "#tokens", "the tokens with the admin token", |t| t.contains("reader")).await;
    click(c, "#nav-overview").await;
    wait_text(c, "#overview-rows", "the same jobs", |t| t.contains("morning")).await;
    ui.no_js_errors("the token sign-in").await;

    // The API reference renders the generated document.
    ui.goto("/docs").await;
    wait_text(c, "#docs h1", "the reference", |t| t.starts_with("cronstack API")).await;
    let ops = c.find_all(Locator::Css("details.op")).await.unwrap();
    assert!(ops.len() > 40, "{} operations listed", ops.len());
    screenshot(c, "docs").await;
    ui.no_js_errors("the API reference").await;
}
