//! Request bodies are read strictly in both dialects: a schedule must be one that can fire
//! and render (bounded periods, one-time timestamps in the future, a named time zone), `null`
//! is refused for every field that cannot be null, and an object holding the same key twice
//! is refused at any depth. Each refusal is a 400 naming what is wrong and changes nothing;
//! the fields that may legitimately be null keep working.

mod common;

use common::*;
use serde_json::{Value, json};

/// 2100-01-01T00:00:00Z.
const FAR_TS: i64 = 4_102_444_800;
/// 100 years of 365.25 days, the longest period accepted.
const MAX_PERIOD_S: i64 = 3_155_760_000;

struct World {
    server: Server,
    api: Api,
    stack: i64,
    stack_uid: String,
    schedule: i64,
    job: i64,
    job_uid: String,
    webhook: i64,
    _db: TestDb,
}

/// A user with a stack, an unused schedule, a job on a second schedule and a webhook.
async fn world() -> World {
    let db = TestDb::new();
    let token = add_user(&db, "alice", Some("alice-password"));
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let stack = api.create("/api/v1/blockstacks", json!({"name": "base", "command": "true"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"name": "unused", "config": {"period": 60}})).await;
    let in_use = api.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": in_use, "name": "j", "enabled": true, "timeout_s": 60,
                   "command": "echo hi"}),
        )
        .await;
    let webhook = api
        .create(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["run.failed"], "job_id": job}),
        )
        .await;
    let (stack_uid, job_uid) = api.v3_uids(stack, job).await;
    World { server, api, stack, stack_uid, schedule, job, job_uid, webhook, _db: db }
}

impl World {
    /// Everything the user can see through both dialects.
    async fn snapshot(&self) -> Value {
        let mut out = serde_json::Map::new();
        for path in [
            "/api/v1/blockstacks".to_string(),
            "/api/v1/schedules".to_string(),
            "/api/v1/jobs".to_string(),
            "/api/v1/tokens".to_string(),
            "/api/v1/webhooks".to_string(),
            format!("/api/v1/jobs/byid/{}/runs", self.job),
            format!("/api/3/stacks/{}/jobs", self.stack_uid),
            format!("/api/3/stacks/{}/actions", self.stack_uid),
        ] {
            let r = self.api.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            out.insert(path, without_upcoming(r.json()));
        }
        Value::Object(out)
    }

    async fn healthy(&self) {
        let r = Api::new(&self.server, None).get("/healthz").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!self.server.log().contains("panicked"), "server log shows a panic:\n{}", self.server.log());
    }
}

