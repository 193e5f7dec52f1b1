//! Black-box tests of the Kragle-style v1 API (issue 2) against the real binary over HTTP:
//! every endpoint and documented field, Kragle error codes with their HTTP statuses,
//! pagination edges, ownership isolation between two users, and bad input that must change
//! nothing and leave the server healthy.

mod common;
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

/// Asserts a Kragle error: the HTTP status, exactly `{code, msg}`, a non-empty message.
#[track_caller]
fn assert_err(r: &Resp, status: u16, code: i64) -> String {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.text);
    let v = r.json();
    let obj = v.as_object().unwrap_or_else(|| panic!("error body is not an object: {}", r.text));
    assert_eq!(v["code"], json!(code), "unexpected code; body: {}", r.text);
    let msg = v["msg"].as_str().unwrap_or_else(|| panic!("no msg: {}", r.text));
    assert!(!msg.trim().is_empty(), "empty msg");
    assert_eq!(obj.len(), 2, "error body has extra keys: {}", r.text);
    msg.to_string()
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

/// A request with extra headers and no bearer token (for the cookie session).
async fn send_with_headers(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let mut req = api.http.request(method.parse().unwrap(), format!("{}{}", api.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
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

async fn healthy(server: &Server) {
    let api = Api::new(server, None);
    let r = api.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!server.log().contains("panicked"), "server log shows a panic:\n{}", server.log());
}

// ---------------------------------------------------------------------------------------
// Health and authentication
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_answers_without_auth_and_api_requires_credentials() {
    let w = world().await;
    let anon = Api::new(&w.server, None);
    let r = anon.get("/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");

    for (method, path) in [
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/byid/1"),
        ("GET", "/api/v1/schedules"),
        ("GET", "/api/v1/tokens"),
        ("DELETE", "/api/v1/jobs/1"),
    ] {
        let r = anon.send(method, path, None).await;
        assert_err(&r, 401, 3);
    }
    // Kragle's GET /blockstacks answers without credentials: the public stacks (none here).
    assert_eq!(assert_ok(&anon.get("/api/v1/blockstacks").await)["count"], 0);
    let r = anon.post("/api/v1/blockstacks", json!({"name": "x", "command": "true"})).await;
    assert_err(&r, 401, 3);

    // A token of the right shape that was never issued, and one of the wrong shape.
    let forged = Api::new(&w.server, Some(&format!("cst_{}", "0".repeat(64))));
    assert_err(&forged.get("/api/v1/jobs").await, 401, 3);
    let junk = Api::new(&w.server, Some("not-a-token"));
    assert_err(&junk.get("/api/v1/jobs").await, 401, 3);
    // A non-Bearer scheme is no credential at all.
    let r =
        send_with_headers(&anon, "GET", "/api/v1/jobs", &[("authorization", "Basic YWxpY2U6czNjcmV0")], None)
            .await;
    assert_err(&r, 401, 3);

    // Nothing was created by the refused POST.
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 0);
    healthy(&w.server).await;
}

/// The `auth_tkt=...` pair from a Set-Cookie header, with the header's attributes.
fn session_cookie(r: &Resp) -> (String, String) {
    let set = r.header("set-cookie").unwrap_or_else(|| panic!("no Set-Cookie: {:?}", r.headers));
    let pair = set.split(';').next().unwrap().trim().to_string();
    assert!(pair.starts_with("auth_tkt="), "cookie: {set}");
    (pair, set)
}

#[tokio::test]
async fn authenticate_by_username_or_email_sets_a_session_cookie() {
    let w = world().await;
    let anon = Api::new(&w.server, None);

    let r = anon.post("/api/v1/authenticate", json!({"username": "alice", "password": PASSWORD_A})).await;
    assert_eq!(assert_ok(&r), json!({"code": 0, "user_id": w.alice_id}));
    let (cookie, set) = session_cookie(&r);
    let attrs: Vec<String> = set.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attrs.iter().any(|a| a == "httponly"), "not HttpOnly: {set}");
    assert!(attrs.iter().any(|a| a == "samesite=strict"), "not SameSite=Strict: {set}");

    // By email: the same user.
    let r = anon
        .post("/api/v1/authenticate", json!({"email": "alice@example.com", "password": PASSWORD_A}))
        .await;
    assert_eq!(assert_ok(&r), json!({"code": 0, "user_id": w.alice_id}));
    // Both given: the username wins (Kragle's rule), in both directions.
    let r = anon
        .post(
            "/api/v1/authenticate",
            json!({"username": "alice", "email": "bob@example.com", "password": PASSWORD_A}),
        )
        .await;
    assert_eq!(assert_ok(&r)["user_id"], json!(w.alice_id));
    let r = anon
        .post(
            "/api/v1/authenticate",
            json!({"username": "bob", "email": "alice@example.com", "password": PASSWORD_A}),
        )
        .await;
    assert_err(&r, 401, 3);

    // The cookie stands in for a token: read and write as alice.
    let with_cookie = [("cookie", cookie.as_str())];
    let r = send_with_headers(&anon, "GET", "/api/v1/whoami", &with_cookie, None).await;
    assert_eq!(assert_ok(&r)["user_id"], json!(w.alice_id));
    let r = send_with_headers(
        &anon,
        "POST",
        "/api/v1/blockstacks",
        &with_cookie,
        Some(json!({"name": "via-cookie", "command": "true"})),
    )
    .await;
    let id = assert_ok(&r)["id"].as_i64().unwrap();
    let r = w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
    assert_eq!(assert_ok(&r)["owner"], json!(w.alice_id));
    let r = send_with_headers(&anon, "GET", "/api/v1/blockstacks", &with_cookie, None).await;
    assert_eq!(assert_ok(&r)["count"], 1);
    // Bob sees nothing of it.
    assert_eq!(count(&w.bob, "/api/v1/blockstacks").await, 0);

    // A tampered cookie is no session.
    let mut tampered = cookie.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = send_with_headers(&anon, "GET", "/api/v1/jobs", &[("cookie", tampered.as_str())], None).await;
    assert_err(&r, 401, 3);
    healthy(&w.server).await;
}

