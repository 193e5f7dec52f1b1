//! Operational endpoints: health, readiness, Prometheus metrics; request metrics; the
//! answers for unknown routes and panics.

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::series;
use crate::api::doc::Status;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[utoipa::path(get, path = "/healthz", summary = "The process is up", responses((status = 200, body = Status)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and the engine runs.
#[utoipa::path(get, path = "/readyz", summary = "The database answers and the engine runs (503 otherwise)", responses((status = 200, body = Status), (status = 503, body = Status)))]
async fn readyz(State(s): State<AppState>) -> Response {
    let engine = s.service.engine();
    if !engine.scheduler_running() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "the scheduler is not running" })),
        )
            .into_response();
    }
    match s.service.database_ready().await {
        Ok(()) => Json(json!({ "status": "ready", "node": engine.node_id(), "scheduler": "running" }))
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": format!("database: {e}") })),
        )
            .into_response(),
    }
}

#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics (text exposition format)", responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Response {
    record_pool_metrics(s.service.pool_stats());
    match &s.metrics {
        Some(handle) => {
            let mut text = handle.render();
            if s.service.settings().metrics_per_job {
                match s.service.health_for_metrics().await {
                    Ok((rows, monitors)) => {
                        text.push_str(&series::per_job(&rows));
                        text.push_str(&series::per_monitor(&monitors));
                    }
                    Err(e) => tracing::warn!(error = %e, "reading jobs' and monitors' health for /metrics"),
                }
            }
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
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
    describe_counter!(
        "cronstack_claims_deferred_total",
        "Claims put off because a run had waited past the missed-run grace for a slot: the node is behind"
    );
    describe_counter!("cronstack_pruned_rows_total", "Rows deleted by the history pruner, by table");
    describe_counter!(
        "cronstack_claims_total",
        "Slots this node's scheduler tried to claim, by outcome (lost: another node had claimed it)"
    );
    for status in crate::domain::RunStatus::ALL.iter().filter(|s| s.is_final()) {
        metrics::counter!("cronstack_runs_total", "outcome" => status.as_str()).increment(0);
    }
    for result in ["delivered", "retrying", "failed", "lost"] {
        metrics::counter!("cronstack_webhook_deliveries_total", "result" => result).increment(0);
    }
    for outcome in crate::store::ClaimOutcome::NAMES {
        metrics::counter!("cronstack_claims_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("cronstack_claims_deferred_total").increment(0);
    for table in crate::store::Aged::ALL {
        metrics::counter!("cronstack_pruned_rows_total", "table" => table.table()).increment(0);
    }
    metrics::gauge!("cronstack_runs_running").increment(0.0);
    metrics::gauge!("cronstack_runs_waiting").increment(0.0);
    metrics::gauge!("cronstack_jobs_scheduled").increment(0.0);
    let _ = metrics::histogram!("cronstack_run_lateness_seconds");
    let _ = metrics::histogram!("cronstack_run_duration_seconds");
}

/// The database pools' figures as gauges.
pub fn record_pool_metrics(stats: Vec<(&'static str, u32, usize, u32)>) {
    for (pool, open, idle, max) in stats {
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
            record_pool_metrics(store.pool_stats());
            exporter.run_upkeep();
        }
    });
}

tokio::task_local! {
    /// The route the request being answered matched, as the router matched it: set by the
    /// layers inside the router (the dialect gates, [`label_route`]) for [`Observe`], which
    /// runs outside it and cannot see the routed request. A task-local, not a response
    /// extension: the first extension of a response allocates its map and a box, on every
    /// request. A request no route matched counts as `unmatched`.
    static MATCHED_ROUTE: std::cell::Cell<Option<MatchedPath>>;
}

/// Records `route` as the route of the request being answered (see [`MATCHED_ROUTE`]); a
/// no-op outside [`Observe`] (a router driven without it, in tests).
pub fn label_request(route: Option<MatchedPath>) {
    let _ = MATCHED_ROUTE.try_with(|matched| matched.set(route));
}

/// For the routes outside the two dialects (theirs are labelled by their gates).
pub async fn label_route(req: Request, next: Next) -> Response {
    label_request(req.extensions().get::<MatchedPath>().cloned());
    next.run(req).await
}

/// The outermost layer, around the router (not applied per route, so nothing is cloned per
/// request): counts and times requests by route, method and status, turns a panic into a JSON
/// 500 ([`panic_response`]), logs every other 5xx at error level (except a full database's
/// 507: the store logs that once per incident, not once per refused request), and closes
/// connections whose request body was refused. One layer doing all of it, where tower-http's
/// panic catching and failure log each re-wrapped the response body (bench `api`: those
/// layers were 12–15% of a cached read's CPU).
///
/// A request refused before its body was read (too large, wrong type, no token…) leaves
/// unread bytes on its connection, which the server then closes after the answer. The answer
/// says so (`Connection: close`): a client that reused the connection for its next request
/// would otherwise see it closed without an answer.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    handles: Arc<RequestMetrics>,
}

pub fn observe<S>(inner: S) -> Observe<S> {
    Observe { inner, handles: Arc::default() }
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use futures_util::FutureExt;
        use std::panic::AssertUnwindSafe;
        let headers = req.headers();
        let has_body = headers.contains_key(TRANSFER_ENCODING)
            || headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
        let method = req.method().clone();
        let started = Instant::now();
        let handles = self.handles.clone();
        // A panic in the router's call or in the handler's future is answered, never unwound
        // into the server's connection task.
        let answer = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)));
        Box::pin(MATCHED_ROUTE.scope(std::cell::Cell::new(None), async move {
            let answered = match answer {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await.map(|Ok(r)| r),
                Err(panic) => Err(panic),
            };
            let mut response = match answered {
                Ok(response) => {
                    let status = response.status();
                    if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE {
                        tracing::error!(%status, latency_ms = started.elapsed().as_millis() as u64, "response failed");
                    }
                    response
                }
                Err(panic) => panic_response(panic),
            };
            let status = response.status();
            let route = MATCHED_ROUTE.with(|matched| matched.take());
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            handles.record(route, &method, status, started.elapsed().as_secs_f64());
            if has_body && (status.is_client_error() || status.is_server_error()) {
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        }))
    }
}

