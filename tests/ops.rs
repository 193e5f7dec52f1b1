//! Operations: the OpenAPI document lists every route the router serves (checked against the
//! source's route declarations and by calling each documented operation), the API reference
//! and dashboard pages are served, and `/metrics` parses and counts a few real runs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The HTTP sources (without their unit tests, which build routers of their own), each with
/// the prefix its dialect's router is nested at.
fn http_sources() -> Vec<(&'static str, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![root.clone()];
    let mut sources = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            let prefix = if rel.starts_with("kragle") {
                "/api/v1"
            } else if rel.starts_with("cloud66") {
                "/api/3"
            } else {
                ""
            };
            let text = std::fs::read_to_string(&p).unwrap();
            sources.push((prefix, text.split("#[cfg(test)]").next().unwrap().to_string()));
        }
    }
    sources
}

/// `(METHOD, /path)` of every handler the sources annotate with `#[utoipa::path(…)]`: what
/// `routes!` registers (path and methods both come from the annotation).
fn annotated_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (prefix, text) in http_sources() {
        for (at, _) in text.match_indices("#[utoipa::path(") {
            let rest = &text[at + "#[utoipa::path(".len()..];
            let rest = &rest[..rest.find(")]\n").unwrap()];
            let path = rest.split_once("path = \"").unwrap().1.split('"').next().unwrap();
            let methods = match rest.strip_prefix("method(") {
                Some(list) => list.split(')').next().unwrap().split(", ").map(str::to_string).collect(),
                None => vec![rest.split(',').next().unwrap().to_string()],
            };
            for method in methods {
                routes.insert((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
    }
    routes
}

/// The paths the sources serve with a plain `.route("…")` (not through `routes!`, so not
/// documented), or a nested service.
fn undocumented_routes() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (prefix, text) in http_sources() {
        for call in [".route(\"", ".route_service(\"", ".nest_service(\""] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                paths.insert(format!("{prefix}{}", &rest[..rest.find('"').unwrap()]));
            }
        }
    }
    paths
}