#[tokio::test]
async fn authenticate_refuses_bad_credentials() {
    let w = world().await;
    let anon = Api::new(&w.server, None);
    for body in [
        json!({"username": "alice", "password": "wrong"}),
        json!({"email": "alice@example.com", "password": "wrong"}),
        json!({"username": "nobody", "password": PASSWORD_A}),
        json!({"email": "nobody@example.com", "password": PASSWORD_A}),
        json!({"username": "alice", "password": ""}),
    ] {
        let r = anon.post("/api/v1/authenticate", body.clone()).await;
        let msg = assert_err(&r, 401, 3);
        assert!(r.header("set-cookie").is_none(), "{body}: cookie on failure");
        // One message for both cases: no hint which of user or password was wrong.
        assert_eq!(msg, "unknown user or wrong password", "{body}");
    }
    // A user created without a password cannot log in.
    let db2 = TestDb::new();
    add_user(&db2, "nopass", None);
    let s2 = Server::start_on(&db2, &[]);
    let r = Api::new(&s2, None)
        .post("/api/v1/authenticate", json!({"username": "nopass", "password": "x"}))
        .await;
    assert_err(&r, 401, 3);

    // Shape errors: no login name, missing password, unknown field, wrong type.
    let r = anon.post("/api/v1/authenticate", json!({"password": PASSWORD_A})).await;
    assert!(assert_err(&r, 400, 4).contains("username"));
    let r = anon.post("/api/v1/authenticate", json!({"username": "alice"})).await;
    assert!(assert_err(&r, 400, 4).contains("password"));
    let r = anon
        .post("/api/v1/authenticate", json!({"username": "alice", "password": PASSWORD_A, "remember": true}))
        .await;
    assert!(assert_err(&r, 400, 4).contains("remember"));
    let r = anon.post("/api/v1/authenticate", json!({"username": 7, "password": "x"})).await;
    assert!(assert_err(&r, 400, 4).contains("username"));
    let r = anon
        .send_raw("POST", "/api/v1/authenticate", Some("application/json"), b"{\"username\": ".to_vec())
        .await;
    assert_err(&r, 400, 2);
    healthy(&w.server).await;
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_narrow_scopes_show_the_secret_once_and_revoke() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 86400})).await;
    let job =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "j"})).await;

    let r = w.alice.post("/api/v1/tokens", json!({"name": "read-only", "scopes": ["public"]})).await;
    let t = assert_ok(&r);
    let secret = t["token"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("cst_") && secret.len() == 68, "{secret}");
    assert_eq!(t["name"], "read-only");
    assert_eq!(t["scopes"], json!(["public"]));
    let token_id = t["id"].as_i64().unwrap();
    parse_utc(&t["created_at"]);

    // Listed, but never with the secret again.
    let r = w.alice.get("/api/v1/tokens").await;
    let list = assert_ok(&r);
    assert_eq!(list["count"], 2, "{list}");
    assert!(!r.text.contains(&secret), "secret shown again: {}", r.text);
    let listed = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(token_id))
        .expect("new token listed")
        .clone();
    assert_eq!(listed["name"], "read-only");
    assert_eq!(listed["scopes"], json!(["public"]));
    assert!(listed.get("token").is_none(), "{listed}");

    let before = snapshot(&w.alice).await;
    let ro = Api::new(&w.server, Some(&secret));
    // Reads work.
    assert_eq!(count(&ro, "/api/v1/jobs").await, 1);
    let r = ro.get(&format!("/api/v1/jobs/byid/{job}")).await;
    assert_eq!(assert_ok(&r)["name"], "j");
    // Changes need the `jobs` scope; token management needs `admin`.
    let refused = [
        ro.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await,
        ro.put(&format!("/api/v1/jobs/{job}"), json!({"name": "x"})).await,
        ro.delete(&format!("/api/v1/jobs/{job}")).await,
        ro.post("/api/v1/blockstacks", json!({"name": "t", "command": "true"})).await,
        ro.put(&format!("/api/v1/blockstacks/{stack}"), json!({"name": "t"})).await,
        ro.post("/api/v1/schedules", json!({"config": {"period": 5}})).await,
        ro.put(&format!("/api/v1/schedules/{sched}"), json!({"name": "t"})).await,
        ro.get("/api/v1/tokens").await,
        ro.post("/api/v1/tokens", json!({"scopes": ["public"]})).await,
    ];
    for r in &refused {
        assert_err(r, 403, 29);
    }
    assert_eq!(snapshot(&w.alice).await, before);

    // Revoked: the token is dead at once; revoking again finds nothing.
    let r = w.alice.delete(&format!("/api/v1/tokens/{token_id}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": token_id}));
    assert_err(&ro.get("/api/v1/jobs").await, 401, 3);
    let r = w.alice.delete(&format!("/api/v1/tokens/{token_id}")).await;
    assert_err(&r, 404, 6);
    assert_eq!(count(&w.alice, "/api/v1/tokens").await, 1);
    healthy(&w.server).await;
}

#[tokio::test]
async fn tokens_cannot_be_wider_than_their_creator_or_revoked_by_others() {
    let w = world().await;
    // An admin-only token may manage tokens but must not mint one with scopes it lacks.
    let r = w.alice.post("/api/v1/tokens", json!({"name": "adm", "scopes": ["admin"]})).await;
    let adm_secret = assert_ok(&r)["token"].as_str().unwrap().to_string();
    let adm = Api::new(&w.server, Some(&adm_secret));
    let r = adm.post("/api/v1/tokens", json!({"scopes": ["jobs", "public"]})).await;
    assert_err(&r, 403, 29);
    assert_eq!(count(&w.alice, "/api/v1/tokens").await, 2);
    // Equal is fine.
    let r = adm.post("/api/v1/tokens", json!({"scopes": ["admin"]})).await;
    assert_eq!(assert_ok(&r)["scopes"], json!(["admin"]));

    // Bad scope lists.
    let before = snapshot(&w.alice).await;
    for body in [
        json!({"scopes": []}),
        json!({"scopes": ["root"]}),
        json!({"scopes": "public"}),
        json!({"name": "no-scopes"}),
        json!({"scopes": ["public"], "expires": 5}),
    ] {
        let r = w.alice.post("/api/v1/tokens", body.clone()).await;
        let msg = assert_err(&r, 400, 4);
        let named = ["scopes", "expires"].iter().any(|f| msg.contains(f));
        assert!(named, "{body}: message names no field: {msg}");
    }
    assert_eq!(snapshot(&w.alice).await, before);

    // Bob cannot revoke alice's tokens (nor learn they exist).
    let alice_tokens = w.alice.get("/api/v1/tokens").await.json();
    for t in alice_tokens["tokens"].as_array().unwrap() {
        let id = t["id"].as_i64().unwrap();
        assert_err(&w.bob.delete(&format!("/api/v1/tokens/{id}")).await, 404, 6);
    }
    assert_eq!(snapshot(&w.alice).await, before);
    assert_eq!(count(&w.bob, "/api/v1/tokens").await, 1);
    assert_err(&w.alice.delete("/api/v1/tokens/abc").await, 400, 1);
}

// ---------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn stacks_create_and_read_by_id_and_name_with_every_field() {
    let w = world().await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({
                "name": "nightly backup",
                "command": "tar czf /tmp/b.tgz /etc",
                "env": {"TARGET": "s3://bucket", "LEVEL": "9"},
                "workdir": "/var/tmp",
            }),
        )
        .await;
    let created = assert_ok(&r);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let id = created["id"].as_i64().unwrap();

    let r = w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
    let s = assert_ok(&r);
    assert_eq!(s["id"], json!(id));
    assert!(is_hex32(&s["uid"]), "uid: {}", s["uid"]);
    assert_eq!(s["owner"], json!(w.alice_id));
    assert_eq!(s["name"], "nightly backup");
    assert_eq!(s["command"], "tar czf /tmp/b.tgz /etc");
    assert_eq!(s["env"], json!({"TARGET": "s3://bucket", "LEVEL": "9"}));
    assert_eq!(s["workdir"], "/var/tmp");
    assert_eq!(s["webhook"], Value::Null);
    assert_eq!(s["webhook_method"], "POST");
    assert_eq!(s["webhook_token"], Value::Null);
    assert_eq!(s["jobs"], json!([]));
    let created_at = parse_utc(&s["created_at"]);
    assert!(created_at <= chrono::Utc::now() + chrono::Duration::seconds(5));

    // By name (percent-encoded space), the same object.
    let r = w.alice.get("/api/v1/blockstacks/byname/nightly%20backup").await;
    assert_eq!(assert_ok(&r), s);
    // The list holds it too.
    let r = w.alice.get("/api/v1/blockstacks").await;
    let list = assert_ok(&r);
    assert_eq!(list["count"], 1);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    assert_eq!(list["stacks"], json!([s]));

    // Defaults for the optional fields.
    let id2 = new_stack(&w.alice, "minimal").await;
    let s2 = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id2}")).await);
    assert_eq!(s2["env"], json!({}));
    assert_eq!(s2["workdir"], Value::Null);
    assert_ne!(s2["uid"], s["uid"]);

    // Unknown id and name: 404, code 6.
    assert_err(&w.alice.get("/api/v1/blockstacks/byid/999999").await, 404, 6);
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/nope").await, 404, 6);
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/Nightly%20Backup").await, 404, 6);
}

