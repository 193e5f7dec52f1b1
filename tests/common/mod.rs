//! Black-box test harness: starts the real `cronstack` binary on a free loopback port with a
//! fresh database, and talks to it over HTTP.
//!
//! The database is a temp SQLite file, or — when `CRONSTACK_TEST_POSTGRES` holds a server
//! URL such as `postgres://postgres@127.0.0.1:5432` — a fresh PostgreSQL database per server.
#![allow(dead_code)]

pub mod cli;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cronstack::api::v1::{JobView, MonitorView, RunView};
use serde_json::Value;

mod sinks;
#[allow(unused_imports)]
pub use sinks::{Behaviour, Mail, Received, Receiver, SmtpSink};

pub const BIN: &str = env!("CARGO_BIN_EXE_cronstack");

/// A database for one test: a temp SQLite file or a throw-away PostgreSQL database.
pub struct TestDb {
    pub url: String,
    /// The PostgreSQL server URL and database name, to drop it afterwards.
    pg: Option<(String, String)>,
    /// PostgreSQL: the secret key file every server on this database is started with (SQLite
    /// servers make their own beside the database file).
    pub key_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut pg = None;
        let mut key_file = None;
        let url = match std::env::var("CRONSTACK_TEST_POSTGRES") {
            Ok(server) if !server.is_empty() => {
                let name = format!("cronstack_test_{}", &hex_id()[..16]);
                let status = Command::new("psql")
                    .args([server.as_str(), "-q", "-c", &format!("CREATE DATABASE {name}")])
                    .status()
                    .expect("psql runs");
                assert!(status.success(), "creating test database {name}");
                pg = Some((server.clone(), name.clone()));
                key_file = Some(write_key_file(dir.path()));
                format!("{}/{name}", server.trim_end_matches('/'))
            }
            _ => format!("sqlite://{}", dir.path().join("cronstack.db").display()),
        };
        TestDb { url, pg, key_file, _dir: dir }
    }

    pub fn dir(&self) -> PathBuf {
        self._dir.path().to_path_buf()
    }
}