fn documented(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.insert((method.to_uppercase(), path.clone()), op.clone());
        }
    }
    ops
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let db = TestDb::new();
    let token = add_user(&db, "olga", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));
    let r = Api::new(&server, None).get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = documented(&doc);
    // The Cloud 66 error ids come from the table the dialect renders with (408 included).
    let ids = &doc["components"]["schemas"]["Cloud66Error"]["properties"]["error"]["enum"];
    for id in ["request_timeout", "throttled", "insufficient_storage", "internal_server_error"] {
        assert!(ids.as_array().unwrap().iter().any(|v| v == id), "{id} missing from {ids}");
    }

    // Routes are served through `routes!` (documented by construction), except the pages
    // that are not API (listed in src/http/openapi.rs's module comment)…
    let outside = undocumented_routes();
    let pages: BTreeSet<String> = ["/", "/ui", "/ui/", "/ui/{*file}", "/docs"].map(String::from).into();
    assert_eq!(outside, pages, "served outside the OpenAPI document: register API routes with routes!");
    for page in &pages {
        assert!(doc["paths"].get(page.replace('*', "")).is_none(), "{page} is not API");
    }
    // …every annotated handler is in the document…
    let declared = annotated_routes();
    assert!(declared.len() > 60, "the source scan found only {declared:?}");
    let missing: Vec<_> = declared.iter().filter(|r| !ops.contains_key(*r)).collect();
    assert!(
        missing.is_empty(),
        "annotated but not in /openapi.json (not registered with routes!?): {missing:?}"
    );
    let unknown: Vec<_> = ops.keys().filter(|r| !declared.contains(*r)).collect();
    assert!(unknown.is_empty(), "in /openapi.json but not annotated in src/http: {unknown:?}");
    // …with a summary, a tag, and its dialect's error body.
    for ((method, path), op) in &ops {
        assert!(!op["summary"].as_str().unwrap_or("").is_empty(), "{method} {path}: no summary");
        assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
        let error = &op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"];
        let expected = if path.starts_with("/api/3") {
            json!("#/components/schemas/Cloud66Error")
        } else if path.starts_with("/api/v1") || path.starts_with("/ping/") {
            json!("#/components/schemas/KragleError")
        } else {
            Value::Null
        };
        assert_eq!(*error, expected, "{method} {path}: error body");
        for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let params = op["parameters"].as_array().unwrap();
            assert!(params.iter().any(|p| p["name"] == name && p["in"] == "path"), "{method} {path}: {name}");
        }
    }
    // Both dialects and the operations are there.
    for (method, path) in [
        ("GET", "/api/v1/jobs"),
        ("POST", "/api/v1/jobs/byid/{id}/run"),
        ("GET", "/api/v1/runs/{id}/log"),
        ("PUT", "/api/v1/blockstacks/{id}"),
        ("POST", "/api/3/stacks/{stack}/jobs/{job}/run_now"),
        ("GET", "/api/3/stacks/{stack}/actions/{id}"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/ping/{uuid}/{kind}"),
        ("GET", "/api/v1/overview"),
        ("PUT", "/api/v1/password"),
        ("POST", "/api/v1/channels"),
        ("DELETE", "/api/v1/tokens/{id}"),
    ] {
        assert!(ops.contains_key(&(method.to_string(), path.to_string())), "{method} {path}");
    }
    // References resolve.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for (at, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[at + 21..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        assert!(schemas.contains_key(&name), "dangling $ref {name}");
    }

    // …and every documented operation is really served: calling it never reaches the
    // router's "no such endpoint" or a 405. Path parameters name nothing that exists, so
    // nothing changes.
    for ((method, path), op) in &ops {
        let concrete = path
            .replace("{id}", "987654")
            .replace("{name}", "nothing-here")
            .replace("{stack}", "0123456789abcdef0123456789abcdef")
            .replace("{job}", "0123456789abcdef0123456789abcdef")
            .replace("{file}", "app.js");
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let r = api.send(method, &concrete, body).await;
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text);
        assert!(
            !(r.status == 404 && r.text.contains("no such endpoint")),
            "{method} {path} is documented but not served: {}",
            r.text
        );
        // `{}` among the schemes: credentials are optional (public stacks).
        let secured = op["security"].as_array().is_some_and(|s| {
            !s.is_empty() && !s.iter().any(|scheme| scheme.as_object().is_some_and(|o| o.is_empty()))
        });
        if secured {
            let anonymous = Api::new(&server, None).send(method, &concrete, None).await;
            assert_eq!(anonymous.status, 401, "{method} {path} needs credentials: {}", anonymous.text);
        }
    }
}