#[tokio::test]
async fn stacks_put_is_a_partial_update() {
    let w = world().await;
    let id = w
        .alice
        .create(
            "/api/v1/blockstacks",
            json!({"name": "a", "command": "echo a", "env": {"X": "1"}, "workdir": "/tmp"}),
        )
        .await;
    let before = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await);

    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["id"], json!(id));
    assert_eq!(put["owner"], json!(w.alice_id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo a");
    assert_eq!(put["env"], json!({"X": "1"}));
    assert_eq!(put["workdir"], "/tmp");
    assert_eq!(put["uid"], before["uid"]);
    assert_eq!(put["webhook"], Value::Null);
    assert_eq!(put["webhook_method"], "POST");
    assert_eq!(put["jobs"], json!([]));

    let r = w
        .alice
        .put(
            &format!("/api/v1/blockstacks/{id}"),
            json!({"command": "echo b", "env": {"Y": "2"}, "workdir": null}),
        )
        .await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo b");
    assert_eq!(put["env"], json!({"Y": "2"}));
    assert_eq!(put["workdir"], Value::Null);

    // An empty PUT changes nothing visible but the timestamp.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["command"], "echo b");

    // The old name is free again; the new one is looked up.
    assert_err(&w.alice.get("/api/v1/blockstacks/byname/a").await, 404, 6);
    let r = w.alice.get("/api/v1/blockstacks/byname/renamed").await;
    assert_eq!(assert_ok(&r)["id"], json!(id));
    assert_err(&w.alice.put("/api/v1/blockstacks/999999", json!({"name": "x"})).await, 404, 6);
}

#[tokio::test]
async fn stack_names_are_unique_per_owner_code_10() {
    let w = world().await;
    let a = new_stack(&w.alice, "alpha").await;
    let b = new_stack(&w.alice, "beta").await;
    let before = snapshot(&w.alice).await;

    let r = w.alice.post("/api/v1/blockstacks", json!({"name": "alpha", "command": "true"})).await;
    assert!(assert_err(&r, 409, 10).contains("name"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{b}"), json!({"name": "alpha"})).await;
    assert_err(&r, 409, 10);
    assert_eq!(snapshot(&w.alice).await, before);

    // Renaming a stack to its own name is no conflict.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{a}"), json!({"name": "alpha"})).await;
    assert_eq!(assert_ok(&r)["name"], "alpha");
    // Another user may use the same name.
    let bob_alpha = new_stack(&w.bob, "alpha").await;
    assert_ne!(bob_alpha, a);
    let r = w.alice.get("/api/v1/blockstacks/byname/alpha").await;
    assert_eq!(assert_ok(&r)["id"], json!(a));
    let r = w.bob.get("/api/v1/blockstacks/byname/alpha").await;
    assert_eq!(assert_ok(&r)["id"], json!(bob_alpha));
}

#[tokio::test]
async fn stack_webhook_fields() {
    let w = world().await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({"name": "hooked", "command": "true", "webhook": "token", "webhook_method": "GET"}),
        )
        .await;
    let id = assert_ok(&r)["id"].as_i64().unwrap();
    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await);
    assert_eq!(s["webhook"], "token");
    assert_eq!(s["webhook_method"], "GET");
    assert!(is_hex32(&s["webhook_token"]), "{}", s["webhook_token"]);
    let token = s["webhook_token"].clone();

    // Changing the method keeps the token.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook_method": "POST"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["webhook"], "token");
    assert_eq!(put["webhook_method"], "POST");
    assert_eq!(put["webhook_token"], token);

    for access in ["public", "user"] {
        let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook": access})).await;
        assert_eq!(assert_ok(&r)["webhook"], access);
    }
    let r = w.alice.put(&format!("/api/v1/blockstacks/{id}"), json!({"webhook": null})).await;
    assert_eq!(assert_ok(&r)["webhook"], Value::Null);

    let p = w
        .alice
        .create("/api/v1/blockstacks", json!({"name": "pub", "command": "true", "webhook": "public"}))
        .await;
    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{p}")).await);
    assert_eq!(s["webhook"], "public");
    assert_eq!(s["webhook_method"], "POST");
    assert_eq!(s["webhook_token"], Value::Null);

    // Invalid enum values name the field and change nothing.
    let before = snapshot(&w.alice).await;
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "bad", "command": "true", "webhook": "everyone"}))
        .await;
    assert!(assert_err(&r, 400, 4).contains("webhook"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{p}"), json!({"webhook_method": "PUT"})).await;
    assert!(assert_err(&r, 400, 4).contains("webhook_method"));
    let r = w.alice.put(&format!("/api/v1/blockstacks/{p}"), json!({"webhook_method": "get"})).await;
    assert!(assert_err(&r, 400, 4).contains("webhook_method"));
    assert_eq!(snapshot(&w.alice).await, before);
}

#[tokio::test]
async fn stack_with_schedule_id_creates_its_first_job_and_lists_jobs() {
    let w = world().await;
    let sched = new_schedule(&w.alice, json!({"period": 86400})).await;
    let r = w
        .alice
        .post(
            "/api/v1/blockstacks",
            json!({"name": "daily", "command": "true", "schedule_id": sched, "enabled": true}),
        )
        .await;
    let stack = assert_ok(&r)["id"].as_i64().unwrap();

    let jobs = assert_ok(&w.alice.get("/api/v1/jobs").await);
    assert_eq!(jobs["count"], 1);
    let job = &jobs["jobs"][0];
    let job_id = job["id"].as_i64().unwrap();
    assert_eq!(job["stack"], json!(stack));
    assert_eq!(job["schedule"], json!(sched));
    assert_eq!(job["do_run"], true);
    assert_eq!(job["do_del"], false);
    assert!(parse_utc(&job["next_run"]) > chrono::Utc::now());

    let s = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{stack}")).await);
    assert_eq!(
        s["jobs"],
        json!([{"id": job_id, "name": null, "do_run": true, "schedule": {"period": 86400}}])
    );

    // A second, named, disabled job on a cron schedule shows in the stack's list.
    let cron = new_schedule(&w.alice, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})).await;
    let j2 = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": cron, "name": "second"}))
        .await;
    let s = assert_ok(&w.alice.get("/api/v1/blockstacks/byname/daily").await);
    assert_eq!(
        s["jobs"],
        json!([
            {"id": job_id, "name": null, "do_run": true, "schedule": {"period": 86400}},
            {"id": j2, "name": "second", "do_run": false,
             "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}},
        ])
    );
    // PUT answers the stack with its jobs as ids (Kragle's PUT shape).
    let r = w.alice.put(&format!("/api/v1/blockstacks/{stack}"), json!({"command": "date"})).await;
    assert_eq!(assert_ok(&r)["jobs"], json!([job_id, j2]));
    // PUT with schedule_id adds a job.
    let r = w.alice.put(&format!("/api/v1/blockstacks/{stack}"), json!({"schedule_id": sched})).await;
    let ids = assert_ok(&r)["jobs"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 3);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 3);

    // A stack without schedule_id: enabled makes no sense; a foreign/missing schedule is 25.
    let before = snapshot(&w.alice).await;
    let r =
        w.alice.post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "enabled": true})).await;
    assert!(assert_err(&r, 400, 4).contains("enabled"));
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "schedule_id": 999999}))
        .await;
    assert_err(&r, 404, 25);
    let bob_sched = new_schedule(&w.bob, json!({"period": 60})).await;
    let r = w
        .alice
        .post("/api/v1/blockstacks", json!({"name": "x", "command": "true", "schedule_id": bob_sched}))
        .await;
    assert_err(&r, 404, 25);
    assert_eq!(snapshot(&w.alice).await, before);
}

#[tokio::test]
async fn stacks_have_no_delete_endpoint_and_a_delete_changes_nothing() {
    let w = world().await;
    let id = new_stack(&w.alice, "keep").await;
    let before = snapshot(&w.alice).await;
    let r = w.alice.delete(&format!("/api/v1/blockstacks/{id}")).await;
    assert_err(&r, 405, 4);
    assert_eq!(snapshot(&w.alice).await, before);
    // Unknown endpoints under /api/v1 speak Kragle too.
    assert_err(&w.alice.get("/api/v1/nothing-here").await, 404, 6);
}

