//! Bad input.

use super::*;

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: i64,
    /// A piece of the message (usually the field's name); empty for "any message".
    needle: &'static str,
}

fn case(
    what: &'static str,
    method: &'static str,
    path: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: i64,
    needle: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        code,
        needle,
    }
}

fn j(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

#[tokio::test]
async fn bad_input_is_refused_with_a_kragle_error_and_changes_nothing() {
    let w = world().await;
    let stack = new_stack(&w.alice, "base").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "j1"})).await;
    let ok_job = json!({"stack_id": stack, "schedule_id": sched});
    let with = |extra: Value| {
        let mut v = ok_job.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        j(v)
    };
    let big = format!("{{\"name\": \"big\", \"command\": \"{}\"}}", "x".repeat(300 * 1024));

    let mut cases = vec![
        // Malformed JSON (code 2).
        case("truncated JSON", "POST", "/api/v1/blockstacks", "{\"name\": \"x\",", 400, BAD_JSON, ""),
        case("not JSON at all", "POST", "/api/v1/jobs", "stack_id=1", 400, BAD_JSON, ""),
        case("trailing garbage", "POST", "/api/v1/jobs", format!("{ok_job} x"), 400, BAD_JSON, ""),
        case("single quotes", "POST", "/api/v1/schedules", "{'config': {'period': 5}}", 400, BAD_JSON, ""),
        case(
            "invalid UTF-8",
            "POST",
            "/api/v1/blockstacks",
            b"{\"name\": \"\xff\xfe\", \"command\": \"true\"}".to_vec(),
            400,
            BAD_JSON,
            "",
        ),
        // Wrong shapes (code 4), each naming the field.
        case("JSON array body", "POST", "/api/v1/jobs", "[1, 2]", 400, BAD_PAYLOAD, ""),
        case(
            "a positional array shaped like a job",
            "POST",
            "/api/v1/jobs",
            j(json!([sched, stack, null, false, null, null, "forbid", "skip", 0, 10])),
            400,
            BAD_PAYLOAD,
            "object",
        ),
        case(
            "duplicate field",
            "POST",
            "/api/v1/blockstacks",
            "{\"name\": \"a\", \"name\": \"b\", \"command\": \"true\"}",
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case("JSON null body", "POST", "/api/v1/blockstacks", "null", 400, BAD_PAYLOAD, ""),
        case(
            "name is a number",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": 123, "command": "true"})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case(
            "stack_id is a string",
            "POST",
            "/api/v1/jobs",
            j(json!({"stack_id": "1", "schedule_id": sched})),
            400,
            BAD_PAYLOAD,
            "stack_id",
        ),
        case(
            "schedule_id is a float",
            "POST",
            "/api/v1/jobs",
            j(json!({"stack_id": stack, "schedule_id": 1.5})),
            400,
            BAD_PAYLOAD,
            "schedule_id",
        ),
        case(
            "stack_id overflows i64",
            "POST",
            "/api/v1/jobs",
            format!("{{\"stack_id\": 100000000000000000000000, \"schedule_id\": {sched}}}"),
            400,
            BAD_PAYLOAD,
            "stack_id",
        ),
        case(
            "enabled is a string",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"enabled": "yes"})),
            400,
            BAD_PAYLOAD,
            "enabled",
        ),
        case(
            "env is a list",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": ["A=1"]})),
            400,
            BAD_PAYLOAD,
            "env",
        ),
        case(
            "env value is a number",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": {"A": 1}})),
            400,
            BAD_PAYLOAD,
            "env",
        ),
        case(
            "once is a string",
            "POST",
            "/api/v1/schedules",
            j(json!({"once": "true", "config": {"period": 5}})),
            400,
            BAD_PAYLOAD,
            "once",
        ),
        case(
            "unknown field on a stack",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "u", "command": "true", "colour": "red"})),
            400,
            BAD_PAYLOAD,
            "colour",
        ),
        case(
            "unknown field on a job",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"do_run": true})),
            400,
            BAD_PAYLOAD,
            "do_run",
        ),
        case(
            "unknown field on a schedule",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"period": 5}, "period": 5})),
            400,
            BAD_PAYLOAD,
            "period",
        ),
        case(
            "Kragle blocks are not ours",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "k", "command": "true", "blocks": []})),
            400,
            BAD_PAYLOAD,
            "blocks",
        ),
        case(
            "missing command",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "m"})),
            400,
            BAD_PAYLOAD,
            "command",
        ),
        case(
            "missing name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"command": "true"})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case("empty body for a stack", "POST", "/api/v1/blockstacks", "", 400, BAD_PAYLOAD, "name"),
        case(
            "empty name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "", "command": "true"})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case(
            "blank name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "   ", "command": "true"})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case(
            "name with a control character",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "a\u{7}b", "command": "true"})),
            400,
            BAD_PAYLOAD,
            "control",
        ),
        case(
            "name with a newline",
            "POST",
            "/api/v1/schedules",
            j(json!({"name": "a\nb", "config": {"period": 5}})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case(
            "job name with NUL",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"name": "a\u{0}b"})),
            400,
            BAD_PAYLOAD,
            "name",
        ),
        case("empty job name", "POST", "/api/v1/jobs", with(json!({"name": ""})), 400, BAD_PAYLOAD, "name"),
        case(
            "name of 201 characters",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"name": "n".repeat(201)})),
            400,
            BAD_PAYLOAD,
            "200",
        ),
        case(
            "empty command",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"command": "  "})),
            400,
            BAD_PAYLOAD,
            "command",
        ),
        case(
            "bad env name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": {"1BAD": "x"}})),
            400,
            BAD_PAYLOAD,
            "env",
        ),
        case(
            "relative workdir",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"workdir": "tmp"})),
            400,
            BAD_PAYLOAD,
            "workdir",
        ),
        case(
            "bad overlap value",
            "POST",
            "/api/v1/jobs",
            with(json!({"overlap": "sometimes"})),
            400,
            BAD_PAYLOAD,
            "overlap",
        ),
        case(
            "bad missed value",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"missed": "never"})),
            400,
            BAD_PAYLOAD,
            "missed",
        ),
        case(
            "retries above range",
            "POST",
            "/api/v1/jobs",
            with(json!({"retries": 101})),
            400,
            BAD_PAYLOAD,
            "retries",
        ),
        case(
            "negative retries",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"retries": -1})),
            400,
            BAD_PAYLOAD,
            "retries",
        ),
        case(
            "zero backoff",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"retry_backoff_s": 0})),
            400,
            BAD_PAYLOAD,
            "retry_backoff_s",
        ),
        case(
            "zero timeout",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"timeout_s": 0})),
            400,
            BAD_PAYLOAD,
            "timeout_s",
        ),
        case(
            "empty job command",
            "POST",
            "/api/v1/jobs",
            with(json!({"command": ""})),
            400,
            BAD_PAYLOAD,
            "command",
        ),
        case(
            "bad webhook value",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"webhook": "anyone"})),
            400,
            BAD_PAYLOAD,
            "webhook",
        ),
        // Schedules (code 26).
        case(
            "bad cron",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"cron": "0 25 * * *"}})),
            400,
            BAD_SCHEDULE,
            "hour",
        ),
        case(
            "bad time zone",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}})),
            400,
            BAD_SCHEDULE,
            "Europe/Atlantis",
        ),
        case(
            "period 0",
            "PUT",
            format!("/api/v1/schedules/{sched}"),
            j(json!({"config": {"period": 0}})),
            400,
            BAD_SCHEDULE,
            "period",
        ),
        // Paths (code 1 for malformed ids, 6 for ids that do not exist).
        case("non-integer job id", "GET", "/api/v1/jobs/byid/abc", "", 400, BAD_PARAMETER, "job id"),
        case("float job id", "DELETE", "/api/v1/jobs/1.5", "", 400, BAD_PARAMETER, "job id"),
        case(
            "non-integer PUT job id",
            "PUT",
            "/api/v1/jobs/abc",
            j(json!({"name": "x"})),
            400,
            BAD_PARAMETER,
            "job id",
        ),
        case(
            "non-integer schedule id",
            "GET",
            "/api/v1/schedules/byid/1x",
            "",
            400,
            BAD_PARAMETER,
            "schedule id",
        ),
        case(
            "non-integer schedule DELETE",
            "DELETE",
            "/api/v1/schedules/one",
            "",
            400,
            BAD_PARAMETER,
            "schedule id",
        ),
        case(
            "non-integer stack id",
            "PUT",
            "/api/v1/blockstacks/%20",
            j(json!({"name": "x"})),
            400,
            BAD_PARAMETER,
            "stack id",
        ),
        case(
            "id beyond i64",
            "GET",
            "/api/v1/jobs/byid/99999999999999999999",
            "",
            400,
            BAD_PARAMETER,
            "job id",
        ),
        case("negative job id", "GET", "/api/v1/jobs/byid/-1", "", 404, NOT_FOUND, "job"),
        case("negative PUT job id", "PUT", "/api/v1/jobs/-5", j(json!({"name": "x"})), 404, NOT_FOUND, "job"),
        case("negative schedule id", "DELETE", "/api/v1/schedules/-1", "", 404, NOT_FOUND, "schedule"),
        case("zero stack id", "GET", "/api/v1/blockstacks/byid/0", "", 404, NOT_FOUND, "stack"),
        // Query parameters.
        case(
            "huge page number",
            "GET",
            "/api/v1/jobs?page=1000000000000000000000",
            "",
            400,
            BAD_PARAMETER,
            "page",
        ),
        case("page is a word", "GET", "/api/v1/schedules?page=last", "", 400, BAD_PARAMETER, "page"),
        // Method and endpoint.
        case(
            "no such method",
            "PATCH",
            format!("/api/v1/jobs/{job}"),
            j(json!({"name": "x"})),
            405,
            BAD_PAYLOAD,
            "",
        ),
        case("no such endpoint", "GET", "/api/v1/jobz", "", 404, NOT_FOUND, "jobz"),
        // Size.
        case("oversized body", "POST", "/api/v1/blockstacks", big, 413, BAD_PAYLOAD, "262144"),
    ];
    // Content types.
    cases.push(Case {
        content_type: Some("text/plain"),
        ..case(
            "text/plain body",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "t", "command": "true"})),
            415,
            BAD_PAYLOAD,
            "application/json",
        )
    });
    cases.push(Case {
        content_type: Some("application/x-www-form-urlencoded"),
        ..case(
            "form body",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            "name=x",
            415,
            BAD_PAYLOAD,
            "application/json",
        )
    });
    assert!(cases.len() >= 20);

    let before = snapshot(&w.alice).await;
    for c in &cases {
        let r = w.alice.send_raw(c.method, &c.path, c.content_type, c.body.clone()).await;
        assert_eq!(r.status, c.status, "{}: {} {} → {}", c.what, c.method, c.path, r.text);
        let v: Value = serde_json::from_str(&r.text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", c.what, r.text));
        assert_eq!(v["code"], json!(c.code), "{}: {}", c.what, r.text);
        let msg = v["msg"].as_str().unwrap_or_else(|| panic!("{}: no msg: {}", c.what, r.text));
        assert!(!msg.is_empty(), "{}: empty msg", c.what);
        assert!(msg.contains(c.needle), "{}: message {msg:?} lacks {:?}", c.what, c.needle);
        assert_eq!(snapshot(&w.alice).await, before, "{} changed state", c.what);
    }
    healthy(&w.server).await;
    // The server still serves well-formed requests, including a JSON content type with
    // parameters and a body without a content type.
    let r = w
        .alice
        .send_raw(
            "POST",
            "/api/v1/blockstacks",
            Some("application/json; charset=utf-8"),
            j(json!({"name": "after", "command": "true"})),
        )
        .await;
    assert_ok(&r);
    let r =
        w.alice.send_raw("PUT", &format!("/api/v1/jobs/{job}"), None, j(json!({"name": "j1-renamed"}))).await;
    assert_eq!(assert_ok(&r)["name"], "j1-renamed");
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 2);
}
