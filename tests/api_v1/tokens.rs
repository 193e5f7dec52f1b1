//! Tokens.

use super::*;

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
        assert_err(r, 403, MISSING_SCOPE);
    }
    assert_eq!(snapshot(&w.alice).await, before);

    // Revoked: the token is dead at once; revoking again finds nothing.
    let r = w.alice.delete(&format!("/api/v1/tokens/{token_id}")).await;
    assert_eq!(assert_ok(&r), json!({"deleted": token_id}));
    assert_err(&ro.get("/api/v1/jobs").await, 401, UNAUTHENTICATED);
    let r = w.alice.delete(&format!("/api/v1/tokens/{token_id}")).await;
    assert_err(&r, 404, NOT_FOUND);
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
    assert_err(&r, 403, MISSING_SCOPE);
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
        let msg = assert_err(&r, 400, BAD_PAYLOAD);
        let named = ["scopes", "expires"].iter().any(|f| msg.contains(f));
        assert!(named, "{body}: message names no field: {msg}");
    }
    assert_eq!(snapshot(&w.alice).await, before);

    // Bob cannot revoke alice's tokens (nor learn they exist).
    let alice_tokens = w.alice.get("/api/v1/tokens").await.json();
    for t in alice_tokens["tokens"].as_array().unwrap() {
        let id = t["id"].as_i64().unwrap();
        assert_err(&w.bob.delete(&format!("/api/v1/tokens/{id}")).await, 404, NOT_FOUND);
    }
    assert_eq!(snapshot(&w.alice).await, before);
    assert_eq!(count(&w.bob, "/api/v1/tokens").await, 1);
    assert_err(&w.alice.delete("/api/v1/tokens/abc").await, 400, BAD_PARAMETER);
}