// ---------------------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn schedules_period_timestamp_and_cron_configs() {
    let w = world().await;
    let period =
        w.alice.create("/api/v1/schedules", json!({"name": "hourly", "config": {"period": 3600}})).await;
    let ts = w
        .alice
        .create(
            "/api/v1/schedules",
            json!({"name": "new year", "once": true, "config": {"timestamp": FAR_TS}}),
        )
        .await;
    // A timestamp fires once by nature, whatever `once` says.
    let ts2 = w.alice.create("/api/v1/schedules", json!({"config": {"timestamp": FAR_TS}})).await;
    let cron = w
        .alice
        .create(
            "/api/v1/schedules",
            json!({"name": "paris 3am", "config": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}}),
        )
        .await;
    let cron_utc = w.alice.create("/api/v1/schedules", json!({"config": {"cron": "*/5 * * * * *"}})).await;
    let once_period =
        w.alice.create("/api/v1/schedules", json!({"once": true, "config": {"period": 1}})).await;

    let expect = [
        (period, json!("hourly"), false, json!({"period": 3600})),
        (ts, json!("new year"), true, json!({"timestamp": FAR_TS})),
        (ts2, Value::Null, true, json!({"timestamp": FAR_TS})),
        (cron, json!("paris 3am"), false, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})),
        (cron_utc, Value::Null, false, json!({"cron": "*/5 * * * * *", "timezone": "UTC"})),
        (once_period, Value::Null, true, json!({"period": 1})),
    ];
    let list = assert_ok(&w.alice.get("/api/v1/schedules").await);
    assert_eq!(list["count"], 6);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    let items = list["schedules"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    for (i, (id, name, once, config)) in expect.iter().enumerate() {
        let one = assert_ok(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await);
        assert_eq!(one["id"], json!(id));
        assert_eq!(one["name"], *name, "{one}");
        assert_eq!(one["once"], json!(once), "{one}");
        assert_eq!(one["config"], *config, "{one}");
        assert_eq!(items[i], one, "list entry {i} differs from byid");
    }
    assert_err(&w.alice.get("/api/v1/schedules/byid/999999").await, 404, 6);
}

#[tokio::test]
async fn schedule_put_updates_and_delete_removes_when_unused() {
    let w = world().await;
    let id = w.alice.create("/api/v1/schedules", json!({"name": "s", "config": {"period": 60}})).await;
    let r = w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_eq!(put["id"], json!(id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["once"], false);
    assert_eq!(put["config"], json!({"period": 60}));

    let r = w
        .alice
        .put(
            &format!("/api/v1/schedules/{id}"),
            json!({"config": {"cron": "15 4 * * 1-5", "timezone": "America/New_York"}, "once": true}),
        )
        .await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["once"], true);
    assert_eq!(put["config"], json!({"cron": "15 4 * * 1-5", "timezone": "America/New_York"}));
    let got = assert_ok(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await);
    assert_eq!(got["config"], put["config"]);
    assert_eq!(got["once"], true);

    let r = w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": null, "once": false})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], Value::Null);
    assert_eq!(put["once"], false);

    let r = w.alice.delete(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": id}));
    assert_err(&w.alice.get(&format!("/api/v1/schedules/byid/{id}")).await, 404, 6);
    assert_err(&w.alice.delete(&format!("/api/v1/schedules/{id}")).await, 404, 6);
    assert_err(&w.alice.put(&format!("/api/v1/schedules/{id}"), json!({"name": "x"})).await, 404, 6);
    assert_eq!(count(&w.alice, "/api/v1/schedules").await, 0);
}

#[tokio::test]
async fn schedule_in_use_cannot_be_changed_or_deleted_code_27() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched =
        w.alice.create("/api/v1/schedules", json!({"name": "used", "config": {"period": 86400}})).await;
    let job = w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let before = snapshot(&w.alice).await;
    for body in [json!({"config": {"period": 60}}), json!({"name": "other"}), json!({"once": true})] {
        let r = w.alice.put(&format!("/api/v1/schedules/{sched}"), body).await;
        assert!(assert_err(&r, 409, 27).contains("used"));
    }
    let r = w.alice.delete(&format!("/api/v1/schedules/{sched}")).await;
    assert_err(&r, 409, 27);
    assert_eq!(snapshot(&w.alice).await, before);

    // Still refused while the job is enabled; free once the job is gone.
    let r = w.alice.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": true})).await;
    assert_ok(&r);
    assert_err(&w.alice.delete(&format!("/api/v1/schedules/{sched}")).await, 409, 27);
    let r = w.alice.put(&format!("/api/v1/jobs/{job}"), json!({"enabled": false})).await;
    assert_ok(&r);
    let r = w.alice.delete(&format!("/api/v1/jobs/{job}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": job}));
    let r = w.alice.put(&format!("/api/v1/schedules/{sched}"), json!({"config": {"period": 60}})).await;
    assert_eq!(assert_ok(&r)["config"], json!({"period": 60}));
    let r = w.alice.delete(&format!("/api/v1/schedules/{sched}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": sched}));
}

#[tokio::test]
async fn invalid_schedule_configs_are_refused_with_code_26_saying_why() {
    let w = world().await;
    let existing = new_schedule(&w.alice, json!({"period": 60})).await;
    let before = snapshot(&w.alice).await;
    let cases = [
        (json!({"cron": "61 * * * *"}), "minute"),
        (json!({"cron": "* * *"}), "5 or 6 fields"),
        (json!({"cron": "not a cron"}), "cron"),
        (json!({"cron": ""}), "cron"),
        (json!({"cron": "0 3 * * *", "timezone": "Mars/Olympus_Mons"}), "Mars/Olympus_Mons"),
        (json!({"period": 0}), "at least 1"),
        (json!({"period": -5}), "at least 1"),
        (json!({"period": "60"}), "integer"),
        (json!({"period": 1.5}), "integer"),
        (json!({"every": 5}), "unknown config key \"every\""),
        (json!({"period": 60, "jitter": 3}), "jitter"),
        (json!({}), "needs one of"),
        (json!({"period": 60, "cron": "* * * * *"}), "only one"),
        (json!({"period": 60, "timezone": "UTC"}), "timezone"),
        (json!({"timestamp": -1}), "timestamp"),
        (json!("every day"), "object"),
        (json!([60]), "object"),
    ];
    for (config, needle) in &cases {
        let r = w.alice.post("/api/v1/schedules", json!({ "config": config })).await;
        let msg = assert_err(&r, 400, 26);
        assert!(msg.contains(needle), "{config}: {msg:?} lacks {needle:?}");
        let r = w.alice.put(&format!("/api/v1/schedules/{existing}"), json!({ "config": config })).await;
        let msg = assert_err(&r, 400, 26);
        assert!(msg.contains(needle), "PUT {config}: {msg:?} lacks {needle:?}");
    }
    // No config at all, or a null one.
    let r = w.alice.post("/api/v1/schedules", json!({"name": "x"})).await;
    assert!(assert_err(&r, 400, 26).contains("config"));
    let r = w.alice.post("/api/v1/schedules", json!({"config": null})).await;
    assert!(assert_err(&r, 400, 26).contains("config"));
    assert_eq!(snapshot(&w.alice).await, before);
    healthy(&w.server).await;
}

// ---------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------

const JOB_KEYS: [&str; 7] = ["id", "name", "stack", "schedule", "next_run", "do_run", "do_del"];
const PUT_KEYS: [&str; 7] = ["owner", "name", "stack", "schedule", "next_run", "do_run", "do_del"];

#[track_caller]
fn assert_keys(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(*k).is_some(), "missing {k} in {v}");
    }
}