/// The served document passes `openapi-spec-validator` (PyPI): the program named by
/// `CRONSTACK_OPENAPI_VALIDATOR` (`.ci/run` installs it in a venv), else one on the PATH.
/// Without either the test is skipped, saying so, except in CI (`CI=true`), where it fails.
#[tokio::test]
async fn openapi_document_passes_a_validator() {
    let validator =
        std::env::var("CRONSTACK_OPENAPI_VALIDATOR").ok().filter(|v| !v.is_empty()).or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("openapi-spec-validator"))
                    .find(|p| p.is_file())
                    .map(|p| p.to_string_lossy().into_owned())
            })
        });
    let Some(validator) = validator else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs openapi-spec-validator: set CRONSTACK_OPENAPI_VALIDATOR (see .ci/run)"
        );
        eprintln!(
            "skipped: no openapi-spec-validator (pip install openapi-spec-validator in a venv, then \
             CRONSTACK_OPENAPI_VALIDATOR=/path/to/venv/bin/openapi-spec-validator)"
        );
        return;
    };
    let db = TestDb::new();
    let server = Server::start_on(&db, &[]);
    let r = Api::new(&server, None).get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &r.text).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{validator}: {e}"));
    assert!(
        out.status.success(),
        "{validator} refused /openapi.json:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn reference_and_dashboard_pages_are_served_from_the_binary() {
    let db = TestDb::new();
    let server = Server::start_on(&db, &[]);
    let anon = Api::new(&server, None);
    let docs = anon.get("/docs").await;
    assert_eq!(docs.status, 200);
    assert!(docs.header("content-type").unwrap().starts_with("text/html"));
    assert!(docs.text.contains("/ui/docs.js"), "{}", docs.text);
    for (path, ty, needle) in [
        ("/ui/", "text/html", "app.js"),
        ("/ui/app.js", "text/javascript", "/api/v1"),
        ("/ui/style.css", "text/css", "--accent"),
        ("/ui/docs.js", "text/javascript", "/openapi.json"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
        ("/ui/overview.js", "text/javascript", "/overview?"),
        ("/ui/stacks.js", "text/javascript", "/blockstacks"),
        ("/ui/jobs.js", "text/javascript", "/kill"),
        ("/ui/account.js", "text/javascript", "/tokens"),
    ] {
        let r = anon.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with(ty), "{path}");
        assert!(r.header("content-security-policy").unwrap().contains("default-src 'self'"), "{path}");
        assert!(r.text.contains(needle), "{path}");
    }
    // An unknown path, at any depth: a page saying so, with a way back to the dashboard.
    for path in ["/ui/nope.js", "/ui/jobs/12", "/ui/a/b/c"] {
        let r = anon.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"), "{path}");
        assert!(r.text.contains("Not found") && r.text.contains("href=\"/ui/\""), "{path}: {}", r.text);
    }
    let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/", "/ui"] {
        let r = redirect.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/");
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format strictly: every line is a comment or a sample.
fn parse_prometheus(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
            types.insert(name.to_string(), ty.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                // Label values here never contain `",`.
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line}"));
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line}");
        samples.push(Sample { name, labels, value });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test]