/// Asserts a v1 `{code, msg}` error and returns its message.
#[track_caller]
fn kragle_err(r: &Resp, status: u16, code: i64, what: &str) -> String {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    let v = r.json();
    assert_eq!(v["code"], json!(code), "{what}: {}", r.text);
    assert_eq!(v.as_object().unwrap().len(), 2, "{what}: {}", r.text);
    v["msg"].as_str().unwrap_or_else(|| panic!("{what}: no msg: {}", r.text)).to_string()
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn schedules_are_refused_with_code_26_unless_they_can_fire_and_render() {
    let w = world().await;
    let sched = format!("/api/v1/schedules/{}", w.schedule);
    let cases = [
        (json!({"period": 1_000_000_000_000_000i64}), "100 years"),
        (json!({"period": MAX_PERIOD_S + 1}), "100 years"),
        (json!({"period": i64::MAX}), "100 years"),
        (json!({"period": 0}), "at least 1"),
        (json!({"period": -60}), "at least 1"),
        (json!({"timestamp": now_s() - 3600}), "past"),
        (json!({"timestamp": 1_767_225_600}), "past"),
        (json!({"timestamp": 0}), "timestamp"),
        (json!({"timestamp": -1}), "timestamp"),
        (json!({"timestamp": 253_402_300_800i64}), "timestamp"),
        (json!({"cron": "0 3 * * *", "timezone": ""}), "timezone"),
        (json!({"cron": "0 3 * * *", "timezone": "   "}), "timezone"),
    ];
    let before = w.snapshot().await;
    for (config, needle) in &cases {
        let r = w.api.post("/api/v1/schedules", json!({ "config": config })).await;
        let msg = kragle_err(&r, 400, 26, &format!("POST {config}"));
        assert!(msg.contains(needle), "POST {config}: {msg:?} lacks {needle:?}");
        let r = w.api.put(&sched, json!({ "config": config })).await;
        let msg = kragle_err(&r, 400, 26, &format!("PUT {config}"));
        assert!(msg.contains(needle), "PUT {config}: {msg:?} lacks {needle:?}");
    }
    assert_eq!(w.snapshot().await, before, "a refused schedule changed something");

    // The bounds themselves are accepted, and every time shown is RFC 3339.
    let soon = now_s() + 3600;
    for config in [
        json!({"period": MAX_PERIOD_S}),
        json!({"period": 1}),
        json!({"timestamp": soon}),
        json!({"timestamp": 253_402_300_799i64}),
    ] {
        let id = w.api.create("/api/v1/schedules", json!({ "config": config })).await;
        let job = w
            .api
            .create("/api/v1/jobs", json!({"stack_id": w.stack, "schedule_id": id, "enabled": true}))
            .await;
        let shown = w.api.get(&format!("/api/v1/jobs/byid/{job}")).await.json();
        let next = shown["next_run"].as_str().unwrap_or_else(|| panic!("{config}: next_run {shown}"));
        let t =
            chrono::DateTime::parse_from_rfc3339(next).unwrap_or_else(|e| panic!("{config}: {next}: {e}"));
        assert!(t.timestamp() > now_s() - 5, "{config}: {next}");
        let upcoming = w.api.get(&format!("/api/v1/schedules/byid/{id}")).await.json()["upcoming"].clone();
        for at in upcoming.as_array().unwrap() {
            chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
        }
    }
    // A schedule changed to a future timestamp is accepted too.
    let r = w.api.put(&sched, json!({"config": {"timestamp": soon}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["config"], json!({"timestamp": soon}));
    w.healthy().await;
}

#[tokio::test]
async fn null_is_refused_for_every_field_that_cannot_be_null() {
    let w = world().await;
    let (stack, sched, job, hook) = (w.stack, w.schedule, w.job, w.webhook);
    let ok_job = json!({"stack_id": stack, "schedule_id": sched});
    let with = |base: &Value, field: &str| {
        let mut v = base.clone();
        v[field] = Value::Null;
        v
    };
    let ok_stack = json!({"name": "n", "command": "true"});
    let ok_hook = json!({"url": "http://127.0.0.1:9/x", "events": ["run.failed"]});
    let mut cases: Vec<(&str, String, Value, &str)> = Vec::new();
    for field in ["stack_id", "schedule_id", "enabled", "overlap", "missed", "retries", "retry_backoff_s"] {
        cases.push(("POST", "/api/v1/jobs".into(), with(&ok_job, field), field));
        cases.push(("PUT", format!("/api/v1/jobs/{job}"), json!({ field: null }), field));
    }
    for field in ["name", "command", "env", "webhook_method", "schedule_id", "enabled"] {
        cases.push(("POST", "/api/v1/blockstacks".into(), with(&ok_stack, field), field));
        cases.push(("PUT", format!("/api/v1/blockstacks/{stack}"), json!({ field: null }), field));
    }
    cases.push(("POST", "/api/v1/schedules".into(), json!({"config": {"period": 5}, "once": null}), "once"));
    cases.push(("PUT", format!("/api/v1/schedules/{sched}"), json!({"once": null}), "once"));
    for field in ["url", "events", "secret"] {
        cases.push(("POST", "/api/v1/webhooks".into(), with(&ok_hook, field), field));
        cases.push(("PUT", format!("/api/v1/webhooks/{hook}"), json!({ field: null }), field));
    }
    cases.push(("POST", "/api/v1/tokens".into(), json!({"name": "t", "scopes": null}), "scopes"));
    let before = w.snapshot().await;
    for (method, path, body, field) in &cases {
        let what = format!("{method} {path} {body}");
        let r = w.api.send(method, path, Some(body.clone())).await;
        let msg = kragle_err(&r, 400, 4, &what);
        assert!(
            msg.contains(field) && msg.contains("null"),
            "{what}: {msg:?} names neither {field} nor null"
        );
    }
    // A login with a null name is refused the same way (not read as "no username").
    let anon = Api::new(&w.server, None);
    let r = anon
        .post(
            "/api/v1/authenticate",
            json!({"username": null, "email": "alice@example.com", "password": "alice-password"}),
        )
        .await;
    let msg = kragle_err(&r, 400, 4, "authenticate");
    assert!(msg.contains("username"), "{msg}");
    // A null schedule config is an invalid config (code 26), on create as on update.
    for (method, path) in
        [("POST", "/api/v1/schedules".to_string()), ("PUT", format!("/api/v1/schedules/{sched}"))]
    {
        let r = w.api.send(method, &path, Some(json!({"config": null}))).await;
        let msg = kragle_err(&r, 400, 26, &format!("{method} {path} null config"));
        assert!(msg.contains("config"), "{msg}");
    }
    assert_eq!(w.snapshot().await, before, "a refused null changed something");

    // Fields where null means "none" keep working.
    let r = w
        .api
        .put(&format!("/api/v1/jobs/{job}"), json!({"name": null, "command": null, "timeout_s": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (v["name"].clone(), v["command"].clone(), v["timeout_s"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    let r = w
        .api
        .put(&format!("/api/v1/blockstacks/{stack}"), json!({"workdir": "/tmp", "webhook": "token"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        w.api.put(&format!("/api/v1/blockstacks/{stack}"), json!({"workdir": null, "webhook": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["workdir"].clone(), r.json()["webhook"].clone()), (Value::Null, Value::Null));
    let r = w.api.put(&format!("/api/v1/schedules/{sched}"), json!({"name": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["name"], Value::Null);
    let r = w.api.put(&format!("/api/v1/webhooks/{hook}"), json!({"job_id": null, "stack_id": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json()["job_id"].clone(), r.json()["stack_id"].clone()), (Value::Null, Value::Null));
    let r = w.api.post("/api/v1/tokens", json!({"name": null, "scopes": ["public"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // No arguments, in both dialects.
    let r = w.api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({"args": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = w
        .api
        .post(
            &format!("/api/3/stacks/{}/jobs/{}/run_now.json", w.stack_uid, w.job_uid),
            json!({"job_args": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    w.healthy().await;
}

#[tokio::test]
async fn an_object_holding_the_same_key_twice_is_refused_at_any_depth() {
    let w = world().await;
    let (stack, sched) = (w.stack, w.schedule);
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "POST",
            "/api/v1/blockstacks".into(),
            r#"{"name": "d", "command": "true", "env": {"A": "1", "B": "2", "A": "3"}}"#.into(),
            "env",
        ),
        ("PUT", format!("/api/v1/blockstacks/{stack}"), r#"{"env": {"A": "1", "A": "1"}}"#.into(), "env"),
        ("POST", "/api/v1/schedules".into(), r#"{"config": {"period": 60, "period": 5}}"#.into(), "config"),
        (
            "PUT",
            format!("/api/v1/schedules/{sched}"),
            r#"{"config": {"cron": "0 3 * * *", "timezone": "UTC", "timezone": "Europe/Paris"}}"#.into(),
            "config",
        ),
        // Top level, as before, in both dialects.
        ("PUT", format!("/api/v1/blockstacks/{stack}"), r#"{"name": "a", "name": "b"}"#.into(), "name"),
    ];
    let before = w.snapshot().await;
    for (method, path, body, field) in &cases {
        let what = format!("{method} {path} {body}");
        let r = w.api.send_raw(method, path, Some("application/json"), body.clone().into_bytes()).await;
        let msg = kragle_err(&r, 400, 4, &what);
        assert!(msg.contains(field) && msg.contains("duplicate"), "{what}: {msg:?}");
    }
    let run_now = format!("/api/3/stacks/{}/jobs/{}/run_now.json", w.stack_uid, w.job_uid);
    let r = w
        .api
        .send_raw(
            "POST",
            &run_now,
            Some("application/json"),
            br#"{"job_args": "a", "job_args": "b"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"], "bad_request", "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("job_args"), "{v}");
    assert_eq!(w.snapshot().await, before, "a refused duplicate changed something");
    // The duplicated key is named (no content type: JSON all the same); the same keys once
    // each are fine.
    let post_stack = |env: &str| {
        let body = format!(r#"{{"name": "d", "command": "true", "env": {env}}}"#);
        w.api.send_raw("POST", "/api/v1/blockstacks", None, body.into_bytes())
    };
    let r = post_stack(r#"{"AB": "1", "AB": "2"}"#).await;
    assert!(kragle_err(&r, 400, 4, "named key").contains("env.AB"), "{}", r.text);
    let r = post_stack(r#"{"A": "1", "B": "1"}"#).await;
    assert_eq!(r.status, 200, "{}", r.text);
    w.healthy().await;
}