#[tokio::test]
async fn jobs_create_and_read_with_every_documented_field() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 86400})).await;

    let r = w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let created = assert_ok(&r);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let plain = created["id"].as_i64().unwrap();

    let j = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{plain}")).await);
    assert_keys(&j, &JOB_KEYS);
    assert_eq!(j["id"], json!(plain));
    assert_eq!(j["name"], Value::Null);
    assert_eq!(j["stack"], json!(stack));
    assert_eq!(j["schedule"], json!(sched));
    assert_eq!(j["next_run"], Value::Null, "disabled by default");
    assert_eq!(j["do_run"], false);
    assert_eq!(j["do_del"], false);
    assert!(is_hex32(&j["uid"]), "{}", j["uid"]);
    assert_eq!(j["owner"], json!(w.alice_id));

    let before = chrono::Utc::now();
    let named = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": sched, "name": "daily report", "enabled": true}),
        )
        .await;
    let j2 = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{named}")).await);
    assert_keys(&j2, &JOB_KEYS);
    assert_eq!(j2["name"], "daily report");
    assert_eq!(j2["do_run"], true);
    assert_eq!(j2["do_del"], false);
    assert_ne!(j2["uid"], j["uid"]);
    // A period of a day fires at the next UTC midnight, within the coming day.
    let next = parse_utc(&j2["next_run"]);
    assert!(next > before, "{next} not after {before}");
    assert!(next <= before + chrono::Duration::seconds(86400 + 5));
    assert_eq!(next.timestamp() % 86400, 0, "{next} is not a midnight");

    let by_name = assert_ok(&w.alice.get("/api/v1/jobs/byname/daily%20report").await);
    assert_eq!(by_name, j2);
    assert_err(&w.alice.get("/api/v1/jobs/byname/nope").await, 404, 6);
    assert_err(&w.alice.get("/api/v1/jobs/byid/999999").await, 404, 6);

    let list = assert_ok(&w.alice.get("/api/v1/jobs").await);
    assert_eq!(list["count"], 2);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["page"], 1);
    assert_eq!(list["jobs"], json!([j, j2]));
}

#[tokio::test]
async fn job_next_run_follows_cron_timezone_and_timestamp() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let paris = new_schedule(&w.alice, json!({"cron": "0 3 * * *", "timezone": "Europe/Paris"})).await;
    let at = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;

    let now = chrono::Utc::now();
    let j = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": paris, "enabled": true}))
        .await;
    let job = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{j}")).await);
    let next = parse_utc(&job["next_run"]);
    assert!(next > now && next <= now + chrono::Duration::hours(25), "{next}");
    let local = next.with_timezone(&chrono_tz::Europe::Paris);
    use chrono::Timelike;
    assert_eq!((local.hour(), local.minute(), local.second()), (3, 0, 0), "{local}");

    let t =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": at, "enabled": true})).await;
    let job = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{t}")).await);
    assert_eq!(job["next_run"], "2100-01-01T00:00:00Z");

    // Disabling clears next_run; enabling again restores it.
    let r = w.alice.put(&format!("/api/v1/jobs/{t}"), json!({"enabled": false})).await;
    let put = assert_ok(&r);
    assert_eq!(put["next_run"], Value::Null);
    assert_eq!(put["do_run"], false);
    let r = w.alice.put(&format!("/api/v1/jobs/{t}"), json!({"enabled": true})).await;
    assert_eq!(assert_ok(&r)["next_run"], "2100-01-01T00:00:00Z");
}

#[tokio::test]
async fn job_put_is_a_partial_update_answering_kragle_fields() {
    let w = world().await;
    let s1 = new_stack(&w.alice, "one").await;
    let s2 = new_stack(&w.alice, "two").await;
    let sc1 = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;
    let sc2 = new_schedule(&w.alice, json!({"period": 86400})).await;
    let id = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": s1, "schedule_id": sc1, "name": "j",
                   "overlap": "allow", "missed": "catch_up", "retries": 3,
                   "retry_backoff_s": 30, "timeout_s": 120, "command": "echo hi"}),
        )
        .await;
    let orig = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{id}")).await);
    assert_eq!(orig["overlap"], "allow");
    assert_eq!(orig["missed"], "catch_up");
    assert_eq!(orig["retries"], 3);
    assert_eq!(orig["retry_backoff_s"], 30);
    assert_eq!(orig["timeout_s"], 120);
    assert_eq!(orig["command"], "echo hi");

    // Only the name.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"name": "renamed"})).await;
    let put = assert_ok(&r);
    assert_keys(&put, &PUT_KEYS);
    assert_eq!(put["owner"], json!(w.alice_id));
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s1));
    assert_eq!(put["schedule"], json!(sc1));
    assert_eq!(put["next_run"], Value::Null);
    assert_eq!(put["do_run"], false);
    assert_eq!(put["do_del"], false);
    for k in ["overlap", "missed", "retries", "retry_backoff_s", "timeout_s", "command", "uid"] {
        assert_eq!(put[k], orig[k], "{k} changed");
    }

    // Only enabled: the rest stays.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"enabled": true})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s1));
    assert_eq!(put["schedule"], json!(sc1));
    assert_eq!(put["do_run"], true);
    assert_eq!(put["next_run"], "2100-01-01T00:00:00Z");

    // Stack and schedule; a new schedule means a new next_run.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"stack_id": s2, "schedule_id": sc2})).await;
    let put = assert_ok(&r);
    assert_eq!(put["name"], "renamed");
    assert_eq!(put["stack"], json!(s2));
    assert_eq!(put["schedule"], json!(sc2));
    assert_eq!(put["do_run"], true);
    assert_eq!(parse_utc(&put["next_run"]).timestamp() % 86400, 0);

    // An empty body changes nothing the user set.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({})).await;
    let put = assert_ok(&r);
    let now = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{id}")).await);
    for k in JOB_KEYS {
        assert_eq!(put.get(k), now.get(k), "{k}");
    }
    assert_eq!(now["name"], "renamed");
    assert_eq!(now["retries"], 3);

    // An explicit null clears the name; the job is then no longer found by it.
    let r = w.alice.put(&format!("/api/v1/jobs/{id}"), json!({"name": null})).await;
    assert_eq!(assert_ok(&r)["name"], Value::Null);
    assert_err(&w.alice.get("/api/v1/jobs/byname/renamed").await, 404, 6);

    // The stack lists reflect the move.
    let one = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{s1}")).await);
    assert_eq!(one["jobs"], json!([]));
    let two = assert_ok(&w.alice.get(&format!("/api/v1/blockstacks/byid/{s2}")).await);
    assert_eq!(two["jobs"][0]["id"], json!(id));
    assert_eq!(two["jobs"][0]["schedule"], json!({"period": 86400}));
    assert_err(&w.alice.put("/api/v1/jobs/999999", json!({"name": "x"})).await, 404, 6);
}

#[tokio::test]
async fn job_delete_is_immediate_when_disabled_and_queued_when_enabled() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"timestamp": FAR_TS})).await;
    let off =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "off"})).await;
    let on = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": sched, "name": "on", "enabled": true}),
        )
        .await;
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 2);

    let r = w.alice.delete(&format!("/api/v1/jobs/{off}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": off}));
    assert_err(&w.alice.get(&format!("/api/v1/jobs/byid/{off}")).await, 404, 6);
    assert_err(&w.alice.get("/api/v1/jobs/byname/off").await, 404, 6);
    assert_err(&w.alice.delete(&format!("/api/v1/jobs/{off}")).await, 404, 6);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 1);

    let r = w.alice.delete(&format!("/api/v1/jobs/{on}")).await;
    assert_eq!(assert_ok(&r), json!({"queued_for_deletion": on}));
    let j = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{on}")).await);
    assert_eq!(j["do_del"], true);
    assert_eq!(j["do_run"], true);
    assert_eq!(j["next_run"], "2100-01-01T00:00:00Z");
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 1);
    // Asking again answers the same; a queued job can no longer be changed.
    let r = w.alice.delete(&format!("/api/v1/jobs/{on}")).await;
    assert_eq!(assert_ok(&r), json!({"queued_for_deletion": on}));
    let before = snapshot(&w.alice).await;
    let r = w.alice.put(&format!("/api/v1/jobs/{on}"), json!({"name": "revived"})).await;
    assert_err(&r, 409, 4);
    assert_eq!(snapshot(&w.alice).await, before);
    // Its name stays taken until it is gone.
    let r =
        w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "on"})).await;
    assert_err(&r, 409, 12);
}

