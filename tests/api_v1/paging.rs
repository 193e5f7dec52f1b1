//! Pagination.

use super::*;

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
            let msg = assert_err(&r, 400, BAD_PARAMETER);
            assert!(msg.contains("page"), "{path}?page={bad}: {msg}");
        }
    }
    assert_eq!(count(&w.alice, "/api/v1/blockstacks").await, 1);
    healthy(&w.server).await;
}
