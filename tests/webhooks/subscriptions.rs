//! The `/api/v1/webhooks` subscriptions: CRUD and validation.

use super::*;

#[tokio::test]
async fn webhook_subscriptions_crud_and_validation() {
    let db = TestDb::new();
    let (server, api) = start(&db, &[]).await;
    let (stack, job) = stack_and_job(&api, "crud", "true").await;
    let bob = Api::new(&server, Some(&add_user(&db, "bob", None)));
    let (_, bobs_job) = stack_and_job(&bob, "bobs", "true").await;

    for (body, status, code, needle) in [
        (json!({"events": ["run.failed"]}), 400, BAD_PAYLOAD, "url"),
        (json!({"url": "http://127.0.0.1:1/"}), 400, BAD_PAYLOAD, "events"),
        (json!({"url": "ftp://example.com/", "events": ["run.failed"]}), 400, BAD_PAYLOAD, "url"),
        (json!({"url": "not a url", "events": ["run.failed"]}), 400, BAD_PAYLOAD, "url"),
        (json!({"url": "http://127.0.0.1:1/", "events": []}), 400, BAD_PAYLOAD, "events"),
        (json!({"url": "http://127.0.0.1:1/", "events": ["run.exploded"]}), 400, BAD_PAYLOAD, "events"),
        (
            json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "secret": "short"}),
            400,
            BAD_PAYLOAD,
            "secret",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "color": "red"}),
            400,
            BAD_PAYLOAD,
            "color",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "job_id": bobs_job}),
            404,
            NO_SUCH_JOB,
            "job",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "events": ["run.failed"], "stack_id": 999}),
            404,
            NO_SUCH_STACK,
            "stack",
        ),
    ] {
        let r = api.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.json()["code"], code, "{body}: {}", r.text);
        assert!(r.json()["msg"].as_str().unwrap().contains(needle), "{body}: {}", r.text);
    }

    let (id, _) = subscribe(
        &api,
        json!({"url": "https://example.com/hook", "events": ["run.failed", "job.fail", "run.failed"], "stack_id": stack}),
    )
    .await;
    let w = api.get(&format!("/api/v1/webhooks/byid/{id}")).await.json();
    assert_eq!(w["url"], "https://example.com/hook");
    assert_eq!(w["events"], json!(["job.fail", "run.failed"]));
    assert_eq!(w["stack_id"], stack);
    assert!(w["job_id"].is_null());

    let r = api
        .put(
            &format!("/api/v1/webhooks/{id}"),
            json!({"events": ["run.started"], "stack_id": null, "job_id": job}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let w = r.json();
    assert_eq!(w["events"], json!(["run.started"]));
    assert!(w["stack_id"].is_null());
    assert_eq!(w["job_id"], job);
    assert_eq!(w["url"], "https://example.com/hook", "PUT is partial");

    let list = api.get("/api/v1/webhooks").await.json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["pagesize"], 10);
    assert_eq!(list["webhooks"][0]["id"], id);
    // Someone else's subscription does not exist for them.
    assert_eq!(bob.get(&format!("/api/v1/webhooks/byid/{id}")).await.status, 404);
    assert_eq!(bob.delete(&format!("/api/v1/webhooks/{id}")).await.status, 404);
    assert_eq!(bob.get("/api/v1/webhooks").await.json()["count"], 0);
    // A read-only token reads but does not change.
    let r = api.post("/api/v1/tokens", json!({"scopes": ["public"]})).await;
    let public = Api::new(&server, r.json()["token"].as_str());
    assert_eq!(public.get("/api/v1/webhooks").await.status, 200);
    assert_eq!(public.delete(&format!("/api/v1/webhooks/{id}")).await.status, 403);

    assert_eq!(api.delete(&format!("/api/v1/webhooks/{id}")).await.json(), json!({"deleted": id}));
    assert_eq!(api.get(&format!("/api/v1/webhooks/byid/{id}")).await.status, 404);
    assert_eq!(api.get(&format!("/api/v1/webhooks/byid/{id}/deliveries")).await.status, 404);
}
