//! Black-box tests of the Kragle-style v1 API (issue 2) against the real binary over HTTP:
//! every endpoint and documented field, Kragle error codes with their HTTP statuses,
//! pagination edges, ownership isolation between two users, and bad input that must change
//! nothing and leave the server healthy.
//!
//! One binary, a module per resource; the world (`World`: a server, two users) and the
//! helpers every module shares live here, the Kragle error codes by name in `common::code`.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bad_input;
mod isolation;
mod jobs;
mod paging;
mod schedules;
mod stacks;
mod tokens;
mod wire;

use common::code::*;
use common::*;
use serde_json::{Value, json};

const PASSWORD_A: &str = "s3cret-alice";
const PASSWORD_B: &str = "s3cret-bob";
/// 2100-01-01T00:00:00Z: a one-time slot that never comes due while the tests run.
const FAR_TS: i64 = 4_102_444_800;

/// A server with two users. Field order matters: the server stops before the database goes.
struct World {
    server: Server,
    alice: Api,
    bob: Api,
    alice_id: i64,
    bob_id: i64,
    _db: TestDb,
}

async fn world() -> World {
    let db = TestDb::new();
    let ta = add_user(&db, "alice", Some(PASSWORD_A));
    let tb = add_user(&db, "bob", Some(PASSWORD_B));
    let server = Server::start_on(&db, &[]);
    let alice = Api::new(&server, Some(&ta));
    let bob = Api::new(&server, Some(&tb));
    let alice_id = user_id(&alice).await;
    let bob_id = user_id(&bob).await;
    assert_ne!(alice_id, bob_id);
    World { server, alice, bob, alice_id, bob_id, _db: db }
}

async fn user_id(api: &Api) -> i64 {
    let r = api.get("/api/v1/whoami").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["user_id"].as_i64().expect("user_id")
}

/// The Kragle fields of a job (lists and reads) and of a PUT's answer.
const JOB_KEYS: [&str; 7] = ["id", "name", "stack", "schedule", "next_run", "do_run", "do_del"];
const PUT_KEYS: [&str; 7] = ["owner", "name", "stack", "schedule", "next_run", "do_run", "do_del"];

#[track_caller]
fn assert_keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_some(), "missing {k} in {v}");
    }
}

#[track_caller]
fn assert_ok(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "expected 200; body: {}", r.text);
    r.json()
}

fn is_hex32(s: &Value) -> bool {
    s.as_str().is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses an ISO-8601 UTC timestamp as the API writes it (`...Z`).
#[track_caller]
fn parse_utc(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    assert!(s.ends_with('Z'), "not UTC: {s}");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not ISO-8601 ({e}): {s}"))
        .with_timezone(&chrono::Utc)
}

/// Everything a user can see, page 1 of each list (fixtures here stay under 10 items).
/// What the caller has stored; a schedule's `upcoming` fire times are left out (they move on
/// as the clock passes a slot, which a slow test run may see).
async fn snapshot(api: &Api) -> Value {
    let mut out = serde_json::Map::new();
    for path in ["/api/v1/blockstacks", "/api/v1/schedules", "/api/v1/jobs", "/api/v1/tokens"] {
        let r = api.get(path).await;
        out.insert(path.to_string(), without_upcoming(assert_ok(&r)));
    }
    Value::Object(out)
}

async fn count(api: &Api, path: &str) -> i64 {
    let r = api.get(path).await;
    assert_ok(&r)["count"].as_i64().expect("count")
}

async fn new_stack(api: &Api, name: &str) -> i64 {
    api.create("/api/v1/blockstacks", json!({"name": name, "command": "true"})).await
}

async fn new_schedule(api: &Api, config: Value) -> i64 {
    api.create("/api/v1/schedules", json!({ "config": config })).await
}

async fn healthy(server: &Server) {
    let api = Api::new(server, None);
    let r = api.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!server.log().contains("panicked"), "server log shows a panic:\n{}", server.log());
}
