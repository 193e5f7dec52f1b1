//! HTTP: the Kragle dialect under `/api/v1`, the Cloud 66 dialect under `/api/3`, and the
//! operational endpoints. This file reads as the table of contents.

mod auth;
mod cloud66;
mod error;
mod extract;
mod guard;
// Its job and run views are also the objects of outbound webhook deliveries.
pub(crate) mod kragle;
mod openapi;
mod ops;
mod serve;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum_extra::extract::cookie::Key;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use auth::RateLimiter;
pub use ops::{describe_metrics, spawn_metrics_upkeep};
pub use serve::{ClientTimeout, serve};

use crate::service::Service;

/// What every handler shares; cloned for each request (an `Arc`, so a clone is one increment).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

pub struct SharedState {
    pub service: Service,
    /// Signs the session cookie; shared by all nodes through the database.
    pub cookie_key: Key,
    pub limiter: Arc<RateLimiter>,
    /// Calls per stack hook (inbound webhooks), whoever calls.
    pub hook_limiter: Arc<RateLimiter>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl AppState {
    pub async fn new(
        service: Service,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let key = service.cookie_key().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let limiter = Arc::new(RateLimiter::new(service.settings().rate_limit_per_hour, service.store()));
        let hook_limiter =
            Arc::new(RateLimiter::new(service.settings().hook_rate_limit_per_hour, service.store()));
        Ok(AppState(Arc::new(SharedState {
            cookie_key: Key::from(&key),
            service,
            limiter,
            hook_limiter,
            metrics,
        })))
    }
}

/// The whole HTTP service: the router behind the one rewrite that must happen before
/// routing (Cloud 66 clients' `.json` suffixes).
pub fn app(
    state: AppState,
) -> tower::util::MapRequest<Router, fn(axum::extract::Request) -> axum::extract::Request> {
    use tower::Layer;
    tower::util::MapRequestLayer::new(cloud66::strip_json_suffix as fn(_) -> _).layer(router(state))
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .nest("/api/v1", kragle::router(state.clone()))
        .nest("/api/3", cloud66::router(state.clone()))
        .merge(ops::router())
        .merge(openapi::router())
        .merge(ui::router());
    // Read off the finished route table: whatever is served is in the document.
    let doc = openapi::ApiDoc::of(&routes);
    routes
        .layer(axum::Extension(doc))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn(ops::track_request))
        // The span names the path, never the query string: a hook token may travel there.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            axum::http::HeaderName::from_static("x-cronstack-hook-token"),
        ]))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .layer(axum::middleware::from_fn(guard::close_after_refused_body))
        .with_state(state)
}

/// Fuzzing (see `crate::fuzz`): `data` as the body of every JSON request type of both
/// dialects, through the extractors the handlers use.
pub(crate) fn fuzz_request_bodies(data: &[u8]) {
    kragle::fuzz_bodies(data);
    cloud66::fuzz_bodies(data);
}

/// A POST carrying `data`, for the fuzz entry points.
fn fuzz_request(data: &[u8], content_type: Option<&str>) -> axum::extract::Request {
    let mut req = axum::extract::Request::new(axum::body::Body::from(data.to_vec()));
    *req.method_mut() = axum::http::Method::POST;
    if let Some(ct) = content_type {
        req.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_str(ct).unwrap());
    }
    req
}

/// Runs an extractor to its end: a body already in memory never makes it wait.
fn fuzz_ready<F: std::future::Future>(f: F) -> F::Output {
    futures_util::FutureExt::now_or_never(f).expect("an in-memory body never waits")
}

/// A body an extractor accepted is empty or a JSON object.
fn fuzz_check_accepted(data: &[u8]) {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    assert!(matches!(first, None | Some(b'{')), "accepted a body that is not an object: {data:?}");
}

/// A refusal is a 4xx whose body is a JSON object.
fn fuzz_check_rejection(response: axum::response::Response) {
    let status = response.status();
    assert!(status.is_client_error(), "a bad body answered {status}");
    let body = fuzz_ready(axum::body::to_bytes(response.into_body(), usize::MAX)).expect("error body");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("error bodies are JSON");
    assert!(value.is_object(), "error body {value}");
}