#[tokio::test]
async fn job_names_are_unique_per_owner_code_12() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let a =
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "dup"})).await;
    let b = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "other"}))
        .await;
    // Unnamed jobs never clash.
    for _ in 0..2 {
        w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    }
    let before = snapshot(&w.alice).await;
    let r =
        w.alice.post("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "dup"})).await;
    assert_err(&r, 409, 12);
    let r = w.alice.put(&format!("/api/v1/jobs/{b}"), json!({"name": "dup"})).await;
    assert_err(&r, 409, 12);
    assert_eq!(snapshot(&w.alice).await, before);

    // Bob may use the name; each byname finds the caller's own.
    let bs = new_stack(&w.bob, "s").await;
    let bsc = new_schedule(&w.bob, json!({"period": 3600})).await;
    let bob_dup =
        w.bob.create("/api/v1/jobs", json!({"stack_id": bs, "schedule_id": bsc, "name": "dup"})).await;
    let r = w.alice.get("/api/v1/jobs/byname/dup").await;
    assert_eq!(assert_ok(&r)["id"], json!(a));
    let r = w.bob.get("/api/v1/jobs/byname/dup").await;
    assert_eq!(assert_ok(&r)["id"], json!(bob_dup));
}

#[tokio::test]
async fn job_references_must_be_the_callers_codes_24_and_25() {
    let w = world().await;
    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job = w.alice.create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched})).await;
    let bob_stack = new_stack(&w.bob, "b").await;
    let bob_sched = new_schedule(&w.bob, json!({"period": 3600})).await;
    let before = snapshot(&w.alice).await;

    let cases = [
        (json!({"stack_id": 999999, "schedule_id": sched}), 24),
        (json!({"stack_id": bob_stack, "schedule_id": sched}), 24),
        (json!({"stack_id": -1, "schedule_id": sched}), 24),
        (json!({"stack_id": stack, "schedule_id": 999999}), 25),
        (json!({"stack_id": stack, "schedule_id": bob_sched}), 25),
    ];
    for (body, code) in &cases {
        let r = w.alice.post("/api/v1/jobs", body.clone()).await;
        assert_err(&r, 404, *code);
        let r = w.alice.put(&format!("/api/v1/jobs/{job}"), body.clone()).await;
        assert_err(&r, 404, *code);
    }
    // Required fields, named.
    let r = w.alice.post("/api/v1/jobs", json!({"schedule_id": sched})).await;
    assert!(assert_err(&r, 400, 4).contains("stack_id"));
    let r = w.alice.post("/api/v1/jobs", json!({"stack_id": stack})).await;
    assert!(assert_err(&r, 400, 4).contains("schedule_id"));
    let r = w.alice.post("/api/v1/jobs", json!({})).await;
    assert_err(&r, 400, 4);
    assert_eq!(snapshot(&w.alice).await, before);
}

// ---------------------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------------------

/// Asserts a page: `count`, `pagesize` 10, `page`, and the ids on it.
#[track_caller]
fn assert_page(v: &Value, key: &str, count: i64, page: i64, ids: &[i64]) {
    assert_eq!(v["count"], json!(count), "{v}");
    assert_eq!(v["pagesize"], 10, "{v}");
    assert_eq!(v["page"], json!(page), "{v}");
    let got: Vec<i64> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {v}"))
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids, "page {page} of {key}");
}

async fn page(api: &Api, path: &str, page: &str) -> Value {
    let r = api.get(&format!("{path}?page={page}")).await;
    assert_ok(&r)
}

#[tokio::test]
async fn pagination_edges_for_jobs() {
    let w = world().await;
    let p = "/api/v1/jobs";
    // Empty.
    let r = assert_ok(&w.alice.get(p).await);
    assert_eq!(r, json!({"count": 0, "pagesize": 10, "page": 1, "jobs": []}));
    assert_page(&page(&w.alice, p, "2").await, "jobs", 0, 2, &[]);

    let stack = new_stack(&w.alice, "s").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            w.alice
                .create(p, json!({"stack_id": stack, "schedule_id": sched, "name": format!("job{i:02}")}))
                .await,
        );
    }
    // Exactly one full page.
    assert_page(&assert_ok(&w.alice.get(p).await), "jobs", 10, 1, &ids);
    assert_page(&page(&w.alice, p, "1").await, "jobs", 10, 1, &ids);
    assert_page(&page(&w.alice, p, "2").await, "jobs", 10, 2, &[]);

    // Eleven: the second page holds the last one.
    ids.push(w.alice.create(p, json!({"stack_id": stack, "schedule_id": sched})).await);
    assert_page(&page(&w.alice, p, "1").await, "jobs", 11, 1, &ids[..10]);
    assert_page(&page(&w.alice, p, "2").await, "jobs", 11, 2, &ids[10..]);
    assert_page(&page(&w.alice, p, "3").await, "jobs", 11, 3, &[]);
    // Far past the end, up to the largest page number there is.
    assert_page(&page(&w.alice, p, "1000000").await, "jobs", 11, 1_000_000, &[]);
    assert_page(&page(&w.alice, p, &i64::MAX.to_string()).await, "jobs", 11, i64::MAX, &[]);
    // Another user's pages stay empty.
    assert_page(&page(&w.bob, p, "1").await, "jobs", 0, 1, &[]);
    // Page 2 entries carry the full job fields.
    let p2 = page(&w.alice, p, "2").await;
    assert_keys(&p2["jobs"][0], &JOB_KEYS);
    assert_eq!(p2["jobs"][0]["name"], Value::Null);
}

#[tokio::test]
async fn pagination_edges_for_schedules_and_stacks() {
    let w = world().await;
    for (path, key) in [("/api/v1/schedules", "schedules"), ("/api/v1/blockstacks", "stacks")] {
        assert_page(&assert_ok(&w.alice.get(path).await), key, 0, 1, &[]);
        let mut ids = Vec::new();
        for i in 0..11 {
            let body = if key == "stacks" {
                json!({"name": format!("stack{i}"), "command": "true"})
            } else {
                json!({"name": format!("sched{i}"), "config": {"period": 60 + i}})
            };
            ids.push(w.alice.create(path, body).await);
            if i == 9 {
                assert_page(&page(&w.alice, path, "1").await, key, 10, 1, &ids);
                assert_page(&page(&w.alice, path, "2").await, key, 10, 2, &[]);
            }
        }
        assert_page(&page(&w.alice, path, "1").await, key, 11, 1, &ids[..10]);
        assert_page(&page(&w.alice, path, "2").await, key, 11, 2, &ids[10..]);
        assert_page(&page(&w.alice, path, "99").await, key, 11, 99, &[]);
        // An empty `page=` means the default.
        assert_page(&page(&w.alice, path, "").await, key, 11, 1, &ids[..10]);
        assert_page(&page(&w.bob, path, "1").await, key, 0, 1, &[]);
    }
}

#[tokio::test]
async fn bad_page_parameters_are_code_1() {
    let w = world().await;
    new_stack(&w.alice, "s").await;
    for path in ["/api/v1/jobs", "/api/v1/schedules", "/api/v1/blockstacks"] {
        for bad in ["abc", "0", "-1", "1.5", "1e3", "%20", "99999999999999999999999", "0x10"] {
            let r = w.alice.get(&format!("{path}?page={bad}")).await;
            let msg = assert_err(&r, 400, 1);
            assert!(msg.contains("page"), "{path}?page={bad}: {msg}");
        }
    }
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 1);
    healthy(&w.server).await;
}

