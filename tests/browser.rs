//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) driven through
//! `chromedriver` over WebDriver. A person signs in with a password, creates a stack and a
//! job (the stack with a secret variable), reads the schedule in words and the next fire times, pauses and resumes it, runs it
//! with arguments, watches its log, and comes back to its history and chart; creates a
//! heartbeat monitor and sees a ping arrive; then signs in again with a token. Screenshots land in `target/tmp/browser-*.png`.
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

async fn fill(c: &Client, css: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let el = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        // The page may render again between finding the field and typing (a stale element):
        // find it again, as a person would type into the new one.
        let typed = async {
            el.clear().await?;
            el.send_keys(value).await
        };
        match typed.await {
            Ok(()) => return,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

async fn click(c: &Client, css: &str) {
    let el = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn screenshot(c: &Client, name: &str) -> std::path::PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
    path
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
    let server = Server::start_on(&db, &[]);
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let c = browser(&driver, &chromium, profile.path()).await;
    let result = tokio::time::timeout(Duration::from_secs(180), journey(&c, &server, &token)).await;
    let _ = c.close().await;
    result.expect("the browser journey finished in time");
}

async fn api_job_id(server: &Server, token: &str, name: &str) -> i64 {
    Api::new(server, Some(token)).get(&format!("/api/v1/jobs/byname/{name}")).await.json()["id"]
        .as_i64()
        .unwrap()
}

async fn journey(c: &Client, server: &Server, token: &str) {
    // Signed out: the sign-in page.
    c.goto(&server.url("/")).await.unwrap();
    wait_text(c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    screenshot(c, "signin").await;

    // A wrong password is refused with the server's message.
    fill(c, "#login-username", "paula").await;
    fill(c, "#login-password", "wrong").await;
    click(c, "#login-submit").await;
    wait_text(c, "#flash", "the refusal", |t| t.contains("wrong password")).await;

    // Sign in with the password: the auth_tkt cookie.
    fill(c, "#login-password", PASSWORD).await;
    click(c, "#login-submit").await;
    wait_text(c, "#whoami", "the user's name", |t| t == "paula").await;
    wait_text(c, "h1", "the stacks page", |t| t == "Stacks").await;

    // A stack with a secret variable, then a job on it with a cron expression in Paris.
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

    // The job page: schedule in words, the next five fire times.
    let words = wait_text(c, "#schedule-words", "the schedule in words", |t| !t.is_empty()).await;
    assert_eq!(words, "at 07:30 on Monday through Friday Europe/Paris");
    let upcoming = c.find_all(Locator::Css("#upcoming li")).await.unwrap();
    assert_eq!(upcoming.len(), 5);
    wait_text(c, "#job-state", "enabled", |t| t == "enabled").await;

    // Pause and resume.
    click(c, "#pause-toggle").await;
    wait_text(c, "#job-state", "paused", |t| t == "paused").await;
    click(c, "#pause-toggle").await;
    wait_text(c, "#job-state", "enabled again", |t| t == "enabled").await;

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
    c.goto(&server.url(&format!("/ui/#/jobs/{}", api_job_id(server, token, "morning").await))).await.unwrap();
    fill(c, "#run-args", &"x ".repeat(60)).await;
    click(c, "#run-now").await;
    wait_text(c, "#live", "the live marker of the long run", |t| t.contains("live")).await;
    click(c, "#kill-run").await;
    wait_text(c, "#run-outcome", "the killed outcome", |t| t == "killed").await;

    // Back on the job page: the history row and the chart (after a second run).
    let api = Api::new(server, Some(token));
    let jobs = api.get("/api/v1/jobs/byname/morning").await.json();
    let job_id = jobs["id"].as_i64().unwrap();
    api.post(&format!("/api/v1/jobs/byid/{job_id}/run"), json!({"args": ["dave"]})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.goto(&server.url(&format!("/ui/#/jobs/{job_id}"))).await.unwrap();
    c.refresh().await.unwrap();
    let runs =
        wait_text(c, "#runs", "two runs in the history", |t| t.matches("succeeded").count() == 2).await;
    assert!(
        runs.contains("alice big bob carol") && runs.contains("dave"),
        "each run's own arguments: {runs}"
    );
    let chart = c.find_all(Locator::Css("#chart svg circle")).await.unwrap();
    assert_eq!(chart.len(), 6, "a duration and a lateness point per run (two succeeded, one killed)");
    screenshot(c, "job").await;

    // A job chained after it, set in its settings form; its chained run links the upstream run.
    let evening = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": jobs["stack"], "schedule_id": jobs["schedule"], "name": "evening", "enabled": true}),
        )
        .await;
    c.goto(&server.url(&format!("/ui/#/jobs/{evening}"))).await.unwrap();
    wait_text(c, "#job-after-words", "no chain yet", |t| t == "none").await;
    fill(c, "#job-after", "morning").await;
    fill(c, "#job-jitter", "5").await;
    click(c, "#settings-save").await;
    let chain = format!("morning (#{job_id}) on success");
    wait_text(c, "#job-after-words", "the chain", |t| t == chain).await;
    screenshot(c, "chain").await;
    let stored = api.get(&format!("/api/v1/jobs/byid/{evening}")).await.json();
    assert_eq!(stored["after"], json!([{"job_id": job_id, "on": "success"}]), "{stored}");
    assert_eq!(stored["jitter_s"], 5);
    let upstream = api.post(&format!("/api/v1/jobs/byid/{job_id}/run"), json!({})).await.json()["id"].clone();
    let chained = eventually(Duration::from_secs(30), || async {
        let runs = api.get(&format!("/api/v1/jobs/byid/{evening}/runs")).await.json();
        runs["runs"].as_array().and_then(|r| r.first()).map(|r| r["id"].clone())
    })
    .await
    .expect("the chained run");
    c.goto(&server.url(&format!("/ui/#/runs/{chained}"))).await.unwrap();
    wait_text(c, "#upstream-runs", "the upstream run", |t| t == format!("#{upstream}")).await;

    // The stacks page lists the job with its schedule.
    c.goto(&server.url("/ui/#/")).await.unwrap();
    wait_text(c, ".job-link", "the job under its stack", |t| t == "morning").await;
    screenshot(c, "stacks").await;

    // A pipeline: its blocks on the stacks page, its run's steps on the run page.
    let blocks =
        json!([["Shell command", {"command": "echo 41"}], ["Transform", {"answer": "\u{1}/input\u{2}"}]]);
    let stack = api.create("/api/v1/blockstacks", json!({"name": "pipe", "blocks": blocks})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 0 1 1 *"}})).await;
    let pipe =
        api.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": schedule, "name": "pipe"})).await;
    let run =
        api.post(&format!("/api/v1/jobs/byid/{pipe}/run"), json!({})).await.json()["id"].as_i64().unwrap();
    c.goto(&server.url("/ui/#/")).await.unwrap();
    c.refresh().await.unwrap();
    wait_text(c, ".blocks", "the pipeline's blocks", |t| {
        t.contains("Shell command") && t.contains("Transform")
    })
    .await;
    c.goto(&server.url(&format!("/ui/#/runs/{run}"))).await.unwrap();
    c.refresh().await.unwrap();
    let steps = wait_text(c, "#run-steps", "the run's steps", |t| t.matches("succeeded").count() == 2).await;
    assert!(steps.contains(r#"{"answer":41}"#), "{steps}");
    c.goto(&server.url("/ui/#/")).await.unwrap();
    // The stacks page fully drawn first (a route still loading would draw over the next one).
    wait_text(c, ".blocks", "the stacks page's pipeline", |t| t.contains("Transform")).await;
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
    let path = url.trim().strip_prefix(server.base.as_str()).expect("the ping URL is on the server");
    let r = Api::new(server, None).send_raw("POST", path, Some("text/plain"), b"backup done".to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    c.refresh().await.unwrap();
    wait_text(c, "#monitor-state", "up after the ping", |t| t == "up").await;
    wait_text(c, ".ping-body", "the ping's body", |t| t == "backup done").await;
    screenshot(c, "monitor").await;
    c.goto(&server.url("/ui/#/monitors")).await.unwrap();
    wait_text(c, ".monitor-link", "the monitor in the list", |t| t == "nightly-backup").await;
    wait_text(c, "#monitor-rows", "its state in the list", |t| t.contains("up")).await;
    screenshot(c, "monitors").await;
    c.goto(&server.url("/ui/#/")).await.unwrap();
    wait_text(c, "h1", "the stacks page again", |t| t == "Stacks").await;

    // Sign out, then in with a token.
    click(c, "#sign-out").await;
    wait_text(c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    fill(c, "#token-input", token).await;
    click(c, "#token-submit").await;
    wait_text(c, "#whoami", "signed in by token", |t| t == "paula").await;
    wait_text(c, ".job-link", "the same jobs", |t| t == "morning").await;

    // The API reference renders the generated document.
    c.goto(&server.url("/docs")).await.unwrap();
    wait_text(c, "#docs h1", "the reference", |t| t.starts_with("cronstack API")).await;
    let ops = c.find_all(Locator::Css("details.op")).await.unwrap();
    assert!(ops.len() > 40, "{} operations listed", ops.len());
    screenshot(c, "docs").await;
}