/// The request metrics' handles, by route then method and status: registered once, so a
/// request neither builds label strings nor looks its series up in the registry.
#[derive(Default)]
struct RequestMetrics {
    routes: RwLock<foldhash::HashMap<Box<str>, RouteMetrics>>,
}

struct RouteMetrics {
    duration: metrics::Histogram,
    requests: Vec<(&'static str, StatusCode, metrics::Counter)>,
}

/// The method as a label: any other than the standard ones counts as `other`, so that
/// requests with made-up methods cannot add series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl RequestMetrics {
    fn record(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        let method = method_label(method);
        {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = routes.get(route)
                && let Some((_, _, requests)) =
                    r.requests.iter().find(|(m, s, _)| *m == method && *s == status)
            {
                requests.increment(1);
                r.duration.record(seconds);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(route.into()).or_insert_with(|| RouteMetrics {
            duration: metrics::histogram!("cronstack_http_request_duration_seconds", "route" => route.to_string()),
            requests: Vec::new(),
        });
        let requests = match r.requests.iter().position(|(m, s, _)| *m == method && *s == status) {
            Some(i) => &r.requests[i].2,
            None => {
                let counter = metrics::counter!("cronstack_http_requests_total",
                    "route" => route.to_string(), "method" => method, "status" => status.as_str().to_string());
                r.requests.push((method, status, counter));
                &r.requests[r.requests.len() - 1].2
            }
        };
        requests.increment(1);
        r.duration.record(seconds);
    }
}

/// A panic is a bug; the client gets a JSON 500, the log gets the rest.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use tower::{Service, ServiceExt};

    use super::*;

    /// What the tracing events of a test say, one line each.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The answer of `observe` around `inner` to a GET, and what it logged.
    async fn observed<S>(inner: S) -> (Response, String)
    where
        S: tower::Service<Request, Response = Response, Error = Infallible> + Send,
        S::Future: Send + 'static,
    {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let mut service = observe(inner);
        let req = Request::builder().uri("/x").body(Body::empty()).unwrap();
        let Ok(response) = service.ready().await.unwrap().call(req).await;
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (response, log)
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panic_in_a_handler_or_in_the_call_is_a_json_500_and_logged() {
        let in_future = tower::service_fn(|_: Request| async {
            if true {
                panic!("boom in the handler");
            }
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        });
        let (response, log) = observed(in_future).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_json(response).await["code"], 30);
        assert!(log.contains("handler panicked") && log.contains("boom in the handler"), "{log}");

        #[derive(Clone)]
        struct PanicsInCall;
        impl tower::Service<Request> for PanicsInCall {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Infallible>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request) -> Self::Future {
                panic!("boom in the call")
            }
        }
        let (response, log) = observed(PanicsInCall).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(log.contains("boom in the call"), "{log}");
    }

    #[tokio::test]
    async fn server_errors_are_logged_except_a_full_database() {
        let answering = |status: StatusCode| {
            tower::service_fn(move |_: Request| async move { Ok::<_, Infallible>(status.into_response()) })
        };
        let (response, log) = observed(answering(StatusCode::SERVICE_UNAVAILABLE)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(log.contains("response failed") && log.contains("503"), "{log}");
        let (response, log) = observed(answering(StatusCode::INSUFFICIENT_STORAGE)).await;
        assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(log.is_empty(), "{log}");
        let (_, log) = observed(answering(StatusCode::NOT_FOUND)).await;
        assert!(log.is_empty(), "{log}");
    }
}