async fn metrics_after_a_few_runs() {
    let db = TestDb::new();
    let token = add_user(&db, "mira", None);
    let server = Server::start_on(&db, &[]);
    let api = Api::new(&server, Some(&token));

    // Before anything ran, the families are already there, at zero.
    let text = Api::new(&server, None).get("/metrics").await.text;
    let (samples, types) = parse_prometheus(&text);
    assert_eq!(value(&samples, "cronstack_runs_total", &[("outcome", "succeeded")]), Some(0.0), "{text}");
    assert_eq!(value(&samples, "cronstack_webhook_deliveries_total", &[("result", "delivered")]), Some(0.0));
    assert_eq!(value(&samples, "cronstack_runs_running", &[]), Some(0.0));
    assert_eq!(value(&samples, "cronstack_runs_waiting", &[]), Some(0.0));
    assert_eq!(types.get("cronstack_run_lateness_seconds").map(String::as_str), Some("histogram"));

    let stack =
        api.create("/api/v1/blockstacks", json!({"name": "s", "command": "sleep 0.2; exit ${1:-0}"})).await;
    let schedule = api.create("/api/v1/schedules", json!({"config": {"cron": "0 3 * * *"}})).await;
    let job = api
        .create(
            "/api/v1/jobs",
            json!({"stack_id": stack, "schedule_id": schedule, "name": "m", "enabled": true}),
        )
        .await;
    for args in [json!([]), json!([]), json!(["4"])] {
        let r = api.post(&format!("/api/v1/jobs/byid/{job}/run"), json!({ "args": args })).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let done = eventually(Duration::from_secs(20), || {
        let api = api.clone();
        async move {
            let runs = api.get(&format!("/api/v1/jobs/byid/{job}/runs")).await.json();
            let runs = runs["runs"].as_array().unwrap().clone();
            runs.iter()
                .all(|r| !["queued", "running"].contains(&r["outcome"].as_str().unwrap()))
                .then_some(runs)
        }
    })
    .await
    .expect("the runs finish");
    assert_eq!(done.len(), 3);
    // Made-up methods count under one label, whatever they are.
    for method in ["FROB", "XYZZY"] {
        let r = api.http.request(method.parse().unwrap(), server.url("/api/v1/jobs")).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    // The run counters move when the run's end is recorded; give the scrape a moment.
    let mut scrape = String::new();
    for _ in 0..50 {
        scrape = Api::new(&server, None).get("/metrics").await.text;
        let (s, _) = parse_prometheus(&scrape);
        if value(&s, "cronstack_run_duration_seconds_count", &[]) == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (samples, types) = parse_prometheus(&scrape);
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{scrape}"))
    };

    // Runs by outcome.
    assert_eq!(v("cronstack_runs_total", &[("outcome", "succeeded")]), 2.0);
    assert_eq!(v("cronstack_runs_total", &[("outcome", "failed")]), 1.0);
    assert_eq!(types["cronstack_runs_total"], "counter");
    // Duration and lateness histograms: counts, sums, monotonic buckets ending at +Inf.
    for family in ["cronstack_run_duration_seconds", "cronstack_run_lateness_seconds"] {
        assert_eq!(types[family], "histogram");
        let count = v(&format!("{family}_count"), &[]);
        assert_eq!(count, 3.0, "{family}");
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
            .map(|s| (s.labels["le"].parse::<f64>().unwrap_or(f64::INFINITY), s.value))
            .collect();
        buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        assert!(buckets.len() > 5, "{family} buckets: {buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{family} buckets not cumulative: {buckets:?}");
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    }
    let duration_sum = v("cronstack_run_duration_seconds_sum", &[]);
    assert!((0.6..10.0).contains(&duration_sum), "three runs of 0.2 s took {duration_sum} s in all");
    assert!(v("cronstack_run_lateness_seconds_sum", &[]) < 3.0);
    // Running runs, queue depth, scheduled jobs.
    assert_eq!(v("cronstack_runs_running", &[]), 0.0);
    assert_eq!(v("cronstack_runs_waiting", &[]), 0.0);
    assert_eq!(v("cronstack_jobs_scheduled", &[]), 1.0);
    assert_eq!(types["cronstack_runs_running"], "gauge");
    // Webhook deliveries by result (none configured: zeros, but the family is there).
    assert_eq!(types["cronstack_webhook_deliveries_total"], "counter");
    assert!(v("cronstack_webhook_deliveries_total", &[("result", "failed")]) >= 0.0);
    // HTTP requests by route and status.
    let route = "/api/v1/jobs/byid/{id}/run";
    assert_eq!(
        v("cronstack_http_requests_total", &[("route", route), ("method", "POST"), ("status", "200")]),
        3.0
    );
    assert!(v("cronstack_http_requests_total", &[("route", "/metrics"), ("status", "200")]) >= 1.0);
    let made_up: f64 = samples
        .iter()
        .filter(|s| s.name == "cronstack_http_requests_total" && s.labels["method"] == "other")
        .map(|s| s.value)
        .sum();
    assert_eq!(made_up, 2.0, "made-up methods count as `other`:\n{scrape}");
    assert!(!scrape.contains("FROB") && !scrape.contains("XYZZY"));
    assert!(v("cronstack_http_request_duration_seconds_count", &[("route", route)]) >= 3.0);
    // Database pool figures.
    let pools: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "cronstack_db_pool_max_connections")
        .map(|s| s.labels["pool"].as_str())
        .collect();
    assert!(!pools.is_empty(), "{scrape}");
    for pool in pools {
        let max = v("cronstack_db_pool_max_connections", &[("pool", pool)]);
        let idle = v("cronstack_db_pool_connections", &[("pool", pool), ("state", "idle")]);
        let busy = v("cronstack_db_pool_connections", &[("pool", pool), ("state", "in_use")]);
        assert!(
            max >= 1.0 && idle >= 0.0 && busy >= 0.0 && idle + busy <= max,
            "{pool}: {idle} + {busy} of {max}"
        );
    }
    // Every family has its help text.
    for family in types.keys().filter(|k| k.starts_with("cronstack_")) {
        assert!(scrape.contains(&format!("# HELP {family} ")), "no HELP for {family}");
    }
}
