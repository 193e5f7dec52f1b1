//! Operational endpoints: health, readiness, Prometheus metrics; request metrics; the
//! answers for unknown routes and panics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and the engine runs.
async fn readyz(State(s): State<AppState>) -> Response {
    let engine = s.service.engine();
    if !engine.scheduler_running() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "the scheduler is not running" })),
        )
            .into_response();
    }
    match s.service.store().ping().await {
        Ok(()) => Json(json!({ "status": "ready", "node": engine.node_id(), "scheduler": "running" }))
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": format!("database: {e}") })),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    record_pool_metrics(s.service.store());
    match &s.metrics {
        Some(handle) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "error_description": format!("no such endpoint: {}", uri.path().chars().take(200).collect::<String>()) })),
    )
        .into_response()
}

/// Describes every cronstack metric and registers the series that must be scraped even
/// before anything happened (a zero is an answer; a missing series is a question).
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("cronstack_runs_total", "Finished runs by outcome");
    describe_histogram!(
        "cronstack_run_lateness_seconds",
        Unit::Seconds,
        "How late runs started: started_at - scheduled_for"
    );
    describe_histogram!("cronstack_run_duration_seconds", Unit::Seconds, "How long runs ran");
    describe_gauge!("cronstack_runs_running", "Runs whose process is running on this node");
    describe_gauge!(
        "cronstack_runs_waiting",
        "Runs waiting for a free slot (--max-concurrent-runs): the queue depth"
    );
    describe_gauge!("cronstack_jobs_scheduled", "Enabled jobs in this node's schedule");
    describe_counter!("cronstack_webhook_deliveries_total", "Webhook delivery attempts by result");
    describe_counter!("cronstack_http_requests_total", "HTTP requests by route, method and status");
    describe_histogram!(
        "cronstack_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request durations by route"
    );
    describe_gauge!(
        "cronstack_db_pool_connections",
        "Open database connections by pool and state (idle, in_use)"
    );
    describe_gauge!("cronstack_db_pool_max_connections", "Largest size of each database connection pool");
    for status in crate::domain::RunStatus::ALL.iter().filter(|s| s.is_final()) {
        metrics::counter!("cronstack_runs_total", "outcome" => status.as_str()).increment(0);
    }
    for result in ["delivered", "retrying", "failed", "lost"] {
        metrics::counter!("cronstack_webhook_deliveries_total", "result" => result).increment(0);
    }
    metrics::gauge!("cronstack_runs_running").increment(0.0);
    metrics::gauge!("cronstack_runs_waiting").increment(0.0);
    metrics::gauge!("cronstack_jobs_scheduled").increment(0.0);
    let _ = metrics::histogram!("cronstack_run_lateness_seconds");
    let _ = metrics::histogram!("cronstack_run_duration_seconds");
}

/// The database pools' figures as gauges.
pub fn record_pool_metrics(store: &crate::store::Store) {
    for (pool, open, idle, max) in store.pool_stats() {
        let idle = idle.min(open as usize) as f64;
        metrics::gauge!("cronstack_db_pool_connections", "pool" => pool, "state" => "idle").set(idle);
        metrics::gauge!("cronstack_db_pool_connections", "pool" => pool, "state" => "in_use")
            .set(f64::from(open) - idle);
        metrics::gauge!("cronstack_db_pool_max_connections", "pool" => pool).set(f64::from(max));
    }
}

/// Keeps the pool gauges current between scrapes (every 5 s).
/// Every 5 s: the pool gauges, and the exporter's upkeep, which drains the samples histograms
/// collect between scrapes (unscraped, they would grow without bound: a sample per request).
pub fn spawn_metrics_upkeep(
    store: crate::store::Store,
    exporter: metrics_exporter_prometheus::PrometheusHandle,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            record_pool_metrics(&store);
            exporter.run_upkeep();
        }
    });
}

/// Counts requests by matched route and status, and times them.
pub async fn track_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("cronstack_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("cronstack_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A panic is a bug; the client gets a JSON 500, the log gets the rest.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    tracing::error!(panic = %detail, "handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "code": 30, "msg": "internal error", "error": "internal_error", "error_description": "internal error" })),
    )
        .into_response()
}
