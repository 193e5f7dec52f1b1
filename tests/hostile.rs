//! A hostile client against both API dialects: oversized and endlessly nested bodies, wrong
//! content types, invalid UTF-8 in bodies and paths, absurd page numbers and ids, SQL-looking
//! and path-traversing names, control characters and giant headers, half-sent requests and
//! bytes that are not HTTP at all.
//!
//! Every refusal must be a 4xx with a JSON body in the dialect's shape — or, for bytes hyper
//! refuses before the application sees a request, a bare 4xx or a closed connection. After
//! each, the server must still answer and nothing stored may have changed.
//! (`api_v1.rs` covers the ordinary bad-input cases of v1 field by field; this file is the rest.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// 2100-01-01T00:00:00Z: a slot that never comes due while the tests run.
const FAR_TS: i64 = 4_102_444_800;

struct World {
    server: Server,
    alice: Api,
    bob: Api,
    alice_token: String,
    stack_uid: String,
    job_id: i64,
    job_uid: String,
    _db: TestDb,
}

async fn world(flags: &[&str]) -> World {
    let db = TestDb::new();
    let alice_token = add_user(&db, "alice", Some("alice-password"));
    let bob_token = add_user(&db, "bob", None);
    let server = Server::start_on(&db, flags);
    let alice = Api::new(&server, Some(&alice_token));
    let bob = Api::new(&server, Some(&bob_token));
    let stack = alice.create("/api/v1/blockstacks", json!({"name": "base", "command": "echo \"$@\""})).await;
    let sched = alice.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    let job_id = alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": sched, "name": "j", "enabled": true}),
        )
        .await;
    let stack_uid = alice.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json()["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let job_uid =
        alice.get(&format!("/api/v1/jobs/byid/{job_id}")).await.json()["uid"].as_str().unwrap().to_string();
    World { server, alice, bob, alice_token, stack_uid, job_id, job_uid, _db: db }
}

impl World {
    /// Everything both users can see through both dialects, runs and actions included.
    async fn snapshot(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (who, api) in [("alice", &self.alice), ("bob", &self.bob)] {
            let mut paths: Vec<String> = [
                "/api/v1/blockstacks",
                "/api/v1/schedules",
                "/api/v1/jobs",
                "/api/v1/tokens",
                "/api/3/stacks",
            ]
            .map(String::from)
            .to_vec();
            if who == "alice" {
                paths.push(format!("/api/v1/jobs/byid/{}/runs", self.job_id));
                paths.push(format!("/api/3/stacks/{}/jobs", self.stack_uid));
                paths.push(format!("/api/3/stacks/{}/actions", self.stack_uid));
            }
            for path in paths {
                let r = api.get(&path).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
                out.insert(format!("{who} {path}"), without_upcoming(r.json()));
            }
        }
        Value::Object(out)
    }

    fn v3(&self, rest: &str) -> String {
        format!("/api/3/stacks/{}{rest}", self.stack_uid)
    }
}

/// A response, or `None` when the server closed the connection instead of answering.
async fn send(api: &Api, method: &str, path: &str, ct: Option<&str>, body: reqwest::Body) -> Option<Resp> {
    let mut req = api.http.request(method.parse().unwrap(), format!("{}{}", api.base, path)).body(body);
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.ok()?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    Some(Resp { status, headers, text })
}

/// Asserts an application refusal: a 4xx whose body is the dialect's JSON error.
#[track_caller]
fn assert_refused(what: &str, path: &str, r: &Resp) {
    assert!((400..500).contains(&r.status), "{what}: {path} answered {}: {}", r.status, r.text);
    let v: Value = serde_json::from_str(&r.text)
        .unwrap_or_else(|e| panic!("{what}: {path}: not JSON ({e}): {:?}", r.text));
    let (key, msg) =
        if path.starts_with("/api/v1") { ("code", "msg") } else { ("error", "error_description") };
    assert!(!v[key].is_null(), "{what}: {path}: no {key:?} in {v}");
    assert!(v[msg].as_str().is_some_and(|m| !m.is_empty()), "{what}: {path}: no {msg:?} in {v}");
}

async fn assert_healthy(server: &Server) {
    let r = Api::new(server, None).get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!server.log().contains("panicked"), "server log shows a panic:\n{}", server.log());
}