// ---------------------------------------------------------------------------------------
// Ownership isolation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn another_users_objects_are_invisible_and_untouchable() {
    let w = world().await;
    let a_sched = w
        .alice
        .create("/api/v1/schedules", json!({"name": "a-sched", "config": {"timestamp": FAR_TS}}))
        .await;
    let a_stack = w
        .alice
        .create("/api/v1/blockstacks", json!({"name": "a-stack", "command": "true", "webhook": "token"}))
        .await;
    let a_job = w
        .alice
        .create(
            "/api/v1/jobs",
            json!({"stack_id": a_stack, "schedule_id": a_sched, "name": "a-job", "enabled": true}),
        )
        .await;
    let a_off = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": a_stack, "schedule_id": a_sched, "name": "a-off"}))
        .await;
    let a_unused = new_schedule(&w.alice, json!({"period": 60})).await;
    let alice_before = snapshot(&w.alice).await;

    // Bob's own objects, to try to mix with alice's.
    let b_stack = new_stack(&w.bob, "b-stack").await;
    let b_sched = new_schedule(&w.bob, json!({"period": 60})).await;
    let b_job = w
        .bob
        .create("/api/v1/jobs", json!({"stack_id": b_stack, "schedule_id": b_sched, "name": "b-job"}))
        .await;
    let bob_before = snapshot(&w.bob).await;

    let b = &w.bob;
    let not_found = [
        b.get(&format!("/api/v1/blockstacks/byid/{a_stack}")).await,
        b.get("/api/v1/blockstacks/byname/a-stack").await,
        b.put(&format!("/api/v1/blockstacks/{a_stack}"), json!({"name": "mine"})).await,
        b.put(&format!("/api/v1/blockstacks/{a_stack}"), json!({"schedule_id": b_sched})).await,
        b.get(&format!("/api/v1/schedules/byid/{a_sched}")).await,
        b.put(&format!("/api/v1/schedules/{a_unused}"), json!({"name": "mine"})).await,
        b.put(&format!("/api/v1/schedules/{a_sched}"), json!({"config": {"period": 5}})).await,
        b.delete(&format!("/api/v1/schedules/{a_unused}")).await,
        b.delete(&format!("/api/v1/schedules/{a_sched}")).await,
        b.get(&format!("/api/v1/jobs/byid/{a_job}")).await,
        b.get("/api/v1/jobs/byname/a-job").await,
        b.put(&format!("/api/v1/jobs/{a_job}"), json!({"enabled": false})).await,
        b.put(&format!("/api/v1/jobs/{a_off}"), json!({"name": "mine"})).await,
        b.delete(&format!("/api/v1/jobs/{a_job}")).await,
        b.delete(&format!("/api/v1/jobs/{a_off}")).await,
    ];
    for (i, r) in not_found.iter().enumerate() {
        let msg = assert_err(r, 404, 6);
        assert!(!msg.contains("a-"), "case {i} leaks a name: {msg}");
    }
    // Referencing alice's stack or schedule from bob's payloads: 24 / 25, also 404.
    let refs = [
        (b.post("/api/v1/jobs", json!({"stack_id": a_stack, "schedule_id": b_sched})).await, 24),
        (b.post("/api/v1/jobs", json!({"stack_id": b_stack, "schedule_id": a_sched})).await, 25),
        (b.put(&format!("/api/v1/jobs/{b_job}"), json!({"stack_id": a_stack})).await, 24),
        (b.put(&format!("/api/v1/jobs/{b_job}"), json!({"schedule_id": a_unused})).await, 25),
        (
            b.post(
                "/api/v1/blockstacks",
                json!({"name": "steal", "command": "true", "schedule_id": a_sched}),
            )
            .await,
            25,
        ),
    ];
    for (r, code) in &refs {
        assert_err(r, 404, *code);
    }

    // Nothing changed on either side; lists never mix.
    assert_eq!(snapshot(&w.alice).await, alice_before);
    assert_eq!(snapshot(&w.bob).await, bob_before);
    assert_eq!(count(&w.bob, "/api/v1/jobs").await, 1);
    assert_eq!(count(&w.bob, "/api/v1/schedules").await, 1);
    assert_eq!(count(&w.bob, "/api/v1/blockstacks").await, 1);
    assert_eq!(count(&w.alice, "/api/v1/jobs").await, 2);
    assert_eq!(count(&w.alice, "/api/v1/schedules").await, 2);
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 1);
    let j = assert_ok(&w.alice.get(&format!("/api/v1/jobs/byid/{a_job}")).await);
    assert_eq!(j["do_run"], true);
    assert_eq!(j["do_del"], false);
    // Alice's webhook token never appears in bob's answers.
    let token =
        alice_before["/api/v1/blockstacks"]["stacks"][0]["webhook_token"].as_str().unwrap().to_string();
    assert!(!bob_before.to_string().contains(&token));

    // Same names on both sides: byname resolves to the caller's own.
    let b_same = new_stack(&w.bob, "a-stack").await;
    let r = w.bob.get("/api/v1/blockstacks/byname/a-stack").await;
    assert_eq!(assert_ok(&r)["id"], json!(b_same));
    let r = w.alice.get("/api/v1/blockstacks/byname/a-stack").await;
    assert_eq!(assert_ok(&r)["id"], json!(a_stack));
    assert_eq!(assert_ok(&r)["owner"], json!(w.alice_id));
    let r = w.bob.get(&format!("/api/v1/blockstacks/byid/{b_same}")).await;
    assert_eq!(assert_ok(&r)["owner"], json!(w.bob_id));
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

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
        case("truncated JSON", "POST", "/api/v1/blockstacks", "{\"name\": \"x\",", 400, 2, ""),
        case("not JSON at all", "POST", "/api/v1/jobs", "stack_id=1", 400, 2, ""),
        case("trailing garbage", "POST", "/api/v1/jobs", format!("{ok_job} x"), 400, 2, ""),
        case("single quotes", "POST", "/api/v1/schedules", "{'config': {'period': 5}}", 400, 2, ""),
        case(
            "invalid UTF-8",
            "POST",
            "/api/v1/blockstacks",
            b"{\"name\": \"\xff\xfe\", \"command\": \"true\"}".to_vec(),
            400,
            2,
            "",
        ),
        // Wrong shapes (code 4), each naming the field.
        case("JSON array body", "POST", "/api/v1/jobs", "[1, 2]", 400, 4, ""),
        case(
            "a positional array shaped like a job",
            "POST",
            "/api/v1/jobs",
            j(json!([sched, stack, null, false, null, null, "forbid", "skip", 0, 10])),
            400,
            4,
            "object",
        ),
        case(
            "duplicate field",
            "POST",
            "/api/v1/blockstacks",
            "{\"name\": \"a\", \"name\": \"b\", \"command\": \"true\"}",
            400,
            4,
            "name",
        ),
        case("JSON null body", "POST", "/api/v1/blockstacks", "null", 400, 4, ""),
        case(
            "name is a number",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": 123, "command": "true"})),
            400,
            4,
            "name",
        ),
        case(
            "stack_id is a string",
            "POST",
            "/api/v1/jobs",
            j(json!({"stack_id": "1", "schedule_id": sched})),
            400,
            4,
            "stack_id",
        ),
        case(
            "schedule_id is a float",
            "POST",
            "/api/v1/jobs",
            j(json!({"stack_id": stack, "schedule_id": 1.5})),
            400,
            4,
            "schedule_id",
        ),
        case(
            "stack_id overflows i64",
            "POST",
            "/api/v1/jobs",
            format!("{{\"stack_id\": 100000000000000000000000, \"schedule_id\": {sched}}}"),
            400,
            4,
            "stack_id",
        ),
        case(
            "enabled is a string",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"enabled": "yes"})),
            400,
            4,
            "enabled",
        ),
        case(
            "env is a list",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": ["A=1"]})),
            400,
            4,
            "env",
        ),
        case(
            "env value is a number",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": {"A": 1}})),
            400,
            4,
            "env",
        ),
        case(
            "once is a string",
            "POST",
            "/api/v1/schedules",
            j(json!({"once": "true", "config": {"period": 5}})),
            400,
            4,
            "once",
        ),
        case(
            "unknown field on a stack",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "u", "command": "true", "colour": "red"})),
            400,
            4,
            "colour",
        ),
        case(
            "unknown field on a job",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"do_run": true})),
            400,
            4,
            "do_run",
        ),
        case(
            "unknown field on a schedule",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"period": 5}, "period": 5})),
            400,
            4,
            "period",
        ),
        case(
            "Kragle blocks are not ours",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "k", "command": "true", "blocks": []})),
            400,
            4,
            "blocks",
        ),
        case("missing command", "POST", "/api/v1/blockstacks", j(json!({"name": "m"})), 400, 4, "command"),
        case("missing name", "POST", "/api/v1/blockstacks", j(json!({"command": "true"})), 400, 4, "name"),
        case("empty body for a stack", "POST", "/api/v1/blockstacks", "", 400, 4, "name"),
        case(
            "empty name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "", "command": "true"})),
            400,
            4,
            "name",
        ),
        case(
            "blank name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "   ", "command": "true"})),
            400,
            4,
            "name",
        ),
        case(
            "name with a control character",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "a\u{7}b", "command": "true"})),
            400,
            4,
            "control",
        ),
        case(
            "name with a newline",
            "POST",
            "/api/v1/schedules",
            j(json!({"name": "a\nb", "config": {"period": 5}})),
            400,
            4,
            "name",
        ),
        case(
            "job name with NUL",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"name": "a\u{0}b"})),
            400,
            4,
            "name",
        ),
        case("empty job name", "POST", "/api/v1/jobs", with(json!({"name": ""})), 400, 4, "name"),
        case(
            "name of 201 characters",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"name": "n".repeat(201)})),
            400,
            4,
            "200",
        ),
        case(
            "empty command",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"command": "  "})),
            400,
            4,
            "command",
        ),
        case(
            "bad env name",
            "POST",
            "/api/v1/blockstacks",
            j(json!({"name": "e", "command": "true", "env": {"1BAD": "x"}})),
            400,
            4,
            "env",
        ),
        case(
            "relative workdir",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"workdir": "tmp"})),
            400,
            4,
            "workdir",
        ),
        case(
            "bad overlap value",
            "POST",
            "/api/v1/jobs",
            with(json!({"overlap": "sometimes"})),
            400,
            4,
            "overlap",
        ),
        case(
            "bad missed value",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"missed": "never"})),
            400,
            4,
            "missed",
        ),
        case("retries above range", "POST", "/api/v1/jobs", with(json!({"retries": 101})), 400, 4, "retries"),
        case(
            "negative retries",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"retries": -1})),
            400,
            4,
            "retries",
        ),
        case(
            "zero backoff",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"retry_backoff_s": 0})),
            400,
            4,
            "retry_backoff_s",
        ),
        case(
            "zero timeout",
            "PUT",
            format!("/api/v1/jobs/{job}"),
            j(json!({"timeout_s": 0})),
            400,
            4,
            "timeout_s",
        ),
        case("empty job command", "POST", "/api/v1/jobs", with(json!({"command": ""})), 400, 4, "command"),
        case(
            "bad webhook value",
            "PUT",
            format!("/api/v1/blockstacks/{stack}"),
            j(json!({"webhook": "anyone"})),
            400,
            4,
            "webhook",
        ),
        // Schedules (code 26).
        case(
            "bad cron",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"cron": "0 25 * * *"}})),
            400,
            26,
            "hour",
        ),
        case(
            "bad time zone",
            "POST",
            "/api/v1/schedules",
            j(json!({"config": {"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}})),
            400,
            26,
            "Europe/Atlantis",
        ),
        case(
            "period 0",
            "PUT",
            format!("/api/v1/schedules/{sched}"),
            j(json!({"config": {"period": 0}})),
            400,
            26,
            "period",
        ),
        // Paths (code 1 for malformed ids, 6 for ids that do not exist).
        case("non-integer job id", "GET", "/api/v1/jobs/byid/abc", "", 400, 1, "job id"),
        case("float job id", "DELETE", "/api/v1/jobs/1.5", "", 400, 1, "job id"),
        case("non-integer PUT job id", "PUT", "/api/v1/jobs/abc", j(json!({"name": "x"})), 400, 1, "job id"),
        case("non-integer schedule id", "GET", "/api/v1/schedules/byid/1x", "", 400, 1, "schedule id"),
        case("non-integer schedule DELETE", "DELETE", "/api/v1/schedules/one", "", 400, 1, "schedule id"),
        case(
            "non-integer stack id",
            "PUT",
            "/api/v1/blockstacks/%20",
            j(json!({"name": "x"})),
            400,
            1,
            "stack id",
        ),
        case("id beyond i64", "GET", "/api/v1/jobs/byid/99999999999999999999", "", 400, 1, "job id"),
        case("negative job id", "GET", "/api/v1/jobs/byid/-1", "", 404, 6, "job"),
        case("negative PUT job id", "PUT", "/api/v1/jobs/-5", j(json!({"name": "x"})), 404, 6, "job"),
        case("negative schedule id", "DELETE", "/api/v1/schedules/-1", "", 404, 6, "schedule"),
        case("zero stack id", "GET", "/api/v1/blockstacks/byid/0", "", 404, 6, "stack"),
        // Query parameters.
        case("huge page number", "GET", "/api/v1/jobs?page=1000000000000000000000", "", 400, 1, "page"),
        case("page is a word", "GET", "/api/v1/schedules?page=last", "", 400, 1, "page"),
        // Method and endpoint.
        case("no such method", "PATCH", format!("/api/v1/jobs/{job}"), j(json!({"name": "x"})), 405, 4, ""),
        case("no such endpoint", "GET", "/api/v1/jobz", "", 404, 6, "jobz"),
        // Size.
        case("oversized body", "POST", "/api/v1/blockstacks", big, 413, 4, "262144"),
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
            4,
            "application/json",
        )
    });
    cases.push(Case {
        content_type: Some("application/x-www-form-urlencoded"),
        ..case("form body", "PUT", format!("/api/v1/jobs/{job}"), "name=x", 415, 4, "application/json")
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

#[tokio::test(flavor = "multi_thread")]
async fn answers_read_back_as_the_shared_wire_types() {
    // The server's answers parse as `cronstack::api::v1`'s types (the ones the webhook
    // payloads carry), field for field: a renamed or retyped field fails here.
    use cronstack::api::v1::{JobView, MonitorView, RunView};
    let w = world().await;
    let stack = new_stack(&w.alice, "wire").await;
    let sched = new_schedule(&w.alice, json!({"period": 3600})).await;
    let job = w
        .alice
        .create("/api/v1/jobs", json!({"stack_id": stack, "schedule_id": sched, "name": "wire"}))
        .await;
    let view: JobView =
        serde_json::from_str(&w.alice.get(&format!("/api/v1/jobs/byid/{job}")).await.text).unwrap();
    assert_eq!((view.id, view.stack, view.schedule, view.name.as_deref()), (job, stack, sched, Some("wire")));
    let r = w.alice.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({})).await;
    let run: RunView = serde_json::from_str(&r.text).unwrap();
    assert_eq!(run.job, job);
    let again: RunView =
        serde_json::from_str(&w.alice.get(&format!("/api/v1/runs/{}", run.id)).await.text).unwrap();
    assert_eq!(again.id, run.id);
    let monitor =
        w.alice.create("/api/v1/monitors", json!({"name": "wire", "schedule": {"period": 60}})).await;
    let m: MonitorView =
        serde_json::from_str(&w.alice.get(&format!("/api/v1/monitors/byid/{monitor}")).await.text).unwrap();
    assert_eq!((m.id, m.name.as_str()), (monitor, "wire"));
}
