//! Load for `bench/soak`.
//!
//! `cronstack-loadgen setup BASE TOKEN JOBS PERIOD_S PLAN.json`
//!   creates JOBS enabled jobs spread over PERIOD_S seconds (job i fires at second i % PERIOD_S
//!   of every PERIOD_S), plus 20 never-firing jobs for the API's write traffic, and writes the
//!   ids the load needs to PLAN.json.
//!
//! `cronstack-loadgen run BASE TOKEN PLAN.json RATE SECONDS`
//!   sends RATE requests per second for SECONDS, open loop (a slow answer does not slow the
//!   sending down), cycling through a mix of both dialects' reads and writes. Latency is
//!   measured from each request's intended send time, so a stalled server shows up in the
//!   tail instead of being hidden by coordinated omission. Prints a progress line every 10 s
//!   and, last, one JSON line with the totals.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("setup") if args.len() == 7 => {
            setup(&args[2], &args[3], args[4].parse()?, args[5].parse()?, &args[6]).await
        }
        Some("run") if args.len() == 7 => {
            run(&args[2], &args[3], &args[4], args[5].parse()?, args[6].parse()?).await
        }
        _ => {
            eprintln!("usage: cronstack-loadgen setup BASE TOKEN JOBS PERIOD_S PLAN.json");
            eprintln!("       cronstack-loadgen run BASE TOKEN PLAN.json RATE SECONDS");
            std::process::exit(2);
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(base: &str, token: &str) -> Client {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Client { http, base: base.trim_end_matches('/').to_string(), token: token.to_string() }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), Error> {
        let mut req =
            self.http.request(method.parse()?, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let (status, v) = self.send(method, path, body.as_ref()).await?;
        if status != 200 {
            return Err(format!("{method} {path}: {status} {v}").into());
        }
        Ok(v)
    }
}

async fn setup(base: &str, token: &str, jobs: usize, period: u32, plan_path: &str) -> Result<(), Error> {
    let c = Client::new(base, token);
    let started = Instant::now();
    let stack = c.ok("POST", "/api/v1/blockstacks", Some(json!({"name": "soak", "command": "true"}))).await?
        ["id"]
        .as_i64()
        .unwrap();
    let api_stack = c
        .ok("POST", "/api/v1/blockstacks", Some(json!({"name": "soak-api", "command": "true"})))
        .await?["id"]
        .as_i64()
        .unwrap();
    let uid = |v: Value| v["uid"].as_str().unwrap().to_string();
    let stack_uid = uid(c.ok("GET", &format!("/api/v1/blockstacks/byid/{stack}"), None).await?);
    let api_stack_uid = uid(c.ok("GET", &format!("/api/v1/blockstacks/byid/{api_stack}"), None).await?);
    let mut schedules = Vec::new();
    for offset in 0..period {
        let config = json!({"cron": format!("{offset}/{period} * * * * *"), "timezone": "UTC"});
        let id =
            c.ok("POST", "/api/v1/schedules", Some(json!({"config": config}))).await?["id"].as_i64().unwrap();
        schedules.push(id);
    }
    // Firing jobs are enabled last, all at once, so the first slots do not race the setup.
    let mut fire_jobs = Vec::new();
    for i in 0..jobs {
        let body = json!({"stack_id": stack, "schedule_id": schedules[i % schedules.len()], "name": format!("soak-{i}")});
        fire_jobs.push(c.ok("POST", "/api/v1/jobs", Some(body)).await?["id"].as_i64().unwrap());
    }
    let far = c
        .ok("POST", "/api/v1/schedules", Some(json!({"config": {"timestamp": 4_102_444_800i64}})))
        .await?["id"]
        .as_i64()
        .unwrap();
    let mut api_jobs = Vec::new();
    for i in 0..20 {
        let body =
            json!({"stack_id": api_stack, "schedule_id": far, "name": format!("api-{i}"), "enabled": true});
        let id = c.ok("POST", "/api/v1/jobs", Some(body)).await?["id"].as_i64().unwrap();
        let job_uid = uid(c.ok("GET", &format!("/api/v1/jobs/byid/{id}"), None).await?);
        api_jobs.push(json!({"id": id, "uid": job_uid}));
    }
    let mut sample = Vec::new();
    for &id in fire_jobs.iter().step_by((jobs / 50).max(1)) {
        let job_uid = uid(c.ok("GET", &format!("/api/v1/jobs/byid/{id}"), None).await?);
        sample.push(json!({"id": id, "uid": job_uid}));
    }
    for &id in &fire_jobs {
        c.ok("PUT", &format!("/api/v1/jobs/{id}"), Some(json!({"enabled": true}))).await?;
    }
    let plan = json!({
        "stack_uid": stack_uid, "api_stack_uid": api_stack_uid, "jobs": jobs, "period_s": period,
        "fire_sample": sample, "api_jobs": api_jobs,
    });
    std::fs::write(plan_path, serde_json::to_vec_pretty(&plan)?)?;
    eprintln!(
        "setup: {jobs} firing jobs every {period} s, 20 API jobs, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The i-th request of the mix: (method, path, body, dialect).
fn request(plan: &Value, i: usize) -> (&'static str, String, Option<Value>) {
    let sample = plan["fire_sample"].as_array().unwrap();
    let api_jobs = plan["api_jobs"].as_array().unwrap();
    let (su, au) = (plan["stack_uid"].as_str().unwrap(), plan["api_stack_uid"].as_str().unwrap());
    let pages = plan["jobs"].as_u64().unwrap() as usize;
    let f = &sample[(i / 10) % sample.len()];
    let a = &api_jobs[(i / 10) % api_jobs.len()];
    match i % 10 {
        0 => ("GET", format!("/api/v1/jobs?page={}", 1 + (i / 10) % (pages / 10 + 1)), None),
        1 => ("GET", format!("/api/v1/jobs/byid/{}", f["id"]), None),
        2 => ("GET", format!("/api/v1/jobs/byid/{}/runs", f["id"]), None),
        3 => ("GET", format!("/api/3/stacks/{su}/jobs.json?page={}", 1 + (i / 10) % (pages / 30 + 1)), None),
        4 => ("GET", format!("/api/3/stacks/{su}/jobs/{}", f["uid"].as_str().unwrap()), None),
        5 => {
            let verb = if (i / 10) % 2 == 0 { "pause" } else { "unpause" };
            (
                "POST",
                format!("/api/3/stacks/{au}/jobs/{}/{verb}", a["uid"].as_str().unwrap()),
                Some(json!({})),
            )
        }
        6 => ("PUT", format!("/api/v1/jobs/{}", a["id"]), Some(json!({"retries": (i / 10) % 5}))),
        7 => ("GET", format!("/api/3/stacks/{au}/actions"), None),
        8 => ("GET", "/api/v1/schedules".to_string(), None),
        _ => ("GET", "/api/3/stacks.json".to_string(), None),
    }
}

#[derive(Default)]
struct Stats {
    /// Microseconds from the intended send time to the full answer.
    latencies: Vec<u32>,
    status: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_error: Option<String>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn run(base: &str, token: &str, plan_path: &str, rate: f64, seconds: f64) -> Result<(), Error> {
    let plan: Arc<Value> = Arc::new(serde_json::from_slice(&std::fs::read(plan_path)?)?);
    let client = Arc::new(Client::new(base, token));
    let stats = Arc::new(Mutex::new(Stats::default()));
    // Bounds what a stalled server can pile up; a request that finds no slot counts as dropped.
    let slots = Arc::new(tokio::sync::Semaphore::new(2048));
    let total = (rate * seconds).round() as usize;
    let start = tokio::time::Instant::now();
    let mut dropped = 0u64;
    let mut next_report = 10.0;
    let mut window_from = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= next_report {
            let s = stats.lock().unwrap();
            let mut window: Vec<u32> = s.latencies[window_from.min(s.latencies.len())..].to_vec();
            window.sort_unstable();
            let non_2xx: u64 = s.status.iter().filter(|(k, _)| **k >= 300).map(|(_, v)| v).sum();
            eprintln!(
                "t={:>4.0}s sent={i} done={} window rps={:.0} p50={:.2}ms p99={:.2}ms non-2xx={non_2xx} transport-errors={} dropped={dropped}",
                elapsed,
                s.latencies.len(),
                window.len() as f64 / 10.0,
                percentile(&window, 0.5),
                percentile(&window, 0.99),
                s.transport_errors,
            );
            window_from = s.latencies.len();
            next_report += 10.0;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let (method, path, body) = request(&plan, i);
        let (client, stats) = (client.clone(), stats.clone());
        tasks.spawn(async move {
            let result = client.send(method, &path, body.as_ref()).await;
            let micros = due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            let mut s = stats.lock().unwrap();
            match result {
                Ok((status, v)) => {
                    *s.status.entry(status).or_default() += 1;
                    if status >= 300 && s.first_error.is_none() {
                        s.first_error = Some(format!("{method} {path}: {status} {v}"));
                    }
                    s.latencies.push(micros);
                }
                Err(e) => {
                    s.transport_errors += 1;
                    if s.first_error.is_none() {
                        s.first_error = Some(format!("{method} {path}: {e}"));
                    }
                }
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = start.elapsed().as_secs_f64();
    let mut s = stats.lock().unwrap();
    s.latencies.sort_unstable();
    let done = s.latencies.len() as u64;
    let ok: u64 = s.status.iter().filter(|(k, _)| (200..300).contains(*k)).map(|(_, v)| v).sum();
    let throttled = s.status.get(&429).copied().unwrap_or(0);
    let summary = json!({
        "rate_target": rate,
        "seconds": wall,
        "requests": done,
        "rps": done as f64 / wall,
        "ok": ok,
        "throttled_429": throttled,
        "errors": done - ok - throttled + s.transport_errors + dropped,
        "transport_errors": s.transport_errors,
        "dropped": dropped,
        "status": s.status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "latency_ms": {
            "p50": percentile(&s.latencies, 0.5),
            "p90": percentile(&s.latencies, 0.9),
            "p99": percentile(&s.latencies, 0.99),
            "p999": percentile(&s.latencies, 0.999),
            "max": percentile(&s.latencies, 1.0),
        },
        "first_error": s.first_error,
    });
    println!("{summary}");
    Ok(())
}