impl TestDb {
    /// Another URL for the same database (e.g. through a proxy); dropping it drops nothing.
    pub fn alias(same: &TestDb, url: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = same.key_file.as_ref().map(|key| {
            let copy = dir.path().join("cronstack.key");
            std::fs::copy(key, &copy).expect("copy the key file");
            copy
        });
        TestDb { url: url.to_string(), pg: None, key_file, _dir: dir }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.pg {
            let _ = Command::new("psql")
                .args([server.as_str(), "-q", "-c", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A fresh secret key file (64 hex digits) in `dir`.
fn write_key_file(dir: &std::path::Path) -> PathBuf {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key)).expect("random key");
    let path = dir.join("cronstack.key");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create the key file");
    std::io::Write::write_all(&mut file, format!("{hex}\n").as_bytes()).expect("write the key file");
    path
}

fn hex_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `cronstack serve`. Dropping it sends SIGTERM and waits.
pub struct Server {
    pub base: String,
    pub port: u16,
    pub db_url: String,
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl Server {
    /// Starts a server on `db` with extra flags, waiting until it answers `/healthz`.
    pub fn start_on(db: &TestDb, extra: &[&str]) -> Server {
        Self::start_with_env(db, extra, &[])
    }

    /// Like [`Server::start_on`], with extra environment variables (e.g. `RUST_LOG`).
    pub fn start_with_env(db: &TestDb, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log_path = db.dir().join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut key = Vec::new();
        if let Some(file) = &db.key_file
            && !extra.contains(&"--secret-key-file")
        {
            key = vec!["--secret-key-file".to_string(), file.display().to_string()];
        }
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", &db.url])
            .args(&key)
            .args(extra)
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cronstack serve");
        let server = Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            db_url: db.url.clone(),
            child: Some(child),
            log_path,
        };
        server.wait_healthy();
        server
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let host = format!("127.0.0.1:{}", self.port);
        while Instant::now() < deadline {
            if http_status(&host, "/healthz").is_ok_and(|code| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become healthy; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL: the crash case.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the graceful case.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cronstack user add NAME` on the database; returns the token (stdout's last line).
pub fn add_user(db: &TestDb, name: &str, password: Option<&str>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["user", "add", name, "--email", &format!("{name}@example.com"), "--database-url", &db.url]);
    if let Some(p) = password {
        cmd.args(["--password", p]);
    }
    let out = cmd.output().expect("run user add");
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().trim().to_string()
}

/// An HTTP client bound to a server and (optionally) a bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// A response, read fully.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

impl Api {
    pub fn new(server: &Server, token: Option<&str>) -> Self {
        Api { base: server.base.clone(), token: token.map(str::to_string), http: reqwest::Client::new() }
    }

    /// The uids a v3 path names a stack and one of its jobs by, read through v1.
    pub async fn v3_uids(&self, stack: i64, job: i64) -> (String, String) {
        let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
        let stack_uid = uid(self.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json());
        let job_uid = uid(self.get(&format!("/api/v1/jobs/byid/{job}")).await.json());
        (stack_uid, job_uid)
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Resp { status, headers, text }
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        self.send_with_headers(method, path, content_type, body, &[]).await
    }

    /// [`Api::send_raw`] with extra request headers.
    pub async fn send_with_headers(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{}", self.base, path)).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Resp { status, headers, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send("PUT", path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None).await
    }

    /// Job `job`'s latest run once it has ended (`None`: not within 30 s).
    pub async fn ended_run(&self, job: i64) -> Option<Value> {
        eventually(Duration::from_secs(30), || async {
            let r = self.get(&format!("/api/v1/jobs/byid/{job}/runs")).await;
            let runs = r.json()["runs"].as_array().cloned().unwrap_or_default();
            runs.first().filter(|r| !matches!(r["outcome"].as_str(), Some("queued" | "running"))).cloned()
        })
        .await
    }

    /// A run's stored log (asserting 200).
    pub async fn run_log(&self, run: i64) -> String {
        let r = self.get(&format!("/api/v1/runs/{run}/log")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.text
    }

    /// Runs job `job` of stack `stack` (v1 ids) through v3's `run_now` and waits for its
    /// action to finish; answers the finished action.
    pub async fn v3_run_now_finished(&self, stack: i64, job: i64) -> Value {
        let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
        let stack_uid = uid(self.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json());
        let job_uid = uid(self.get(&format!("/api/v1/jobs/byid/{job}")).await.json());
        let r = self
            .post(&format!("/api/3/stacks/{stack_uid}/jobs/{job_uid}/run_now.json"), serde_json::json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let action = r.json()["response"]["id"].as_i64().unwrap();
        let path = format!("/api/3/stacks/{stack_uid}/actions/{action}.json");
        eventually(Duration::from_secs(30), || async {
            let a = self.get(&path).await.json()["response"].clone();
            (!a["finished_at"].is_null()).then_some(a)
        })
        .await
        .expect("the run-now action finishes")
    }

    /// POSTs and returns the `id` of the created object, asserting 200.
    pub async fn create(&self, path: &str, body: Value) -> i64 {
        let r = self.post(path, body).await;
        assert_eq!(r.status, 200, "POST {path}: {}", r.text);
        r.json()["id"].as_i64().unwrap_or_else(|| panic!("no id in {}", r.text))
    }
}

/// Typed reads on the wire model (`cronstack::api::v1`): a renamed or retyped field fails the
/// test that reads it.
impl Api {
    /// GETs `path` (asserting 200) and parses the answer as `T`.
    pub async fn view<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        serde_json::from_str(&r.text)
            .unwrap_or_else(|e| panic!("GET {path}: not the wire type ({e}): {}", r.text))
    }

    pub async fn job(&self, id: i64) -> JobView {
        self.view(&format!("/api/v1/jobs/byid/{id}")).await
    }

    pub async fn run(&self, id: i64) -> RunView {
        self.view(&format!("/api/v1/runs/{id}")).await
    }

    pub async fn monitor(&self, id: i64) -> MonitorView {
        self.view(&format!("/api/v1/monitors/byid/{id}")).await
    }

    /// Run `id` once it has ended (panics after 30 s).
    pub async fn run_ended(&self, id: i64) -> RunView {
        eventually(Duration::from_secs(30), || async {
            let run = self.run(id).await;
            run.outcome.is_final().then_some(run)
        })
        .await
        .unwrap_or_else(|| panic!("run {id} did not end"))
    }
}

/// Kragle's v1 error codes (README, "Errors"), by name.
pub mod code {
    /// A bad query or path parameter.
    pub const BAD_PARAMETER: i64 = 1;
    /// The body is not valid JSON.
    pub const BAD_JSON: i64 = 2;
    /// Unknown user, wrong password, missing or invalid credentials.
    pub const UNAUTHENTICATED: i64 = 3;
    /// The payload does not fit (field, size, content type, method).
    pub const BAD_PAYLOAD: i64 = 4;
    /// The object does not exist (or is someone else's).
    pub const NOT_FOUND: i64 = 6;
    pub const STACK_NAME_TAKEN: i64 = 10;
    /// A job (or monitor) name already taken.
    pub const JOB_NAME_TAKEN: i64 = 12;
    /// The stack named in the payload does not exist or is not the caller's.
    pub const NO_SUCH_STACK: i64 = 24;
    /// The schedule named in the payload does not exist or is not the caller's.
    pub const NO_SUCH_SCHEDULE: i64 = 25;
    /// The job (or monitor) named in the payload: the same code as a schedule.
    pub const NO_SUCH_JOB: i64 = NO_SUCH_SCHEDULE;
    pub const BAD_SCHEDULE: i64 = 26;
    pub const SCHEDULE_IN_USE: i64 = 27;
    pub const RATE_LIMITED: i64 = 28;
    pub const MISSING_SCOPE: i64 = 29;
    pub const SERVER_PROBLEM: i64 = 30;
}

/// Asserts a Kragle error: the HTTP status, exactly `{code, msg}`, a non-empty message;
/// answers the message.
#[track_caller]
pub fn assert_err(r: &Resp, status: u16, code: i64) -> String {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text);
    let v = r.json();
    let obj = v.as_object().unwrap_or_else(|| panic!("error body is not an object: {}", r.text));
    assert_eq!(v["code"], serde_json::json!(code), "unexpected code; body: {}", r.text);
    let msg = v["msg"].as_str().unwrap_or_else(|| panic!("no msg: {}", r.text));
    assert!(!msg.trim().is_empty(), "empty msg");
    assert_eq!(obj.len(), 2, "error body has extra keys: {}", r.text);
    msg.to_string()
}

/// Waits until every node of a cluster is ready and lists all of them in `/api/v1/nodes`,
/// then a heartbeat more (each node reads the live set, which splits the slots, once a
/// second): a node started last on a loaded machine otherwise joins after the first slots,
/// which the others then claim alone.
pub async fn wait_joined(nodes: &[&Server], token: &str) {
    for node in nodes {
        let api = Api::new(node, Some(token));
        eventually(Duration::from_secs(30), || async {
            let ready = api.get("/readyz").await.status == 200;
            let listed = api.get("/api/v1/nodes").await.json()["count"].as_u64() == Some(nodes.len() as u64);
            (ready && listed).then_some(())
        })
        .await
        .unwrap_or_else(|| {
            panic!("{} did not see all {} nodes; log:\n{}", node.base, nodes.len(), node.log())
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// Polls `check` every 50 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain blocking GET returning the status code (used before the async client is needed).
fn http_status(host_port: &str, path: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host_port)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0))
}

/// Kills process group `pgid` if it is still a job's (its leader's environment names a
/// cronstack run). A recorded job pid that ended may belong to anyone by now, pids wrap
/// quickly on a busy machine: such a group is left alone.
pub fn kill_job_group(pgid: i32) {
    let environ = std::fs::read(format!("/proc/{pgid}/environ")).unwrap_or_default();
    let is_job = environ.split(|&b| b == 0).any(|var| var.starts_with(b"CRONSTACK_RUN_ID="));
    if pgid > 1 && is_job {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Whether the tests run on PostgreSQL (`CRONSTACK_TEST_POSTGRES`; CI's second pass sets it);
/// says why a cluster test does nothing otherwise.
pub fn postgres_or_skip() -> bool {
    let on_pg = std::env::var("CRONSTACK_TEST_POSTGRES").is_ok_and(|v| !v.is_empty());
    if !on_pg {
        eprintln!("this test needs a PostgreSQL cluster: set CRONSTACK_TEST_POSTGRES (CI does)");
    }
    on_pg
}

/// The rows of a query through `psql`, as text columns.
pub fn psql_rows(db_url: &str, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new("psql").args([db_url, "-At", "-F", "\t", "-c", sql]).output().expect("psql");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// `v` without what moves with the clock rather than with what is stored: every schedule's
/// `upcoming` fire times (a snapshot taken across a slot would differ otherwise).
pub fn without_upcoming(mut v: Value) -> Value {
    for schedule in v["schedules"].as_array_mut().into_iter().flatten() {
        schedule.as_object_mut().map(|s| s.remove("upcoming"));
    }
    v
}
