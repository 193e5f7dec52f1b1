//! Health and authentication.

use super::*;

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
        assert_err(&r, 401, UNAUTHENTICATED);
    }
    // Kragle's GET /blockstacks answers without credentials: the public stacks (none here).
    assert_eq!(assert_ok(&anon.get("/api/v1/blockstacks").await)["count"], 0);
    let r = anon.post("/api/v1/blockstacks", json!({"name": "x", "command": "true"})).await;
    assert_err(&r, 401, UNAUTHENTICATED);

    // A token of the right shape that was never issued, and one of the wrong shape.
    let forged = Api::new(&w.server, Some(&format!("cst_{}", "0".repeat(64))));
    assert_err(&forged.get("/api/v1/jobs").await, 401, UNAUTHENTICATED);
    let junk = Api::new(&w.server, Some("not-a-token"));
    assert_err(&junk.get("/api/v1/jobs").await, 401, UNAUTHENTICATED);
    // A non-Bearer scheme is no credential at all.
    let r = anon
        .send_with_headers(
            "GET",
            "/api/v1/jobs",
            None,
            vec![],
            &[("authorization", "Basic YWxpY2U6czNjcmV0")],
        )
        .await;
    assert_err(&r, 401, UNAUTHENTICATED);

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
    assert_err(&r, 401, UNAUTHENTICATED);

    // The cookie stands in for a token: read and write as alice.
    let with_cookie = [("cookie", cookie.as_str())];
    let r = anon.send_with_headers("GET", "/api/v1/whoami", None, vec![], &with_cookie).await;
    assert_eq!(assert_ok(&r)["user_id"], json!(w.alice_id));
    let body = json!({"name": "via-cookie", "command": "true"}).to_string().into_bytes();
    let r = anon
        .send_with_headers("POST", "/api/v1/blockstacks", Some("application/json"), body, &with_cookie)
        .await;
    let id = assert_ok(&r)["id"].as_i64().unwrap();
    let r = w.alice.get(&format!("/api/v1/blockstacks/byid/{id}")).await;
    assert_eq!(assert_ok(&r)["owner"], json!(w.alice_id));
    let r = anon.send_with_headers("GET", "/api/v1/blockstacks", None, vec![], &with_cookie).await;
    assert_eq!(assert_ok(&r)["count"], 1);
    // Bob sees nothing of it.
    assert_eq!(count(&w.bob, "/api/v1/blockstacks").await, 0);

    // A tampered cookie is no session.
    let mut tampered = cookie.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r =
        anon.send_with_headers("GET", "/api/v1/jobs", None, vec![], &[("cookie", tampered.as_str())]).await;
    assert_err(&r, 401, UNAUTHENTICATED);
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
        let msg = assert_err(&r, 401, UNAUTHENTICATED);
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
    assert_err(&r, 401, UNAUTHENTICATED);

    // Shape errors: no login name, missing password, unknown field, wrong type.
    let r = anon.post("/api/v1/authenticate", json!({"password": PASSWORD_A})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("username"));
    let r = anon.post("/api/v1/authenticate", json!({"username": "alice"})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("password"));
    let r = anon
        .post("/api/v1/authenticate", json!({"username": "alice", "password": PASSWORD_A, "remember": true}))
        .await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("remember"));
    let r = anon.post("/api/v1/authenticate", json!({"username": 7, "password": "x"})).await;
    assert!(assert_err(&r, 400, BAD_PAYLOAD).contains("username"));
    let r = anon
        .send_raw("POST", "/api/v1/authenticate", Some("application/json"), b"{\"username\": ".to_vec())
        .await;
    assert_err(&r, 400, BAD_JSON);
    healthy(&w.server).await;
}
