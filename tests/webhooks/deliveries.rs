//! Outbound deliveries: signed, retried with backoff, kept across a restart, never held up by a hanging receiver.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::*;

/// What a receiver does with `X-Cronstack-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 with the
/// secret over `"<t>.<body>"`, compared in constant time, `t` not too old.
fn verify_signature(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    if (now - t).abs() > 300 {
        return false;
    }
    sigs.iter().any(|sig| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        hex::decode(sig).is_ok_and(|bytes| mac.verify_slice(&bytes).is_ok())
    })
}

#[tokio::test]
async fn deliveries_are_signed_and_the_receiver_can_verify_them() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &[]).await;
    let receiver = Receiver::start().await;
    let (_, job) = stack_and_job(&api, "signed", "echo signed").await;

    let (generated_id, generated) = subscribe(
        &api,
        json!({"url": receiver.url("/generated"), "events": ["run.started", "run.succeeded"]}),
    )
    .await;
    assert!(generated.starts_with("whsec_") && generated.len() == 70, "generated secret {generated}");
    let own = "my-own-secret-0123456789";
    let (own_id, echoed) =
        subscribe(&api, json!({"url": receiver.url("/own"), "events": ["run.succeeded"], "secret": own}))
            .await;
    assert_eq!(echoed, own);
    // The secret is shown once, never again.
    let shown = api.get(&format!("/api/v1/webhooks/byid/{generated_id}")).await;
    assert_eq!(shown.status, 200);
    assert!(shown.json().get("secret").is_none() && !shown.text.contains(&generated), "{}", shown.text);

    let run = run_to_end(&api, job).await;
    assert_eq!(run["outcome"], "succeeded");
    let got = receiver.wait_delivered(3).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    for r in &got {
        let (secret, other) = match r.path.as_str() {
            "/generated" => (generated.as_str(), own),
            "/own" => (own, generated.as_str()),
            path => panic!("unexpected path {path}"),
        };
        let header = &r.headers["x-cronstack-signature"];
        assert!(header.starts_with("t=") && header.contains(",v1="), "{header}");
        assert!(
            verify_signature(secret, header, &r.raw),
            "signature does not verify: {header} over {}",
            r.raw
        );
        // Another secret, or a body changed on the way, does not verify.
        assert!(!verify_signature(other, header, &r.raw));
        assert!(!verify_signature(secret, header, &r.raw.replacen('}', " }", 1)));
        assert_eq!(r.headers["content-type"], "application/json");
        let body = r.json();
        assert_eq!(r.headers["x-cronstack-event"], body["event"].as_str().unwrap());
        assert!(r.headers["x-cronstack-delivery"].parse::<i64>().is_ok());
        assert_eq!(body["job"]["id"], job);
        assert_eq!(body["run"]["id"], run["id"]);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'), "{body}");
    }
    let mut events: Vec<String> = got.iter().map(Received::body_event).collect();
    events.sort();
    assert_eq!(events, ["run.started", "run.succeeded", "run.succeeded"]);
    assert_eq!(got.iter().filter(|r| r.path == "/own").count(), 1);
    let succeeded = got.iter().find(|r| r.body_event() == "run.succeeded").unwrap().json();
    assert_eq!(succeeded["run"]["outcome"], "succeeded");
    assert_eq!(succeeded["run"]["exit_code"], 0);
    assert_eq!(succeeded["run"]["trigger"], "run_now");
    let started = got.iter().find(|r| r.body_event() == "run.started").unwrap().json();
    assert_eq!(started["run"]["outcome"], "running");
    assert!(started["run"]["started_at"].is_string());

    // The delivery log: paged like the other v1 lists.
    let page = eventually(WAIT, || async {
        let page = deliveries(&api, generated_id).await;
        page["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "delivered").then_some(page)
    })
    .await
    .expect("deliveries recorded as delivered");
    assert_eq!(page["count"], 2);
    assert_eq!(page["pagesize"], 10);
    assert_eq!(page["page"], 1);
    for d in page["deliveries"].as_array().unwrap() {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status_code"], 200, "{d}");
        assert!(d["last_error"].is_null() && d["next_attempt"].is_null(), "{d}");
        assert!(d["delivered_at"].is_string(), "{d}");
        assert_eq!(d["webhook"], generated_id);
    }
    assert_eq!(deliveries(&api, own_id).await["count"], 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff_then_marked_failed_when_attempts_run_out() {
    let db = TestDb::new();
    let (server, api) = start(&db, &["--webhook-max-attempts", "3"]).await;
    let flaky = Receiver::start().await;
    let broken = Receiver::start().await;
    flaky.answer_next(&[500]);
    broken.answer_next(&[500, 503, 500, 500, 500]);
    let (_, job) = stack_and_job(&api, "retried", "true").await;
    let (flaky_id, flaky_secret) =
        subscribe(&api, json!({"url": flaky.url("/"), "events": ["run.succeeded"]})).await;
    let (broken_id, _) = subscribe(&api, json!({"url": broken.url("/"), "events": ["run.succeeded"]})).await;

    run_to_end(&api, job).await;

    // 500, then a retry that succeeds: the same delivery, signed again.
    let got = flaky.wait_delivered(1).await;
    let all = flaky.all();
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].status, 500);
    assert_eq!(all[0].headers["x-cronstack-delivery"], all[1].headers["x-cronstack-delivery"]);
    assert_eq!(all[0].raw, all[1].raw, "the same body is retried");
    assert!(verify_signature(&flaky_secret, &got[0].headers["x-cronstack-signature"], &got[0].raw));
    let d = eventually(WAIT, || async {
        let page = deliveries(&api, flaky_id).await;
        let d = page["deliveries"][0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await
    .expect("delivered after a retry");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["last_status_code"], 200, "{d}");

    // Always failing: three attempts, then failed.
    let d = eventually(WAIT, || async {
        let page = deliveries(&api, broken_id).await;
        let d = page["deliveries"][0].clone();
        (d["status"] == "failed").then_some(d)
    })
    .await
    .unwrap_or_else(|| panic!("marked failed; receiver saw {:#?}", broken.all()));
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(d["last_status_code"], 500, "{d}");
    assert!(d["last_error"].as_str().unwrap().contains("500"), "{d}");
    assert!(d["delivered_at"].is_null() && d["next_attempt"].is_null(), "{d}");
    assert_eq!(broken.all().len(), 3, "no attempt after the last: {:#?}", broken.all());

    let metrics = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    for result in ["delivered", "retrying", "failed"] {
        assert!(
            metrics.lines().any(|l| l.starts_with("cronstack_webhook_deliveries_total")
                && l.contains(&format!("result=\"{result}\""))),
            "no {result} counter in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_receiver_down_across_a_restart_still_gets_the_event_when_it_comes_back() {
    let db = TestDb::new();
    let flags = ["--webhook-timeout-s", "2"];
    let (mut server, api) = start(&db, &flags).await;
    // Nothing listens on this port yet.
    let port = free_port();
    let (_, job) = stack_and_job(&api, "restarted", "echo persisted").await;
    let (webhook, secret) = subscribe(
        &api,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["run.succeeded"], "job_id": job}),
    )
    .await;
    let run = run_to_end(&api, job).await;

    // The delivery is in the database and failing.
    let d = eventually(WAIT, || async {
        let d = deliveries(&api, webhook).await["deliveries"][0].clone();
        (d["attempts"].as_i64().unwrap_or(0) >= 1 && d["status"] == "pending").then_some(d)
    })
    .await
    .expect("a failing delivery is recorded");
    assert!(d["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{d}");
    assert!(d["last_status_code"].is_null(), "{d}");
    assert!(d["next_attempt"].is_string(), "{d}");

    // cronstack crashes; the receiver comes up while it is down; cronstack comes back.
    server.kill9();
    let receiver = Receiver::start_on(port, Behaviour::Answer).await;
    let server = Server::start_on(&db, &["--webhook-retry-base-ms", "200", "--webhook-timeout-s", "2"]);
    let api = Api { base: server.base.clone(), ..api };

    let got = receiver.wait_delivered(1).await;
    let body = got[0].json();
    assert_eq!(body["event"], "run.succeeded");
    assert_eq!(body["run"]["id"], run["id"]);
    assert!(verify_signature(&secret, &got[0].headers["x-cronstack-signature"], &got[0].raw));
    let d = eventually(WAIT, || async {
        let d = deliveries(&api, webhook).await["deliveries"][0].clone();
        (d["status"] == "delivered").then_some(d)
    })
    .await
    .expect("recorded as delivered");
    assert!(d["attempts"].as_i64().unwrap() >= 2, "{d}");
    assert_eq!(receiver.delivered().len(), 1);
}

#[tokio::test]
async fn a_hanging_receiver_delays_neither_other_receivers_nor_runs() {
    let db = TestDb::new();
    let (_server, api) = start(&db, &["--webhook-timeout-s", "60", "--webhook-concurrency", "8"]).await;
    let hanging = Receiver::start_on(0, Behaviour::Hang).await;
    let fast = Receiver::start().await;
    let (_, job) = stack_and_job(&api, "busy", "true").await;
    subscribe(&api, json!({"url": hanging.url("/"), "events": ["run.succeeded"]})).await;
    subscribe(&api, json!({"url": fast.url("/"), "events": ["run.succeeded"]})).await;

    for _ in 0..8 {
        assert_eq!(run_to_end(&api, job).await["outcome"], "succeeded");
    }
    // All eight reach the fast receiver while the hanging one still holds its requests open
    // (each would take a minute): it holds at most its share of the node's delivery slots.
    let got = fast.wait_delivered(8).await;
    assert_eq!(got.len(), 8);
    assert!(hanging.delivered().is_empty());
    let held = hanging.hanging();
    assert!((1..=4).contains(&held), "the hanging receiver holds {held} requests");
}