fn nested(open: &str, depth: usize) -> Vec<u8> {
    open.repeat(depth).into_bytes()
}

/// A body that streams `total` bytes of JSON-ish filler in 64 KiB chunks (no content length).
fn chunked(total: usize) -> reqwest::Body {
    let chunks = (0..total.div_ceil(65536)).map(|_| Ok::<_, std::io::Error>(vec![b' '; 65536]));
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

// ---------------------------------------------------------------------------------------------
// Well-formed HTTP, hostile content
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hostile_requests_get_a_4xx_json_error_and_change_nothing() {
    let w = world(&[]).await;
    let (job, juid) = (w.job_id, w.job_uid.clone());
    let run_now = w.v3(&format!("/jobs/{juid}/run_now"));
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let mut bad_utf8_name = b"{\"name\": \"".to_vec();
    bad_utf8_name.extend_from_slice(b"\xc3\x28\xff\xfe");
    bad_utf8_name.extend_from_slice(b"\"}");
    let bad_utf8_args = b"{\"job_args\": \"\xff\xfe\"}".to_vec();
    let deep_config = [b"{\"config\": ".to_vec(), nested("[", 100_000)].concat();
    let json = Some("application/json");

    // (what, method, path, content type, body)
    #[allow(clippy::type_complexity)] // (what, method, path, content type, body)
    let cases: Vec<(&str, &str, String, Option<&str>, Vec<u8>)> = vec![
        // Size.
        ("2 MiB v1 body", "POST", "/api/v1/blockstacks".into(), json, huge.clone()),
        ("2 MiB v3 JSON body", "POST", run_now.clone(), json, huge.clone()),
        (
            "2 MiB v3 form body",
            "POST",
            run_now.clone(),
            Some("application/x-www-form-urlencoded"),
            huge.clone(),
        ),
        // Nesting.
        ("100k '[' as a job", "POST", "/api/v1/jobs".into(), json, nested("[", 100_000)),
        ("100k '[' as a config", "POST", "/api/v1/schedules".into(), json, deep_config),
        ("50k nested objects", "PUT", format!("/api/v1/jobs/{job}"), json, nested("{\"name\":", 50_000)),
        ("100k '{' as job_args", "POST", run_now.clone(), json, nested("{", 100_000)),
        ("100k '[' on run now", "POST", format!("/api/v1/jobs/byid/{job}/run"), json, nested("[", 100_000)),
        // Content types.
        ("text/xml", "POST", "/api/v1/blockstacks".into(), Some("text/xml"), b"<stack/>".to_vec()),
        (
            "multipart",
            "POST",
            "/api/v1/schedules".into(),
            Some("multipart/form-data; boundary=x"),
            b"--x\r\n\r\n{}\r\n--x--".to_vec(),
        ),
        ("jsonish", "PUT", format!("/api/v1/jobs/{job}"), Some("application/jsonx"), b"{}".to_vec()),
        ("v3 text/xml", "POST", run_now.clone(), Some("text/xml"), b"<job_args/>".to_vec()),
        ("v3 image", "POST", run_now.clone(), Some("image/png"), b"\x89PNG\r\n".to_vec()),
        // Invalid UTF-8 in bodies.
        ("invalid UTF-8 name", "PUT", format!("/api/v1/jobs/{job}"), json, bad_utf8_name.clone()),
        ("invalid UTF-8 stack", "POST", "/api/v1/blockstacks".into(), json, bad_utf8_name),
        (
            "invalid UTF-8 args",
            "POST",
            format!("/api/v1/jobs/byid/{job}/run"),
            json,
            b"{\"args\": \"\xff\"}".to_vec(),
        ),
        ("invalid UTF-8 job_args", "POST", run_now.clone(), json, bad_utf8_args),
        ("lone surrogate", "POST", run_now.clone(), json, b"{\"job_args\": \"\\ud800\"}".to_vec()),
        // Invalid UTF-8 and traversal in paths (percent-encoded: decoded by the router).
        ("invalid UTF-8 job name", "GET", "/api/v1/jobs/byname/%FF%FE".into(), None, vec![]),
        ("overlong UTF-8 stack name", "GET", "/api/v1/blockstacks/byname/%C0%AF".into(), None, vec![]),
        ("invalid UTF-8 stack uid", "GET", "/api/3/stacks/%FF".into(), None, vec![]),
        ("invalid UTF-8 job uid", "POST", w.v3("/jobs/%FF%FE/pause"), json, b"{}".to_vec()),
        ("invalid UTF-8 action id", "GET", w.v3("/actions/%FF"), None, vec![]),
        ("invalid UTF-8 query", "GET", "/api/v1/jobs?page=%FF".into(), None, vec![]),
        ("invalid UTF-8 follow", "GET", "/api/v1/runs/1/log?follow=%FF".into(), None, vec![]),
        ("traversal job name", "GET", "/api/v1/jobs/byname/..%2F..%2Fetc%2Fpasswd".into(), None, vec![]),
        (
            "traversal stack name",
            "GET",
            "/api/v1/blockstacks/byname/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd".into(),
            None,
            vec![],
        ),
        ("traversal stack uid", "GET", "/api/3/stacks/..%2F..%2Fetc%2Fpasswd/jobs".into(), None, vec![]),
        ("traversal job uid", "POST", w.v3("/jobs/..%2F..%2Fetc%2Fpasswd/run_now"), json, b"{}".to_vec()),
        // NUL: PostgreSQL can neither store nor compare it, so it never reaches the database.
        ("NUL in a name", "GET", "/api/v1/jobs/byname/j%00".into(), None, vec![]),
        ("NUL in a stack uid", "GET", "/api/3/stacks/%00/jobs".into(), None, vec![]),
        ("NUL in a query", "POST", format!("{run_now}?job_args=%00"), json, b"{}".to_vec()),
        (
            "NUL in a command",
            "POST",
            "/api/v1/blockstacks".into(),
            json,
            br#"{"name": "n", "command": "a\u0000b"}"#.to_vec(),
        ),
        (
            "NUL in args",
            "POST",
            format!("/api/v1/jobs/byid/{job}/run"),
            json,
            br#"{"args": ["\u0000"]}"#.to_vec(),
        ),
        ("NUL in job_args", "POST", run_now.clone(), json, br#"{"job_args": "a\u0000"}"#.to_vec()),
        (
            "NUL in a login",
            "POST",
            "/api/v1/authenticate".into(),
            json,
            br#"{"username": "alice\u0000", "password": "x"}"#.to_vec(),
        ),
        (
            "NUL in an env value",
            "PUT",
            "/api/v1/blockstacks/1".into(),
            json,
            br#"{"env": {"A": "\u0000"}}"#.to_vec(),
        ),
        // Page numbers.
        ("page i64::MIN", "GET", "/api/v1/jobs?page=-9223372036854775808".into(), None, vec![]),
        ("page zero", "GET", "/api/3/stacks?page=0".into(), None, vec![]),
        ("page beyond i64", "GET", w.v3("/actions?page=99999999999999999999"), None, vec![]),
        ("page float", "GET", w.v3("/jobs?page=1.5"), None, vec![]),
        ("page exponent", "GET", "/api/v1/schedules?page=1e3".into(), None, vec![]),
        // Ids.
        ("negative run", "GET", "/api/v1/runs/-1".into(), None, vec![]),
        ("negative run log", "GET", "/api/v1/runs/-1/log?follow=1".into(), None, vec![]),
        ("i64::MIN job", "GET", "/api/v1/jobs/byid/-9223372036854775808".into(), None, vec![]),
        ("negative run now", "POST", "/api/v1/jobs/byid/-1/run".into(), json, b"{}".to_vec()),
        ("negative token", "DELETE", "/api/v1/tokens/-1".into(), None, vec![]),
        ("negative stack", "PUT", "/api/v1/blockstacks/-1".into(), json, b"{\"name\": \"x\"}".to_vec()),
        ("negative action", "GET", w.v3("/actions/-1"), None, vec![]),
        ("i64::MIN action", "GET", w.v3("/actions/-9223372036854775808"), None, vec![]),
        ("action beyond i64", "GET", w.v3("/actions/99999999999999999999"), None, vec![]),
        // SQL in the places ids and uids go.
        ("SQL job id", "GET", "/api/v1/jobs/byid/1%20OR%201=1".into(), None, vec![]),
        ("SQL stack uid", "GET", "/api/3/stacks/'%20OR%20'1'='1/jobs".into(), None, vec![]),
        ("SQL job uid", "POST", w.v3("/jobs/x'%3B%20DELETE%20FROM%20jobs%3B--/pause"), json, b"{}".to_vec()),
        ("SQL job name", "GET", "/api/v1/jobs/byname/'%20OR%201=1%20--".into(), None, vec![]),
        ("LIKE wildcard name", "GET", "/api/v1/jobs/byname/%25".into(), None, vec![]),
    ];

    let before = w.snapshot().await;
    for (what, method, path, ct, body) in &cases {
        let r = send(&w.alice, method, path, *ct, body.clone().into()).await;
        match r {
            Some(r) => assert_refused(what, path, &r),
            // Only an oversized body may be cut off before the answer is read.
            None => assert!(what.contains("MiB"), "{what}: {path}: connection closed without an answer"),
        }
    }
    // A body of unknown length (chunked) beyond the limit, in both dialects.
    for path in ["/api/v1/blockstacks".to_string(), run_now.clone()] {
        if let Some(r) = send(&w.alice, "POST", &path, json, chunked(3 * 1024 * 1024)).await {
            assert_eq!(r.status, 413, "chunked 3 MiB to {path}: {}", r.text);
            assert_refused("chunked 3 MiB", &path, &r);
        }
    }
    assert_healthy(&w.server).await;
    assert_eq!(w.snapshot().await, before, "a refused request changed something");

    // Huge but valid page numbers are simply empty pages that still count.
    for path in [
        "/api/v1/jobs?page=9223372036854775807".to_string(),
        format!("/api/v1/jobs/byid/{job}/runs?page=9223372036854775807"),
        "/api/3/stacks?page=9223372036854775807".to_string(),
        w.v3("/jobs?page=922337203685477580"),
    ] {
        let r = w.alice.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let v = r.json();
        assert_eq!(v["count"], if path.contains("runs") { 0 } else { 1 }, "{path}: {v}");
        let items = v.as_object().unwrap().values().find_map(Value::as_array).unwrap();
        assert!(items.is_empty(), "{path}: {v}");
    }
    assert_eq!(w.snapshot().await, before);
}

// ---------------------------------------------------------------------------------------------
// Names that look like SQL or paths are data
// ---------------------------------------------------------------------------------------------

/// Percent-encodes everything but unreserved characters, so a name is one path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn sql_looking_and_path_traversing_strings_are_stored_and_read_back_verbatim() {
    let w = world(&[]).await;
    let names = [
        "'; DROP TABLE jobs; --",
        "Robert'); DROP TABLE users;--",
        "\" OR \"1\"=\"1",
        "1; DELETE FROM stacks WHERE 1=1",
        "$1",
        "?",
        "%",
        "_",
        "\\",
        "../../etc/passwd",
        "..\\..\\windows\\system32",
        "/etc/shadow",
        "%2e%2e%2f",
        "<script>alert(1)</script>",
        "NULL",
        "名前 🦀",
    ];
    let before_bob = w.bob.get("/api/v1/blockstacks").await.json();
    let sched = w.alice.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    for name in names {
        let stack = w
            .alice
            .create(
                "/api/v1/blockstacks",
                json!({"name": name, "command": format!("echo {name:?}"), "env": {"VALUE": name}}),
            )
            .await;
        let s = w.alice.get(&format!("/api/v1/blockstacks/byid/{stack}")).await.json();
        assert_eq!(s["name"], name, "{s}");
        assert_eq!(s["command"], format!("echo {name:?}"), "{s}");
        assert_eq!(s["env"]["VALUE"], name, "{s}");
        let by_name = w.alice.get(&format!("/api/v1/blockstacks/byname/{}", segment(name))).await;
        assert_eq!(by_name.status, 200, "byname {name:?}: {}", by_name.text);
        assert_eq!(by_name.json()["id"], stack, "byname {name:?} finds another stack");

        let sid =
            w.alice.create("/api/v1/schedules", json!({"name": name, "config": {"period": 3600}})).await;
        assert_eq!(w.alice.get(&format!("/api/v1/schedules/byid/{sid}")).await.json()["name"], name);

        let job = w
            .alice
            .create(
                "/api/v1/jobs",
                json!({"stack_id": stack, "schedule_id": sched, "name": name, "command": name}),
            )
            .await;
        let j = w.alice.get(&format!("/api/v1/jobs/byname/{}", segment(name))).await;
        assert_eq!(j.status, 200, "job byname {name:?}: {}", j.text);
        assert_eq!(j.json()["id"], job);
        assert_eq!(j.json()["name"], name);
        assert_eq!(j.json()["command"], name);
        // The v3 dialect shows the same name.
        let uid = s["uid"].as_str().unwrap();
        let jobs = w.alice.get(&format!("/api/3/stacks/{uid}/jobs")).await.json();
        assert_eq!(jobs["response"][0]["name"], name, "{jobs}");
    }
    // Lookups are exact: wildcards and near-misses find nothing.
    for probe in
        ["%25%25", "_x", "..", "etc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd%2F", "robert'); drop table users;--"]
    {
        let r = w.alice.get(&format!("/api/v1/jobs/byname/{probe}")).await;
        assert_eq!(r.status, 404, "{probe}: {}", r.text);
    }
    // Every table still answers, counts are exact, and bob saw none of it.
    let n = names.len() as i64;
    assert_eq!(w.alice.get("/api/v1/blockstacks").await.json()["count"], n + 1);
    assert_eq!(w.alice.get("/api/v1/schedules").await.json()["count"], n + 2);
    assert_eq!(w.alice.get("/api/v1/jobs").await.json()["count"], n + 1);
    assert_eq!(w.alice.get("/api/3/stacks").await.json()["count"], n + 1);
    assert_eq!(w.bob.get("/api/v1/blockstacks").await.json(), before_bob);
    assert!(std::fs::read_to_string("/etc/passwd").unwrap().contains("root:"));
    assert_healthy(&w.server).await;
}

// ---------------------------------------------------------------------------------------------
// Bytes on the wire
// ---------------------------------------------------------------------------------------------

/// What came back on a raw connection: the status (None if the server closed without
/// answering) and the body.
#[derive(Debug)]
struct Raw {
    status: Option<u16>,
    head: String,
    body: Vec<u8>,
}

/// Writes `bytes` (ignoring write errors: the server may hang up first) and reads the answer
/// until the server closes or `wait` passes.
fn raw(port: u16, bytes: &[u8], wait: Duration) -> Raw {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let split = got.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (String::from_utf8_lossy(&got[..i]).to_string(), got[i + 4..].to_vec()),
        None => (String::from_utf8_lossy(&got).to_string(), Vec::new()),
    };
    let status = head.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok());
    Raw { status, head, body }
}

/// A refusal on the wire: no answer, a bare 4xx from hyper, or a JSON 4xx from the app.
#[track_caller]
fn assert_wire_refused(what: &str, r: &Raw) {
    if let Some(status) = r.status {
        assert!((400..500).contains(&status), "{what}: answered {status}: {}", r.head);
        if !r.body.is_empty() {
            // A chunked body starts with its size line.
            let body = String::from_utf8_lossy(&r.body);
            let json = body.find('{').map(|i| &body[i..body.rfind('}').unwrap() + 1]).unwrap_or("");
            assert!(serde_json::from_str::<Value>(json).is_ok(), "{what}: body is not JSON: {body:?}");
        }
    }
}

#[tokio::test]
async fn garbage_bytes_control_characters_and_giant_headers_are_refused_on_the_wire() {
    let w = world(&[]).await;
    let port = w.server.port;
    let auth = format!("Authorization: Bearer {}\r\n", w.alice_token);
    let req = |line: &str, headers: &str| {
        format!("{line}\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").into_bytes()
    };
    let get_jobs = "GET /api/v1/jobs HTTP/1.1";
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain garbage", b"GARBAGE\r\n\r\n".to_vec()),
        ("binary noise", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("NUL bytes", vec![0u8; 1024]),
        ("unknown version", req("GET /healthz HTTP/9.9", "")),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()),
        ("lowercase method", req("get /healthz HTTP/1.1", "")),
        ("no path", req("GET  HTTP/1.1", "")),
        ("raw invalid UTF-8 path", [b"GET /api/v1/jobs/byname/\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec(), auth.clone().into_bytes(), b"Connection: close\r\n\r\n".to_vec()].concat()),
        ("raw traversal", req("GET /api/v1/jobs/byname/../../etc/passwd HTTP/1.1", &auth)),
        ("root traversal", req("GET /../../../etc/passwd HTTP/1.1", &auth)),
        ("v3 traversal", req("GET /api/3/stacks/../../../../etc/passwd HTTP/1.1", &auth)),
        ("backslash traversal", req("GET /api/v1/jobs/byname/..\\..\\etc\\passwd HTTP/1.1", &auth)),
        ("control character in a header", req(get_jobs, &format!("{auth}X-Evil: a\x01b\r\n"))),
        ("DEL in a header", req(get_jobs, &format!("{auth}X-Evil: a\x7fb\r\n"))),
        ("bare CR in a header", req(get_jobs, &format!("{auth}X-Evil: a\rb\r\n"))),
        ("NUL in a header", req(get_jobs, &format!("{auth}X-Evil: a\0b\r\n"))),
        ("space in a header name", req(get_jobs, &format!("{auth}X Evil: a\r\n"))),
        ("header without a colon", req(get_jobs, &format!("{auth}X-Evil\r\n"))),
        ("obs-fold", req(get_jobs, &format!("{auth}X-Evil: a\r\n b\r\n"))),
        ("control character in the token", req(get_jobs, "Authorization: Bearer cst_\x01\r\n")),
        ("non-ASCII token", [b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer cst_\xff\xfe\r\nConnection: close\r\n\r\n".to_vec()].concat()),
        ("64 KiB token", req(get_jobs, &format!("Authorization: Bearer {}\r\n", "a".repeat(64 * 1024)))),
        ("64 KiB cookie", req("GET /api/3/stacks HTTP/1.1", &format!("Cookie: auth_tkt={}\r\n", "b".repeat(64 * 1024)))),
        ("1 MiB header", req(get_jobs, &format!("X-Big: {}\r\n", "c".repeat(1024 * 1024)))),
        ("500 headers", req(get_jobs, &(0..500).map(|i| format!("X-H{i}: v\r\n")).collect::<String>())),
        ("100 KiB URI", req(&format!("GET /api/v1/jobs/byname/{} HTTP/1.1", "d".repeat(100 * 1024)), &auth)),
        ("bad content length", req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Length: abc\r\n"))),
        ("negative content length", req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Length: -1\r\n"))),
        (
            "two content lengths",
            req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Length: 2\r\nContent-Length: 3\r\n")),
        ),
        (
            "content length beyond u64",
            req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Length: 99999999999999999999999\r\n")),
        ),
        (
            "huge content length",
            req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Type: application/json\r\nContent-Length: 9000000000\r\n")),
        ),
        (
            "chunked and content length",
            [
                req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")),
                b"zz\r\n{}\r\n0\r\n\r\n".to_vec(),
            ]
            .concat(),
        ),
        (
            "bad chunk size",
            [
                req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")),
                b"zz\r\n{}\r\n0\r\n\r\n".to_vec(),
            ]
            .concat(),
        ),
        (
            "unknown transfer coding",
            [
                req("POST /api/v1/blockstacks HTTP/1.1", &format!("{auth}Transfer-Encoding: gzip, chunked, evil\r\n")),
                b"0\r\n\r\n".to_vec(),
            ]
            .concat(),
        ),
    ];
    // Request smuggling: a second request hidden in the first one's body must not run
    // unauthenticated or twice; the first is a valid request, so only the smuggled part matters.
    cases.push((
        "absolute-form URI to another host",
        req("GET http://169.254.169.254/latest/meta-data HTTP/1.1", ""),
    ));

    let before = w.snapshot().await;
    for (what, bytes) in &cases {
        let r = raw(port, bytes, Duration::from_secs(5));
        assert_wire_refused(what, &r);
        assert_healthy(&w.server).await;
    }
    // A 64 KiB token is refused by the application, in its own words.
    let r = raw(port, &cases.iter().find(|c| c.0 == "64 KiB token").unwrap().1, Duration::from_secs(5));
    assert_eq!(r.status, Some(401), "{}", r.head);
    assert_eq!(w.snapshot().await, before, "a refused request changed something");
}

#[tokio::test]
async fn half_sent_requests_hold_no_one_up_are_cut_off_and_store_nothing() {
    let w = world(&["--client-timeout-s", "2"]).await;
    let port = w.server.port;
    let before = w.snapshot().await;
    let auth = format!("Authorization: Bearer {}\r\n", w.alice_token);
    // 100 slow clients: half stop in the middle of their headers, half in the middle of a
    // body that would create a stack (or run a job through v3) if it ever completed.
    let mut slow = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let bytes = match i % 4 {
            0 => "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_string(),
            1 => format!("GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\n{auth}"),
            2 => format!(
                "POST /api/v1/blockstacks HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
                 Content-Length: 1000\r\n\r\n{{\"name\": \"slow-{i}\", \"command\": \"true\""
            ),
            _ => format!(
                "POST {} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"job\r\n",
                w.v3(&format!("/jobs/{}/run_now", w.job_uid))
            ),
        };
        s.write_all(bytes.as_bytes()).unwrap();
        slow.push(s);
    }
    let opened = Instant::now();
    // Meanwhile everyone else is served promptly, on both dialects.
    for _ in 0..4 {
        let started = Instant::now();
        assert_eq!(w.alice.get("/api/v1/jobs").await.status, 200);
        assert_eq!(w.alice.get(&w.v3("/jobs")).await.status, 200);
        assert_eq!(Api::new(&w.server, None).get("/healthz").await.status, 200);
        assert!(started.elapsed() < Duration::from_secs(2), "slow clients slow the server down");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A byte now and then does not buy more time: the head and the body each have 2 s.
    // (The chunked ones get the first digit of a chunk size, which keeps their stream valid.)
    for (i, s) in slow.iter_mut().enumerate() {
        let _ = s.write_all(if i % 4 == 3 { b"1" } else { b" " });
    }
    // Every slow client is cut off: a half-sent head by closing the connection, a half-sent
    // body with a 408 in the dialect's shape.
    for (i, s) in slow.iter_mut().enumerate() {
        let mut got = Vec::new();
        let mut closed = false;
        let deadline = opened + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            match s.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&got);
        if i % 4 >= 2 {
            assert!(text.starts_with("HTTP/1.1 408"), "slow body {i}: {text:?}");
            let body = &text[text.find('{').unwrap()..=text.rfind('}').unwrap()];
            let v: Value = serde_json::from_str(body).unwrap();
            assert!(v["code"] == 4 || v["error"] == "request_timeout", "{v}");
        } else {
            assert!(closed, "slow head {i} still open after {:?}: {text:?}", opened.elapsed());
            assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "slow head {i}: {text:?}");
        }
    }
    assert!(opened.elapsed() < Duration::from_secs(10));
    drop(slow);
    assert_healthy(&w.server).await;
    assert_eq!(w.snapshot().await, before, "a half-sent request changed something");
}

/// Commands built to wear out the shell parser that places a run's arguments (nested 8 KiB
/// deep, longer than it reads, sprinkled with comments and here-documents): each run now with
/// arguments is answered at once (run, or refused with a 400), and the server stays up.
#[tokio::test]
async fn commands_that_wear_out_the_argument_parser_are_answered_quickly() {
    let w = world(&[]).await;
    let depth = |open: &str, close: &str| {
        let n = (8 * 1024 - 10) / (open.len() + close.len());
        format!("echo {}x{}", open.repeat(n), close.repeat(n))
    };
    let commands = [
        depth("$(", ")"),
        depth("\"$(echo ", ")\""),
        depth("${x:-", "}"),
        depth("(", ")"),
        depth("`", "`"),
        format!("printf '[%s]' {}", "x".repeat(100_000)),
        "# c\n".repeat(20_000),
        "cat <<EOF\n#\nEOF\n".repeat(2_000),
        "$(".repeat(50_000),
    ];
    for command in &commands {
        // Each script ends at once if it runs at all: the cost measured is the parser's.
        let command = format!("exit 0\n{command}");
        let head: String = command.chars().take(30).collect();
        let r = w.alice.put(&format!("/api/v1/jobs/{}", w.job_id), json!({ "command": command })).await;
        assert_eq!(r.status, 200, "{head}: {}", r.text);
        let started = Instant::now();
        let r = w.alice.post(&format!("/api/v1/jobs/byid/{}/run", w.job_id), json!({"args": ["A"]})).await;
        assert!(
            r.status == 200 || (r.status == 400 && r.json()["code"] == 4),
            "{head}: {} {}",
            r.status,
            r.text
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{head}: {:?}", started.elapsed());
        assert_healthy(&w.server).await;
    }
}
